package system_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/cardreader/system"
	"satd.dev/satd/cardreader/system/systemtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.transcript from the simulator")

func transcriptPath(name string) string { return filepath.Join("testdata", name+".transcript") }

// TestTranscriptPlayback replays each system's byte-exact transcript of
// init and one ECM against a fresh instance: every command must match and
// the CWs must be the recorded ones.
func TestTranscriptPlayback(t *testing.T) {
	for _, fx := range fixtures() {
		t.Run(fx.name, func(t *testing.T) {
			f, err := os.Open(transcriptPath(fx.name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tr, err := systemtest.Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			sys := system.ByName(system.All(), fx.name)
			pb, err := systemtest.NewPlayback(tr.ATR, tr.Init)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := sys.Identify(context.Background(), pb); !ok || err != nil {
				t.Fatalf("Identify: %v %v", ok, err)
			}
			if err := sys.Init(context.Background(), pb); err != nil || len(pb.Ex) != 0 {
				t.Fatalf("Init: %v (%d exchanges left, playback error %v)", err, len(pb.Ex), pb.Err)
			}
			if id := sys.Identity(); id.CAID != fx.caid || id.Serial != fx.serial {
				t.Errorf("identity %+v", id)
			}
			pb.Ex = tr.ECMExchanges
			a, err := sys.ECM(pb, tr.ECM)
			if err != nil || a.Result != system.Found || a.CW != tr.CW || len(pb.Ex) != 0 {
				t.Errorf("ECM: %+v %v, want CW % X (%d exchanges left, playback error %v)", a, err, tr.CW, len(pb.Ex), pb.Err)
			}
		})
	}
}

// TestTranscriptRecording records init and the ECM through the real ISO
// 7816 stack and the simulator and compares with the transcript file
// (go test -run TestTranscriptRecording -update rewrites them).
func TestTranscriptRecording(t *testing.T) {
	for _, fx := range fixtures() {
		t.Run(fx.name, func(t *testing.T) {
			withCard(t, fx.atr, fx.p, cardreader.StateReady, func(e *slotEnv) {
				atr, err := iso7816.ParseATR(fx.atr, iso7816.Lenient)
				if err != nil {
					t.Fatal(err)
				}
				sys := system.ByName(system.All(), fx.name)
				rec := &systemtest.Recorder{Card: e.reader, Atr: atr}
				if err := sys.Init(context.Background(), rec); err != nil {
					t.Fatal(err)
				}
				tr := systemtest.Transcript{ATR: fx.atr, Init: rec.Ex, ECM: fx.ecm}
				rec.Ex = nil
				a, err := sys.ECM(rec, fx.ecm)
				if err != nil || a.Result != system.Found {
					t.Fatal(a, err)
				}
				tr.ECMExchanges, tr.CW = rec.Ex, a.CW
				var b bytes.Buffer
				tr.Format(&b, fx.name+": init and one ECM through the simulator (test data, no keys)")
				path := transcriptPath(fx.name)
				if *update {
					if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b.Bytes(), want) {
					t.Errorf("transcript differs from %s:\n%s", path, b.String())
				}
			})
		})
	}
}
