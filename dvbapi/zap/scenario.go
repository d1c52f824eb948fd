// Package zap is `satd zap`: a conformance client that plays a receiver
// against a dvbapi server (satd or any OSCam-compatible softcam). It sends
// CA PMTs from a scenario, answers filter requests with generated ECM
// sections whose parity flips every crypto period, checks that CWs arrive in
// time and that the server follows the protocol, and reports per service.
package zap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pelletier/go-toml/v2"
	"satd.dev/satd/dvbapi/testecm"
	"satd.dev/satd/internal/duration"
)

// Scenario is a zap scenario file (TOML).
type Scenario struct {
	Protocol     int       `toml:"protocol"`      // 1, 2 or 3; 0 with handshake "none"
	Handshake    string    `toml:"handshake"`     // "client_info_first" (default), "capmt_first" or "none" (protocol 0: never CLIENT_INFO)
	ClientName   string    `toml:"client_name"`   // CLIENT_INFO name
	CryptoPeriod Duration  `toml:"crypto_period"` // parity flips (default 2s)
	ECMInterval  Duration  `toml:"ecm_interval"`  // ECM repetition (default 200ms)
	CWDeadline   Duration  `toml:"cw_deadline"`   // ECM → CW in place (default 1s)
	Verify       string    `toml:"verify"`        // how CWs are checked, see verifyModes
	ConstCW      string    `toml:"constcw"`       // constant.cw rules for verify = "constcw" (relative to the scenario file)
	Services     []Service `toml:"service"`
	Steps        []Step    `toml:"step"`

	// Observe, when set, is called from Run with each service's first
	// ECM_INFO after a zap (the demo logs these).
	Observe func(Event) `toml:"-"`
	// Release ends the holds of steps with hold_until_release: a test
	// closes it once it has checked what it needs while the services
	// run, however long that took on a loaded machine.
	Release <-chan struct{} `toml:"-"`
	// Patience, when set, turns the run's deadlines into hang guards, as
	// tests on a shared, loaded machine need: SERVER_INFO, cw_deadline and
	// the cleanup after a stop each wait up to the larger of their own
	// value and Patience before they count as missed, and the run ends as
	// soon as every stopped service has cleaned up. How long the answers
	// took is still reported (FirstCW, MaxLatency).
	Patience time.Duration `toml:"-"`
}

// Service is a programme the receiver can tune.
type Service struct {
	Name     string   `toml:"name"`
	SID      uint16   `toml:"sid"`
	PMTPID   uint16   `toml:"pmt_pid"`
	PIDs     []uint16 `toml:"pids"`
	TSID     uint16   `toml:"tsid"`
	ONID     uint16   `toml:"onid"`
	Adapter  uint8    `toml:"adapter"`
	Demux    uint8    `toml:"demux"`
	MsgID    uint32   `toml:"msgid"` // protocol 3 frame id (default = sid)
	ECM      []ECMPID `toml:"ecm"`
	ExpectCW *bool    `toml:"expect_cw"` // default true
	System   string   `toml:"system"`    // ECM generator: "test" (default), "conax", "seca"
	Provider uint16   `toml:"provider"`  // Seca provider ident in the ECM (default 0064)
	Verify   string   `toml:"verify"`    // overrides the scenario's verify for this service
}

// verifyModes are the ways zap knows the CW a service should get:
//
//   - "derived": the CWs testecm derives (only the test solver knows them);
//   - "sha256": what the simulated cards of cardsim/personality answer (the
//     first 16 bytes of SHA-256 over the ECM bytes the card receives);
//   - "constcw": the rule of the scenario's constcw file that matches;
//   - "any": no key knowledge: the pair is non-zero, arrives in time,
//     changes when the ECM changes and stays put while the ECM repeats;
//   - "nonzero": any non-zero pair (the weakest check).
var verifyModes = []string{"derived", "sha256", "constcw", "any", "nonzero"}

// ECMPID is one CA descriptor of a service.
type ECMPID struct {
	CAID uint16 `toml:"caid"`
	PID  uint16 `toml:"pid"`
}

// Step is one action of the scenario.
type Step struct {
	Do      string   `toml:"do"` // zap, add, update, not_selected, stop, disconnect, wait, set_constcw
	Service string   `toml:"service"`
	PIDs    []uint16 `toml:"pids"` // update: new elementary PIDs
	Hold    Duration `toml:"hold"` // time to run after the action
	// HoldUntilRelease keeps running after Hold until the scenario's
	// Release is closed (or Run's context ends).
	HoldUntilRelease bool `toml:"hold_until_release"`
	// File is set_constcw's rules file (relative to the scenario file):
	// its content replaces the scenario's constcw file, which the server's
	// constcw reader shares, so the server answers new CWs.
	File string `toml:"file"`
}

