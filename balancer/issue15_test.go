package balancer

import "testing"

// busyReader refuses its first refuse Submits (a full queue).
type busyReader struct {
	fakeReader
	refuse int
}

func (r *busyReader) Submit(req Request) bool {
	if r.refuse > 0 {
		r.refuse--
		return false
	}
	return r.fakeReader.Submit(req)
}

func ecmWith(data byte, sid uint16, c Client) *ECM {
	return &ECM{CAID: 0x0963, SrvID: sid, Len: 4, Data: []byte{0x80, 0x70, 0x01, data}, Client: c}
}

// TestCacheExpiryServesNewestCW: after cache_max_time, an identical ECM is
// solved again, and the next identical ECM gets the new CW, not the old
// one with a refreshed age.
func TestCacheExpiryServesNewestCW(t *testing.T) {
	r := newRig(t, baseline(), "A")
	maxAge := int64(r.d.Settings().CacheMaxTimeMs)
	solve := func(cw byte) {
		r.d.Submit(ecmWith(7, 1, r.client))
		q := r.readers[0].take()
		if len(q) != 1 {
			t.Fatalf("reader asked %d times; want once", len(q))
		}
		r.d.Answer(q[0].Token, Found, [16]byte{cw})
	}
	solve(0x11)
	r.at(int64(r.clock.Now()) + maxAge + 1000)
	solve(0x22) // expired: asked again, answers a new CW
	r.d.Submit(ecmWith(7, 1, r.client))
	if a := r.client.last; a.Result != Cache || a.CW[0] != 0x22 {
		t.Errorf("identical ECM after re-solve: %v CW %02X; want cache 22", a.Result, a.CW[0])
	}
}

// TestNoECMReaderKeyedByService: a reader that ignores the ECM (constant
// CW) is asked for each service even when the ECM bytes are identical,
// and its CWs are not cached for other services.
func TestNoECMReaderKeyedByService(t *testing.T) {
	r := newRig(t, baseline(), "A")
	r.readers[0].status.NoECM = true
	a, b := &recClient{}, &recClient{}
	r.d.Submit(ecmWith(7, 1, a))
	r.d.Submit(ecmWith(7, 2, b)) // same bytes, other service, while the first is in flight
	q := r.readers[0].take()
	if len(q) != 2 || q[0].SrvID != 1 || q[1].SrvID != 2 {
		t.Fatalf("requests %+v; want one per service", q)
	}
	r.d.Answer(q[0].Token, Found, [16]byte{1})
	r.d.Answer(q[1].Token, Found, [16]byte{2})
	if a.last.CW[0] != 1 || b.last.CW[0] != 2 {
		t.Errorf("CWs %02X %02X; want 01 02", a.last.CW[0], b.last.CW[0])
	}
	c := &recClient{}
	r.d.Submit(ecmWith(7, 3, c))
	if c.n != 0 || len(r.readers[0].take()) != 1 {
		t.Errorf("third service answered from the cache (%v); want the reader asked", c.last.Result)
	}
}

// TestFullQueueIsBackpressure: a reader whose queue is full is offered
// the ECM again until it takes it; the client gets the CW, never
// NOT_FOUND, and no stat is written for the refusals.
func TestFullQueueIsBackpressure(t *testing.T) {
	r := newRig(t, baseline(), "A")
	br := &busyReader{fakeReader: *r.readers[0], refuse: 5}
	r.d.readers[0].r = br
	r.d.Submit(ecmWith(9, 1, r.client))
	for i := 0; len(br.reqs) == 0; i++ {
		if i > 100 || r.client.n > 0 {
			t.Fatalf("after %d retries: client answered %v, reader asked %d", i, r.client.last.Result, len(br.reqs))
		}
		r.at(int64(r.clock.Now()) + int64(BusyRetry))
	}
	r.d.Answer(br.reqs[0].Token, Found, [16]byte{5})
	if r.client.n != 1 || r.client.last.Result != Found {
		t.Errorf("client got %d answers, last %v; want one found", r.client.n, r.client.last.Result)
	}
	if c := r.d.Counters(); c.QueueFull != 5 || c.NotFound != 0 {
		t.Errorf("counters %+v", c)
	}
}

// TestFullQueueUntilClientTimeout: a queue that stays full ends in the
// client timeout (bounded wait), not NOT_FOUND.
func TestFullQueueUntilClientTimeout(t *testing.T) {
	r := newRig(t, baseline(), "A")
	br := &busyReader{fakeReader: *r.readers[0], refuse: 1 << 30}
	r.d.readers[0].r = br
	r.d.Submit(ecmWith(9, 1, r.client))
	r.at(int64(r.clock.Now()) + int64(r.d.Settings().ClientTimeout) + 100)
	if r.client.n != 1 || r.client.last.Result != Timeout {
		t.Errorf("client got %d answers, last %v; want one timeout", r.client.n, r.client.last.Result)
	}
}

// TestRequestCarriesPIDs: the PMT, ECM and video PIDs reach the reader.
func TestRequestCarriesPIDs(t *testing.T) {
	r := newRig(t, baseline(), "A")
	e := ecmWith(1, 1, r.client)
	e.PMTPID, e.ECMPID, e.VPID = 0x100, 0x200, 0x101
	r.d.Submit(e)
	q := r.readers[0].take()
	if len(q) != 1 || q[0].PMTPID != 0x100 || q[0].ECMPID != 0x200 || q[0].VPID != 0x101 {
		t.Errorf("requests %+v", q)
	}
}
