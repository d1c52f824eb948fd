package balancer

import "fmt"

// Config holds the global load-balancer and ECM dispatch options. It is
// the [balancer] section of the satd configuration; option names,
// defaults and clamps are OSCam's (see docs/balancer.md). Clamps are not
// errors: they are applied by NewSettings and logged with the value in
// force, as OSCam applies them silently.
type Config struct {
	LBMode              int           `toml:"lb_mode" comment:"0 = every matching reader is asked; 1 = fastest first; 2 = least recently used first; 3 = lowest usage level; above 3 = no selection, stats only"`
	LBSave              int           `toml:"lb_save" comment:"0 = never save stats; N = save after every N+1 recorded stats and at shutdown (1..99 become 100)"`
	LBSavePath          string        `toml:"lb_savepath" comment:"stats file in OSCam format; empty = <global.state_dir>/oscam.stat (OSCam: /tmp/.oscam/stat)"`
	LBNBestReaders      int           `toml:"lb_nbest_readers" comment:"number of primary readers chosen from valid stats (below 2 becomes 1)"`
	LBNFBReaders        int           `toml:"lb_nfb_readers" comment:"number of fallback readers (below 2 becomes 1; cannot be 0)"`
	LBNBestPerCAID      CAIDValueList `toml:"lb_nbest_percaid" comment:"per-CAID nbest, CAID:n list; a 2-digit CAID matches the high byte; overrides lb_nbest_readers"`
	LBMinECMCount       int           `toml:"lb_min_ecmcount" comment:"FOUND answers needed before a stat gets a value (below 2 becomes 5)"`
	LBMaxECMCount       int           `toml:"lb_max_ecmcount" comment:"a stat with more FOUND answers is reset and relearned (below 3 becomes 500)"`
	LBReopenSeconds     int           `toml:"lb_reopen_seconds" comment:"base block time in seconds after a failure, multiplied by the fail factor (below 10 becomes 30)"`
	LBReopenInvalid     int           `toml:"lb_reopen_invalid" comment:"0 = a stat with rc INVALID stays blocked until stats are cleared"`
	LBForceReopenAlways int           `toml:"lb_force_reopen_always" comment:"1 = when no reader would be asked, unblock every blocked reader at once"`
	LBRetryLimit        int           `toml:"lb_retrylimit" comment:"ms; soft limit on the average answer time, 0 = off (negative becomes 0)"`
	LBRetryLimits       CAIDValueList `toml:"lb_retrylimits" comment:"per-CAID retrylimit, CAID:ms list; values below 50 become 50"`
	LBStatCleanup       int           `toml:"lb_stat_cleanup" comment:"hours; delete stats not updated for this long (0 or less becomes 336)"`
	LBMaxReaders        int           `toml:"lb_max_readers" comment:"limits how many blocked readers are reopened per ECM (to this minus nbest); 0 = unlimited"`
	LBNoProviderForCAID CAIDList      `toml:"lb_noproviderforcaid" comment:"CAIDs whose stats ignore the provider id (all providers share stats)"`
	LBAutoTimeout       int           `toml:"lb_auto_timeout" comment:"1 = shorten fallback and client timeouts from the stats"`
	LBAutoTimeoutP      int           `toml:"lb_auto_timeout_p" comment:"percent added to the average time by lb_auto_timeout"`
	LBAutoTimeoutT      int           `toml:"lb_auto_timeout_t" comment:"ms; minimum added to the average time by lb_auto_timeout"`

	ClientTimeout          int           `toml:"clienttimeout" comment:"ms; the client gets TIMEOUT after this (values below 10 are seconds)"`
	FallbackTimeout        int           `toml:"fallbacktimeout" comment:"ms after the ECM's arrival when fallback readers are asked (below 100 becomes 2500; at least 100 below clienttimeout)"`
	FallbackTimeoutPerCAID CAIDValueList `toml:"fallbacktimeout_percaid" comment:"per-CAID fallbacktimeout, CAID:ms list"`
	PreferLocalCards       int           `toml:"preferlocalcards" comment:"0 = local cards like remote ones; 1 = ask local primaries first; 2 = as 1 (no cache-exchange stage in satd)"`
	WaitUntilCTimeout      int           `toml:"wait_until_ctimeout" comment:"1 = never send NOT_FOUND early; the client gets TIMEOUT at clienttimeout"`
	CacheMaxTime           int           `toml:"cache_max_time" comment:"seconds a CW stays in the cache after its last update (OSCam [cache] max_time; raised to clienttimeout+3 s)"`

	StatEntries     int `toml:"stat_entries" comment:"fixed number of stats entries per reader; when full the least recently updated entry is evicted"`
	MaxInflight     int `toml:"max_inflight" comment:"fixed number of ECMs in flight; when full the oldest is evicted and its client gets TIMEOUT"`
	CacheEntries    int `toml:"cache_entries" comment:"fixed number of CW cache entries; when full the oldest is evicted"`
	ExplainServices int `toml:"explain_services" comment:"number of services whose last ECM is explained; when full the service explained first is evicted"`
}

