package balancer

import "testing"

// The tests below are the spec's §6 scenarios, asserted directly on the
// Dispatcher (the same scenarios run end to end through lbsim in
// balancer/lbsim).

func wantAsked(t *testing.T, r *rig, want string) {
	t.Helper()
	if got := roles(r.asked()); got != want {
		t.Fatalf("asked %q, want %q", got, want)
	}
}

func TestS1Learning(t *testing.T) {
	r := newRig(t, baseline(), "A", "B", "C")
	for i := 0; i < 5; i++ {
		r.at(int64(i) * 10000)
		r.ecm()
		wantAsked(t, r, "A:learning B:learning C:learning ")
		r.at(int64(i)*10000 + 100)
		r.answer("A", Found)
		if r.client.last.Result != Found || r.client.last.After.Milliseconds() != 100 {
			t.Fatalf("client got %+v, want FOUND after 100 ms", r.client.last)
		}
		r.at(int64(i)*10000 + 200)
		r.answer("B", Found)
		r.at(int64(i)*10000 + 300)
		r.answer("C", Found)
	}
	for n, avg := range map[string]int32{"A": 100, "B": 200, "C": 300} {
		if s := r.stat(n); s.count != 5 || s.avg != avg {
			t.Fatalf("%s: count %d avg %d, want 5/%d", n, s.count, s.avg, avg)
		}
	}
	r.at(50000)
	r.ecm()
	wantAsked(t, r, "A:primary ")
	r.at(52500)
	wantAsked(t, r, "A:primary B:fallback ")
}

func TestS2Weight(t *testing.T) {
	o := map[string]ReaderConfig{"A": {LBWeight: 100}, "B": {LBWeight: 200}}
	r := newRigOpts(t, baseline(), o, "A", "B")
	r.valid("A", 200)
	r.valid("B", 300)
	r.ecm()
	wantAsked(t, r, "B:primary ")
	r.at(2500)
	wantAsked(t, r, "A:fallback B:primary ")
}

func TestS3NBestTies(t *testing.T) {
	c := baseline()
	c.LBNBestReaders = 2
	r := newRig(t, c, "A", "B", "C", "D")
	r.valid("A", 300)
	r.valid("B", 100)
	r.valid("C", 200)
	r.valid("D", 300)
	r.ecm()
	wantAsked(t, r, "B:primary C:primary ")
	r.at(2500)
	wantAsked(t, r, "A:fallback B:primary C:primary ")
}

func TestS4Mode2(t *testing.T) {
	c := baseline()
	c.LBMode = 2
	for _, tc := range []struct {
		name    string
		weightB int
		retry   int
		avgA    int
		avgB    int
		want    string
		want2   string
	}{
		{"rotation", 100, 0, 100, 100, "A:primary ", "B:primary "},
		{"weight", 300, 0, 100, 100, "B:primary ", ""},
		{"retrylimit", 100, 300, 500, 200, "B:primary ", "B:primary "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.LBRetryLimit = tc.retry
			o := map[string]ReaderConfig{"A": {LBWeight: 100}, "B": {LBWeight: tc.weightB}}
			r := newRigOpts(t, c, o, "A", "B")
			r.at(20000)
			r.valid("A", tc.avgA)
			r.valid("B", tc.avgB)
			r.d.readers[0].lbLast, r.d.readers[0].lbLastSet = 10000, true // T-10 s
			r.d.readers[1].lbLast, r.d.readers[1].lbLastSet = 16000, true // T-4 s
			r.ecm()
			wantAsked(t, r, tc.want)
			if tc.want2 == "" {
				return
			}
			r.answer(tc.want[:1], Found)
			r.clear()
			r.at(22000)
			r.ecm()
			wantAsked(t, r, tc.want2)
		})
	}
}

