package lbsim

import (
	"container/heap"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"satd.dev/satd/balancer"
)

// ReaderConfig is a simulated reader: its label, whether it is a physical
// card (local) and its load-balancer options.
type ReaderConfig struct {
	Label   string
	Local   bool
	Options balancer.ReaderConfig
}

// Config is what a simulation runs with.
type Config struct {
	Balancer balancer.Config
	Readers  []ReaderConfig
	// Epoch is the wall-clock time of virtual t=0, used to read the
	// stats file's unix seconds.
	Epoch time.Time
}

// DefaultEpoch is virtual t=0 when none is given: 2023-11-14 22:13:20 UTC
// (unix 1700000000).
var DefaultEpoch = time.Unix(1700000000, 0).UTC()

// Asked is one request of an ECM to a reader.
type Asked struct {
	Reader string `json:"reader"`
	At     int64  `json:"at"`
	Role   string `json:"role"`
}

// Line is the output for one ECM.
type Line struct {
	ECM    int               `json:"ecm"`
	T      int64             `json:"t"`
	Asked  []Asked           `json:"asked"`
	Result string            `json:"result"`
	By     string            `json:"by,omitempty"`
	After  int64             `json:"after"`
	Why    map[string]string `json:"why,omitempty"`
}

// Sim is a simulation in progress.
type Sim struct {
	clock   *balancer.VirtualClock
	d       *balancer.Dispatcher
	readers []*simReader
	byName  map[string]*simReader
	pending answerHeap
	seq     int
	lines   []Line
	ecms    []Event
	explain bool
}

type simReader struct {
	sim     *Sim
	name    string
	local   bool
	present bool
}

// New builds a simulation. log receives the balancer's clamp messages.
func New(cfg Config, explain bool, log *slog.Logger) (*Sim, error) {
	if cfg.Epoch.IsZero() {
		cfg.Epoch = DefaultEpoch
	}
	s := &Sim{clock: balancer.NewVirtualClock(cfg.Epoch), byName: map[string]*simReader{}, explain: explain}
	var specs []balancer.ReaderSpec
	for _, rc := range cfg.Readers {
		if _, dup := s.byName[rc.Label]; dup {
			return nil, fmt.Errorf("reader %q is configured twice", rc.Label)
		}
		r := &simReader{sim: s, name: rc.Label, local: rc.Local, present: true}
		s.readers = append(s.readers, r)
		s.byName[rc.Label] = r
		specs = append(specs, balancer.ReaderSpec{Reader: r, Options: rc.Options})
	}
	d, err := balancer.New(cfg.Balancer, specs, s.clock, log)
	if err != nil {
		return nil, err
	}
	s.d = d
	return s, nil
}

// Dispatcher returns the simulated dispatcher (for loading stats).
func (s *Sim) Dispatcher() *balancer.Dispatcher { return s.d }

