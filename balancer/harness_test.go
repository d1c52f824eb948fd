package balancer

import (
	"bytes"
	"log/slog"
	"testing"
	"time"
)

// fakeReader is an in-process reader that keeps its requests; tests and
// benchmarks answer them through the Dispatcher.
type fakeReader struct {
	name   string
	local  bool
	status Status
	reqs   []Request
	last   Request
	n      int
}

func (r *fakeReader) Name() string   { return r.name }
func (r *fakeReader) Local() bool    { return r.local }
func (r *fakeReader) Status() Status { return r.status }
func (r *fakeReader) Submit(req Request) bool {
	r.last = req
	r.n++
	if cap(r.reqs) > len(r.reqs) {
		r.reqs = append(r.reqs, req)
	}
	return true
}

// take returns and forgets the requests received so far.
func (r *fakeReader) take() []Request {
	out := append([]Request(nil), r.reqs...)
	r.reqs = r.reqs[:0]
	return out
}

type recClient struct {
	answers []Answer
	last    Answer
	n       int
}

func (c *recClient) ECMAnswered(a Answer) {
	c.last = a
	c.n++
	if cap(c.answers) > len(c.answers) {
		c.answers = append(c.answers, a)
	}
}

var (
	_ Reader = (*fakeReader)(nil)
	_ Client = (*recClient)(nil)
)

// rig is a Dispatcher on virtual time with fake readers.
type rig struct {
	t       testing.TB
	d       *Dispatcher
	clock   *VirtualClock
	readers []*fakeReader
	client  *recClient
	logs    *bytes.Buffer
}

// baseline returns the spec §6 baseline configuration.
func baseline() Config {
	c := DefaultConfig()
	c.LBMode = 1
	return c
}

func newRig(t testing.TB, cfg Config, names ...string) *rig {
	return newRigOpts(t, cfg, nil, names...)
}

func newRigOpts(t testing.TB, cfg Config, opts map[string]ReaderConfig, names ...string) *rig {
	t.Helper()
	r := &rig{t: t, clock: NewVirtualClock(time.Unix(1700000000, 0)), client: &recClient{answers: make([]Answer, 0, 64)}, logs: &bytes.Buffer{}}
	var specs []ReaderSpec
	for _, n := range names {
		local := false
		if n[0] == '*' { // "*L" = local card
			n, local = n[1:], true
		}
		fr := &fakeReader{name: n, local: local, status: Status{Enabled: true, Present: true}, reqs: make([]Request, 0, 64)}
		r.readers = append(r.readers, fr)
		o, ok := opts[n]
		if !ok {
			o = DefaultReaderConfig()
			o.CAID = CAIDList{{CAID: 0x0963, Mask: 0xFFFF}}
		}
		specs = append(specs, ReaderSpec{Reader: fr, Options: o})
	}
	d, err := New(cfg, specs, r.clock, slog.New(slog.NewTextHandler(r.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	return r
}

var keyK = statKey{caid: 0x0963, srvid: 0x1234, ecmlen: 140}

// setStat puts an entry for K into reader name's table.
func (r *rig) setStat(name string, rc Result, count, avg, fail int, ageMs int64) *statEntry {
	ri := r.d.ReaderIndex(name)
	t := &r.d.readers[ri].stats
	i := t.get(keyK)
	if i < 0 {
		i = t.create(keyK, r.clock.Now()-Time(ageMs))
	}
	e := &t.entries[i]
	e.rc, e.count, e.avg, e.fail, e.last = rc, int32(count), int32(avg), int32(fail), r.clock.Now()-Time(ageMs)
	return e
}

func (r *rig) valid(name string, avg int) { r.setStat(name, Found, 10, avg, 0, 0) }

func (r *rig) stat(name string) *statEntry {
	ri := r.d.ReaderIndex(name)
	i := r.d.readers[ri].stats.get(keyK)
	if i < 0 {
		return nil
	}
	return &r.d.readers[ri].stats.entries[i]
}

// ecm submits an ECM for K (unique: no data).
func (r *rig) ecm() {
	r.t.Helper()
	if err := r.d.Submit(&ECM{CAID: 0x0963, SrvID: 0x1234, Len: 140, Client: r.client}); err != nil {
		r.t.Fatal(err)
	}
}

// at moves virtual time to ms and runs due timers.
func (r *rig) at(ms int64) {
	for {
		next, ok := r.d.NextDeadline()
		if !ok || int64(next) > ms {
			break
		}
		r.clock.Set(next)
		r.d.Tick()
	}
	r.clock.Set(Time(ms))
}

// asked returns the names of readers asked since the last call with roles.
func (r *rig) asked() map[string]Role {
	out := map[string]Role{}
	for _, fr := range r.readers {
		for _, q := range fr.reqs {
			out[fr.name] = q.Role
		}
	}
	return out
}

// answer makes reader name answer its oldest open request.
func (r *rig) answer(name string, rc Result) {
	r.t.Helper()
	fr := r.readers[r.d.ReaderIndex(name)]
	if len(fr.reqs) == 0 {
		r.t.Fatalf("reader %s has no request to answer", name)
	}
	q := fr.reqs[0]
	fr.reqs = fr.reqs[1:]
	r.d.Answer(q.Token, rc, cwOf(q))
}

func (r *rig) clear() {
	for _, fr := range r.readers {
		fr.reqs = fr.reqs[:0]
	}
}

func cwOf(q Request) [16]byte {
	var cw [16]byte
	cw[0], cw[1] = 1, byte(q.Token.slot)
	return cw
}

func roles(m map[string]Role) string {
	s := ""
	for _, n := range []string{"A", "B", "C", "D", "L", "R", "R1", "R2", "V", "X", "Y", "Z"} {
		if ro, ok := m[n]; ok {
			s += n + ":" + ro.String() + " "
		}
	}
	return s
}
