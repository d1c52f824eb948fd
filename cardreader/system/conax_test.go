package system_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"satd.dev/satd/cardreader/cardsim/personality"
	"satd.dev/satd/cardreader/system"
	"satd.dev/satd/cardreader/system/systemtest"
)

// hexb decodes hex bytes written with spaces.
func hexb(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConaxInitEdges: without nano 28 the CAID is 0B00; a card that hangs
// (90 11) while its subscriptions are read fails init (and is reset),
// while one that refuses them still serves.
func TestConaxInitEdges(t *testing.T) {
	cam := "DD 82 00 00 11 11 0F 01 B0 0F FF FF FB 00 00 09 04 0B 00 E0 30 2B"
	addr := "22 09 23 07 00 00 00 01 02 03 04 90 00"
	subs := "DD C6 00 00 03 1C 01 00"
	for _, tc := range []struct {
		name    string
		subsSW  string
		wantErr string
	}{
		{"subscriptions refused", "6D 00", ""},
		{"card hangs", "90 11", "90 11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := []systemtest.Exchange{
				{Cmd: hexb(t, "DD 26 00 00 03 10 01 40"), Resp: hexb(t, "98 03")},
				{Cmd: hexb(t, "DD CA 00 00 03"), Resp: hexb(t, "20 01 40 90 00")},
				{Cmd: hexb(t, cam), Resp: hexb(t, "98 0B")},
				{Cmd: hexb(t, "DD CA 00 00 0B"), Resp: hexb(t, addr)},
				{Cmd: hexb(t, subs), Resp: hexb(t, tc.subsSW)},
			}
			if tc.wantErr == "" {
				ex = append(ex, systemtest.Exchange{Cmd: hexb(t, "DD 26 00 00 03 1C 01 01"), Resp: hexb(t, "90 00")})
			}
			pb, err := systemtest.NewPlayback(personality.ConaxATR(), ex)
			if err != nil {
				t.Fatal(err)
			}
			sys := system.NewConax(system.Options{})
			err = sys.Init(context.Background(), pb)
			switch {
			case pb.Err != nil || len(pb.Ex) != 0:
				t.Errorf("playback: %v, %d exchanges left", pb.Err, len(pb.Ex))
			case tc.wantErr == "" && (err != nil || sys.Identity().CAID != 0x0B00 || sys.Identity().Serial != "16909060"):
				t.Errorf("Init: %v, identity %+v", err, sys.Identity())
			case tc.wantErr != "" && (!errors.Is(err, system.ErrCard) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Init: %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
}
