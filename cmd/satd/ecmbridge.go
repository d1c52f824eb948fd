package main

import (
	"context"
	"sync"

	"satd.dev/satd/balancer"
	"satd.dev/satd/dvbapi"
)

// readerInfo names a balancer reader for ECM_INFO and /tmp/ecm.info.
type readerInfo struct {
	label, system, protocol string
	noECM                   bool // the reader ignores ECMs (constcw)
}

// ecmBridge adapts the balancer's Dispatcher to the dvbapi front door's
// ECMSolver.
//
// Pending requests live in a fixed table; a slot's index and generation
// travel in the balancer's Tag, so the path allocates nothing and a client
// that goes away leaves nothing behind. Answers are handed to a goroutine
// because the Dispatcher calls ECMAnswered with its lock held, while the
// dvbapi side may react to an answer by solving the next ECM PID at once.
type ecmBridge struct {
	d      *balancer.Dispatcher
	info   func(reader int) readerInfo
	serves func(caid uint16, prid uint32) bool
	noECM  func(caid uint16, prid uint32) bool

	mu      sync.Mutex
	pending []pendingECM
	free    []uint32
	answers chan delivery
}

// pendingECM is one slot of the table. A slot stays taken until its answer
// has left the answers channel, so the channel (one place per slot) never
// fills and ECMAnswered never blocks under the Dispatcher's lock.
type pendingECM struct {
	done     dvbapi.ECMDone
	tag      uint64
	gen      uint32
	used     bool
	answered bool
}

type delivery struct {
	slot uint32
	done dvbapi.ECMDone
	a    dvbapi.ECMAnswer
}

var (
	_ dvbapi.ECMSolver   = (*ecmBridge)(nil)
	_ dvbapi.CAIDServer  = (*ecmBridge)(nil)
	_ dvbapi.ECMCanceler = (*ecmBridge)(nil)
	_ dvbapi.NoECMServer = (*ecmBridge)(nil)
	_ balancer.Client    = (*ecmBridge)(nil)
)

// newECMBridge builds a bridge with room for capacity ECMs in flight.
func newECMBridge(d *balancer.Dispatcher, capacity int, info func(int) readerInfo, serves func(uint16, uint32) bool) *ecmBridge {
	b := &ecmBridge{
		d: d, info: info, serves: serves,
		pending: make([]pendingECM, capacity),
		free:    make([]uint32, capacity),
		answers: make(chan delivery, capacity),
	}
	for i := range b.free {
		b.free[i] = uint32(capacity - 1 - i)
	}
	return b
}

// run delivers answers to the dvbapi side until ctx ends.
func (b *ecmBridge) run(ctx context.Context) {
	for {
		select {
		case dl := <-b.answers:
			b.release(dl.slot)
			dl.done.ECMAnswered(dl.a)
		case <-ctx.Done():
			return
		}
	}
}

// Solve submits the ECM to the balancer.
func (b *ecmBridge) Solve(req *dvbapi.ECMRequest) {
	slot, gen, ok := b.take(req.Done, req.Tag)
	if !ok {
		// Every slot is in flight: answer at once, as the balancer does
		// when its own table is full.
		req.Done.ECMAnswered(dvbapi.ECMAnswer{Tag: req.Tag, Result: dvbapi.Timeout})
		return
	}
	ecm := balancer.ECM{
		CAID: req.CAID, PRID: req.PRID, SrvID: req.SID, CHID: req.CHID,
		PMTPID: req.PMTPID, ECMPID: req.PID, VPID: req.VPID,
		Len: uint16(len(req.Data)), Data: req.Data,
		Client: b, Tag: uint64(gen)<<32 | uint64(slot),
	}
	if err := b.d.Submit(&ecm); err != nil {
		b.release(slot)
		req.Done.ECMAnswered(dvbapi.ECMAnswer{Tag: req.Tag, Result: dvbapi.NotFound})
	}
}

func (b *ecmBridge) take(done dvbapi.ECMDone, tag uint64) (slot, gen uint32, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.free)
	if n == 0 {
		return 0, 0, false
	}
	slot = b.free[n-1]
	b.free = b.free[:n-1]
	p := &b.pending[slot]
	p.gen++
	p.done, p.tag, p.used = done, tag, true
	return slot, p.gen, true
}

func (b *ecmBridge) release(slot uint32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := &b.pending[slot]
	if p.used {
		p.used, p.answered, p.done = false, false, nil
		b.free = append(b.free, slot)
	}
}

// ECMAnswered receives the balancer's answer (with the Dispatcher's lock
// held) and queues it for delivery.
func (b *ecmBridge) ECMAnswered(a balancer.Answer) {
	slot, gen := uint32(a.Tag), uint32(a.Tag>>32)
	b.mu.Lock()
	if int(slot) >= len(b.pending) || !b.pending[slot].used || b.pending[slot].gen != gen || b.pending[slot].answered {
		b.mu.Unlock()
		return // stale: already answered
	}
	p := &b.pending[slot]
	p.answered = true
	dl := delivery{slot: slot, done: p.done, a: dvbapi.ECMAnswer{Tag: p.tag, Result: dvbapiResult(a.Result), CW: a.CW, After: a.After}}
	b.mu.Unlock()
	if a.Reader >= 0 && b.info != nil {
		ri := b.info(a.Reader)
		dl.a.Reader, dl.a.System, dl.a.Protocol = ri.label, ri.system, ri.protocol
		dl.a.NoECM = ri.noECM
	}
	b.answers <- dl // never blocks: one place per slot, freed after delivery
}

// Cancel forgets done, whose connection closed: its slots stay taken
// until the balancer answers (the balancer holds their tags) and the
// answers are dropped, but nothing keeps the connection alive.
func (b *ecmBridge) Cancel(done dvbapi.ECMDone) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.pending {
		if p := &b.pending[i]; p.used && p.done == done {
			p.done = discard{}
		}
	}
}

// discard drops the answers of a cancelled request.
type discard struct{}

func (discard) ECMAnswered(dvbapi.ECMAnswer) {}

// AnswersWithoutECM reports whether a ready reader answers caid/prid from
// the service's identity alone (a constant-CW file), so the dvbapi side
// asks at once for a service whose CA descriptor carries no ECM PID.
func (b *ecmBridge) AnswersWithoutECM(caid uint16, prid uint32) bool {
	return b.noECM != nil && b.noECM(caid, prid)
}

// CanServe reports whether a ready reader serves caid/prid, so the dvbapi
// side tries those ECM PIDs first.
func (b *ecmBridge) CanServe(caid uint16, prid uint32) bool {
	return b.serves != nil && b.serves(caid, prid)
}

func dvbapiResult(r balancer.Result) dvbapi.Result {
	switch r {
	case balancer.Found, balancer.Cache:
		return dvbapi.Found
	case balancer.NotFound:
		return dvbapi.NotFound
	}
	return dvbapi.Timeout
}