func TestS5Mode3(t *testing.T) {
	c := baseline()
	c.LBMode = 3
	r := newRig(t, c, "A", "B")
	r.valid("A", 100)
	r.valid("B", 100)
	r.d.readers[0].usageLevel, r.d.readers[1].usageLevel = 500, 100
	r.ecm()
	wantAsked(t, r, "B:primary ")

	c.LBRetryLimit = 300
	r = newRig(t, c, "A", "B")
	r.valid("A", 200)
	r.valid("B", 400)
	r.d.readers[0].usageLevel, r.d.readers[1].usageLevel = 500, 100
	r.ecm()
	wantAsked(t, r, "A:primary ")
	if r.stat("A").avg != 200 {
		t.Fatal("retrylimit reset although best_time 200 <= 300")
	}
}

func TestS5UsageLevel(t *testing.T) {
	c := baseline()
	c.LBMode = 3
	r := newRig(t, c, "A")
	rs := &r.d.readers[0]
	found := func(at int64) {
		r.at(at)
		r.ecm()
		r.answer("A", Found)
	}
	for i := 0; i < 5; i++ {
		found(int64(i) * 10)
	}
	if rs.usageLevel != 0 {
		t.Fatalf("first window: usage %d, want 0", rs.usageLevel)
	}
	for i := 1; i <= 5; i++ {
		found(40 + int64(i)*2000)
	}
	if rs.usageLevel != 500 {
		t.Fatalf("5 FOUNDs over 10 s: usage %d, want 500", rs.usageLevel)
	}
	for i := 1; i <= 5; i++ {
		found(10040 + int64(i)*100)
	}
	if rs.usageLevel != 5000 {
		t.Fatalf("5 FOUNDs in < 1 s: usage %d, want 5000", rs.usageLevel)
	}
}

func TestS6PreferLocal(t *testing.T) {
	c := baseline()
	c.PreferLocalCards = 1
	r := newRig(t, c, "*L", "R")
	r.valid("L", 500)
	r.valid("R", 100)
	r.ecm()
	wantAsked(t, r, "L:primary ")
	r.at(100)
	r.answer("L", NotFound)
	wantAsked(t, r, "R:fallback ")
	r.answer("R", Found)
	r.clear()
	r.at(10000)
	r.setStat("L", Found, 10, 500, 0, 0)
	r.ecm()
	wantAsked(t, r, "L:primary ")
	r.at(12500)
	wantAsked(t, r, "L:primary R:fallback ")

	c.PreferLocalCards = 0
	r = newRig(t, c, "*L", "R")
	r.valid("L", 500)
	r.valid("R", 100)
	r.ecm()
	wantAsked(t, r, "R:primary ")
	r.at(2500)
	wantAsked(t, r, "L:fallback R:primary ")
}

func TestS6PreferLocalNBest2(t *testing.T) {
	c := baseline()
	c.PreferLocalCards = 1
	c.LBNBestReaders = 2
	r := newRig(t, c, "*L", "R1", "R2")
	r.valid("L", 500)
	r.valid("R1", 100)
	r.valid("R2", 200)
	r.ecm()
	wantAsked(t, r, "L:primary ")
	r.at(2500)
	wantAsked(t, r, "L:primary R1:primary R2:fallback ")
	r.answer("R1", Found)
	r.answer("R2", Found)
	r.clear()
	r.at(10000)
	r.ecm()
	r.at(10050)
	r.answer("L", NotFound)
	wantAsked(t, r, "R1:primary ")
}

func TestS7MinECMCount(t *testing.T) {
	r := newRig(t, baseline(), "A", "B")
	r.valid("A", 100)
	for i := 0; i < 5; i++ {
		r.at(int64(i) * 10000)
		r.ecm()
		wantAsked(t, r, "A:primary B:learning ")
		r.at(int64(i)*10000 + 80)
		r.answer("B", Found)
		r.at(int64(i)*10000 + 2500)
		if _, ok := r.asked()["A"]; !ok || len(r.asked()) != 1 {
			t.Fatal("a fallback was asked although B has no value")
		}
		r.clear()
	}
	r.at(50000)
	r.ecm()
	wantAsked(t, r, "B:primary ")
	r.at(52500)
	wantAsked(t, r, "A:fallback B:primary ")
}

