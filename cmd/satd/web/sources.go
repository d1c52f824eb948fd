package web

import (
	"context"
	"io"
	"strings"
	"time"
)

// StatusSource gives the Status page and /api/status a snapshot of the
// readers, the services being descrambled and the stream mounts. The daemon
// implements it over the readers, the dvbapi front door and the stream relay;
// every string in it is untrusted (card data, client names, stream titles).
type StatusSource interface {
	Status() Status
}

// Status is one snapshot of the daemon's moving parts.
type Status struct {
	Readers  []ReaderStatus  `json:"readers"`
	Services []ServiceStatus `json:"services"`
	Mounts   []MountStatus   `json:"mounts"`
}

// ReaderStatus is the state of one card reader (OSCam's reader row plus the
// card details of its entitlements page).
type ReaderStatus struct {
	Label         string         `json:"label"`
	State         string         `json:"state"` // e.g. "ready", "no card", "error"
	ATR           string         `json:"atr"`
	Protocol      string         `json:"protocol"` // "T=0", "T=1"
	Baud          int            `json:"baud"`
	CardSystem    string         `json:"card_system"`
	CAID          uint16         `json:"caid"`
	Providers     []string       `json:"providers"`
	Serial        string         `json:"serial"`
	Subscriptions []Subscription `json:"subscriptions"`
	ECMOK         uint64         `json:"ecm_ok"`
	ECMNotFound   uint64         `json:"ecm_not_found"`
	ECMTimeout    uint64         `json:"ecm_timeout"`
	AvgTime       time.Duration  `json:"avg_time_ns"`
	LastError     string         `json:"last_error"`
	// Note says what the card stack tolerated on this card (an ATR
	// accepted leniently, refused S(IFS) requests); in /api/status only.
	Note string `json:"note,omitempty"`
	// CardResets counts the warm resets the card system asked for (a
	// hanging card, Conax 90 11).
	CardResets uint64 `json:"card_resets"`
}

// Subscription is one entitlement of a card.
type Subscription struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// ServiceStatus is one service a dvbapi client asked satd to descramble
// (OSCam's client row with its last request).
type ServiceStatus struct {
	Client  string `json:"client"` // CLIENT_INFO name, or the peer before it
	Peer    string `json:"peer"`   // client address
	Channel string `json:"channel"`
	// Adapter and Demux are the client's DVB adapter and demux for the
	// service; ECMPID is the ECM PID in use.
	Adapter  uint8  `json:"adapter"`
	Demux    uint8  `json:"demux"`
	CAID     uint16 `json:"caid"`
	Provider uint32 `json:"provider"`
	SID      uint16 `json:"sid"`
	ECMPID   uint16 `json:"ecm_pid"`
	// State is "searching", "descrambling", "retrying" or "free-to-air".
	State string `json:"state"`
	// Reader, CardSystem and ECMTime describe the last answer with a CW.
	Reader     string        `json:"reader"`
	CardSystem string        `json:"card_system"`
	ECMTime    time.Duration `json:"ecm_time_ns"`
	// ECMOK and ECMFailed count the service's ECMs found and not found or
	// timed out; LastECM is when the last answer came.
	ECMOK     uint64    `json:"ecm_ok"`
	ECMFailed uint64    `json:"ecm_failed"`
	LastECM   time.Time `json:"last_ecm"`
	Since     time.Time `json:"since"`
}

// MountStatus is one stream mount of the relay.
type MountStatus struct {
	Name             string `json:"name"`
	Source           string `json:"source"`
	Upstream         string `json:"upstream"`
	Listeners        int    `json:"listeners"`
	Bitrate          int    `json:"bitrate_kbps"`
	Title            string `json:"title"`
	UpstreamSwitches uint64 `json:"upstream_switches"`
}

// BalancerView is the Load balancer page's window on the balancer: its
// statistics rows, the explanation of its last decision per service, and the
// clear and reset actions.
type BalancerView interface {
	Stats() []StatsRow
	Decisions() []Decision
	// Reset forgets the statistics of one reader, or of all when reader is "".
	Reset(reader string) error
	// Clear deletes one statistics row.
	Clear(reader, key string) error
}

