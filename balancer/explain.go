package balancer

import (
	"fmt"
	"time"
)

// whyCode says why a reader was or was not asked for an ECM.
type whyCode uint8

const (
	whyNone whyCode = iota
	whyDisabled
	whyNoCard
	whyGroup
	whyCAID
	whyCardCAID
	whyServices
	whyCardService
	whyIdent
	whyCHID
	whyProvider
	whyLBOff
	whyPrimary
	whyFallback
	whyFixedFallback
	whyForcedFallback
	whyNoStats
	whyLearning
	whyReset
	whyRetryRefresh
	whyRetryReached
	whyReopened
	whyForceReopen
	whyReopenLimit
	whyBlocked
	whyBlockedInvalid
	whyNotSelected
)

// explainSlot is the stored reason for one reader.
type explainSlot struct {
	why     whyCode
	active  bool
	role    Role
	blockRC Result
	a, b    int32
	value   int64
}

// explainRec is the explanation of the last ECM of one service.
type explainRec struct {
	used        bool
	caid, srvid uint16
	prid        uint32
	at          Time
	hash        uint64
	// mode and maxECM are lb_mode and lb_max_ecmcount at that decision:
	// an explanation read after a change still says what was in force.
	mode, maxECM int
	slots        []explainSlot
}

// explainTable keeps the explanation of the last ECM per (caid, srvid)
// in a fixed ring; when full, the service explained first is evicted.
type explainTable struct {
	recs      []explainRec
	index     hashIndex
	next      int32
	evictions uint64
}

func newExplainTable(n, readers int) explainTable {
	t := explainTable{recs: make([]explainRec, n), index: newHashIndex(n)}
	slots := make([]explainSlot, n*readers)
	for i := range t.recs {
		t.recs[i].slots = slots[i*readers : (i+1)*readers : (i+1)*readers]
	}
	return t
}

type explainMatcher struct {
	t           *explainTable
	caid, srvid uint16
}

func (m explainMatcher) match(ref int32) bool {
	r := &m.t.recs[ref]
	return r.caid == m.caid && r.srvid == m.srvid
}

func serviceHash(caid, srvid uint16) uint64 { return mix64(uint64(caid)<<16 | uint64(srvid)) }

// record stores the selection of e, made under set, as its service's last
// explanation.
func (t *explainTable) record(e *inflight, now Time, set *Settings) {
	h := serviceHash(e.caid, e.srvid)
	i := findIn(&t.index, h, explainMatcher{t, e.caid, e.srvid})
	if i < 0 {
		i = t.next
		t.next = (t.next + 1) % int32(len(t.recs))
		if r := &t.recs[i]; r.used {
			t.index.remove(r.hash, i)
			t.evictions++
		}
		t.index.insert(h, i)
	}
	r := &t.recs[i]
	r.used, r.caid, r.srvid, r.prid, r.at, r.hash = true, e.caid, e.srvid, e.prid, now, h
	r.mode, r.maxECM = set.Mode, set.MaxECMCount
	for j := range e.slots {
		sl := &e.slots[j]
		r.slots[j] = explainSlot{why: sl.why, active: sl.flags&fActive != 0, role: sl.role,
			blockRC: sl.blockRC, a: sl.a, b: sl.b, value: sl.shown}
	}
}

// ReaderExplanation says why one reader was asked for a service's last
// ECM, or why not.
type ReaderExplanation struct {
	Reader string `json:"reader"`
	Asked  bool   `json:"asked"`
	Role   string `json:"role,omitempty"`
	Reason string `json:"reason"`
}

// Explanation is the per-reader explanation of the last ECM of a service.
type Explanation struct {
	CAID    uint16              `json:"caid"`
	PRID    uint32              `json:"prid"`
	SrvID   uint16              `json:"srvid"`
	At      time.Duration       `json:"at"`
	Mode    int                 `json:"lb_mode"` // in force at that decision
	Readers []ReaderExplanation `json:"readers"`
}

// Explain returns the explanation of the last ECM for (caid, srvid).
func (d *Dispatcher) Explain(caid, srvid uint16) (Explanation, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := findIn(&d.explain.index, serviceHash(caid, srvid), explainMatcher{&d.explain, caid, srvid})
	if i < 0 {
		return Explanation{}, false
	}
	return d.explanation(&d.explain.recs[i]), true
}

