package balancer

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestDefaults checks every spec default (§1) in DefaultConfig and the
// settings in force for an empty configuration.
func TestDefaults(t *testing.T) {
	c := DefaultConfig()
	s := NewSettings(c, nil)
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		{"lb_mode", s.Mode, 0},
		{"lb_save", s.Save, 0},
		{"lb_nbest_readers", s.NBest, 1},
		{"lb_nfb_readers", s.NFB, 1},
		{"lb_min_ecmcount", s.MinECMCount, 5},
		{"lb_max_ecmcount", s.MaxECMCount, 500},
		{"lb_reopen_seconds", s.ReopenSeconds, 30},
		{"lb_reopen_invalid", c.LBReopenInvalid, 1},
		{"lb_force_reopen_always", c.LBForceReopenAlways, 0},
		{"lb_retrylimit", s.RetryLimit, 0},
		{"lb_stat_cleanup (h)", int(s.StatCleanupMs / 3600000), 336},
		{"lb_max_readers", s.MaxReaders, 0},
		{"lb_auto_timeout", c.LBAutoTimeout, 0},
		{"lb_auto_timeout_p", s.AutoTimeoutP, 30},
		{"lb_auto_timeout_t", s.AutoTimeoutT, 300},
		{"clienttimeout", s.ClientTimeout, 5000},
		{"fallbacktimeout", s.FallbackTimeout, 2500},
		{"preferlocalcards", s.PreferLocalCards, 0},
		{"wait_until_ctimeout", c.WaitUntilCTimeout, 0},
		{"cache max_time (s)", int(s.CacheMaxTimeMs / 1000), 15},
		{"lb_weight", DefaultReaderConfig().LBWeight, 100},
		{"fallback", DefaultReaderConfig().Fallback, 0},
		{"lb_force_fallback", DefaultReaderConfig().LBForceFallback, 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s default %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	if s.SavePath != DefaultStatPath || !s.ReopenInvalid || s.ForceReopenAlways || s.AutoTimeout {
		t.Errorf("defaults: %+v", s)
	}
	var probs []string
	c.Validate(func(k, m string) { probs = append(probs, k+": "+m) })
	DefaultReaderConfig().Validate(func(k, m string) { probs = append(probs, k+": "+m) })
	if len(probs) > 0 {
		t.Errorf("defaults do not validate: %v", probs)
	}
}

// TestClamps covers every startup clamp of §1 and checks that each one is
// logged with the option name and the value in force.
func TestClamps(t *testing.T) {
	for _, tc := range []struct {
		option string
		set    func(*Config)
		get    func(Settings) int
		want   int
		logged bool
	}{
		{"lb_save", func(c *Config) { c.LBSave = 1 }, func(s Settings) int { return s.Save }, 100, true},
		{"lb_save", func(c *Config) { c.LBSave = 99 }, func(s Settings) int { return s.Save }, 100, true},
		{"lb_save", func(c *Config) { c.LBSave = 100 }, func(s Settings) int { return s.Save }, 100, false},
		{"lb_save", func(c *Config) { c.LBSave = -1 }, func(s Settings) int { return s.Save }, 100, true},
		{"lb_nbest_readers", func(c *Config) { c.LBNBestReaders = 0 }, func(s Settings) int { return s.NBest }, 1, true},
		{"lb_nbest_readers", func(c *Config) { c.LBNBestReaders = 3 }, func(s Settings) int { return s.NBest }, 3, false},
		{"lb_nfb_readers", func(c *Config) { c.LBNFBReaders = 0 }, func(s Settings) int { return s.NFB }, 1, true},
		{"lb_nfb_readers", func(c *Config) { c.LBNFBReaders = -4 }, func(s Settings) int { return s.NFB }, 1, true},
		{"lb_min_ecmcount", func(c *Config) { c.LBMinECMCount = 1 }, func(s Settings) int { return s.MinECMCount }, 5, true},
		{"lb_min_ecmcount", func(c *Config) { c.LBMinECMCount = 2 }, func(s Settings) int { return s.MinECMCount }, 2, false},
		{"lb_max_ecmcount", func(c *Config) { c.LBMaxECMCount = 2 }, func(s Settings) int { return s.MaxECMCount }, 500, true},
		{"lb_max_ecmcount", func(c *Config) { c.LBMaxECMCount = 3 }, func(s Settings) int { return s.MaxECMCount }, 3, false},
		{"lb_reopen_seconds", func(c *Config) { c.LBReopenSeconds = 9 }, func(s Settings) int { return s.ReopenSeconds }, 30, true},
		{"lb_reopen_seconds", func(c *Config) { c.LBReopenSeconds = 10 }, func(s Settings) int { return s.ReopenSeconds }, 10, false},
		{"lb_retrylimit", func(c *Config) { c.LBRetryLimit = -5 }, func(s Settings) int { return s.RetryLimit }, 0, true},
		{"lb_retrylimit", func(c *Config) { c.LBRetryLimit = 7 }, func(s Settings) int { return s.RetryLimit }, 7, false},
		{"lb_retrylimits", func(c *Config) { c.LBRetryLimits = CAIDValueList{{CAID: 0x0963, Value: 0}} },
			func(s Settings) int { return s.retryLimitFor(0x0963) }, 50, true},
		{"lb_retrylimits", func(c *Config) { c.LBRetryLimits = CAIDValueList{{CAID: 0x0963, Value: 10000}} },
			func(s Settings) int { return len(s.RetryLimits) }, 0, true},
		{"lb_retrylimits", func(c *Config) { c.LBRetryLimits = CAIDValueList{{CAID: 0x09, Wildcard: true, Value: 400}} },
			func(s Settings) int { return s.retryLimitFor(0x0963) }, 400, false},
		{"lb_nbest_percaid", func(c *Config) { c.LBNBestPerCAID = CAIDValueList{{CAID: 0x0963, Value: 0}} },
			func(s Settings) int { return s.NBestPerCAID.Lookup(0x0963, 1) }, 0, false},
		{"lb_nbest_percaid", func(c *Config) { c.LBNBestPerCAID = CAIDValueList{{CAID: 0x0963, Value: -1}} },
			func(s Settings) int { return len(s.NBestPerCAID) }, 0, true},
		{"lb_nbest_percaid", func(c *Config) { c.LBNBestPerCAID = CAIDValueList{{CAID: 0, Value: 2}} },
			func(s Settings) int { return len(s.NBestPerCAID) }, 0, true},
		{"lb_stat_cleanup", func(c *Config) { c.LBStatCleanup = 0 }, func(s Settings) int { return int(s.StatCleanupMs / 3600000) }, 336, true},
		{"lb_stat_cleanup", func(c *Config) { c.LBStatCleanup = 700 }, func(s Settings) int { return int(s.StatCleanupMs / 3600000) }, 700, false},
		{"lb_max_readers", func(c *Config) { c.LBMaxReaders = 1 }, func(s Settings) int { return s.MaxReaders }, 1, true},
		{"clienttimeout", func(c *Config) { c.ClientTimeout = 9 }, func(s Settings) int { return s.ClientTimeout }, 9000, true},
		{"clienttimeout", func(c *Config) { c.ClientTimeout = 10 }, func(s Settings) int { return s.ClientTimeout }, 10, false},
		{"clienttimeout", func(c *Config) { c.ClientTimeout = 0 }, func(s Settings) int { return s.ClientTimeout }, 5000, true},
		{"fallbacktimeout", func(c *Config) { c.FallbackTimeout = 99 }, func(s Settings) int { return s.FallbackTimeout }, 2500, true},
		{"fallbacktimeout", func(c *Config) { c.FallbackTimeout = 6000 }, func(s Settings) int { return s.FallbackTimeout }, 4900, true},
		{"fallbacktimeout_percaid", func(c *Config) { c.FallbackTimeoutPerCAID = CAIDValueList{{CAID: 0x0963, Value: 1000}} },
			func(s Settings) int { return s.fallbackTimeoutFor(0x0963) }, 1000, false},
		{"fallbacktimeout_percaid", func(c *Config) { c.FallbackTimeoutPerCAID = CAIDValueList{{CAID: 0x0963, Value: 50}} },
			func(s Settings) int { return s.fallbackTimeoutFor(0x0963) }, 2500, true},
		{"preferlocalcards", func(c *Config) { c.PreferLocalCards = 3 }, func(s Settings) int { return s.PreferLocalCards }, 0, true},
		{"preferlocalcards", func(c *Config) { c.PreferLocalCards = 2 }, func(s Settings) int { return s.PreferLocalCards }, 2, false},
		{"cache_max_time", func(c *Config) { c.CacheMaxTime = 2; c.ClientTimeout = 10000 }, func(s Settings) int { return int(s.CacheMaxTimeMs / 1000) }, 13, true},
	} {
		c := DefaultConfig()
		tc.set(&c)
		var buf bytes.Buffer
		s := NewSettings(c, slog.New(slog.NewTextHandler(&buf, nil)))
		if got := tc.get(s); got != tc.want {
			t.Errorf("%s: in force %d, want %d", tc.option, got, tc.want)
		}
		logged := strings.Contains(buf.String(), "option="+tc.option+" ")
		if logged != tc.logged {
			t.Errorf("%s: logged=%v, want %v (log %q)", tc.option, logged, tc.logged, buf.String())
		}
		if tc.logged && !strings.Contains(buf.String(), "in_force=") {
			t.Errorf("%s: log lacks the value in force: %q", tc.option, buf.String())
		}
	}
}

func TestMaxReadersRaisedAtSelection(t *testing.T) {
	c := baseline()
	c.LBMaxReaders = 1
	r := newRig(t, c, "A")
	if !strings.Contains(r.logs.String(), "option=lb_max_readers") || !strings.Contains(r.logs.String(), "in_force=2") {
		t.Fatalf("log %q", r.logs.String())
	}
}

func TestWeightClamp(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, 100}, {-3, 100}, {1, 1}, {1000, 1000}, {1001, 1000}} {
		var buf bytes.Buffer
		rs := NewReaderSettings("A", ReaderConfig{LBWeight: tc.in}, slog.New(slog.NewTextHandler(&buf, nil)))
		if rs.Weight != tc.want {
			t.Errorf("lb_weight %d: in force %d, want %d", tc.in, rs.Weight, tc.want)
		}
		if logged := strings.Contains(buf.String(), "option=lb_weight"); logged != (tc.in != tc.want) {
			t.Errorf("lb_weight %d: logged=%v", tc.in, logged)
		}
	}
}