// StatsRow is one row of OSCam's readerstats table.
type StatsRow struct {
	Reader       string        `json:"reader"`
	Key          string        `json:"key"` // CAID@PROVID:SRVID:CHID:ECMLEN
	Channel      string        `json:"channel"`
	Result       string        `json:"result"` // found, not found, timeout, ...
	Count        int           `json:"count"`
	Avg          time.Duration `json:"avg_ns"`
	Last         time.Duration `json:"last_ns"`
	FailFactor   int           `json:"fail_factor"`
	LastSeen     time.Time     `json:"last_seen"`
	BlockedUntil time.Time     `json:"blocked_until"`
}

// Decision explains the balancer's last choice for one service.
type Decision struct {
	Service     string    `json:"service"`
	Channel     string    `json:"channel"` // from the names table`
	When        time.Time `json:"when"`
	Readers     []string  `json:"readers"` // the readers asked
	Explanation string    `json:"explanation"`
	// Mode is lb_mode as it was at that decision ("" when not known);
	// Why says, reader by reader, why it was asked or not.
	Mode string      `json:"lb_mode,omitempty"`
	Why  []ReaderWhy `json:"why,omitempty"`
}

// ReaderWhy is one reader's part in a decision.
type ReaderWhy struct {
	Reader string `json:"reader"`
	Asked  bool   `json:"asked"`
	Role   string `json:"role,omitempty"` // primary or fallback, when asked
	Reason string `json:"reason"`
}

// ReaderControl acts on the running readers for the reader list's
// actions. Enabling and disabling go through the configuration (and the
// daemon's apply, which takes a reader out of the balancer at once).
type ReaderControl interface {
	// Restart closes the reader's card, slot or file and opens it again.
	Restart(label string) error
	// ResetCounters zeroes the reader's ECM counters.
	ResetCounters(label string) error
}

// Updater installs a firmware image uploaded through the System page.
type Updater interface {
	// Install verifies and installs the image read from r (size bytes, or
	// -1 when unknown). It returns once the image is verified and the
	// installation started or refused; State follows the rest.
	Install(ctx context.Context, name string, r io.Reader, size int64) error
	State() UpdateState
}

// UpdateState is the progress of the current or last firmware update.
type UpdateState struct {
	Phase   string `json:"phase"` // idle, receiving, verifying, installing, done, failed
	Done    int64  `json:"done"`
	Total   int64  `json:"total"`
	Message string `json:"message"`
	Current string `json:"current_version"`
	New     string `json:"new_version"`
}

// noStatus, noBalancer and noUpdater stand in for parts not wired (yet).
type noStatus struct{}

func (noStatus) Status() Status { return Status{} }

type noBalancer struct{}

func (noBalancer) Stats() []StatsRow          { return nil }
func (noBalancer) Decisions() []Decision      { return nil }
func (noBalancer) Reset(string) error         { return ErrNotAvailable }
func (noBalancer) Clear(string, string) error { return ErrNotAvailable }

type noUpdater struct{}

func (noUpdater) Install(context.Context, string, io.Reader, int64) error { return ErrNotAvailable }
func (noUpdater) State() UpdateState                                      { return UpdateState{Phase: "unavailable"} }

// Outcome is how one component took a new configuration.
type Outcome string

// The outcomes of an apply, per component.
const (
	Applied       Outcome = "applied"
	RestartNeeded Outcome = "restart needed"
	Failed        Outcome = "failed"
)

// ComponentResult is one component's answer to an apply: applied, applied
// only after a restart, or failed with the reason.
type ComponentResult struct {
	Component string  `json:"component"`
	Outcome   Outcome `json:"outcome"`
	Reason    string  `json:"reason,omitempty"`
}

// ApplyResult is every component's answer to one apply, in start order.
type ApplyResult []ComponentResult

// only returns the results with outcome o.
func (a ApplyResult) only(o Outcome) ApplyResult {
	var out ApplyResult
	for _, c := range a {
		if c.Outcome == o {
			out = append(out, c)
		}
	}
	return out
}

// String lists the results as "component: reason; …".
func (a ApplyResult) String() string {
	var b strings.Builder
	for i, c := range a {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.Component + " " + string(c.Outcome))
		if c.Reason != "" {
			b.WriteString(": " + c.Reason)
		}
	}
	return b.String()
}
