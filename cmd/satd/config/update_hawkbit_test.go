package config

import (
	"errors"
	"strings"
	"testing"
)

// TestUpdateHawkBitValidation: the hawkbit_* keys are checked, each
// problem naming its key and line.
func TestUpdateHawkBitValidation(t *testing.T) {
	const keys = "board = \"satrx-armv7\"\npublic_keys = [\"not-parsed-by-the-config-package\"]\n"
	tests := []struct {
		name string
		doc  string
		want map[string]string // key → part of the message
	}{
		{"valid target token", "enabled = true\nhawkbit_url = \"https://hb.example\"\nhawkbit_target_token = \"t\"\n", nil},
		{"valid gateway token", "enabled = true\nhawkbit_url = \"https://hb.example\"\nhawkbit_gateway_token = \"g\"\nhawkbit_controller_id = \"box-1\"\n", nil},
		{"no token", "enabled = true\nhawkbit_url = \"https://hb.example\"\n",
			map[string]string{"update.hawkbit_target_token": "exactly one"}},
		{"two tokens", "enabled = true\nhawkbit_url = \"https://hb.example\"\nhawkbit_target_token = \"t\"\nhawkbit_gateway_token = \"g\"\n",
			map[string]string{"update.hawkbit_target_token": "exactly one"}},
		{"not a URL", "enabled = true\nhawkbit_url = \"hb.example\"\nhawkbit_target_token = \"t\"\n",
			map[string]string{"update.hawkbit_url": "not an http(s) URL"}},
		{"with url", "enabled = true\nurl = \"https://u.example/satd-update.json\"\nhawkbit_url = \"https://hb.example\"\nhawkbit_target_token = \"t\"\n",
			map[string]string{"update.hawkbit_url": "exclude each other"}},
		{"tenant", "enabled = true\nhawkbit_url = \"https://hb.example\"\nhawkbit_target_token = \"t\"\nhawkbit_tenant = \"a/b\"\n",
			map[string]string{"update.hawkbit_tenant": "a/b"}},
		{"controller id", "enabled = true\nhawkbit_url = \"https://hb.example\"\nhawkbit_target_token = \"t\"\nhawkbit_controller_id = \"my box\"\n",
			map[string]string{"update.hawkbit_controller_id": "my box"}},
		{"enabled without url or hawkbit_url", "enabled = true\n", map[string]string{"update.url": "hawkbit_url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("satd.toml", []byte("[update]\n"+keys+tc.doc))
			var ps Problems
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid configuration refused: %v", err)
				}
				if cfg.Update.HawkBitTenant != "DEFAULT" {
					t.Errorf("hawkbit_tenant default %q", cfg.Update.HawkBitTenant)
				}
				return
			}
			if !errors.As(err, &ps) {
				t.Fatalf("Parse: %v, want Problems", err)
			}
			if len(ps) != len(tc.want) {
				t.Errorf("problems %v, want %d", ps, len(tc.want))
			}
			for _, p := range ps {
				if msg, ok := tc.want[p.Key]; !ok || !strings.Contains(p.Msg, msg) || p.Line == 0 {
					t.Errorf("problem %+v, want one of %v with a line", p, tc.want)
				}
			}
		})
	}
}
