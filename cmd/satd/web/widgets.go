package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"satd.dev/satd/cmd/satd/config"
)

// choice is one option of an enumeration.
type choice struct {
	Value, Label string
}

// enumChoices are the keys whose values come from a fixed set, by key
// without array indexes; the form shows them as a select. The sets are the
// values the config package's Validate accepts.
var enumChoices = map[string][]choice{
	"balancer.lb_mode": {{"0", "0 – every matching reader is asked"}, {"1", "1 – fastest first"},
		{"2", "2 – least recently used first"}, {"3", "3 – lowest usage level"}, {"4", "4 – no selection, statistics only"}},
	"balancer.preferlocalcards": {{"0", "0 – local cards like remote ones"}, {"1", "1 – ask local primaries first"}, {"2", "2 – as 1"}},
	"log.level":                 {{"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}},
	"log.format":                {{"text", "text"}, {"json", "json"}},
	"reader.protocol": {{"internal", "internal – receiver slot"}, {"mouse", "mouse – Phoenix/Smartmouse serial reader"},
		{"pcsc", "pcsc – PC/SC reader through pcscd"}, {"constcw", "constcw – control words from a file"}, {"sim", "sim – simulated card"}},
	"reader.system":   {{"", "(from the label's prefix)"}, {"conax", "conax"}, {"seca", "seca"}, {"griffin", "griffin"}, {"dgcrypt", "dgcrypt"}},
	"reader.t1_crc":   {{"ccid", "ccid – CRC-16/MCRF4XX"}, {"x25", "x25 – ISO 13239"}},
	"reader.chip":     {{"", "(the board's, else tda8024)"}, {"tda8024", "tda8024"}, {"tda8035", "tda8035"}},
	"reader.detect":   {{"cd", "cd"}, {"!cd", "!cd"}, {"dsr", "dsr"}, {"!dsr", "!dsr"}, {"cts", "cts"}, {"!cts", "!cts"}, {"ring", "ring"}, {"!ring", "!ring"}, {"none", "none"}},
	"reader.reset":    {{"rts", "rts"}, {"!rts", "!rts"}, {"dtr", "dtr"}, {"!dtr", "!dtr"}},
	"reader.voltage":  {{"5", "5 V"}, {"3", "3 V"}},
	"reader.clkdiv":   {{"0", "0 – leave the lines alone"}, {"1", "1"}, {"2", "2"}, {"4", "4"}, {"8", "8"}},
	"reader.echo":     {{"auto", "auto"}, {"on", "on"}, {"off", "off"}},
	"reader.gpio":     {{"auto", "auto"}, {"chardev", "chardev"}, {"sysfs", "sysfs"}},
	"board.chip":      {{"", "(tda8024)"}, {"tda8024", "tda8024"}, {"tda8035", "tda8035"}},
	"board.sci_ioctl": {{"", "(not an sci board)"}, {"s", "s – modern drivers"}, {"0x64", "0x64 – older boxes"}},
	"board.sci_clock": {{"", "(default)"}, {"mhz", "mhz"}, {"pll", "pll"}},
	"update.install":  {{"binary", "binary – satd alone, under satd launch"}, {"rauc", "rauc – full image through RAUC"}},
	"stream.mount.authentication.type": {{"none", "none – anyone may listen"}, {"url", "url – ask listener_add (Icecast URL auth)"},
		{"users", "users – static Basic users"}, {"token", "token – signed tokens only"}},
	"stream.mount.authentication.on-error": {{"open", "open – admit while the backend fails"}, {"closed", "closed – refuse (503) while the backend fails"}},
	"stream.mount.type": {{"", "(from the source)"}, {"audio/mpeg", "audio/mpeg"}, {"audio/aac", "audio/aac"}, {"audio/aacp", "audio/aacp"},
		{"application/ogg", "application/ogg"}, {"audio/ogg", "audio/ogg"}},
}

// switchKeys are the whole-number keys that are OSCam's 0/1 switches; the
// form shows them as a checkbox while they hold 0 or 1.
var switchKeys = map[string]bool{
	"balancer.lb_reopen_invalid": true, "balancer.lb_force_reopen_always": true, "balancer.lb_auto_timeout": true,
	"balancer.wait_until_ctimeout": true, "reader.fallback": true, "reader.lb_force_fallback": true,
}

// numRange is the documented range of a number key; "" is no bound.
type numRange struct{ Min, Max string }

// numRanges are the ranges the config package's Validate enforces (or
// documents, for values it clamps), by key without array indexes.
var numRanges = map[string]numRange{
	"balancer.stat_entries": {"1", "1048576"}, "balancer.max_inflight": {"1", "65536"},
	"balancer.cache_entries": {"1", "1048576"}, "balancer.explain_services": {"1", "16384"},
	"balancer.clienttimeout": {"0", ""}, "balancer.fallbacktimeout": {"0", ""}, "balancer.cache_max_time": {"0", ""},
	"balancer.lb_auto_timeout_p": {"0", ""}, "balancer.lb_auto_timeout_t": {"0", ""}, "balancer.lb_save": {"0", ""},
	"balancer.lb_retrylimit": {"0", ""}, "balancer.lb_max_readers": {"0", ""},
	"dvbapi.max_conns": {"1", "1024"}, "web.login_attempts": {"1", "100"},
	"reader.lb_weight": {"1", "1000"}, "reader.maxbaud": {"0", ""}, "reader.ifsd": {"0", "254"},
	"reader.t1_retries": {"1", "10"}, "reader.t1_resynchs": {"1", "10"}, "reader.t0_max_nulls": {"1", "100000"},
	"reader.t0_repeat": {"0", "7"}, "reader.mhz": {"100", "2000"}, "reader.reset_ms": {"1", "1000"},
	"reader.debounce_ms": {"1", "500"}, "reader.poll_ms": {"5", "5000"}, "reader.activation_ms": {"1", "1000"},
	"reader.deactivation_ms":     {"100", "5000"},
	"stream.mount.max-listeners": {"0", ""}, "stream.mount.max-devices": {"0", ""}, "stream.mount.burst-size": {"0", ""},
	"stream.mount.icy-metadata-interval": {"0", "1048576"},
}

// choicesFor returns the options of key, with value added when it is not
// one of them (so that a value set in the file is never lost by a save).
// A release build offers no simulated card.
func choicesFor(key, value string) []choice {
	k := replaceIndexes(key, "")
	cs, ok := enumChoices[k]
	if !ok {
		return nil
	}
	if k == "reader.protocol" && !config.SimInBuild {
		cs = slices.DeleteFunc(slices.Clone(cs), func(c choice) bool { return c.Value == "sim" })
	}
	if !slices.ContainsFunc(cs, func(c choice) bool { return c.Value == value }) {
		cs = append(slices.Clone(cs), choice{value, value})
	}
	return cs
}

// typeWidget makes f, a field built from its Go type, the typed widget of
// its key: a select for an enumeration, a checkbox for a 0/1 switch, a
// number input with the documented range. Every section's form gets them.
func typeWidget(f *formField) {
	k := replaceIndexes(f.Key, "")
	if cs := choicesFor(f.Key, f.Value); cs != nil && f.Kind != "lines" {
		f.Kind, f.Choices = "select", cs
		return
	}
	if f.Kind != "number" {
		return
	}
	if switchKeys[k] && (f.Value == "0" || f.Value == "1") {
		f.Kind, f.Checked = "checkbox", f.Value == "1"
		return
	}
	f.Range = numRanges[k]
}

func writeSelect(h html, f *formField) {
	h.raw(`<select`)
	writeInputIDs(h, f)
	writeInvalid(h, f)
	h.raw(`>`)
	for _, c := range f.Choices {
		h.raw(`<option`)
		h.attr("value", c.Value)
		h.rawIf(c.Value == f.Value, ` selected`)
		h.raw(`>`)
		h.text(c.Label)
		h.raw(`</option>`)
	}
	h.raw(`</select>`)
}

// writeErrorSummary lists the refused fields at the top of the form, each
// linking to its input.
func writeErrorSummary(h html, sec *formSection) {
	var bad []*formField
	var walk func(t *formTable)
	walk = func(t *formTable) {
		for i := range t.Fields {
			if t.Fields[i].Error != "" {
				bad = append(bad, &t.Fields[i])
			}
		}
		for i := range t.Sub {
			walk(&t.Sub[i])
		}
	}
	for i := range sec.Tables {
		walk(&sec.Tables[i])
	}
	if len(bad) == 0 {
		return
	}
	h.raw("<div class=\"error\" id=\"error-summary\" role=\"alert\">Fix these fields:<ul>\n")
	for _, f := range bad {
		h.raw(`<li><a`)
		h.attr("href", "#"+f.ID)
		h.raw(`>`)
		h.text(f.Key)
		h.raw(`</a>: `)
		h.text(f.Error)
		h.raw("</li>\n")
	}
	h.raw("</ul></div>\n")
}

// confirmAction is the page that asks before a destructive action; its
// button posts the same form again, confirmed.
type confirmAction struct {
	Action   string
	Question string
	Button   string
	Values   map[string][]string
}

func (d confirmAction) write(h html) {
	h.raw(`<p id="confirm-question">`)
	h.text(d.Question)
	h.raw("</p>\n<form method=\"post\"")
	h.url("action", d.Action)
	h.raw(` class="inline">`)
	for k, vs := range d.Values {
		if k == "confirmed" {
			continue
		}
		for _, v := range vs {
			h.raw(`<input type="hidden"`)
			h.attr("name", k)
			h.attr("value", v)
			h.raw(`>`)
		}
	}
	h.raw(`<input type="hidden" name="confirmed" value="1"><button id="confirm-action" class="danger">`)
	h.text(d.Button)
	h.raw("</button> <a id=\"confirm-cancel\"")
	h.url("href", cancelTarget(d.Action, d.Values))
	h.raw(">Cancel</a></form>\n")
}

// cancelTarget is the page a confirmation's Cancel goes back to: the page
// the action was posted from (the reader list for a reader's action, the
// section for a configuration save, the parent page otherwise).
func cancelTarget(action string, form map[string][]string) string {
	switch {
	case strings.HasPrefix(action, "/config/readers"):
		return "/config/readers"
	case action == "/config":
		if v := form["section"]; len(v) > 0 && v[0] != "" {
			return "/config?section=" + url.QueryEscape(v[0])
		}
		return "/config"
	}
	if i := strings.LastIndexByte(action, '/'); i > 0 {
		return action[:i]
	}
	return "/"
}

// confirmed reports whether a destructive action was confirmed. When not,
// it answers with the page that asks (no JavaScript needed), and the caller
// does nothing.
func (s *Server) confirmed(w http.ResponseWriter, r *http.Request, title, question, button string) bool {
	if r.FormValue("confirmed") == "1" {
		return true
	}
	s.render(w, r, http.StatusOK, pageData{Title: title, Content: confirmAction{Action: r.URL.Path, Question: question, Button: button, Values: r.PostForm}})
	return false
}
