package balancer

import "time"

// match builds the matching-reader list (OSCam §3.1) in configuration
// order: eligibility filters, then the initial ACTIVE/LOCAL/FALLBACK flags.
func (d *Dispatcher) match(e *inflight) {
	for i := range d.readers {
		rs := &d.readers[i]
		sl := &e.slots[i]
		*sl = ecmSlot{stat: -1}
		if sl.why = d.filter(rs, e); sl.why != whyNone {
			continue
		}
		sl.flags = fEligible | fActive
		if rs.local || rs.set.LocalCards.MatchPair(e.caid, e.prid) {
			sl.flags |= fLocal
		}
		if rs.set.isFallbackFor(e.caid, e.prid) {
			sl.flags |= fFixedFallback
			if rs.set.LBForceFallback == 1 {
				sl.flags |= fForcedFallback
			}
			if sl.flags&fLocal == 0 || e.prefer == 0 {
				sl.flags |= fFallback
			}
		}
		sl.why, sl.role = whyLBOff, RolePrimary
		if sl.flags&fFallback != 0 {
			sl.role = RoleFallback
		}
	}
}

// filter returns why reader rs cannot take e, or whyNone.
func (d *Dispatcher) filter(rs *readerState, e *inflight) whyCode {
	st := rs.r.Status()
	switch {
	case !st.Enabled:
		return whyDisabled
	case !st.Present:
		return whyNoCard
	case e.groups != 0 && rs.set.Group&e.groups == 0:
		return whyGroup
	case !rs.set.CAID.Match(e.caid):
		return whyCAID
	case len(st.CAIDs) > 0 && !cardHasCAID(st.CAIDs, e.caid):
		return whyCardCAID
	case !rs.set.Services.Match(e.srvid):
		return whyServices
	case len(st.Services) > 0 && !containsU16(st.Services, e.srvid):
		return whyCardService
	case !rs.set.Ident.MatchIdent(e.caid, e.prid):
		return whyIdent
	case !rs.set.CHID.MatchCHID(e.caid, e.chid):
		return whyCHID
	case len(st.Providers) > 0 && !containsU32(st.Providers, e.prid):
		return whyProvider
	}
	return whyNone
}

// cardHasCAID: the card's own CAID, or its system's high byte, matches.
func cardHasCAID(caids []uint16, caid uint16) bool {
	for _, c := range caids {
		if c == caid || c>>8 == caid>>8 {
			return true
		}
	}
	return false
}

func containsU16(l []uint16, v uint16) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func containsU32(l []uint32, v uint32) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

type ecmMatcher struct {
	d    *Dispatcher
	caid uint16
	sum  [16]byte
}

func (m ecmMatcher) match(ref int32) bool {
	o := &m.d.ecms[ref]
	return o.used && o.caid == m.caid && o.md5 == m.sum
}

// findOrigin returns an in-flight ECM with the same CAID and ECM digest,
// or -1 (OSCam's in-flight list scan, here one hash lookup).
func (d *Dispatcher) findOrigin(e *inflight, idx int32, now Time) int32 {
	o := findIn(&d.ecmIndex, e.hash, ecmMatcher{d, e.caid, e.md5})
	if o < 0 || o == idx || d.ecms[o].origin >= 0 {
		return -1
	}
	return o
}

// sameMatch implements the "same ECM, same matching-reader list, arrived
// within (clienttimeout+500)/1000 s" test that reuses a selection.
func (d *Dispatcher) sameMatch(o, e *inflight) bool {
	if e.arrival-o.arrival > Time((d.set.ClientTimeout+500)/1000*1000) {
		return false
	}
	for i := range e.slots {
		if (o.slots[i].flags^e.slots[i].flags)&fEligible != 0 {
			return false
		}
	}
	return true
}

