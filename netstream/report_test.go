package netstream

// Tests of issue 20's "the backend told of every re-admission": reports of
// token re-admissions reach the backend even when the listener left first,
// before its listener_remove, and a report lost to a full verify queue is
// counted where operators see it.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// readmitPair starts relays a and b sharing a re-admission key on mount
// /paid against be; a issues the tokens, so b reports every use of them.
func readmitPair(t *testing.T, be *authBackend) (a, b *Server) {
	t.Helper()
	mc := authMount("/paid", be.url, "closed")
	mc.Auth.TokenKeys = []string{strings.Repeat("5a", 32)}
	mc.Auth.Handlers = 2 // one verifier worker: reports go one at a time
	mc.Auth.StatsInterval = Duration(time.Millisecond)
	mc.Auth.Timeout = Duration(hangGuard) // a held report is slow, not failed
	a = startServer(t, testConfig(mc))
	b = startServer(t, testConfig(mc))
	for _, s := range []*Server{a, b} {
		waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/paid").fresh(time.Now(), time.Second) })
	}
	return a, b
}

// readmitOn gets user a token from a (its redirect) and connects with it
// to b, where it is admitted on the token alone.
func readmitOn(t *testing.T, a, b *Server, user string) net.Conn {
	t.Helper()
	code, h, _, err := get(a.Addr(), "/paid", user)
	if err != nil || code != http.StatusFound {
		t.Fatalf("%s on a: %d %v %v, want a redirect with a token", user, code, h, err)
	}
	code, h, c, err := get(b.Addr(), h.Get("Location"), user)
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s on b with its token: %d %v %v", user, code, h, err)
	}
	return c
}

// TestReadmitReportedAfterListenerLeft: listeners re-admitted on their
// tokens that disconnect before the verifier reports them (the backend
// holds the first report, the rest wait in the queue behind it) are still
// reported, exactly once each, and each one's listener_remove reaches the
// backend after its listener_add readmit=1, never before.
func TestReadmitReportedAfterListenerLeft(t *testing.T) {
	const n = 8
	be := newAuthBackend(t, 0, 64)
	be.holdReadmits.Store(true)
	a, b := readmitPair(t, be)
	m := b.mount("/paid")
	var conns []net.Conn
	var sessions []*session
	for i := range n {
		user := fmt.Sprint("gone", i)
		conns = append(conns, readmitOn(t, a, b, user))
		m.smu.Lock()
		for _, l := range m.sessions["u:"+user] {
			sessions = append(sessions, l.who)
		}
		m.smu.Unlock()
	}
	if len(sessions) != n {
		t.Fatalf("%d sessions registered on b, want %d", len(sessions), n)
	}
	for _, c := range conns {
		c.Close()
	}
	// Every listener is gone while its report is held or queued: its
	// remove is parked on the session, not sent.
	waitFor(t, 5*time.Second, "every listener gone before its report", func() bool {
		for _, who := range sessions {
			if who.report.Load() != reportLeft {
				return false
			}
		}
		return true
	})
	if got := be.readmits.Load() + be.removes.Load(); got != 0 {
		t.Fatalf("backend heard %d readmit reports or removes while the reports were held", got)
	}
	close(be.release)
	waitFor(t, 10*time.Second, "reports and removes", func() bool {
		return be.readmits.Load() == n && be.removes.Load() == n
	})
	waitFor(t, 5*time.Second, "verify queue drained", func() bool { return m.adm.Load().verify.pending() == 0 })
	be.mu.Lock()
	defer be.mu.Unlock()
	for i := range n {
		user := fmt.Sprint("gone", i)
		if got, want := be.order[user], []string{"add", "readmit", "remove"}; !slices.Equal(got, want) {
			t.Errorf("%s: backend heard %v, want %v (a's check, b's report, b's remove)", user, got, want)
		}
	}
	for _, who := range sessions {
		if st := who.report.Load(); st != reportSent || who.left.Load() != nil {
			t.Errorf("session %s: report state %d, held remove %v; want sent and none", who.identity, st, who.left.Load())
		}
	}
}

// TestReadmitUnreportedCounted: a re-admission that finds the verify queue
// full is still admitted (the token proves the grant) but its report is
// lost; /status.json counts it in auth_readmits_unreported and its
// listener_remove goes out as usual.
func TestReadmitUnreportedCounted(t *testing.T) {
	be := newAuthBackend(t, 0, 64)
	be.holdReadmits.Store(true)
	defer close(be.release)
	a, b := readmitPair(t, be)
	m := b.mount("/paid")
	v := m.adm.Load().verify
	// Fill the queue with held reports of listeners that never streamed.
	for i := 0; v.room(); i++ {
		l := &listener{m: m, who: &session{req: admitRequest{uri: "/paid", user: fmt.Sprint("filler", i)}}}
		if !v.add(l, true) {
			t.Fatalf("queue refused filler %d with room left", i)
		}
	}
	for _, tt := range []struct {
		user       string
		unreported uint64
	}{
		{"late1", 1},
		{"late2", 2},
	} {
		c := readmitOn(t, a, b, tt.user)
		st := statusMount(t, b, "/paid")
		if st.Unreported != tt.unreported || st.Readmits != tt.unreported || st.Verifying != v.pending() {
			t.Fatalf("%s: status readmits %d, unreported %d, verifying %d; want %d, %d, %d", tt.user, st.Readmits, st.Unreported, st.Verifying, tt.unreported, tt.unreported, v.pending())
		}
		c.Close()
		waitFor(t, 5*time.Second, tt.user+"'s remove", func() bool {
			be.mu.Lock()
			defer be.mu.Unlock()
			return slices.Equal(be.order[tt.user], []string{"add", "remove"})
		})
	}
}

// statusMount reads mount name from s's /status.json.
func statusMount(t *testing.T, s *Server, name string) MountStats {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr() + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"auth_readmits_unreported":`) {
		t.Fatalf("/status.json without auth_readmits_unreported: %s", body)
	}
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("/status.json: %v", err)
	}
	for _, ms := range st.Mounts {
		if ms.Name == name {
			return ms
		}
	}
	t.Fatalf("/status.json has no mount %s: %s", name, body)
	return MountStats{}
}
