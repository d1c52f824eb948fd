package config

import (
	"strings"
	"testing"
)

func TestNameRules(t *testing.T) {
	for _, tc := range []struct {
		s          string
		label, pin bool
	}{
		{"slot0", true, false},
		{"Seca-2.card_1", true, false},
		{"", false, false},
		{strings.Repeat("a", 32), true, false},
		{strings.Repeat("a", 33), false, false},
		{"a b", false, false},
		{"é", false, false},
		{"1234", true, true},
		{"123", true, false},
		{"12a4", true, false},
		{"12345", true, false},
	} {
		if got := IsLabel(tc.s); got != tc.label {
			t.Errorf("IsLabel(%q) = %v", tc.s, got)
		}
		if got := isPIN(tc.s); got != tc.pin {
			t.Errorf("isPIN(%q) = %v", tc.s, got)
		}
	}
}

func TestOSCamName(t *testing.T) {
	for doc, want := range map[string]string{
		"Reader label (OSCam: label).":           "label",
		"Web port (OSCam: httpport) and address": "httpport",
		"no name here":                           "",
		"broken (OSCam: )":                       "",
		"unterminated (OSCam: label":             "",
		"(OSCam: enable, enabled)":               "enable, enabled",
	} {
		if got := OSCamName(doc); got != want {
			t.Errorf("OSCamName(%q) = %q, want %q", doc, got, want)
		}
	}
}