// copySelection copies the ACTIVE/FALLBACK flags (and explanations) of an
// identical in-flight ECM reader by reader.
func (d *Dispatcher) copySelection(o, e *inflight) {
	for i := range e.slots {
		os, es := &o.slots[i], &e.slots[i]
		es.flags = es.flags&^(fActive|fFallback) | os.flags&(fActive|fFallback)
		es.role, es.why, es.a, es.b, es.shown = os.role, os.why, os.a, os.b, os.shown
	}
}

// requestStage runs OSCam's request_cw_from_readers: advance at least one
// stage and stop once a stage asked someone.
func (d *Dispatcher) requestStage(e *inflight, idx int32, now Time) {
	for e.stage < 4 {
		e.stage++
		asked := false
		for i := range e.slots {
			f := e.slots[i].flags
			if f&fActive == 0 || f&fSent != 0 {
				continue
			}
			var want bool
			switch e.stage {
			case 2:
				want = e.prefer != 0 && f&fLocal != 0 && f&fFallback == 0
			case 3:
				want = f&fFallback == 0
			case 4:
				want = f&fFallback != 0
			}
			if want {
				d.ask(e, idx, i, now)
				asked = true
			}
		}
		if asked {
			break
		}
	}
	d.resolveImmediate(e, idx, now)
}

// ask sends e to reader i, or chains it on the identical in-flight ECM's
// request to the same reader (one reader request, every client answered).
func (d *Dispatcher) ask(e *inflight, idx int32, i int, now Time) {
	sl := &e.slots[i]
	sl.flags |= fSent
	sl.sentAt = now
	if o := e.origin; o >= 0 && !d.noECMMismatch(i, &d.ecms[o], e) {
		os := &d.ecms[o].slots[i]
		if os.flags&(fSent|fPending|fBusy) == fSent && !(os.flags&fAnswered != 0 && os.rc == Timeout) {
			sl.flags |= fPending
			if os.flags&fAnswered != 0 {
				sl.flags |= fImmediate
			}
			return
		}
	}
	rs := &d.readers[i]
	if sl.flags&fFallback == 0 {
		rs.lbLast, rs.lbLastSet = now, true
	}
	d.offer(e, idx, i, now)
}

// offer submits e to reader i. A full queue is backpressure: the slot
// stays sent and unanswered, and is offered again BusyRetry later until
// the client timeout answers it.
func (d *Dispatcher) offer(e *inflight, idx int32, i int, now Time) {
	sl := &e.slots[i]
	req := Request{Token: Token{slot: uint32(idx), gen: e.gen, reader: uint16(i)}, Role: sl.role,
		CAID: e.caid, PRID: e.prid, SrvID: e.srvid, CHID: e.chid,
		PMTPID: e.pmtpid, ECMPID: e.ecmpid, VPID: e.vpid, ECM: e.data[:e.dataLen], Tag: e.tag}
	sl.sentAt = now
	if d.readers[i].r.Submit(req) {
		sl.flags &^= fBusy
		return
	}
	d.counters.QueueFull++
	sl.flags |= fBusy
	if e.busyAt == 0 || e.busyAt > now+BusyRetry {
		e.busyAt = now + BusyRetry
	}
}

// retryBusy offers e again to the readers whose queue was full.
func (d *Dispatcher) retryBusy(e *inflight, idx int32, now Time) {
	e.busyAt = 0
	for i := range e.slots {
		if e.slots[i].flags&(fBusy|fAnswered) == fBusy {
			d.offer(e, idx, i, now)
		}
	}
}

// noECMMismatch reports whether reader i ignores the ECM and o is another
// service's request: then o's request to i cannot answer e.
func (d *Dispatcher) noECMMismatch(i int, o, e *inflight) bool {
	if o.srvid == e.srvid && o.pmtpid == e.pmtpid && o.ecmpid == e.ecmpid && o.vpid == e.vpid {
		return false
	}
	return d.readers[i].r.Status().NoECM
}