func TestS8MaxECMCount(t *testing.T) {
	r := newRig(t, baseline(), "A", "B")
	r.setStat("A", Found, 501, 100, 0, 0)
	r.valid("B", 200)
	r.ecm()
	wantAsked(t, r, "A:learning B:primary ")
	if s := r.stat("A"); s.count != 0 || s.avg != undefAvg {
		t.Fatalf("A not reset: count %d avg %d", s.count, s.avg)
	}
	r.at(2500)
	if len(r.asked()) != 2 {
		t.Fatal("a fallback was asked")
	}
}

func TestS9RetryLimitReached(t *testing.T) {
	c := baseline()
	c.LBRetryLimit = 300
	r := newRig(t, c, "A", "B")
	r.valid("A", 400)
	r.valid("B", 500)
	r.ecm()
	wantAsked(t, r, "A:primary B:primary ")
	if r.stat("A").avg != undefAvg || r.stat("B").avg != undefAvg {
		t.Fatal("averages not reset")
	}
	r.at(100)
	r.ecm() // no answers yet: still both
	if n := len(r.readers[0].reqs) + len(r.readers[1].reqs); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}
	r.at(250)
	r.answer("A", Found)
	r.at(350)
	r.answer("A", Found)
	r.at(450)
	r.answer("B", Found)
	r.at(550)
	r.answer("B", Found)
	r.clear()
	r.at(10000)
	r.ecm()
	wantAsked(t, r, "A:primary ")
	r.at(12500)
	wantAsked(t, r, "A:primary B:fallback ")
}

func TestS10RetryLimitKeepsOrRefreshes(t *testing.T) {
	c := baseline()
	c.LBRetryLimit = 300
	r := newRig(t, c, "A", "B")
	r.setStat("A", Found, 800, 200, 0, 0)
	r.setStat("B", Found, 800, 400, 0, 0)
	r.ecm()
	wantAsked(t, r, "A:primary B:learning ")
	if r.stat("A").count != 800 || r.stat("B").count != 0 {
		t.Fatal("wrong reset")
	}

	r = newRig(t, c, "A", "B")
	r.at(400000)
	r.setStat("B", Found, 10, 100, 0, 0)
	r.setStat("A", Found, 10, 350, 0, 301000)
	r.ecm()
	wantAsked(t, r, "A:primary B:primary ")
	if r.stat("A").avg != undefAvg {
		t.Fatal("A's average not reset by the 5-minute rule")
	}
}

func TestS11NotFoundBlocking(t *testing.T) {
	r := newRig(t, baseline(), "A", "B")
	r.valid("A", 100)
	r.valid("B", 200)
	r.ecm()
	r.at(50)
	r.answer("A", NotFound)
	wantAsked(t, r, "B:fallback ")
	r.at(250)
	r.answer("B", Found)
	if r.client.last.Result != Found || r.client.last.After.Milliseconds() != 250 {
		t.Fatalf("client %+v", r.client.last)
	}
	if s := r.stat("A"); s.rc != NotFound || s.fail != 1 || s.last != 50 {
		t.Fatalf("A stat %+v", s)
	}
	r.at(10000)
	r.ecm()
	wantAsked(t, r, "B:primary ")
	r.answer("B", NotFound)
	if r.client.last.Result != NotFound {
		t.Fatal("client did not get NOT_FOUND when B failed")
	}
	r.setStat("B", Found, 10, 200, 0, 0)
	r.at(30060)
	r.ecm()
	wantAsked(t, r, "A:reopen B:primary ")
	r.at(30110)
	r.answer("A", NotFound)
	r.answer("B", Found)
	r.clear()
	if r.stat("A").fail != 2 {
		t.Fatal("fail factor not 2")
	}
	r.at(60000)
	r.ecm()
	if _, ok := r.asked()["A"]; ok {
		t.Fatal("A reopened at 60 s")
	}
	r.answer("B", Found)
	r.clear()
	r.at(90200)
	r.ecm()
	wantAsked(t, r, "A:reopen B:primary ")
	countBefore := r.stat("A").count
	r.answer("A", Found)
	if s := r.stat("A"); s.fail != 0 || s.count != countBefore+1 || !r.d.valid(s, 0) {
		t.Fatalf("A not valid again: %+v", s)
	}
}

