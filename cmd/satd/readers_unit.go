package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cardreader/system"
	"satd.dev/satd/cmd/satd/config"
)

// ReaderStatus is a snapshot of one configured reader for the web form,
// metrics and dvbapi's ECM_INFO.
type ReaderStatus struct {
	Label         string                `json:"label"`
	Protocol      string                `json:"protocol"`
	Enabled       bool                  `json:"enabled"`
	State         string                `json:"state"`
	ATR           string                `json:"atr,omitempty"`
	CardProtocol  int                   `json:"card_protocol"`
	Baud          int                   `json:"baud,omitempty"`
	System        string                `json:"system,omitempty"`
	CAIDs         []uint16              `json:"caids,omitempty"`
	Providers     []uint32              `json:"providers,omitempty"`
	Services      []uint16              `json:"services,omitempty"`
	Serial        string                `json:"serial,omitempty"`
	Subscriptions []system.Subscription `json:"subscriptions,omitempty"`
	File          string                `json:"file,omitempty"`
	ECMs          uint64                `json:"ecms"`
	Found         uint64                `json:"found"`
	NotFound      uint64                `json:"not_found"`
	Refused       uint64                `json:"queue_full"`
	// AvgFound is the average time from the request to a found answer.
	AvgFound  time.Duration `json:"avg_found_ns"`
	LastError string        `json:"last_error,omitempty"`
	// Note says what the card stack tolerated on this card: an ATR
	// accepted leniently, S(IFS) requests the card refused.
	Note string `json:"note,omitempty"`
	// CardResets counts the warm resets the card system asked for.
	CardResets uint64 `json:"card_resets"`
}

// readerSource is what differs between reader kinds: the card or file
// behind a readerUnit.
type readerSource interface {
	// run keeps the source going until ctx ends, publishing eligibility
	// with publish.
	run(ctx context.Context, publish func(balancer.Status))
	// solve answers one ECM; it may block (a slow card).
	solve(req *balancer.Request) (balancer.Result, [16]byte, string)
	// describe fills the source-specific part of a status snapshot.
	describe(s *ReaderStatus)
}

// minQueueLen is the least number of ECMs a reader holds before Submit
// refuses. The queue is as long as the balancer's max_inflight: the
// balancer asks a reader at most once per ECM in flight, so a reader that
// keeps up never refuses; one that does not is backpressure, which the
// balancer retries until the client timeout instead of failing the ECM.
const minQueueLen = 32

// readerUnit is one configured reader as the balancer sees it: Status and
// Submit never block, and one goroutine per reader works through its
// queue, so a slow reader never delays another.
type readerUnit struct {
	cfg   config.Reader
	src   atomic.Pointer[readerSource] // replaced by a restart
	queue chan queued
	disp  atomic.Pointer[balancer.Dispatcher]
	elig  atomic.Pointer[balancer.Status]
	// off takes the reader out of the balancer at once (disabled or
	// removed in the configuration in force) while it keeps running.
	off atomic.Bool

	ecms, found, notFound, refused atomic.Uint64
	// foundNanos is the time the found answers took, from Submit to the
	// answer: the reader's average ECM time on Status at every lb_mode
	// (the balancer keeps no statistics at lb_mode 0, as OSCam).
	foundNanos atomic.Uint64

	mu      sync.Mutex
	lastErr string
	halt    func() // stops run's goroutines and waits for them
}

var _ balancer.Reader = (*readerUnit)(nil)

// queued is a request waiting in a reader's queue, with when it came.
type queued struct {
	req balancer.Request
	at  time.Time
}

func newReaderUnit(cfg config.Reader, src readerSource, queueLen int) *readerUnit {
	u := &readerUnit{cfg: cfg, queue: make(chan queued, max(queueLen, minQueueLen))}
	u.src.Store(&src)
	u.elig.Store(&balancer.Status{Enabled: true})
	return u
}

// Name returns the reader label.
func (u *readerUnit) Name() string { return u.cfg.Label }

// Local reports whether the reader counts as a local card.
func (u *readerUnit) Local() bool { return u.cfg.IsLocal() }

// Status returns the eligibility published by the source; a reader taken
// out of the balancer is not enabled.
func (u *readerUnit) Status() balancer.Status {
	st := *u.elig.Load()
	st.Enabled = st.Enabled && !u.off.Load()
	return st
}

// source returns the card, slot or file behind the unit.
func (u *readerUnit) source() readerSource { return *u.src.Load() }

// Submit queues req without blocking; a full queue refuses it.
func (u *readerUnit) Submit(req balancer.Request) bool {
	select {
	case u.queue <- queued{req, time.Now()}:
		return true
	default:
		u.refused.Add(1)
		return false
	}
}

// attach makes d the dispatcher the unit answers to.
func (u *readerUnit) attach(d *balancer.Dispatcher) { u.disp.Store(d) }

