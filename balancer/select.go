package balancer

import "math"

// statKeyOf is K for e (prid 0 for lb_noproviderforcaid CAIDs).
func (d *Dispatcher) statKeyOf(e *inflight) statKey {
	k := statKey{caid: e.caid, prid: e.prid, srvid: e.srvid, chid: e.chid, ecmlen: e.ecmlen}
	if d.set.NoProviderForCAID.MatchNoProvider(e.caid) {
		k.prid = 0
	}
	return k
}

// valid is OSCam's valid-stat predicate (§3.2).
func (d *Dispatcher) valid(st *statEntry, r int) bool {
	return st.rc == Found && int(st.count) >= d.set.MinECMCount &&
		(int(st.count) <= d.set.MaxECMCount || (r != 0 && int(st.avg) <= r))
}

// selectBest is OSCam's stat_get_best_reader (§3.2–3.7). It sets the
// ACTIVE/FALLBACK flags, the role and the explanation of every slot.
func (d *Dispatcher) selectBest(e *inflight, now Time) {
	s := &d.set
	r := s.retryLimitFor(e.caid)
	nbest := s.NBestPerCAID.Lookup(e.caid, s.NBest)
	nfb := s.NFB
	nreaders := s.MaxReaders
	if nreaders == 0 {
		nreaders = -1
	} else if nreaders <= nbest {
		nreaders = nbest + 1
	}
	maxReopen := nreaders - nbest
	k := d.statKeyOf(e)

	nlocal := 0
	for i := range e.slots {
		sl := &e.slots[i]
		if sl.flags&fEligible == 0 {
			continue
		}
		sl.flags &^= fActive | fFallback
		sl.stat = d.readers[i].stats.get(k)
		sl.why, sl.role = whyNone, RolePrimary
		if sl.stat < 0 {
			continue
		}
		st := &d.readers[i].stats.entries[sl.stat]
		if !d.valid(st, r) {
			continue
		}
		if e.prefer != 0 && sl.flags&fLocal != 0 {
			nlocal++
		}
		sl.value = d.value(&d.readers[i], st, r, now)
		sl.shown, sl.time = sl.value, st.avg
	}

	if nlocal > nbest {
		nlocal, nbest = nbest, 0
	} else {
		nbest -= nlocal
	}
	bestTime, first := int32(0), true
	for {
		i := minValued(e, nlocal > 0)
		if i < 0 {
			break
		}
		sl := &e.slots[i]
		if first {
			bestTime, first = sl.time, false
		}
		if nlocal > 0 {
			nlocal--
		} else if nbest > 0 {
			nbest--
		} else {
			break
		}
		sl.flags |= fActive
		sl.value = 0
		sl.why, sl.role = whyPrimary, RolePrimary
	}
	d.pickFallbacks(e, r, nfb)

	readerActive := d.alwaysAsked(e, r, now)
	forceReopen := false
	if readerActive == 0 {
		forceReopen = true
	} else if r != 0 && bestTime != 0 && int(bestTime) > r {
		for i := range e.slots {
			sl := &e.slots[i]
			if sl.flags&fEligible == 0 || sl.stat < 0 {
				continue
			}
			st := &d.readers[i].stats.entries[sl.stat]
			if d.valid(st, r) {
				sl.flags = sl.flags&^fFallback | fActive
				sl.why, sl.role, sl.a, sl.b = whyRetryReached, RolePrimary, bestTime, int32(r)
				st.resetAvg()
			} else if st.rc != Found {
				st.resetAvg()
			}
		}
		forceReopen = true
	}
	d.reopen(e, forceReopen, maxReopen, now)
}

// value computes a slot's selection value for modes 1–3 (§3.3). Lower
// wins; 0 means "not valued". int64 avoids OSCam's mode-2 overflow.
func (d *Dispatcher) value(rs *readerState, st *statEntry, r int, now Time) int64 {
	w := int64(rs.set.Weight)
	var v int64
	switch d.set.Mode {
	case 1:
		v = int64(st.avg) * 100 / w
	case 2:
		if !rs.lbLastSet {
			rs.lbLast, rs.lbLastSet = now, true
		}
		v = int64(rs.lbLast-now) * w / 100
		if v == 0 {
			v = -1
		}
		if r != 0 {
			if int(st.avg) > r {
				v = int64(st.avg)
			} else {
				v--
			}
		}
	case 3:
		v = int64(rs.usageLevel) * 100 / w
		if r != 0 {
			if int(st.avg) > r {
				v = 1000
			} else {
				v--
			}
		}
	}
	if d.set.Mode != 2 && v < 1 {
		v = 1
	}
	return v
}

