package promtext

import (
	"io"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startTime approximates the process start for process_start_time_seconds.
var startTime = time.Now()

// runtimeSamples are the Go runtime figures exposed as go_* families.
var runtimeSamples = []struct{ family, typ, name string }{
	{"go_goroutines", "gauge", "/sched/goroutines:goroutines"},
	{"go_gc_cycles_total", "counter", "/gc/cycles/total:gc-cycles"},
	{"go_memory_total_bytes", "gauge", "/memory/classes/total:bytes"},
	{"go_heap_objects_bytes", "gauge", "/memory/classes/heap/objects:bytes"},
	{"go_gomemlimit_bytes", "gauge", "/gc/gomemlimit:bytes"},
}

// WriteProcess writes the process_* and go_* families scrapers and
// dashboards expect: CPU time, resident and virtual memory, descriptors,
// start time, goroutines and the Go heap.
func WriteProcess(w io.Writer) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		WriteFamily(w, "process_cpu_seconds_total", "counter", Sample{Value: cpu})
	}
	if vsz, rss, ok := statm(); ok {
		WriteFamily(w, "process_virtual_memory_bytes", "gauge", Sample{Value: float64(vsz)})
		WriteFamily(w, "process_resident_memory_bytes", "gauge", Sample{Value: float64(rss)})
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		WriteFamily(w, "process_open_fds", "gauge", Sample{Value: float64(len(fds))})
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		WriteFamily(w, "process_max_fds", "gauge", Sample{Value: float64(lim.Cur)})
	}
	WriteFamily(w, "process_start_time_seconds", "gauge", Sample{Value: float64(startTime.Unix())})
	ss := make([]metrics.Sample, len(runtimeSamples))
	for i, r := range runtimeSamples {
		ss[i].Name = r.name
	}
	metrics.Read(ss)
	for i, r := range runtimeSamples {
		if ss[i].Value.Kind() == metrics.KindUint64 {
			WriteFamily(w, r.family, r.typ, Sample{Value: float64(ss[i].Value.Uint64())})
		}
	}
}

// statm reads the virtual and resident size in bytes from /proc/self/statm.
func statm() (vsz, rss uint64, ok bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0, false
	}
	pages, err1 := strconv.ParseUint(f[0], 10, 64)
	res, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	ps := uint64(os.Getpagesize())
	return pages * ps, res * ps, true
}