// resolveImmediate answers slots whose shared request already has its
// answer, and slots whose reader queue was full.
func (d *Dispatcher) resolveImmediate(e *inflight, idx int32, now Time) {
	for i := range e.slots {
		sl := &e.slots[i]
		if sl.flags&fImmediate == 0 || sl.flags&fAnswered != 0 {
			continue
		}
		sl.flags &^= fImmediate
		rc, cw := sl.rc, [16]byte{}
		if e.origin >= 0 {
			os := &d.ecms[e.origin].slots[i]
			if os.flags&fAnswered != 0 {
				rc, cw = os.rc, os.cw
				if rc != Found {
					rc = NotFound
				}
			}
		}
		d.slotAnswered(e, idx, i, rc, cw, now, false)
		if !e.used {
			return
		}
	}
}

// Answer records reader tok's answer. cw is the even/odd CW pair; an
// all-zero CW with Found counts as NotFound (OSCam's sanity check).
// Answers for unknown, freed or already answered requests are counted in
// LateAnswers and dropped.
func (d *Dispatcher) Answer(tok Token, rc Result, cw [16]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if int(tok.slot) >= len(d.ecms) || int(tok.reader) >= len(d.readers) {
		d.counters.LateAnswers++
		return
	}
	e := &d.ecms[tok.slot]
	sl := &e.slots[tok.reader]
	if !e.used || e.gen != tok.gen || sl.flags&(fSent|fAnswered|fPending) != fSent {
		d.counters.LateAnswers++
		return
	}
	if rc == Found && cw == [16]byte{} {
		rc = NotFound
	}
	if rc != Found && rc != NotFound && rc != Timeout {
		rc = Invalid
	}
	d.slotAnswered(e, int32(tok.slot), int(tok.reader), rc, cw, d.clock.Now(), true)
}

// slotAnswered is OSCam's write_ecm_answer followed by chk_dcw. real is
// false for answers shared from an identical ECM's request: they write no
// stats.
func (d *Dispatcher) slotAnswered(e *inflight, idx int32, i int, rc Result, cw [16]byte, now Time, real bool) {
	sl := &e.slots[i]
	sl.flags |= fAnswered
	sl.rc, sl.cw = rc, cw
	if real {
		for f := e.firstFollower; f >= 0; f = d.ecms[f].nextFollow {
			fe := &d.ecms[f]
			if fs := &fe.slots[i]; fs.flags&(fPending|fAnswered) == fPending {
				frc := NotFound
				if rc == Found {
					frc = Found
				}
				d.slotAnswered(fe, f, i, frc, cw, now, false)
			}
		}
		if rc == Found && e.hasHash && !d.readers[i].r.Status().NoECM {
			d.counters.CacheEvictions += d.cache.insert(e.hash, e.caid, &e.md5, cw, d.readers[i].set.Group, int16(i), now, d.set.CacheMaxTimeMs)
		}
		ms := int(now - sl.sentAt)
		d.addStat(e, i, rc, ms, now)
		if rc == Timeout {
			d.readerInfoFix(e, i, now)
		}
	}
	d.checkAnswer(e, idx, i, rc, real, now)
	if e.used {
		d.reschedule(idx)
	}
}

// checkAnswer is OSCam's chk_dcw on the client side.
func (d *Dispatcher) checkAnswer(e *inflight, idx int32, i int, rc Result, real bool, now Time) {
	if e.answered {
		return
	}
	switch rc {
	case Found:
		res := Found
		if !real {
			res = Cache
		}
		d.finish(e, res, i, e.slots[i].cw, now)
	case NotFound, Invalid:
		localLeft, primLeft := 0, 0
		for j := range e.slots {
			f := e.slots[j].flags
			if f&fActive == 0 || f&fAnswered != 0 || f&fSent == 0 || f&fFallback != 0 {
				continue
			}
			primLeft++
			if f&fLocal != 0 {
				localLeft++
			}
		}
		if (e.stage == 2 && localLeft == 0) || (e.stage == 3 && primLeft == 0) {
			d.requestStage(e, idx, now)
			if e.answered || !e.used {
				return
			}
		}
		for j := range e.slots {
			if e.slots[j].flags&(fActive|fAnswered) == fActive {
				return
			}
		}
		if !d.set.WaitUntilCTimeout {
			d.finish(e, NotFound, -1, [16]byte{}, now)
		}
	}
}

