package balancer

import (
	"log/slog"
	"math"
)

// Settings are the option values in force after OSCam's startup clamps.
// NewSettings builds them from a Config and logs every clamp.
type Settings struct {
	Mode              int
	Save              int
	SavePath          string
	NBest             int
	NFB               int
	NBestPerCAID      CAIDValueList
	MinECMCount       int
	MaxECMCount       int
	ReopenSeconds     int
	ReopenInvalid     bool
	ForceReopenAlways bool
	RetryLimit        int
	RetryLimits       CAIDValueList
	StatCleanupMs     int64
	MaxReaders        int
	NoProviderForCAID CAIDList
	AutoTimeout       bool
	AutoTimeoutP      int
	AutoTimeoutT      int
	ClientTimeout     int
	FallbackTimeout   int
	FallbackPerCAID   CAIDValueList
	PreferLocalCards  int
	WaitUntilCTimeout bool
	CacheMaxTimeMs    int64
	StatEntries       int
	MaxInflight       int
	CacheEntries      int
	ExplainServices   int
}

// DefaultStatPath is where stats are saved when lb_savepath is empty.
const DefaultStatPath = "/tmp/.oscam/stat"

type clampLog struct{ log *slog.Logger }

func (c clampLog) clamp(option string, configured, inForce any, why string) {
	if c.log != nil {
		c.log.Warn("balancer option clamped", "option", option, "configured", configured, "in_force", inForce, "rule", why)
	}
}

// NewSettings applies OSCam's startup clamps to c, logging each one with
// the option name and the value in force. log may be nil.
func NewSettings(c Config, log *slog.Logger) Settings {
	l := clampLog{log}
	s := Settings{
		Mode: c.LBMode, SavePath: c.LBSavePath, ReopenInvalid: c.LBReopenInvalid != 0,
		ForceReopenAlways: c.LBForceReopenAlways != 0, NoProviderForCAID: c.LBNoProviderForCAID,
		AutoTimeout: c.LBAutoTimeout == 1, AutoTimeoutP: c.LBAutoTimeoutP, AutoTimeoutT: c.LBAutoTimeoutT,
		WaitUntilCTimeout: c.WaitUntilCTimeout != 0, StatEntries: c.StatEntries, MaxInflight: c.MaxInflight,
		CacheEntries: c.CacheEntries, ExplainServices: c.ExplainServices,
	}
	if s.SavePath == "" {
		s.SavePath = DefaultStatPath
	}
	s.Save = c.LBSave
	switch {
	case c.LBSave > 0 && c.LBSave < 100:
		s.Save = 100
		l.clamp("lb_save", c.LBSave, 100, "values 1 to 99 become 100")
	case c.LBSave < 0:
		// OSCam saves after every stat here; satd does not wear the flash.
		s.Save = 100
		l.clamp("lb_save", c.LBSave, 100, "negative values would save after every stat; satd uses 100")
	}
	s.NBest = atLeast(l, "lb_nbest_readers", c.LBNBestReaders, 2, 1)
	s.NFB = atLeast(l, "lb_nfb_readers", c.LBNFBReaders, 2, 1)
	for _, e := range c.LBNBestPerCAID {
		if e.CAID == 0 || e.Value < 0 || e.Value >= 10000 {
			l.clamp("lb_nbest_percaid", e.Value, "entry dropped", "entries need a non-zero CAID and a value from 0 to 9999")
			continue
		}
		s.NBestPerCAID = append(s.NBestPerCAID, e)
	}
	s.MinECMCount = atLeast(l, "lb_min_ecmcount", c.LBMinECMCount, 2, 5)
	s.MaxECMCount = atLeast(l, "lb_max_ecmcount", c.LBMaxECMCount, 3, 500)
	s.ReopenSeconds = atLeast(l, "lb_reopen_seconds", c.LBReopenSeconds, 10, 30)
	s.RetryLimit = atLeast(l, "lb_retrylimit", c.LBRetryLimit, 0, 0)
	for _, e := range c.LBRetryLimits {
		if e.Value < 0 || e.Value >= 10000 {
			l.clamp("lb_retrylimits", e.Value, "entry dropped", "values must be from 0 to 9999")
			continue
		}
		if e.Value < 50 {
			l.clamp("lb_retrylimits", e.Value, 50, "values below 50 become 50")
			e.Value = 50
		}
		s.RetryLimits = append(s.RetryLimits, e)
	}
	cleanup := c.LBStatCleanup
	if cleanup <= 0 {
		l.clamp("lb_stat_cleanup", cleanup, 336, "0 or less becomes 336")
		cleanup = 336
	}
	s.StatCleanupMs = int64(cleanup) * 3600 * 1000 // int64: no OSCam overflow at >= 597 h
	s.MaxReaders = c.LBMaxReaders
	if s.MaxReaders > 0 && s.MaxReaders <= s.NBest {
		l.clamp("lb_max_readers", c.LBMaxReaders, s.NBest+1, "a value not above lb_nbest_readers is raised to nbest+1")
	}
	s.ClientTimeout = c.ClientTimeout
	switch {
	case c.ClientTimeout == 0:
		s.ClientTimeout = 5000
		l.clamp("clienttimeout", 0, 5000, "0 would time out every ECM at once")
	case c.ClientTimeout < 10:
		s.ClientTimeout = c.ClientTimeout * 1000
		l.clamp("clienttimeout", c.ClientTimeout, s.ClientTimeout, "values below 10 are seconds")
	}
	s.FallbackPerCAID = c.FallbackTimeoutPerCAID
	s.FallbackTimeout = clampFallback(l, "fallbacktimeout", c.FallbackTimeout, s.ClientTimeout)
	for _, e := range s.FallbackPerCAID {
		if e.Value != 0 {
			clampFallback(l, "fallbacktimeout_percaid", e.Value, s.ClientTimeout)
		}
	}
	s.PreferLocalCards = c.PreferLocalCards
	if c.PreferLocalCards < 0 || c.PreferLocalCards > 2 {
		s.PreferLocalCards = 0
		l.clamp("preferlocalcards", c.PreferLocalCards, 0, "values outside 0..2 become 0")
	}
	s.CacheMaxTimeMs = int64(c.CacheMaxTime) * 1000
	if minT := (s.ClientTimeout+500)/1000 + 3; c.CacheMaxTime < minT {
		s.CacheMaxTimeMs = int64(minT) * 1000
		l.clamp("cache_max_time", c.CacheMaxTime, minT, "raised to (clienttimeout+500)/1000+3 seconds")
	}
	return s
}

