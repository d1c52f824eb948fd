package web

import (
	"net/http"
	"slices"
)

// choice is one option of an enumeration.
type choice struct {
	Value, Label string
}

// enumChoices are the keys whose values come from a fixed set, by key
// without array indexes; the form shows them as a select.
var enumChoices = map[string][]choice{
	"balancer.lb_mode": {{"0", "0 – every matching reader is asked"}, {"1", "1 – fastest first"},
		{"2", "2 – least recently used first"}, {"3", "3 – lowest usage level"}, {"4", "4 – no selection, statistics only"}},
	"log.level":       {{"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}},
	"log.format":      {{"text", "text"}, {"json", "json"}},
	"reader.protocol": {{"internal", "internal – receiver slot"}, {"mouse", "mouse – Phoenix/Smartmouse serial reader"}, {"constcw", "constcw – control words from a file"}, {"sim", "sim – simulated card"}},
	"reader.system":   {{"", "(from the label's prefix)"}, {"conax", "conax"}, {"seca", "seca"}, {"griffin", "griffin"}, {"dgcrypt", "dgcrypt"}},
	"update.install":  {{"binary", "binary – satd alone, under satd launch"}, {"rauc", "rauc – full image through RAUC"}},
}

// choicesFor returns the options of key, with value added when it is not
// one of them (so that a value set in the file is never lost by a save).
func choicesFor(key, value string) []choice {
	cs, ok := enumChoices[replaceIndexes(key, "")]
	if !ok {
		return nil
	}
	if !slices.ContainsFunc(cs, func(c choice) bool { return c.Value == value }) {
		cs = append(slices.Clone(cs), choice{value, value})
	}
	return cs
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
	h.raw("</button> <a href=\"/\">Cancel</a></form>\n")
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