// Run replays the trace to its end and until every ECM is settled, then
// writes one JSON line per ECM to w.
func (s *Sim) Run(trace []Event, w io.Writer) error {
	for _, ev := range trace {
		if ev.Kind != EventECM {
			if ev.Kind != EventAdvance {
				if _, ok := s.byName[ev.Reader]; !ok {
					return fmt.Errorf("trace line %d: unknown reader %q", ev.Line, ev.Reader)
				}
			}
			continue
		}
		for name := range ev.Answers {
			if _, ok := s.byName[name]; !ok {
				return fmt.Errorf("trace line %d: answer for unknown reader %q", ev.Line, name)
			}
		}
	}
	clients := map[string]*simClient{}
	for _, ev := range trace {
		s.advanceTo(ev.T)
		switch ev.Kind {
		case EventRemove:
			s.byName[ev.Reader].present = false
		case EventInsert:
			s.byName[ev.Reader].present = true
		case EventECM:
			n := len(s.ecms)
			s.ecms = append(s.ecms, ev)
			s.lines = append(s.lines, Line{ECM: n + 1, T: ev.T, Asked: []Asked{}, Result: "pending"})
			c := clients[ev.ECM.Client]
			if c == nil {
				c = &simClient{sim: s}
				clients[ev.ECM.Client] = c
			}
			e := balancer.ECM{CAID: ev.ECM.CAID, PRID: ev.ECM.PRID, SrvID: ev.ECM.SrvID, CHID: ev.ECM.CHID,
				Len: ev.ECM.Len, Data: ev.ECM.Data, Client: c, Tag: uint64(n)}
			if err := s.d.Submit(&e); err != nil {
				return fmt.Errorf("trace line %d: %w", ev.Line, err)
			}
			if s.explain {
				s.lines[n].Why = map[string]string{}
				if x, ok := s.d.Explain(ev.ECM.CAID, ev.ECM.SrvID); ok {
					for _, r := range x.Readers {
						s.lines[n].Why[r.Reader] = r.Reason
					}
				}
			}
		}
	}
	s.advanceTo(math.MaxInt64)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, l := range s.lines {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return nil
}

// advanceTo runs reader answers and dispatcher timers in time order up to
// t; answers due at the same millisecond as a timer go first.
func (s *Sim) advanceTo(t int64) {
	for {
		next := int64(math.MaxInt64)
		if len(s.pending) > 0 {
			next = s.pending[0].at
		}
		if dl, ok := s.d.NextDeadline(); ok && int64(dl) < next {
			next = int64(dl)
		}
		if next > t || next == math.MaxInt64 {
			break
		}
		s.clock.Set(balancer.Time(next))
		for len(s.pending) > 0 && s.pending[0].at == next {
			a := heap.Pop(&s.pending).(simAnswer)
			if a.reader.present {
				s.d.Answer(a.tok, a.rc, a.cw)
			}
		}
		s.d.Tick()
	}
	if t != math.MaxInt64 {
		s.clock.Set(balancer.Time(t))
	}
}

func (r *simReader) Name() string { return r.name }
func (r *simReader) Local() bool  { return r.local }
func (r *simReader) Status() balancer.Status {
	return balancer.Status{Enabled: true, Present: r.present}
}

// Submit records the request and schedules the trace's answer.
func (r *simReader) Submit(req balancer.Request) bool {
	s := r.sim
	n := int(req.Tag)
	now := int64(s.clock.Now())
	ev := s.ecms[n]
	s.lines[n].Asked = append(s.lines[n].Asked, Asked{Reader: r.name, At: now - ev.T, Role: req.Role.String()})
	rep, ok := ev.Answers[r.name]
	if !ok || rep.Silent {
		return true
	}
	var cw [16]byte
	if rep.Result == balancer.Found {
		cw = cwFor(ev, n)
	}
	s.seq++
	heap.Push(&s.pending, simAnswer{at: now + rep.DelayMs, seq: s.seq, reader: r, tok: req.Token, rc: rep.Result, cw: cw})
	return true
}

// cwFor derives a CW from the ECM data (identical ECMs, identical CWs),
// or from the ECM number for ECMs without data.
func cwFor(ev Event, n int) [16]byte {
	src := ev.ECM.Data
	if len(src) == 0 {
		src = []byte(fmt.Sprintf("ecm-%d", n))
	}
	sum := sha256.Sum256(src)
	var cw [16]byte
	copy(cw[:], sum[:16])
	cw[0] |= 1
	return cw
}

type simClient struct{ sim *Sim }

func (c *simClient) ECMAnswered(a balancer.Answer) {
	l := &c.sim.lines[a.Tag]
	l.Result = a.Result.String()
	l.After = a.After.Milliseconds()
	if a.Reader >= 0 {
		l.By = c.sim.readers[a.Reader].name
	}
}

type simAnswer struct {
	at     int64
	seq    int
	reader *simReader
	tok    balancer.Token
	rc     balancer.Result
	cw     [16]byte
}

type answerHeap []simAnswer

func (h answerHeap) Len() int { return len(h) }
func (h answerHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}
func (h answerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *answerHeap) Push(x any)   { *h = append(*h, x.(simAnswer)) }
func (h *answerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

var (
	_ balancer.Reader = (*simReader)(nil)
	_ balancer.Client = (*simClient)(nil)
)

// Files names the inputs of one lbsim run.
type Files struct {
	Config  string
	Trace   string
	Stats   string // optional OSCam stats file
	Explain bool
	Epoch   time.Time
}

// RunFiles is `satd lbsim`: it loads the configuration, the trace and
// the optional stats file, replays the trace and writes the JSON lines.
func RunFiles(f Files, w io.Writer, log *slog.Logger) error {
	cfg, err := LoadConfig(f.Config)
	if err != nil {
		return err
	}
	cfg.Epoch = f.Epoch
	tf, err := os.Open(f.Trace)
	if err != nil {
		return err
	}
	defer tf.Close()
	trace, err := ParseTrace(tf)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Trace, err)
	}
	sim, err := New(cfg, f.Explain, log)
	if err != nil {
		return err
	}
	if f.Stats != "" {
		if _, err := os.Stat(f.Stats); err != nil {
			return err
		}
		if _, err := sim.Dispatcher().LoadStats(f.Stats); err != nil {
			return err
		}
	}
	return sim.Run(trace, w)
}
