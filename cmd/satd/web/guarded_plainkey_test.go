package web

import (
	"strings"
	"testing"
)

func TestPlainKey(t *testing.T) {
	for key, want := range map[string]string{
		"dvbapi.ecm_info":         "dvbapi.ecm_info",
		"reader[2].device":        "reader[].device",
		"stream.mount[12].file":   "stream.mount[].file",
		"board[0].pins[3].number": "board[].pins[].number",
		"odd[x].key":              "odd[x].key",
		"open[12":                 "open[12",
		"empty[].key":             "empty[].key",
	} {
		if got := plainKey(key); got != want {
			t.Errorf("plainKey(%q) = %q, want %q", key, got, want)
		}
		if got, want := replaceIndexes(key, ""), strings.ReplaceAll(want, "[]", ""); got != want && !strings.Contains(key, "[]") {
			t.Errorf("replaceIndexes(%q, \"\") = %q, want %q", key, got, want)
		}
	}
}
