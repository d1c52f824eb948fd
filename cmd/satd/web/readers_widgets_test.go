package web

import (
	"net/url"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/config"
)

// widgetRig has every section's keys: a reader of each kind of field and a
// board, so that every typed widget appears somewhere.
func widgetRig(t *testing.T) *rig {
	return newRig(t, "", func(c *config.Config) {
		c.Boards = []config.Board{{Name: "box"}}
	})
}

// TestTypedWidgetEveryKey: every enumeration key renders as a select, every
// 0/1 switch as a checkbox, every ranged number with its min and max, in
// whichever section holds it.
func TestTypedWidgetEveryKey(t *testing.T) {
	r := widgetRig(t)
	r.start()
	c := r.loggedInClient()
	pages := map[string]string{}
	page := func(key string) (string, string) {
		if rest, ok := strings.CutPrefix(key, mountsKey+"."); ok {
			// The mounts have pages of their own (pages_mounts.go).
			if _, ok := pages[mountsKey]; !ok {
				pages[mountsKey] = get(t, c, r.url("/mounts/edit?i=new"))
			}
			return pages[mountsKey], fieldID(mountsKey + "[0]." + rest)
		}
		sec, _, _ := strings.Cut(key, ".")
		if _, ok := pages[sec]; !ok && sec == "reader" {
			pages[sec] = readerPagesOfEveryProtocol(t, c, r, "slot0")
		} else if !ok {
			pages[sec] = get(t, c, r.url("/config?section="+sec))
		}
		if sec == "reader" || sec == "board" {
			key = sec + "[0]" + key[len(sec):]
		}
		return pages[sec], fieldID(key)
	}
	for key := range enumChoices {
		b, id := page(key)
		if !strings.Contains(b, `<select id="`+id+`"`) {
			t.Errorf("%s is not a select", key)
		}
	}
	for key := range switchKeys {
		b, id := page(key)
		if !strings.Contains(b, `<input type="checkbox" id="`+id+`"`) {
			t.Errorf("%s is not a checkbox", key)
		}
	}
	for key, rg := range numRanges {
		b, id := page(key)
		// Every ranged key is a whole number: the browser must refuse 2.5.
		want := `<input type="number" step="1" id="` + id + `" name="`
		i := strings.Index(b, want)
		if i < 0 {
			t.Errorf("%s is not a number input", key)
			continue
		}
		tag, _, _ := strings.Cut(b[i:], ">")
		if rg.Min != "" && !strings.Contains(tag, ` min="`+rg.Min+`"`) || rg.Max != "" && !strings.Contains(tag, ` max="`+rg.Max+`"`) {
			t.Errorf("%s: %s lacks the range %v", key, tag, rg)
		}
	}
}

// TestSwitchCheckboxSaves: a 0/1 switch checked saves 1, unchecked (the
// browser sends nothing but the hidden marker) saves 0.
func TestSwitchCheckboxSaves(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	for _, tc := range []struct {
		form url.Values
		want int
	}{
		{url.Values{"balancer.lb_auto_timeout.present": {"1"}, "balancer.lb_auto_timeout": {"on"}}, 1},
		{url.Values{"balancer.lb_auto_timeout.present": {"1"}}, 0},
		{url.Values{"balancer.lb_auto_timeout": {"1"}}, 1}, // a number input, as before
	} {
		tc.form.Set("section", "balancer")
		resp, err := c.PostForm(r.url("/config"), tc.form)
		body(t, resp, err)
		if got := r.savedConfig().Balancer.LBAutoTimeout; got != tc.want {
			t.Errorf("%v: lb_auto_timeout %d, want %d", tc.form, got, tc.want)
		}
	}
}

// TestReleaseOffersNoSim: the protocol select offers sim only in builds
// that have simulated cards.
func TestReleaseOffersNoSim(t *testing.T) {
	has := false
	for _, c := range choicesFor("reader[0].protocol", "constcw") {
		has = has || c.Value == "sim"
	}
	if has != config.SimInBuild {
		t.Errorf("sim offered: %v, in this build: %v", has, config.SimInBuild)
	}
}

// TestNumberStepByType: a whole-number key is an input with step="1" (the
// browser refuses a fraction before the save), a float key one with
// step="any"; on every section page, the reader page and the mount page.
func TestNumberStepByType(t *testing.T) {
	r := widgetRig(t)
	r.start()
	c := r.loggedInClient()
	fractions := map[string]bool{"stream.admission-rate": true, "stream.admission-rate-min": true, "stream.mount[0].authentication.verify-rate": true}
	seen := map[string]string{}
	paths := []string{readerPath(r.current().Readers[0].Label), "/mounts/edit?i=new"}
	for _, sec := range sectionNames() {
		if sec != "reader" {
			paths = append(paths, "/config?section="+sec)
		}
	}
	for _, p := range paths {
		b := get(t, c, r.url(p))
		for rest := b; ; {
			i := strings.Index(rest, `<input type="number"`)
			if i < 0 {
				break
			}
			tag, after, _ := strings.Cut(rest[i:], ">")
			rest = after
			_, name, _ := strings.Cut(tag, ` name="`)
			name, _, _ = strings.Cut(name, `"`)
			_, step, _ := strings.Cut(tag, ` step="`)
			step, _, _ = strings.Cut(step, `"`)
			seen[name] = step
		}
	}
	if len(seen) < 20 {
		t.Fatalf("only %d number inputs found: %v", len(seen), seen)
	}
	for name, step := range seen {
		want := "1"
		if fractions[name] {
			want = "any"
		}
		if step != want {
			t.Errorf("%s: step=%q, want %q", name, step, want)
		}
	}
	for name := range fractions {
		if _, ok := seen[name]; !ok {
			t.Errorf("float key %s has no number input", name)
		}
	}
}