func TestS12TimeoutBlocking(t *testing.T) {
	r := newRig(t, baseline(), "A", "B")
	r.valid("A", 100)
	r.valid("B", 200)
	r.ecm()
	r.at(2499)
	wantAsked(t, r, "A:primary ")
	r.at(2500)
	wantAsked(t, r, "A:primary B:fallback ")
	r.at(5000)
	if r.client.last.Result != Timeout || r.client.last.After.Milliseconds() != 5000 {
		t.Fatalf("client %+v", r.client.last)
	}
	for _, n := range []string{"A", "B"} {
		if s := r.stat(n); s.rc != Timeout || s.fail != 2 || r.d.blockMs(s) != 60000 {
			t.Fatalf("%s: %+v", n, s)
		}
	}

	r = newRig(t, baseline(), "*A", "B")
	r.valid("A", 100)
	r.valid("B", 200)
	r.ecm()
	r.at(5000)
	if s := r.stat("A"); s.rc != Found || s.fail != 1 {
		t.Fatalf("local A: %+v", s)
	}
	r.clear()
	r.at(10000)
	r.ecm()
	wantAsked(t, r, "A:primary ")

	r = newRig(t, baseline(), "A", "B")
	r.valid("A", 100)
	r.valid("B", 200)
	r.ecm()
	r.at(2600)
	r.answer("B", Found)
	r.at(5000)
	if s := r.stat("A"); s.rc != Found || s.fail != 0 {
		t.Fatalf("A got a TIMEOUT although the ECM was answered: %+v", s)
	}
}

func TestS13AllBlocked(t *testing.T) {
	for _, force := range []bool{false, true} {
		c := baseline()
		if force {
			c.LBForceReopenAlways = 1
		}
		r := newRig(t, c, "A", "B")
		r.valid("A", 100)
		r.valid("B", 200)
		r.ecm()
		r.at(5000)
		r.clear()
		r.at(30000)
		r.ecm()
		if force {
			wantAsked(t, r, "A:reopen B:reopen ")
			if r.stat("A").fail != 0 || r.stat("A").rc != Timeout {
				t.Fatal("force reopen: fail not reset or rc changed")
			}
			continue
		}
		wantAsked(t, r, "")
		if r.client.last.Result != NotFound || r.client.last.After != 0 {
			t.Fatalf("client %+v, want immediate NOT_FOUND", r.client.last)
		}
		r.at(65000)
		r.ecm()
		wantAsked(t, r, "")
		r.at(65001)
		r.ecm()
		wantAsked(t, r, "A:reopen B:reopen ")
	}
}

func TestS14MaxReaders(t *testing.T) {
	for _, tc := range []struct {
		max  int
		want string
	}{
		{2, "V:primary X:reopen "},
		{0, "V:primary X:reopen Y:reopen Z:reopen "},
		{1, "V:primary X:reopen "},
	} {
		c := baseline()
		c.LBMaxReaders = tc.max
		r := newRig(t, c, "V", "X", "Y", "Z")
		r.at(100000)
		r.valid("V", 100)
		for _, n := range []string{"X", "Y", "Z"} {
			r.setStat(n, NotFound, 10, 100, 1, 40000)
		}
		r.ecm()
		wantAsked(t, r, tc.want)
	}
}