// Explanations returns every stored explanation.
func (d *Dispatcher) Explanations() []Explanation {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Explanation
	for i := range d.explain.recs {
		if r := &d.explain.recs[i]; r.used {
			out = append(out, d.explanation(r))
		}
	}
	return out
}

func (d *Dispatcher) explanation(r *explainRec) Explanation {
	x := Explanation{CAID: r.caid, PRID: r.prid, SrvID: r.srvid, At: time.Duration(r.at) * time.Millisecond, Mode: r.mode}
	for j := range r.slots {
		s := &r.slots[j]
		if s.value != 0 && usesRank(s.why) {
			s.b = rankOf(r.slots, j)
		}
		re := ReaderExplanation{Reader: d.readers[j].name, Asked: s.active, Reason: reason(s, r)}
		if s.active {
			re.Role = s.role.String()
		}
		x.Readers = append(x.Readers, re)
	}
	return x
}

// reason renders a stored explanation of rec as text.
func reason(s *explainSlot, rec *explainRec) string {
	switch s.why {
	case whyDisabled:
		return "reader disabled"
	case whyNoCard:
		return "no card inserted or not connected"
	case whyGroup:
		return "filtered by group"
	case whyCAID:
		return "filtered by caid"
	case whyCardCAID:
		return "filtered: the card reports another CAID"
	case whyServices:
		return "filtered by services"
	case whyCardService:
		return "filtered: the card does not report this service"
	case whyIdent:
		return "filtered by ident"
	case whyCHID:
		return "filtered by chid"
	case whyProvider:
		return "filtered: the card has no entitlement for this provider"
	case whyLBOff:
		if s.role == RoleFallback {
			return fmt.Sprintf("fixed fallback; no selection with lb_mode %d", rec.mode)
		}
		return fmt.Sprintf("matching reader; no selection with lb_mode %d", rec.mode)
	case whyPrimary:
		return fmt.Sprintf("valid, value %d, ranked %d → primary", s.value, s.b)
	case whyFallback:
		return fmt.Sprintf("valid, value %d, ranked %d → fallback", s.value, s.b)
	case whyFixedFallback:
		return fmt.Sprintf("fixed fallback with valid stats, value %d → fallback", s.value)
	case whyForcedFallback:
		return "forced fallback (lb_force_fallback)"
	case whyNoStats:
		return "no stats yet → asked to learn"
	case whyLearning:
		return fmt.Sprintf("learning %d of %d", s.a, s.b)
	case whyReset:
		return fmt.Sprintf("count %d above lb_max_ecmcount %d → reset, learning again", s.a, rec.maxECM)
	case whyRetryRefresh:
		return fmt.Sprintf("average %d ms above lb_retrylimit %d ms and not updated for 5 min → average reset, primary", s.a, s.b)
	case whyRetryReached:
		return fmt.Sprintf("best average %d ms above lb_retrylimit %d ms → every valid reader asked, averages reset", s.a, s.b)
	case whyReopened:
		return fmt.Sprintf("block over (fail factor %d) → reopened", s.a)
	case whyForceReopen:
		return fmt.Sprintf("no reader left → force-reopened (lb_force_reopen_always), fail factor %d reset", s.a)
	case whyReopenLimit:
		return fmt.Sprintf("block over (fail factor %d) but lb_max_readers reached → stays blocked", s.a)
	case whyBlocked:
		return fmt.Sprintf("blocked for %d s more after %s, fail factor %d", (s.a+999)/1000, rcText(s.blockRC), s.b)
	case whyBlockedInvalid:
		return "blocked after INVALID (lb_reopen_invalid=0)"
	case whyNotSelected:
		if s.value != 0 {
			return fmt.Sprintf("valid, value %d, ranked %d → not asked", s.value, s.b)
		}
		return "stats not valid → not asked"
	}
	return "unknown"
}

func rcText(r Result) string {
	switch r {
	case NotFound:
		return "NOT_FOUND"
	case Timeout:
		return "TIMEOUT"
	}
	return "INVALID"
}

func usesRank(w whyCode) bool {
	return w == whyPrimary || w == whyFallback || w == whyNotSelected
}

// rankOf is slot j's rank by value (1 = best, ties by order). It is
// computed when an explanation is read, not on the ECM path.
func rankOf(slots []explainSlot, j int) int32 {
	rk := int32(1)
	v := slots[j].value
	for i := range slots {
		if w := slots[i].value; w != 0 && (w < v || w == v && i < j) {
			rk++
		}
	}
	return rk
}
