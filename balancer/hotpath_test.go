package balancer

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ecmPath runs one ECM through the whole path: arrival, selection, the
// request to the primary, its FOUND answer, the client's CW, the stat,
// and the release of the ECM by the timers.
func ecmPath(r *rig, data []byte, i int) {
	data[5], data[6] = byte(i), byte(i>>8)
	ecm := ECM{CAID: 0x0963, SrvID: 0x1234, Len: 140, Data: data, Client: r.client}
	if err := r.d.Submit(&ecm); err != nil {
		panic(err)
	}
	now := r.clock.Now()
	r.clock.Set(now + 100)
	fr := r.readers[0]
	r.d.Answer(fr.last.Token, Found, [16]byte{1, 2, 3})
	r.clock.Set(now + 10000)
	r.d.Tick()
}

func TestHotPathAllocs(t *testing.T) {
	c := baseline()
	c.LBSave = 0
	r := newRig(t, c, "A", "B", "C", "D")
	r.valid("A", 100)
	r.valid("B", 200)
	r.valid("C", 300)
	r.valid("D", 400)
	for _, fr := range r.readers {
		fr.reqs = nil
	}
	r.client.answers = nil
	data := make([]byte, 140)
	for i := 0; i < 300; i++ { // warm up: fill the cache ring and the tables
		ecmPath(r, data, i)
	}
	i := 300
	allocs := testing.AllocsPerRun(500, func() {
		ecmPath(r, data, i)
		i++
	})
	if allocs != 0 {
		t.Fatalf("ECM path allocates %.1f times per ECM, want 0", allocs)
	}
	if r.client.last.Result != Found || r.d.Counters().StatsRecorded < 800 {
		t.Fatalf("path did not run: %+v %+v", r.client.last, r.d.Counters())
	}
}

func TestDedupAndCache(t *testing.T) {
	r := newRig(t, baseline(), "A", "B")
	r.valid("A", 100)
	r.valid("B", 200)
	data := []byte{0x80, 0x70, 0x8c, 1, 2, 3, 4}
	c1, c2, c3 := &recClient{}, &recClient{}, &recClient{}
	_ = r.d.Submit(&ECM{CAID: 0x0963, SrvID: 0x1234, Len: 140, Data: data, Client: c1})
	r.at(10)
	_ = r.d.Submit(&ECM{CAID: 0x0963, SrvID: 0x1234, Len: 140, Data: data, Client: c2})
	if n := len(r.readers[0].reqs); n != 1 {
		t.Fatalf("identical ECM sent %d times to A, want once", n)
	}
	r.at(100)
	count := r.stat("A").count
	r.answer("A", Found)
	if c1.n != 1 || c2.n != 1 || c1.last.Result != Found || c2.last.Result != Cache || c1.last.CW != c2.last.CW {
		t.Fatalf("clients %+v %+v", c1.last, c2.last)
	}
	if r.stat("A").count != count+1 {
		t.Fatal("stat written more than once for one request")
	}
	_ = r.d.Submit(&ECM{CAID: 0x0963, SrvID: 0x1234, Len: 140, Data: data, Client: c3})
	if c3.n != 1 || c3.last.Result != Cache || len(r.readers[0].reqs) != 0 {
		t.Fatalf("cache miss: %+v", c3.last)
	}
	if got := r.d.Counters().CacheHits; got != 1 {
		t.Fatalf("cache hits %d", got)
	}
}

func TestInflightEviction(t *testing.T) {
	c := baseline()
	c.MaxInflight = 2
	r := newRig(t, c, "A")
	for i := 0; i < 3; i++ {
		r.ecm()
	}
	if r.client.n != 1 || r.client.last.Result != Timeout || r.d.Counters().InflightEvictions != 1 {
		t.Fatalf("eviction: %d answers %+v %+v", r.client.n, r.client.last, r.d.Counters())
	}
}

