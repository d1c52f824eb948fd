package main

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"satd.dev/satd/balancer"
	"satd.dev/satd/dvbapi"
)

// instantReader answers every request from its own goroutine with a CW
// derived from the ECM bytes (test data, not a key).
type instantReader struct {
	name  string
	caids []uint16
	d     *balancer.Dispatcher
	reqs  chan balancer.Request
	fail  bool
}

func (r *instantReader) Name() string { return r.name }
func (r *instantReader) Local() bool  { return true }
func (r *instantReader) Status() balancer.Status {
	return balancer.Status{Enabled: true, Present: true, CAIDs: r.caids}
}
func (r *instantReader) Submit(req balancer.Request) bool {
	select {
	case r.reqs <- req:
		return true
	default:
		return false
	}
}

func (r *instantReader) serve(ctx context.Context) {
	for {
		select {
		case req := <-r.reqs:
			if r.fail {
				r.d.Answer(req.Token, balancer.NotFound, [16]byte{})
				continue
			}
			r.d.Answer(req.Token, balancer.Found, cwFor(req.ECM))
		case <-ctx.Done():
			return
		}
	}
}

func cwFor(ecm []byte) (cw [16]byte) {
	h := sha256.Sum256(ecm)
	copy(cw[:], h[:16])
	return cw
}

type answerSink chan dvbapi.ECMAnswer

func (s answerSink) ECMAnswered(a dvbapi.ECMAnswer) { s <- a }

