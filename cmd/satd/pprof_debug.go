//go:build satd_pprof

package main

import (
	"net/http"
	_ "net/http/pprof" // the profiling handlers, in this debug build only
	"os"
	"runtime"
)

// init serves net/http/pprof on SATD_PPROF (for example 127.0.0.1:18302)
// when the daemon is built with -tags satd_pprof, as bench/stream/bench.sh
// does with PPROF=1; release builds never link it (TestDependenciesListed).
func init() {
	if os.Getenv("SATD_MEMPROFILERATE") == "1" {
		runtime.MemProfileRate = 1 // every allocation, for exact per-listener costs
	}
	if addr := os.Getenv("SATD_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