func TestStatEviction(t *testing.T) {
	tb := newStatTable(4)
	for i := 0; i < 6; i++ {
		tb.create(statKey{caid: 1, srvid: uint16(i), ecmlen: 1}, Time(i))
	}
	if tb.n != 4 || tb.evictions != 2 || tb.get(statKey{caid: 1, srvid: 0, ecmlen: 1}) >= 0 || tb.get(statKey{caid: 1, srvid: 5, ecmlen: 1}) < 0 {
		t.Fatalf("n %d evictions %d", tb.n, tb.evictions)
	}
	if tb.cleanup(4) != 2 || tb.n != 2 {
		t.Fatalf("cleanup left %d", tb.n)
	}
	// ecmlen wildcard: a stored 0 adopts the query's length.
	i := tb.create(statKey{caid: 2, ecmlen: 0}, 10)
	if tb.get(statKey{caid: 2, ecmlen: 140}) != i || tb.entries[i].key.ecmlen != 140 {
		t.Fatal("ecmlen 0 not adopted")
	}
	if tb.get(statKey{caid: 2, ecmlen: 0}) != i {
		t.Fatal("query ecmlen 0 did not match")
	}
}

func TestStatFileRoundTrip(t *testing.T) {
	r := newRig(t, baseline(), "A", "B")
	r.at(5000)
	r.setStat("A", Found, 47, 182, 0, 0)
	r.setStat("B", NotFound, 3, 300, 2, 1000)
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "stat")
	r.d.set.SavePath = path
	if err := r.d.SaveStats(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "B,4,0963,000000,1234,0000,300,3,1700000004,2,8C\n"
	if !strings.Contains(string(b), "A,0,0963,000000,1234,0000,182,47,1700000005,0,8C\n") || !strings.Contains(string(b), want) {
		t.Fatalf("file:\n%s", b)
	}
	r2 := newRig(t, baseline(), "A", "B")
	r2.at(5000)
	n, err := r2.d.LoadStats(path)
	if err != nil || n != 2 {
		t.Fatalf("loaded %d: %v", n, err)
	}
	if s := r2.stat("B"); s.rc != NotFound || s.count != 3 || s.avg != 300 || s.fail != 2 || s.last != 4000 {
		t.Fatalf("B loaded as %+v", s)
	}
	if got := WriteAll(r2.d.Snapshot()); got != WriteAll(r.d.Snapshot()) {
		t.Fatalf("round trip differs:\n%s\n%s", got, WriteAll(r.d.Snapshot()))
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func WriteAll(recs []StatRecord) string {
	var sb strings.Builder
	_ = WriteStatFile(&sb, recs)
	return sb.String()
}

func TestParseStatFile(t *testing.T) {
	in := "# comment\n;other\n\nsat1,0,0963,000000,1234,0000,182,47,1711500000,0,8C\nbad,line\nsat1,0,0963,000000,1234,0000,182,47,1711500000,0,00\nsat1,0,ZZZZ,000000,1234,0000,182,47,1711500000,0,8C\n"
	recs, probs, err := ParseStatFile(strings.NewReader(in))
	if err != nil || len(recs) != 1 || len(probs) != 3 {
		t.Fatalf("recs %v probs %v err %v", recs, probs, err)
	}
	if !strings.Contains(probs[0].Error(), "line 5") || !strings.Contains(probs[2].Error(), "caid") {
		t.Fatalf("problems do not say where: %v", probs)
	}
	old := "sat1 rc 0 caid 0963 prid 000000 srvid 1234 time avg 182 ms ecms 47 last 1711500000 fail 0 len 8C\n"
	recs, probs, _ = ParseStatFile(strings.NewReader(old))
	if len(recs) != 1 || len(probs) != 0 || recs[0].AvgMs != 182 || recs[0].ECMLen != 0x8C || recs[0].Count != 47 {
		t.Fatalf("old format: %+v %v", recs, probs)
	}
}

// TestSaveUnderLoad saves repeatedly while answers arrive from several
// goroutines; every recorded FOUND must be in the final snapshot.
func TestSaveUnderLoad(t *testing.T) {
	c := DefaultConfig()
	c.LBMode = 10 // stats only: no max_ecmcount reset during the test
	c.LBSave = 100
	c.MaxInflight = 2048 // virtual time stands still: no ECM is released or evicted
	const workers, perWorker = 4, 300
	names := []string{"A", "B", "C", "D"}
	opts := map[string]ReaderConfig{}
	for w, n := range names { // worker w's ECMs (CAID 090w) only match reader w
		opts[n] = ReaderConfig{CAID: CAIDList{{CAID: 0x0900 + uint16(w), Mask: 0xFFFF}}}
	}
	r := newRigOpts(t, c, opts, names...)
	r.d.set.SavePath = filepath.Join(t.TempDir(), "stat")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	saves := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := r.d.SaveStats(); err != nil {
				t.Error(err)
				return
			}
			saves++
		}
	}()
	var work sync.WaitGroup
	for w := 0; w < workers; w++ {
		work.Add(1)
		go func(w int) {
			defer work.Done()
			cl := &recClient{}
			fr := r.readers[w]
			for i := 0; i < perWorker; i++ {
				_ = r.d.Submit(&ECM{CAID: 0x0900 + uint16(w), SrvID: uint16(i), Len: 140, Client: cl})
				r.d.Answer(fr.last.Token, Found, [16]byte{1})
			}
		}(w)
	}
	work.Wait()
	close(stop)
	wg.Wait()
	if err := r.d.SaveStats(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(r.d.set.SavePath)
	defer f.Close()
	recs, _, _ := ParseStatFile(f)
	total := 0
	for _, rec := range recs {
		total += rec.Count
	}
	if n := r.d.Counters(); n.LateAnswers != 0 || n.InflightEvictions != 0 {
		t.Fatalf("answers lost before the stats: %+v", n)
	}
	if total != workers*perWorker || saves == 0 {
		t.Fatalf("saved %d FOUNDs after %d saves, want %d", total, saves, workers*perWorker)
	}
}

func TestExplainFilters(t *testing.T) {
	o := map[string]ReaderConfig{
		"A": {CAID: CAIDList{{CAID: 0x0500, Mask: 0xFFFF}}},
		"B": {Services: ServiceList{Deny: []uint16{0x1234}}},
		"C": {Group: 2},
		"D": {},
	}
	r := newRigOpts(t, baseline(), o, "A", "B", "C", "D")
	r.readers[3].status.Present = false
	_ = r.d.Submit(&ECM{CAID: 0x0963, SrvID: 0x1234, Len: 140, Groups: 1, Client: r.client})
	x, ok := r.d.Explain(0x0963, 0x1234)
	if !ok {
		t.Fatal("no explanation")
	}
	want := []string{"filtered by caid", "filtered by services", "filtered by group", "no card inserted or not connected"}
	for i, re := range x.Readers {
		if re.Reason != want[i] || re.Asked {
			t.Errorf("%s: %q asked=%v, want %q", re.Reader, re.Reason, re.Asked, want[i])
		}
	}
	if r.client.last.Result != NotFound || r.d.Counters().NoMatchingReader != 1 {
		t.Fatal("no matching reader did not answer NOT_FOUND")
	}
}

// TestExplainKeepsItsMode: an explanation read after an lb_mode change
// still says the mode in force when the decision was made.
func TestExplainKeepsItsMode(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LBMode = 0
	r := newRig(t, cfg, "A", "B")
	_ = r.d.Submit(&ECM{CAID: 0x0963, SrvID: 0x0042, Len: 140, Client: r.client})
	cfg.LBMode = 1
	if err := r.d.Reconfigure(cfg, []ReaderConfig{{}, {}}); err != nil {
		t.Fatal(err)
	}
	x, ok := r.d.Explain(0x0963, 0x0042)
	if !ok {
		t.Fatal("no explanation")
	}
	if x.Mode != 0 || !strings.Contains(x.Readers[0].Reason, "no selection with lb_mode 0") {
		t.Errorf("after the change to lb_mode 1 the decision reads mode %d, %q; want lb_mode 0", x.Mode, x.Readers[0].Reason)
	}
}
