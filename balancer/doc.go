// Package balancer is satd's OSCam-compatible ECM load balancer and
// dispatcher.
//
// A Dispatcher receives client ECMs (Submit), decides which readers are
// asked and when (the OSCam stages: local primaries, primaries, fallbacks,
// driven by the fallback and client timeouts measured from the ECM's
// arrival), learns per-reader statistics from the answers (Answer) and
// delivers the first control word, NOT_FOUND or TIMEOUT to the client.
// Readers are known only through the Reader interface; clients through the
// Client interface.
//
// Every table has a fixed capacity chosen from the configuration when the
// Dispatcher is built: stats entries per reader (stat_entries), in-flight
// ECMs (max_inflight), CW cache entries (cache_entries) and explained
// services (explain_services). When a table is full the documented
// eviction rule applies and a counter in Counters is incremented. From an
// ECM arriving to its CW delivered and the stats recorded nothing
// allocates; the tests prove it with testing.AllocsPerRun.
//
// Time comes from a Clock in milliseconds of monotonic time, so the same
// code runs on a real clock (RealClock, driven by Run) and on virtual time
// (VirtualClock, driven by Tick, used by satd lbsim).
package balancer