// minValued returns the slot with the smallest non-zero value (the first
// one on ties), only LOCAL slots if localOnly, or -1.
func minValued(e *inflight, localOnly bool) int {
	best := -1
	for i := range e.slots {
		sl := &e.slots[i]
		if sl.value == 0 || localOnly && sl.flags&fLocal == 0 {
			continue
		}
		if best < 0 || sl.value < e.slots[best].value {
			best = i
		}
	}
	return best
}

// pickFallbacks chooses nfb fallbacks: forced fixed, fixed valid, then
// next best value (§3.5).
func (d *Dispatcher) pickFallbacks(e *inflight, r, nfb int) {
	for i := range e.slots {
		sl := &e.slots[i]
		if nfb == 0 {
			return
		}
		if sl.flags&(fForcedFallback|fActive) == fForcedFallback {
			sl.flags |= fActive | fFallback
			sl.why, sl.role = whyForcedFallback, RoleFallback
			nfb--
		}
	}
	for i := range e.slots {
		sl := &e.slots[i]
		if nfb == 0 {
			return
		}
		if sl.flags&(fFixedFallback|fForcedFallback|fActive) == fFixedFallback && sl.stat >= 0 &&
			d.valid(&d.readers[i].stats.entries[sl.stat], r) {
			sl.flags |= fActive | fFallback
			sl.why, sl.role = whyFixedFallback, RoleFallback
			sl.value = 0
			nfb--
		}
	}
	for ; nfb > 0; nfb-- {
		best := -1
		for i := range e.slots {
			sl := &e.slots[i]
			if sl.value != 0 && sl.flags&fActive == 0 && (best < 0 || sl.value < e.slots[best].value) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		sl := &e.slots[best]
		sl.flags |= fActive | fFallback
		sl.value = 0
		sl.why, sl.role = whyFallback, RoleFallback
	}
}

// alwaysAsked activates readers without stats, learning, reset by
// lb_max_ecmcount or refreshed by the 5-minute retrylimit rule (§3.6). It
// returns reader_active.
func (d *Dispatcher) alwaysAsked(e *inflight, r int, now Time) int {
	active := 0
	for i := range e.slots {
		sl := &e.slots[i]
		if sl.flags&fEligible == 0 {
			continue
		}
		if sl.flags&fActive != 0 && sl.flags&fFallback == 0 {
			active++
		}
		if sl.flags&fForcedFallback != 0 {
			continue
		}
		if sl.stat < 0 {
			sl.flags |= fActive
			sl.why, sl.role = whyNoStats, RoleLearning
			active++
			continue
		}
		st := &d.readers[i].stats.entries[sl.stat]
		switch {
		case st.rc != Found:
		case int(st.count) < d.set.MinECMCount:
			sl.flags |= fActive
			sl.why, sl.role, sl.a, sl.b = whyLearning, RoleLearning, st.count, int32(d.set.MinECMCount)
			active++
		case int(st.count) > d.set.MaxECMCount && (r == 0 || int(st.avg) > r):
			sl.a = st.count
			st.count = 0
			st.resetAvg()
			sl.flags |= fActive
			sl.why, sl.role = whyReset, RoleLearning
			active++
		case r != 0 && now-st.last >= 300_000 && int(st.avg) > r:
			sl.a, sl.b = st.avg, int32(r)
			st.resetAvg()
			sl.flags = sl.flags&^fFallback | fActive
			sl.why, sl.role = whyRetryRefresh, RolePrimary
			active++
		}
	}
	return active
}

// reopen unblocks blocked readers whose block time is over, at most
// max_reopen of them, or all with lb_force_reopen_always (§3.7).
func (d *Dispatcher) reopen(e *inflight, force bool, maxReopen int, now Time) {
	for i := range e.slots {
		sl := &e.slots[i]
		if sl.flags&fEligible == 0 {
			continue
		}
		if sl.flags&(fActive|fFallback) != 0 || sl.stat < 0 {
			if sl.why == whyNone {
				sl.why = whyNotSelected
			}
			continue
		}
		st := &d.readers[i].stats.entries[sl.stat]
		if st.rc == Found {
			if sl.why == whyNone {
				sl.why = whyNotSelected
			}
			continue
		}
		if !d.set.ReopenInvalid && st.rc == Invalid {
			sl.why = whyBlockedInvalid
			continue
		}
		if force && d.set.ForceReopenAlways {
			sl.a = st.fail
			st.fail = 0
			sl.flags |= fActive
			sl.why, sl.role = whyForceReopen, RoleReopen
			continue
		}
		block := d.blockMs(st)
		if age := int64(now - st.last); age > block {
			if maxReopen != 0 {
				sl.flags |= fActive
				sl.why, sl.role, sl.a = whyReopened, RoleReopen, st.fail
				maxReopen--
			} else {
				sl.why, sl.a = whyReopenLimit, st.fail
			}
			continue
		} else {
			sl.why, sl.a, sl.b = whyBlocked, int32(min(block-age, math.MaxInt32)), st.fail
			sl.blockRC = st.rc
		}
	}
}

// blockMs is reopen_seconds(s) in ms, with the fail factor clamp
// written back to the entry.
func (d *Dispatcher) blockMs(st *statEntry) int64 {
	st.fail = d.set.clampFail(st.fail)
	f := int64(st.fail)
	if f <= 0 {
		f = 1
	}
	return f * int64(d.set.ReopenSeconds) * 1000
}

// addStat is OSCam's add_stat (§2.3). ms is the time since the request
// was queued.
func (d *Dispatcher) addStat(e *inflight, i int, rc Result, ms int, now Time) {
	rs := &d.readers[i]
	sl := &e.slots[i]
	ct := d.set.ClientTimeout
	switch {
	case d.set.Mode == 0 || e.ecmlen == 0:
		return
	case sl.flags&fForcedFallback != 0 && rs.set.isFallbackFor(e.caid, e.prid):
		return
	case rc >= NotFound && rs.set.LBWhitelistServices.Contains(e.srvid):
		return
	case rc == Timeout && rs.local:
		return
	}
	if rc <= NotFound {
		ms = max(ms, 1)
	} else {
		ms = ct
	}
	if ms >= 3*ct {
		return
	}
	if ms >= ct {
		rc = Timeout
	}
	st := d.getOrCreate(rs, d.statKeyOf(e), now)
	rs.stats.touch(st, now)
	en := &rs.stats.entries[st]
	switch rc {
	case Found:
		en.rc = Found
		en.count++
		en.fail = 0
		en.pushTime(ms)
		d.usage(rs, now)
	case NotFound, Timeout:
		if en.fail <= 0 {
			en.fail = 1
		} else {
			en.fail++
		}
		en.rc = rc
	case Invalid:
		en.rc = Invalid
	default:
		return
	}
	d.counters.StatsRecorded++
	d.housekeeping(now)
	if d.set.Save != 0 {
		d.saveCount++
		if d.saveCount > d.set.Save {
			d.saveCount = 0
			select {
			case d.saveReq <- struct{}{}:
			default:
			}
		}
	}
}

func (d *Dispatcher) getOrCreate(rs *readerState, k statKey, now Time) int32 {
	if i := rs.stats.get(k); i >= 0 {
		return i
	}
	return rs.stats.create(k, now)
}

// readerInfoFix is OSCam's extra timeout path: one more fail factor,
// whatever lb_mode and the add_stat exemptions say, rc unchanged.
func (d *Dispatcher) readerInfoFix(e *inflight, i int, now Time) {
	rs := &d.readers[i]
	st := d.getOrCreate(rs, d.statKeyOf(e), now)
	rs.stats.entries[st].fail++
}

// usage updates the mode-3 usage level after a FOUND.
func (d *Dispatcher) usage(rs *readerState, now Time) {
	rs.usageCount++
	if int(rs.usageCount)%d.set.MinECMCount != 0 {
		return
	}
	if !rs.usageTimeSet {
		rs.usageLevel = 0 // OSCam's first window counts from 1970
	} else {
		t := int64(now-rs.usageTime) / 1000
		if t < 1 {
			t = 1
		}
		rs.usageLevel = int32(int64(d.set.MinECMCount) * 1000 / t)
	}
	rs.usageTime, rs.usageTimeSet = now, true
	rs.usageCount = 0
}

// housekeeping deletes entries older than lb_stat_cleanup, at most once
// an hour and at once the first time.
func (d *Dispatcher) housekeeping(now Time) {
	if d.cleanStarted && now < d.nextClean {
		return
	}
	d.cleanStarted, d.nextClean = true, now+3600_000
	cutoff := now - Time(d.set.StatCleanupMs)
	for i := range d.readers {
		d.counters.StatsCleaned += uint64(d.readers[i].stats.cleanup(cutoff))
	}
}