// atLeast returns v, or def (logged) when v is below min.
func atLeast(l clampLog, option string, v, min, def int) int {
	if v < min {
		if v != def {
			l.clamp(option, v, def, "below the minimum")
		}
		return def
	}
	return v
}

// clampFallback applies the fallbacktimeout rules against clienttimeout.
func clampFallback(l clampLog, option string, v, clientTimeout int) int {
	switch {
	case v < 100:
		l.clamp(option, v, 2500, "values below 100 become 2500")
		v = 2500
	}
	if v >= clientTimeout {
		l.clamp(option, v, clientTimeout-100, "must be below clienttimeout")
		v = clientTimeout - 100
	}
	return v
}

// fallbackTimeoutFor returns the effective fallback timeout for caid.
func (s *Settings) fallbackTimeoutFor(caid uint16) int {
	v := s.FallbackPerCAID.Lookup(caid, 0)
	if v == 0 {
		return s.FallbackTimeout
	}
	return clampFallback(clampLog{}, "", v, s.ClientTimeout)
}

// retryLimitFor returns the retrylimit for caid.
func (s *Settings) retryLimitFor(caid uint16) int {
	return s.RetryLimits.Lookup(caid, s.RetryLimit)
}

// reopenMs returns the block time of an entry, clamping its fail factor
// as OSCam does (the clamp is written back by the caller).
func (s *Settings) clampFail(fail int32) int32 {
	lim := int32(math.MaxInt32 / s.ReopenSeconds)
	if lim > 9999 {
		lim = 9999
	}
	if fail > lim {
		return lim
	}
	return fail
}

// ReaderSettings are one reader's options in force.
type ReaderSettings struct {
	ReaderConfig
	Weight int
}

// NewReaderSettings clamps lb_weight to 1..1000 (0 or less becomes 100)
// and logs the clamp with the reader's name.
func NewReaderSettings(name string, c ReaderConfig, log *slog.Logger) ReaderSettings {
	w := c.LBWeight
	switch {
	case w > 1000:
		w = 1000
	case w <= 0:
		w = 100
	}
	if w != c.LBWeight && log != nil {
		log.Warn("balancer option clamped", "reader", name, "option", "lb_weight", "configured", c.LBWeight, "in_force", w, "rule", "allowed 1..1000; 0 or less becomes 100")
	}
	if c.Group == 0 {
		c.Group = 1
	}
	return ReaderSettings{ReaderConfig: c, Weight: w}
}

// isFallbackFor reports the fixed-fallback rule: fallback_percaid, when
// set, replaces fallback.
func (r *ReaderSettings) isFallbackFor(caid uint16, prid uint32) bool {
	if len(r.FallbackPerCAID) > 0 {
		return r.FallbackPerCAID.MatchWildcard(caid, prid)
	}
	return r.Fallback == 1
}