func (u *readerUnit) publish(s balancer.Status) {
	s.Enabled = true
	u.elig.Store(&s)
}

// run starts the source and works through the queue until ctx ends or
// halt is called.
func (u *readerUnit) run(ctx context.Context, wg *sync.WaitGroup) {
	ctx, cancel := context.WithCancel(ctx)
	var mine sync.WaitGroup
	wg.Add(2)
	mine.Add(2)
	src := u.source()
	go func() { defer wg.Done(); defer mine.Done(); src.run(ctx, u.publish) }()
	go func() { defer wg.Done(); defer mine.Done(); u.work(ctx, src) }()
	u.mu.Lock()
	u.halt = func() { cancel(); mine.Wait() }
	u.mu.Unlock()
}

// restart stops the unit, puts src (a new source, built once the old one
// let go of its slot) in and starts it again. ECMs queued meanwhile wait.
func (u *readerUnit) restart(ctx context.Context, wg *sync.WaitGroup, build func() (readerSource, error)) error {
	u.mu.Lock()
	halt := u.halt
	u.mu.Unlock()
	if halt != nil {
		halt()
	}
	src, err := build()
	if err != nil {
		src = noSlotSource{why: err.Error()}
	}
	u.src.Store(&src)
	u.run(ctx, wg)
	return err
}

// resetCounters zeroes the ECM counters.
func (u *readerUnit) resetCounters() {
	u.ecms.Store(0)
	u.found.Store(0)
	u.foundNanos.Store(0)
	u.notFound.Store(0)
	u.refused.Store(0)
	u.setErr("")
}

func (u *readerUnit) work(ctx context.Context, src readerSource) {
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-u.queue:
			req := q.req
			rc, cw, why := src.solve(&req)
			u.ecms.Add(1)
			if rc == balancer.Found {
				u.foundNanos.Add(uint64(max(time.Since(q.at), 0)))
				u.found.Add(1)
			} else {
				u.notFound.Add(1)
				u.setErr(why)
			}
			if d := u.disp.Load(); d != nil {
				d.Answer(req.Token, rc, cw)
			}
		}
	}
}

// avgFound is the average time of the found answers (0 before the first).
func (u *readerUnit) avgFound() time.Duration {
	n := u.found.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(u.foundNanos.Load() / n)
}

func (u *readerUnit) setErr(s string) {
	u.mu.Lock()
	u.lastErr = s
	u.mu.Unlock()
}

// snapshot returns the reader's status.
func (u *readerUnit) snapshot() ReaderStatus {
	st := u.elig.Load()
	s := ReaderStatus{
		Label: u.cfg.Label, Protocol: u.cfg.Protocol, Enabled: !u.off.Load(),
		CAIDs: st.CAIDs, Providers: st.Providers, Services: st.Services,
		ECMs: u.ecms.Load(), Found: u.found.Load(), NotFound: u.notFound.Load(), Refused: u.refused.Load(),
		AvgFound: u.avgFound(),
	}
	u.mu.Lock()
	s.LastError = u.lastErr
	u.mu.Unlock()
	u.source().describe(&s)
	if !s.Enabled {
		s.State = "disabled"
	}
	return s
}

// resultFor maps a card system's answer to the balancer's result.
func resultFor(a system.Answer) balancer.Result {
	if a.Result == system.Found {
		return balancer.Found
	}
	return balancer.NotFound
}

// info names the reader for ECM_INFO and /tmp/ecm.info without allocating.
func (u *readerUnit) info() readerInfo {
	sys := u.cfg.Protocol
	if n, ok := u.source().(interface{ systemName() string }); ok {
		if name := n.systemName(); name != "" {
			sys = name
		}
	}
	return readerInfo{label: u.cfg.Label, system: sys, protocol: u.cfg.Protocol, noECM: u.Status().NoECM}
}

// serves reports whether the reader's card (or file) holds caid and, when
// it lists providers, prid.
func (u *readerUnit) serves(caid uint16, prid uint32) bool {
	st := u.Status()
	if !st.Enabled || !st.Present || !slices.Contains(st.CAIDs, caid) {
		return false
	}
	return len(st.Providers) == 0 || prid == 0 || slices.Contains(st.Providers, prid)
}

// anyServesWithoutECM reports whether a reader that ignores ECMs (NoECM)
// serves caid/prid.
func anyServesWithoutECM(units []*readerUnit, caid uint16, prid uint32) bool {
	for _, u := range units {
		if u.Status().NoECM && u.serves(caid, prid) {
			return true
		}
	}
	return false
}

// anyServes reports whether any reader serves caid/prid.
func anyServes(units []*readerUnit, caid uint16, prid uint32) bool {
	for _, u := range units {
		if u.serves(caid, prid) {
			return true
		}
	}
	return false
}
