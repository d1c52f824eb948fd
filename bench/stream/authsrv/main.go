// Command authsrv is an Icecast URL-auth backend for the e2e test: it grants
// every listener after a fixed delay, serves at most -limit requests at once
// (503 beyond), and reports its call counts on GET /count (listener_add
// calls flagged readmit=1 apart: they are answered at once). With -log it
// also writes one line per call: unix milliseconds, kind (add, readmit,
// remove), the relay's port and the user.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address (127.0.0.1 only)")
	delay := flag.Duration("delay", 200*time.Millisecond, "answer delay")
	limit := flag.Int("limit", 20, "requests served at once")
	logName := flag.String("log", "", "append one line per call to this file")
	flag.Parse()
	if !strings.HasPrefix(*addr, "127.0.0.1:") {
		fmt.Fprintln(os.Stderr, "authsrv: refusing non-loopback address")
		os.Exit(2)
	}
	var calls, readmits, removes, refused, inflight, peak atomic.Int64
	var mu sync.Mutex
	distinct := map[string]bool{} // relay port + user
	sem := make(chan struct{}, *limit)
	logCall := func(string, *http.Request) {}
	if *logName != "" {
		f, err := os.OpenFile(*logName, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "authsrv:", err)
			os.Exit(2)
		}
		var lmu sync.Mutex
		logCall = func(kind string, r *http.Request) {
			lmu.Lock()
			defer lmu.Unlock()
			fmt.Fprintf(f, "%d %s %s %s %s\n", time.Now().UnixMilli(), kind, r.PostForm.Get("port"), r.PostForm.Get("user"), r.PostForm.Get("ip"))
		}
	}
	http.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := len(distinct)
		mu.Unlock()
		fmt.Fprintf(w, "calls=%d distinct=%d readmits=%d removes=%d refused_busy=%d peak=%d\n", calls.Load(), d, readmits.Load(), removes.Load(), refused.Load(), peak.Load())
	})
	http.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("action") == "listener_remove" {
			logCall("remove", r)
			removes.Add(1)
			return
		}
		if r.PostForm.Get("readmit") == "1" { // satd's asynchronous report of a token re-admission
			logCall("readmit", r)
			readmits.Add(1)
			w.Header().Set("icecast-auth-user", "1")
			return
		}
		logCall("add", r)
		calls.Add(1)
		mu.Lock()
		distinct[r.PostForm.Get("port")+"/"+r.PostForm.Get("user")] = true
		mu.Unlock()
		select {
		case sem <- struct{}{}:
		default:
			refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		defer func() { <-sem }()
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(*delay)
		w.Header().Set("icecast-auth-user", "1")
	})
	fmt.Fprintln(os.Stderr, http.ListenAndServe(*addr, nil))
}