func newBridgeForTest(t testing.TB, readers ...*instantReader) *ecmBridge {
	t.Helper()
	var specs []balancer.ReaderSpec
	for _, r := range readers {
		specs = append(specs, balancer.ReaderSpec{Reader: r, Options: balancer.DefaultReaderConfig()})
	}
	d, err := balancer.New(balancer.DefaultConfig(), specs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, r := range readers {
		r.d = d
		go r.serve(ctx)
	}
	go d.Run(ctx)
	b := newECMBridge(d, 64, func(i int) readerInfo {
		return readerInfo{label: readers[i].name, system: "test", protocol: "sim"}
	}, nil)
	go b.run(ctx)
	return b
}

func TestECMBridgeFoundAndNotFound(t *testing.T) {
	a := &instantReader{name: "a", caids: []uint16{0x0B00}, reqs: make(chan balancer.Request, 8)}
	f := &instantReader{name: "f", caids: []uint16{0x0100}, reqs: make(chan balancer.Request, 8), fail: true}
	b := newBridgeForTest(t, a, f)
	sink := make(answerSink, 1)
	ecm := []byte{0x80, 0x70, 0x05, 1, 2, 3, 4, 5}
	b.Solve(&dvbapi.ECMRequest{CAID: 0x0B00, SID: 7, Data: ecm, Tag: 42, Done: sink})
	got := wait(t, sink)
	if got.Tag != 42 || got.Result != dvbapi.Found || got.CW != cwFor(ecm) || got.Reader != "a" || got.System != "test" {
		t.Fatalf("answer %+v", got)
	}
	b.Solve(&dvbapi.ECMRequest{CAID: 0x0100, SID: 8, Data: []byte{0x81, 0x70, 1, 9}, Tag: 43, Done: sink})
	if got := wait(t, sink); got.Tag != 43 || got.Result != dvbapi.NotFound {
		t.Fatalf("answer %+v, want not found", got)
	}
}

func wait(t testing.TB, s answerSink) dvbapi.ECMAnswer {
	t.Helper()
	select {
	case a := <-s:
		return a
	case <-time.After(time.Minute): // a hang guard: the answer takes milliseconds
		t.Fatal("hung: no answer")
	}
	return dvbapi.ECMAnswer{}
}

func TestECMBridgeFullTable(t *testing.T) {
	b := newECMBridge(nil, 1, nil, nil)
	b.take(answerSink(nil), 1) // occupy the only slot
	sink := make(answerSink, 1)
	b.Solve(&dvbapi.ECMRequest{CAID: 0x0B00, Data: []byte{0x80}, Tag: 5, Done: sink})
	if got := <-sink; got.Tag != 5 || got.Result != dvbapi.Timeout {
		t.Fatalf("answer %+v, want an immediate timeout", got)
	}
}

// TestECMBridgeAllocs proves the dvbapi → balancer → reader → dvbapi path
// allocates nothing per ECM once running.
func TestECMBridgeAllocs(t *testing.T) {
	a := &instantReader{name: "a", caids: []uint16{0x0B00}, reqs: make(chan balancer.Request, 8)}
	b := newBridgeForTest(t, a)
	sink := make(answerSink, 1)
	req := &dvbapi.ECMRequest{CAID: 0x0B00, SID: 7, Data: make([]byte, 64), Done: sink}
	n := 0
	allocs := testing.AllocsPerRun(200, func() {
		n++
		req.Data[3], req.Data[4] = byte(n), byte(n>>8) // a new ECM each time, no cache hit
		req.Tag = uint64(n)
		b.Solve(req)
		<-sink
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per ECM, want 0", allocs)
	}
}

// TestECMBridgeHeldUntilDelivered checks that a slot stays taken until its
// answer is delivered: answers waiting for delivery can never outnumber the
// channel's room, so the Dispatcher is never blocked by the bridge.
func TestECMBridgeHeldUntilDelivered(t *testing.T) {
	a := &instantReader{name: "a", caids: []uint16{0x0B00}, reqs: make(chan balancer.Request, 8)}
	full := newBridgeForTest(t, a) // starts the dispatcher and the reader
	b := newECMBridge(full.d, 2, nil, nil)
	sinks := []answerSink{make(answerSink, 1), make(answerSink, 1), make(answerSink, 1)}
	for i, s := range sinks[:2] {
		b.Solve(&dvbapi.ECMRequest{CAID: 0x0B00, SID: 9, Data: []byte{0x80, 0x70, 2, byte(i)}, Tag: uint64(i), Done: s})
	}
	for deadline := time.Now().Add(hangGuard); len(b.answers) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("hung: answers not queued")
		}
	}
	b.Solve(&dvbapi.ECMRequest{CAID: 0x0B00, SID: 9, Data: []byte{0x80, 0x70, 2, 9}, Tag: 9, Done: sinks[2]})
	if got := wait(t, sinks[2]); got.Result != dvbapi.Timeout {
		t.Fatalf("third ECM with both slots awaiting delivery: %+v, want an immediate timeout", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.run(ctx)
	for i, s := range sinks[:2] {
		if got := wait(t, s); got.Tag != uint64(i) || got.Result != dvbapi.Found {
			t.Fatalf("answer %d: %+v", i, got)
		}
	}
}

// TestECMBridgeCancel: a closed connection's requests still in flight are
// forgotten at once (the bridge keeps no reference to the connection) and
// their late answers are dropped; the slots return when the balancer
// answers.
func TestECMBridgeCancel(t *testing.T) {
	slow := &instantReader{name: "slow", caids: []uint16{0x0B00}, reqs: make(chan balancer.Request, 8)}
	var specs = []balancer.ReaderSpec{{Reader: slow, Options: balancer.DefaultReaderConfig()}}
	d, err := balancer.New(balancer.DefaultConfig(), specs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	slow.d = d
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := newECMBridge(d, 4, func(int) readerInfo { return readerInfo{} }, nil)
	go b.run(ctx)
	closed := make(answerSink, 1)
	b.Solve(&dvbapi.ECMRequest{CAID: 0x0B00, SID: 1, Data: []byte{0x80, 0x70, 1, 1}, Tag: 1, Done: closed})
	b.Cancel(closed)
	b.mu.Lock()
	for i, p := range b.pending {
		if p.used && p.done == dvbapi.ECMDone(closed) {
			t.Errorf("slot %d still refers to the cancelled connection", i)
		}
	}
	b.mu.Unlock()
	go slow.serve(ctx) // the answer arrives after the close
	for i := 0; ; i++ {
		b.mu.Lock()
		free := len(b.free)
		b.mu.Unlock()
		if free == 4 {
			break
		}
		if i > 1000 {
			t.Fatalf("%d of 4 slots free after the answer", free)
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case a := <-closed:
		t.Errorf("cancelled request answered: %+v", a)
	default:
	}
}