// finish answers the client once.
func (d *Dispatcher) finish(e *inflight, res Result, by int, cw [16]byte, now Time) {
	e.answered, e.result, e.by = true, res, int16(by)
	switch res {
	case Found, Cache:
		d.counters.Found++
	case NotFound:
		d.counters.NotFound++
	case Timeout:
		d.counters.Timeouts++
	}
	e.client.ECMAnswered(Answer{Tag: e.tag, Result: res, CW: cw, Reader: by, After: time.Duration(now-e.arrival) * time.Millisecond})
}

// nextDeadline is the earliest pending timer of e.
func (e *inflight) nextDeadline() Time {
	t := e.freeAt
	if !e.answered && e.busyAt != 0 && e.busyAt < t {
		t = e.busyAt
	}
	if !e.answered {
		if e.stage < 4 && e.fbAt < t {
			t = e.fbAt
		}
		if e.ctAt < t {
			t = e.ctAt
		}
	}
	return t
}

// reschedule puts e's next deadline in the timer heap and wakes Run if
// it moved before the armed one.
func (d *Dispatcher) reschedule(idx int32) {
	d.timers.set(idx, d.ecms[idx].nextDeadline())
	if m, _, _ := d.timers.min(); m == idx {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// NextDeadline returns the earliest timer, for driving virtual time.
func (d *Dispatcher) NextDeadline() (Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, t, ok := d.timers.min()
	return t, ok
}

// Tick runs every timer that is due at the clock's current time: the
// fallback stage, the client timeout and the release of old ECMs.
func (d *Dispatcher) Tick() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	for {
		idx, t, ok := d.timers.min()
		if !ok || t > now {
			return
		}
		d.fire(idx, now)
	}
}

func (d *Dispatcher) fire(idx int32, now Time) {
	e := &d.ecms[idx]
	if !e.answered && e.busyAt != 0 && now >= e.busyAt {
		d.retryBusy(e, idx, now)
	}
	if !e.answered && e.stage < 4 && now >= e.fbAt {
		for e.stage < 4 && !e.answered && e.used {
			d.requestStage(e, idx, now)
		}
	}
	if e.used && !e.answered && now >= e.ctAt {
		for i := range e.slots {
			if f := e.slots[i].flags; f&(fSent|fAnswered|fPending) == fSent {
				// A reader that never took the request (full queue)
				// gets no timeout in its stats.
				d.slotAnswered(e, idx, i, Timeout, [16]byte{}, now, f&fBusy == 0)
			}
		}
		if !e.answered {
			d.finish(e, Timeout, -1, [16]byte{}, now)
		}
	}
	if !e.used {
		return
	}
	if now >= e.freeAt {
		d.freeECM(idx)
		return
	}
	d.timers.set(idx, e.nextDeadline())
}

// autoTimeout is OSCam's lb_auto_timeout adjustment of a deadline.
func (d *Dispatcher) autoTimeout(e *inflight, t int) int {
	if !d.set.AutoTimeout {
		return t
	}
	for i := range e.slots {
		sl := &e.slots[i]
		if sl.flags&(fActive|fFallback) != fActive || sl.stat < 0 {
			continue
		}
		st := &d.readers[i].stats.entries[sl.stat]
		switch {
		case st.rc == Timeout:
			return t / 2
		case int(st.count) < d.set.MinECMCount:
			return t
		}
		avg := int(st.avg)
		v := max(avg*(100+d.set.AutoTimeoutP)/100, avg+d.set.AutoTimeoutT)
		return min(v, t)
	}
	return t
}