func TestFailFactorClamp(t *testing.T) {
	s := NewSettings(DefaultConfig(), nil)
	if got := s.clampFail(1 << 30); got != 9999 {
		t.Fatalf("fail clamp %d, want 9999", got)
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.StatEntries, c.MaxInflight, c.ClientTimeout = 0, 1<<20, -1
	var keys []string
	c.Validate(func(k, m string) { keys = append(keys, k) })
	if strings.Join(keys, ",") != "stat_entries,max_inflight,clienttimeout" {
		t.Fatalf("reported %v", keys)
	}
	rc := ReaderConfig{Fallback: 2, LBForceFallback: 3}
	keys = nil
	rc.Validate(func(k, m string) { keys = append(keys, k) })
	if len(keys) != 2 {
		t.Fatalf("reported %v", keys)
	}
}

func TestListSyntax(t *testing.T) {
	var cl CAIDList
	if err := cl.UnmarshalText([]byte("0963, 0500&FF00:0501")); err != nil || !cl.Match(0x0963) || !cl.Match(0x0522) || cl.Match(0x0600) {
		t.Fatalf("caid list %v %v", cl, err)
	}
	var np CAIDList
	_ = np.UnmarshalText([]byte("09,1830"))
	if !np.MatchNoProvider(0x0963) || !np.MatchNoProvider(0x1830) || np.MatchNoProvider(0x1831) {
		t.Fatal("lb_noproviderforcaid")
	}
	var il CAIDIdentList
	if err := il.UnmarshalText([]byte("0500:032830,033C00;0963:000000")); err != nil || !il.MatchIdent(0x0500, 0x033C00) || il.MatchIdent(0x0500, 1) {
		t.Fatalf("ident %v %v", il, err)
	}
	var ch CAIDIdentList
	_ = ch.UnmarshalText([]byte("0963:0001"))
	if !ch.MatchCHID(0x0963, 1) || ch.MatchCHID(0x0963, 2) || !ch.MatchCHID(0x0500, 7) {
		t.Fatal("chid")
	}
	var sl ServiceList
	if err := sl.UnmarshalText([]byte("1234,!5678")); err != nil || !sl.Match(0x1234) || sl.Match(0x5678) || sl.Match(0x1) {
		t.Fatalf("services %v %v", sl, err)
	}
	var g Groups
	if err := g.UnmarshalText([]byte("1,64")); err != nil || g != 1|1<<63 {
		t.Fatalf("groups %x %v", g, err)
	}
	for _, bad := range []string{"0", "65", "x"} {
		if g.UnmarshalText([]byte(bad)) == nil {
			t.Errorf("group %q accepted", bad)
		}
	}
	if cl.UnmarshalText([]byte("XYZ")) == nil || cl.UnmarshalText([]byte("12345")) == nil {
		t.Error("bad caid accepted")
	}
	var vl CAIDValueList
	if err := vl.UnmarshalText([]byte("0963:2,17:1")); err != nil || vl.Lookup(0x1702, 9) != 1 || vl.Lookup(0x0963, 9) != 2 || vl.Lookup(0x0500, 9) != 9 {
		t.Fatalf("per-caid %v %v", vl, err)
	}
	for _, v := range []interface{ MarshalText() ([]byte, error) }{cl, il, sl, g, vl} {
		if b, err := v.MarshalText(); err != nil || len(b) == 0 {
			t.Errorf("marshal %T: %q %v", v, b, err)
		}
	}
}
