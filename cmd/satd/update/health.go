package update

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// HealthSource is what the post-update health checks look at. The daemon
// feeds it from its real components.
type HealthSource interface {
	// ConfigLoaded returns nil when the configuration in force was loaded
	// and validated.
	ConfigLoaded() error
	// WebURL is a URL of the web form that must answer below HTTP 500, or ""
	// when the web form is disabled.
	WebURL() string
	// ReadyReaders lists the labels of the readers whose card is ready now.
	ReadyReaders() []string
	// UpMounts lists the stream mounts that are up now.
	UpMounts() []string
}

// Baseline is what was healthy before an update; after it, the same
// readers and mounts must be back.
type Baseline struct {
	Readers []string `json:"readers"`
	Mounts  []string `json:"mounts"`
}

// BaselineOf records the ready readers and up mounts of src.
func BaselineOf(src HealthSource) Baseline {
	return Baseline{Readers: slices.Clone(src.ReadyReaders()), Mounts: slices.Clone(src.UpMounts())}
}

// Check is the result of one health check.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// HealthReport is the result of the post-update health checks.
type HealthReport struct {
	Passed bool          `json:"passed"`
	Checks []Check       `json:"checks"`
	Took   time.Duration `json:"took"`
}

// String summarises the report for the log.
func (r HealthReport) String() string {
	var failed []string
	for _, c := range r.Checks {
		if !c.OK {
			failed = append(failed, c.Name+": "+c.Detail)
		}
	}
	if len(failed) == 0 {
		return fmt.Sprintf("all %d checks passed in %s", len(r.Checks), r.Took.Round(time.Millisecond))
	}
	return "failed: " + strings.Join(failed, "; ")
}

// CheckHealth runs the health checks until all pass or within elapses,
// re-checking every interval (readers may take a while to reset a card).
func CheckHealth(ctx context.Context, src HealthSource, base Baseline, within, interval time.Duration) HealthReport {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		r := HealthReport{Checks: runChecks(ctx, src, base, client)}
		r.Passed = allOK(r.Checks)
		r.Took = time.Since(start)
		if r.Passed || !sleepCtx(ctx, interval) {
			return r
		}
	}
}

func runChecks(ctx context.Context, src HealthSource, base Baseline, client *http.Client) []Check {
	return []Check{
		{Name: "daemon started", OK: true},
		checkErr("configuration loaded", src.ConfigLoaded()),
		checkWeb(ctx, src.WebURL(), client),
		checkSubset("readers ready again", base.Readers, src.ReadyReaders()),
		checkSubset("stream mounts up again", base.Mounts, src.UpMounts()),
	}
}

func checkErr(name string, err error) Check {
	if err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	return Check{Name: name, OK: true}
}

func checkWeb(ctx context.Context, url string, client *http.Client) Check {
	const name = "web form answers"
	if url == "" {
		return Check{Name: name, OK: true, Detail: "web form disabled"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	resp, err := client.Do(req)
	if err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return Check{Name: name, Detail: "HTTP " + resp.Status}
	}
	return Check{Name: name, OK: true}
}

// checkSubset passes when every name of want is in have.
func checkSubset(name string, want, have []string) Check {
	var missing []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return Check{Name: name, Detail: "not back: " + strings.Join(missing, ", ")}
	}
	return Check{Name: name, OK: true, Detail: fmt.Sprintf("%d of %d", len(want), len(want))}
}

func allOK(cs []Check) bool {
	for _, c := range cs {
		if !c.OK {
			return false
		}
	}
	return true
}
