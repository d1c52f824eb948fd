package system_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/cardreader/cardsim/personality"
	"satd.dev/satd/cardreader/system"
	"satd.dev/satd/cardreader/system/systemtest"
)

// transcripts returns the parsed testdata/*.transcript files by name.
func transcripts(t *testing.T) map[string]*systemtest.Transcript {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.transcript"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	out := map[string]*systemtest.Transcript{}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := systemtest.Parse(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".transcript")] = tr
	}
	return out
}

// systemOf returns the card system a transcript name is for ("seca3" and
// "conax-pin" belong to seca and conax).
func systemOf(name string) string {
	name, _, _ = strings.Cut(name, "-")
	return strings.TrimRight(name, "0123456789")
}

// optionsOf turns a transcript's option lines into system options.
func optionsOf(t *testing.T, tr *systemtest.Transcript) system.Options {
	var o system.Options
	for _, opt := range tr.Options {
		switch key, val, _ := strings.Cut(opt, " "); key {
		case "dropbadcws":
			o.Policy = cardreader.DropBadCWs
		case "pin":
			o.PIN = val
		default:
			t.Fatalf("unknown option %q", opt)
		}
	}
	return o
}

var resultNames = map[string]system.Result{
	"found": system.Found, "not-found": system.NotFound, "not-subscribed": system.NotSubscribed,
	"bad-ecm": system.BadECM, "card-error": system.CardError, "not-supported": system.NotSupported,
}

// TestTranscripts replays each hand-written reference transcript against
// its card system: every command must match byte for byte, init must read
// the listed identity, and each ECM case must end as written.
func TestTranscripts(t *testing.T) {
	for name, tr := range transcripts(t) {
		t.Run(name, func(t *testing.T) {
			sys := system.ByName(system.New(optionsOf(t, tr)), systemOf(name))
			pb, err := systemtest.NewPlayback(tr.ATR, tr.Init)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := sys.Identify(context.Background(), pb); !ok || err != nil {
				t.Fatalf("Identify: %v %v", ok, err)
			}
			if err := sys.Init(context.Background(), pb); err != nil || len(pb.Ex) != 0 || pb.Err != nil {
				t.Fatalf("Init: %v (%d exchanges left, playback error %v)", err, len(pb.Ex), pb.Err)
			}
			checkIdentity(t, sys.Identity(), tr.Identity)
			for _, c := range tr.Cases {
				pb.Ex, pb.Resets = c.Exchanges, nil
				a, err := sys.ECM(pb, c.ECM)
				want, ok := resultNames[c.Result]
				switch {
				case !ok:
					t.Errorf("line %d: unknown result %q", c.Line, c.Result)
				case err != nil || pb.Err != nil || len(pb.Ex) != 0:
					t.Errorf("%s: %v (playback: %v, %d exchanges left)", c.Name, err, pb.Err, len(pb.Ex))
				case a.Result != want:
					t.Errorf("%s: %v (%s), want %v", c.Name, a.Result, a.Reason, want)
				case c.CW != nil && a.CW != *c.CW:
					t.Errorf("%s: CW % X, want % X", c.Name, a.CW, *c.CW)
				case a.Result != system.Found && (a.Reason == "" || !strings.Contains(a.Reason, c.Reason)):
					t.Errorf("%s: reason %q, want it to contain %q", c.Name, a.Reason, c.Reason)
				case c.Reset != (len(pb.Resets) > 0):
					t.Errorf("%s: reset requests %q, want one: %v", c.Name, pb.Resets, c.Reset)
				}
			}
		})
	}
}

func checkIdentity(t *testing.T, id system.Identity, want map[string]string) {
	t.Helper()
	if s, ok := want["serial"]; ok && id.Serial != s {
		t.Errorf("serial %q, want %q", id.Serial, s)
	}
	if s, ok := want["caid"]; ok && strconv.FormatUint(uint64(id.CAID), 16) != strings.ToLower(strings.TrimLeft(s, "0")) {
		t.Errorf("CAID %04X, want %s", id.CAID, s)
	}
	if s, ok := want["providers"]; ok {
		var provs []uint32
		for _, f := range strings.Fields(s) {
			v, _ := strconv.ParseUint(f, 16, 32)
			provs = append(provs, uint32(v))
		}
		if !slices.Equal(id.Providers, provs) {
			t.Errorf("providers %X, want %X", id.Providers, provs)
		}
	}
}

// cardFor returns the simulated card a transcript was laid out for, with
// the transcript's card CW.
func cardFor(name string, cw *[16]byte) (cardsim.Personality, *personality.Behaviour) {
	switch systemOf(name) {
	case "conax":
		c := conaxCard()
		c.CAID, c.Version, c.Serial, c.Shared, c.PIN, c.FixedCW = 0x0B01, 0x40, 0x12345678, 0x00ABCDEF, "1234", cw
		return c, &c.Behaviour
	case "seca":
		c := secaCard()
		c.Providers[0].ID, c.EmptyMapReads, c.FixedCW = 0xFE00, 1, cw
		return c, &c.Behaviour
	case "griffin":
		c := &personality.Griffin{CAIDLow: 0x01, Serial: [4]byte{1, 2, 3, 4}, Base: 0x20, FixedCW: cw}
		return c, &c.Behaviour
	}
	c := &personality.DGCrypt{Serial: [7]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}, Label: "DGTEST",
		Key: [8]byte{0x32, 0x86, 0x17, 0xD5, 0x2C, 0x66, 0x61, 0x14}, FixedCW: cw}
	return c, &c.Behaviour
}

var modeNames = map[string]personality.Mode{
	"normal": personality.Normal, "not-subscribed": personality.NotSubscribed, "bad-ecm": personality.BadECM,
	"card-error": personality.CardError, "bad-checksum": personality.BadChecksum, "hang": personality.Hang,
	"token": personality.Token, "wrapped": personality.Wrapped, "rsa": personality.RSA, "parental": personality.Parental,
}

// TestPersonalitiesFollowTranscripts plays the card side: each simulated
// card must answer every command of the reference transcripts exactly as
// written, so the simulator tests the card protocol and not satd's
// reading of it.
func TestPersonalitiesFollowTranscripts(t *testing.T) {
	for name, tr := range transcripts(t) {
		t.Run(name, func(t *testing.T) {
			p, beh := cardFor(name, tr.CardCW)
			if r, ok := p.(cardsim.Resetter); ok {
				r.Reset()
			}
			resp := make([]byte, 300)
			play := func(what string, ex []systemtest.Exchange) {
				for i, e := range ex {
					n := p.Respond(e.Cmd, resp)
					if string(resp[:n]) != string(e.Resp) {
						t.Errorf("%s, exchange %d: card answers % X to % X, transcript has % X", what, i+1, resp[:n], e.Cmd, e.Resp)
						return
					}
				}
			}
			play("init", tr.Init)
			for _, c := range tr.Cases {
				sw, isSW := strings.CutPrefix(c.Mode, "sw ")
				beh.SetMode(modeNames[c.Mode])
				if s, ok := p.(*personality.Seca); ok {
					v, _ := strconv.ParseUint(sw, 16, 16)
					if !isSW {
						v = 0
					}
					s.SetECMStatus(uint16(v))
				}
				if _, ok := modeNames[c.Mode]; !ok && !isSW {
					t.Fatalf("line %d: unknown mode %q", c.Line, c.Mode)
				}
				play(c.Name, c.Exchanges)
				if r, ok := p.(cardsim.Resetter); ok && c.Reset {
					r.Reset()
				}
			}
		})
	}
}