// DefaultConfig returns OSCam's code defaults plus satd's table sizes.
func DefaultConfig() Config {
	return Config{
		LBMode:          0,
		LBNBestReaders:  1,
		LBNFBReaders:    1,
		LBMinECMCount:   5,
		LBMaxECMCount:   500,
		LBReopenSeconds: 30,
		LBReopenInvalid: 1,
		LBStatCleanup:   336,
		LBAutoTimeoutP:  30,
		LBAutoTimeoutT:  300,
		ClientTimeout:   5000,
		FallbackTimeout: 2500,
		CacheMaxTime:    15,
		StatEntries:     4096,
		MaxInflight:     256,
		CacheEntries:    1024,
		ExplainServices: 256,
	}
}

// Table size limits accepted by Validate.
const (
	maxStatEntries     = 1 << 20
	maxInflightLimit   = 1 << 16
	maxCacheEntries    = 1 << 20
	maxExplainServices = 1 << 14
	maxReaders         = 1024
)

// Validate reports every value that cannot be used at all. Values OSCam
// clamps are not reported here; NewSettings clamps and logs them.
func (c Config) Validate(report func(key, msg string)) {
	sizes := []struct {
		key      string
		val, max int
	}{
		{"stat_entries", c.StatEntries, maxStatEntries},
		{"max_inflight", c.MaxInflight, maxInflightLimit},
		{"cache_entries", c.CacheEntries, maxCacheEntries},
		{"explain_services", c.ExplainServices, maxExplainServices},
	}
	for _, s := range sizes {
		if s.val < 1 || s.val > s.max {
			report(s.key, fmt.Sprintf("is %d; allowed 1 to %d", s.val, s.max))
		}
	}
	if c.ClientTimeout < 0 {
		report("clienttimeout", fmt.Sprintf("is %d; must not be negative", c.ClientTimeout))
	}
	if c.FallbackTimeout < 0 {
		report("fallbacktimeout", fmt.Sprintf("is %d; must not be negative", c.FallbackTimeout))
	}
	if c.LBAutoTimeoutP < 0 || c.LBAutoTimeoutT < 0 {
		report("lb_auto_timeout_p", "lb_auto_timeout_p and lb_auto_timeout_t must not be negative")
	}
	if c.CacheMaxTime < 0 {
		report("cache_max_time", fmt.Sprintf("is %d; must not be negative", c.CacheMaxTime))
	}
	for _, e := range c.FallbackTimeoutPerCAID {
		if e.Value < 0 {
			report("fallbacktimeout_percaid", fmt.Sprintf("CAID %04X has %d; must not be negative", e.CAID, e.Value))
		}
	}
}

// ReaderConfig holds one reader's load-balancer options. It is embedded
// flat into each [[reader]] table; names are OSCam's oscam.server names.
type ReaderConfig struct {
	Group               Groups        `toml:"group" comment:"groups 1..64 this reader serves, e.g. \"1,2\"; empty = group 1"`
	CAID                CAIDList      `toml:"caid" comment:"CAIDs this reader is asked for, CAID[&MASK] list; empty = all"`
	Ident               CAIDIdentList `toml:"ident" comment:"provider idents, CAID:ID,ID;CAID:ID; empty = all"`
	CHID                CAIDIdentList `toml:"chid" comment:"channel ids, CAID:CHID,CHID; a listed CAID requires a listed chid"`
	Services            ServiceList   `toml:"services" comment:"service ids in hex; !SRVID excludes; a positive list allows only those"`
	LBWeight            int           `toml:"lb_weight" comment:"1..1000; higher makes the reader more likely chosen (above 1000 becomes 1000, 0 or less 100)"`
	Fallback            int           `toml:"fallback" comment:"1 = fixed fallback (a hint under the load balancer)"`
	FallbackPerCAID     CAIDIdentList `toml:"fallback_percaid" comment:"CAID[:ident,...];... for which the reader is a fallback; replaces fallback"`
	LBForceFallback     int           `toml:"lb_force_fallback" comment:"1 = with fallback: always a fallback, never a primary, no stats"`
	LocalCards          CAIDIdentList `toml:"localcards" comment:"CAID:ident,... for which a network reader counts as local"`
	LBWhitelistServices ServiceList   `toml:"lb_whitelist_services" comment:"services for which failures of this reader are not recorded"`
}

// DefaultReaderConfig returns the per-reader defaults.
func DefaultReaderConfig() ReaderConfig {
	return ReaderConfig{LBWeight: 100}
}

// Validate reports per-reader values that cannot be used. lb_weight is
// clamped (and logged) by NewSettings, as in OSCam.
func (r ReaderConfig) Validate(report func(key, msg string)) {
	if r.Fallback != 0 && r.Fallback != 1 {
		report("fallback", fmt.Sprintf("is %d; allowed 0 or 1", r.Fallback))
	}
	if r.LBForceFallback != 0 && r.LBForceFallback != 1 {
		report("lb_force_fallback", fmt.Sprintf("is %d; allowed 0 or 1", r.LBForceFallback))
	}
}
