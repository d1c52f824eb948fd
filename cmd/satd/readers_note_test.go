package main

import (
	"testing"

	"satd.dev/satd/cardreader"
)

func TestCardNote(t *testing.T) {
	for _, tc := range []struct {
		st   cardreader.Stats
		want string
	}{
		{cardreader.Stats{}, ""},
		{cardreader.Stats{ATRNote: "cut short after 3 bytes by a gap over 9600 etu; short historical bytes"}, "ATR cut short after 3 bytes by a gap over 9600 etu; short historical bytes"},
		{cardreader.Stats{IFSRefused: 2}, "S(IFS) refused 2 times, IFSD 32"},
		{cardreader.Stats{ATRNote: "bad TCK", IFSRefused: 1}, "ATR bad TCK; S(IFS) refused 1 times, IFSD 32"},
	} {
		if got := cardNote(tc.st); got != tc.want {
			t.Errorf("cardNote(%+v) = %q, want %q", tc.st, got, tc.want)
		}
	}
}
