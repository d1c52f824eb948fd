package netstream

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// verifyItem is a listener admitted without a synchronous backend decision:
// provisionally by fail-open, or on a re-admission token (report set: the
// backend is told with listener_add readmit=1).
type verifyItem struct {
	l         *listener
	report    bool
	tries     int
	notBefore time.Time
}

// verifier asks the backend about provisional listeners in the background:
// a bounded queue (sized from the memory budget), a few workers sharing the
// mount's handler slots with synchronous checks, at most verify-rate calls
// per second, coalesced on the decision cache, paused while the circuit
// breaker is open, retried with backoff while the backend fails. A deny
// closes the listener after verify-grace; a grant's time limit is applied.
type verifier struct {
	a       *admission
	q       chan *verifyItem
	n       atomic.Int64 // items queued or being checked
	once    sync.Once
	rate    tokenBucket
	mu      sync.Mutex
	running map[string]bool // cache keys being checked (coalescing)
}

func newVerifier(a *admission) *verifier {
	v := &verifier{a: a, q: make(chan *verifyItem, a.sizes.verify), running: map[string]bool{}}
	v.rate.set(a.cfg.VerifyRate, max(1, int(a.cfg.VerifyRate)))
	return v
}

// room reports whether one more provisional listener can be queued.
func (v *verifier) room() bool { return v.n.Load() < int64(cap(v.q)) }

// pending returns the number of listeners awaiting a decision.
func (v *verifier) pending() int { return int(v.n.Load()) }

// add queues l, before it is attached; it reports false when the queue is
// full. A report item marks l's session pending, so a listener_remove
// waits for the report.
func (v *verifier) add(l *listener, report bool) bool {
	if v.n.Add(1) > int64(cap(v.q)) {
		v.n.Add(-1)
		return false
	}
	v.once.Do(v.start)
	if report {
		l.who.report.Store(reportPending)
	}
	select {
	case v.q <- &verifyItem{l: l, report: report}:
		return true
	default:
		if report {
			l.who.report.Store(reportNone)
		}
		v.n.Add(-1)
		return false
	}
}

func (v *verifier) start() {
	ctx := v.a.srv.ctx
	if ctx.Err() != nil {
		return // shutting down: nothing is verified any more
	}
	for range max(1, cap(v.a.sem)/2) {
		v.a.srv.wg.Add(1)
		go func() {
			defer v.a.srv.wg.Done()
			v.work(ctx)
		}()
	}
}

func (v *verifier) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-v.q:
			if v.process(ctx, it) {
				v.n.Add(-1)
			} else {
				v.q <- it // room is reserved by n
			}
		}
	}
}

// process checks one item. It returns false when the item must be retried
// later (backend failing, breaker open, same key being checked). A
// provisional listener that left needs no decision and is dropped; a
// re-admission report is a stats fact and is sent even after the listener
// left (its listener_remove follows it).
func (v *verifier) process(ctx context.Context, it *verifyItem) bool {
	who := it.l.who
	if who.gone.Load() && !it.report {
		return true
	}
	if d := time.Until(it.notBefore); d > 0 && !sleepCtx(ctx, min(d, time.Second)) {
		return true
	}
	if time.Now().Before(it.notBefore) {
		return false
	}
	for !v.rate.take() {
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return true
		}
	}
	a := v.a
	key := who.cacheKey
	now := time.Now()
	if !it.report {
		a.mu.Lock()
		e := a.lookupLocked(key, now)
		a.mu.Unlock()
		if e != nil && now.Before(e.expires) {
			left, _ := e.remaining(now)
			v.apply(it, e.grant, left)
			return true
		}
		v.mu.Lock()
		busy := v.running[key]
		v.running[key] = true
		v.mu.Unlock()
		if busy {
			it.notBefore = now.Add(200 * time.Millisecond)
			return false
		}
		defer func() { v.mu.Lock(); delete(v.running, key); v.mu.Unlock() }()
	}
	if a.breakerOpen(now) {
		it.notBefore = now.Add(time.Second)
		return false
	}
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return true
	}
	a.asyncAdds.Add(1)
	var extra []string
	if it.report {
		extra = []string{"readmit", "1"}
	}
	grant, limit, err := a.callAdd(who.req, extra...)
	<-a.sem
	a.record(err == nil)
	if err != nil {
		a.srv.log.Debug("stream: background listener_add failed; retrying later", "mount", a.mount, "report", it.report, "tries", it.tries, "err", err)
		it.notBefore = time.Now().Add(backoff(time.Second, 30*time.Second, it.tries) + time.Second)
		it.tries++
		return false
	}
	a.remember(key, grant, limit, time.Now())
	if it.report {
		a.srv.reported(who)
	}
	v.apply(it, grant, limit)
	return true
}

// apply acts on the backend's decision about a provisional listener.
func (v *verifier) apply(it *verifyItem, grant bool, limit time.Duration) {
	l := it.l
	if l.who.gone.Load() {
		return // closed meanwhile: nothing to limit or revoke
	}
	if grant {
		if limit > 0 && !it.report {
			l.closeAt.CompareAndSwap(0, time.Now().Add(limit).UnixNano())
		}
		return
	}
	grace := v.a.cfg.VerifyGrace.Std()
	if l.closeAt.CompareAndSwap(0, time.Now().Add(grace).UnixNano()) {
		v.a.revoked.Add(1)
		v.a.srv.log.Info("stream: backend denied a provisionally admitted listener; closing it after the grace",
			"mount", v.a.mount, "ip", l.who.req.ip, "grace", grace)
		v.a.srv.fan.kick()
	}
}