// Duration is a TOML duration string ("2s").
type Duration = duration.Duration

// Load reads and validates a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sc, err := Parse(path, b)
	if err != nil {
		return nil, err
	}
	if sc.ConstCW != "" && !filepath.IsAbs(sc.ConstCW) {
		sc.ConstCW = filepath.Join(filepath.Dir(path), sc.ConstCW)
	}
	for i := range sc.Steps {
		if f := sc.Steps[i].File; f != "" && !filepath.IsAbs(f) {
			sc.Steps[i].File = filepath.Join(filepath.Dir(path), f)
		}
	}
	return sc, nil
}

// Parse parses and validates a scenario.
func Parse(name string, b []byte) (*Scenario, error) {
	var sc Scenario
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	if err := sc.validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	return &sc, nil
}

func (sc *Scenario) validate() error {
	switch sc.Handshake {
	case "":
		sc.Handshake = "client_info_first"
	case "client_info_first", "capmt_first":
	case "none":
		if sc.Protocol != 0 {
			return fmt.Errorf("handshake none is protocol 0 (got protocol %d)", sc.Protocol)
		}
	default:
		return fmt.Errorf("handshake %q: want client_info_first, capmt_first or none", sc.Handshake)
	}
	if sc.Protocol == 0 && sc.Handshake != "none" {
		sc.Protocol = 2
	}
	if sc.Handshake != "none" && (sc.Protocol < 1 || sc.Protocol > 3) {
		return fmt.Errorf("protocol %d: want 1, 2 or 3", sc.Protocol)
	}
	if sc.ClientName == "" {
		sc.ClientName = "satd-zap"
	}
	def := func(d *Duration, v time.Duration) {
		if *d <= 0 {
			*d = Duration(v)
		}
	}
	def(&sc.CryptoPeriod, 2*time.Second)
	def(&sc.ECMInterval, 200*time.Millisecond)
	def(&sc.CWDeadline, time.Second)
	if sc.Verify == "" {
		sc.Verify = "nonzero"
	}
	if !slices.Contains(verifyModes, sc.Verify) {
		return fmt.Errorf("verify %q: want one of %v", sc.Verify, verifyModes)
	}
	names := map[string]bool{}
	for i := range sc.Services {
		s := &sc.Services[i]
		if s.Name == "" || names[s.Name] {
			return fmt.Errorf("service[%d]: missing or duplicate name %q", i, s.Name)
		}
		names[s.Name] = true
		if s.MsgID == 0 {
			s.MsgID = uint32(s.SID)
		}
		if s.ExpectCW == nil {
			t := true
			s.ExpectCW = &t
		}
		if err := s.validate(sc); err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
	}
	for i, st := range sc.Steps {
		switch st.Do {
		case "zap", "add", "update", "not_selected", "stop":
			if !names[st.Service] && !(st.Do == "stop" && st.Service == "") {
				return fmt.Errorf("step[%d] %s: unknown service %q", i, st.Do, st.Service)
			}
		case "disconnect", "wait":
		case "set_constcw":
			if st.File == "" || sc.ConstCW == "" {
				return fmt.Errorf("step[%d] set_constcw: needs file and the scenario's constcw", i)
			}
		default:
			return fmt.Errorf("step[%d]: unknown action %q", i, st.Do)
		}
	}
	return nil
}

// validate fills the service's defaults and checks its ECM system and
// verify mode fit together.
func (s *Service) validate(sc *Scenario) error {
	if s.System == "" {
		s.System = "test"
	}
	if !slices.Contains(testecm.Systems, s.System) {
		return fmt.Errorf("system %q: want one of %v", s.System, testecm.Systems)
	}
	if s.Provider == 0 {
		s.Provider = testecm.SecaProvider
	}
	if s.Verify == "" {
		s.Verify = sc.Verify
	}
	switch {
	case !slices.Contains(verifyModes, s.Verify):
		return fmt.Errorf("verify %q: want one of %v", s.Verify, verifyModes)
	case s.Verify == "derived" && s.System != "test":
		return fmt.Errorf("verify = \"derived\" needs system = \"test\" (got %q)", s.System)
	case s.Verify == "sha256" && s.System == "test":
		return errors.New(`verify = "sha256" needs system = "conax" or "seca"`)
	case s.Verify == "constcw" && sc.ConstCW == "":
		return errors.New(`verify = "constcw" needs the scenario's constcw file`)
	}
	return nil
}
