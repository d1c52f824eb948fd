package web

import "net/url"

// The Configuration page: one tab per section of config.Config, a fieldset
// per table, an input per key (form.go builds them by reflection).

func (d configData) write(h html) {
	sec := &d.Section
	writeTabs(h, d.Sections, sec.Name)
	h.raw("\n<p class=\"doc\">")
	h.text(sec.Doc)
	h.raw(".</p>\n")
	for _, p := range d.Other {
		h.raw(`<p class="error">`)
		h.text(p.Key)
		h.raw(`: `)
		h.text(p.Msg)
		h.raw(`</p>`)
	}
	writeErrorSummary(h, sec)
	// The section stays in the URL, also when the save is refused.
	h.raw("\n<form method=\"post\"")
	h.url("action", "/config?section="+url.QueryEscape(sec.Name))
	h.raw(" id=\"config-form\" novalidate>\n<input type=\"hidden\" name=\"section\"")
	h.attr("value", sec.Name)
	h.raw(">\n")
	if sec.Array {
		h.raw(`<input type="hidden"`)
		h.attr("name", sec.Name+".count")
		h.attr("value", itoa(d.Count))
		h.raw(`>`)
	}
	h.raw("\n")
	for i := range sec.Tables {
		writeTable(h, &sec.Tables[i])
		if sec.Array {
			writeDeleteBox(h, &sec.Tables[i])
		}
	}
	h.raw("\n<label for=\"current\">Current password (only to change update keys, sources and commands, or file paths)</label>\n" +
		"<input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\">")
	h.raw("\n<div class=\"actions\"><button id=\"save\">Save and apply</button>\n")
	if sec.Array {
		h.raw(`<a class="button"`)
		h.url("href", "/config?section="+url.QueryEscape(sec.Name)+"&add=1")
		h.raw(` id="add">Add `)
		h.text(sec.Name)
		h.raw(`</a>`)
	}
	h.raw("</div>\n</form>\n")
}

func writeTabs(h html, sections []string, current string) {
	h.raw(`<nav class="tabs">`)
	for _, name := range sections {
		h.raw(`<a`)
		if name == "reader" {
			h.url("href", readersPath) // one page per reader
		} else {
			h.url("href", "/config?section="+url.QueryEscape(name))
		}
		h.rawIf(name == current, ` class="on" aria-current="page"`)
		h.raw(`>`)
		h.text(name)
		h.raw(`</a>`)
	}
	h.raw(`</nav>`)
}

func writeDeleteBox(h html, t *formTable) {
	h.raw(`<label class="check"><input type="checkbox"`)
	h.attr("name", t.Prefix+".delete")
	h.raw(` value="1"> delete `)
	h.text(t.Title)
	h.raw(`</label>`)
}

func writeImportForm(h html) {
	h.raw("<h2>Import from OSCam</h2>\n" +
		"<form method=\"post\" action=\"/config/import\" enctype=\"multipart/form-data\" id=\"import-form\">\n" +
		"<label for=\"conf\">oscam.conf</label><input type=\"file\" id=\"conf\" name=\"conf\">\n" +
		"<label for=\"server\">oscam.server</label><input type=\"file\" id=\"server\" name=\"server\">\n" +
		"<label for=\"user\">oscam.user</label><input type=\"file\" id=\"user\" name=\"user\">\n" +
		"<label for=\"srvid2\">oscam.srvid2 (channel names)</label><input type=\"file\" id=\"srvid2\" name=\"srvid2\">\n" +
		"<label for=\"srvid\">oscam.srvid (channel names)</label><input type=\"file\" id=\"srvid\" name=\"srvid\">\n" +
		"<label for=\"lamedb\">lamedb (enigma2 channel names)</label><input type=\"file\" id=\"lamedb\" name=\"lamedb\">\n" +
		"<button id=\"import\">Convert</button></form>")
}

// writeTable writes a TOML table as a fieldset, nested tables inside it.
func writeTable(h html, t *formTable) {
	h.raw(`<fieldset>`)
	h.el("legend", t.Title)
	if t.Doc != "" {
		h.raw(`<p class="doc">`)
		h.text(t.Doc)
		h.raw(`</p>`)
	}
	h.raw("\n")
	for i := range t.Fields {
		writeField(h, &t.Fields[i])
	}
	h.raw("\n")
	for i := range t.Sub {
		writeTable(h, &t.Sub[i])
	}
	h.raw(`</fieldset>`)
}

func writeField(h html, f *formField) {
	h.raw(`<div class="field`)
	h.rawIf(f.Error != "", ` invalid`)
	h.raw("\">\n<label")
	h.attr("for", f.ID)
	h.raw(`>`)
	h.text(f.Name)
	if f.OSCam != "" {
		h.raw(` <span class="oscam">OSCam: `)
		h.text(f.OSCam)
		h.raw(`</span>`)
	}
	h.raw("</label>\n")
	switch {
	case f.Key == mountsKey:
		writeMountsLink(h, f)
	case f.Secret:
		writeSecret(h, f)
	case f.Kind == "checkbox":
		writeCheckbox(h, f)
	case f.Kind == "lines":
		writeTextarea(h, f)
	case f.Kind == "table":
		writeReadOnlyTable(h, f)
	case f.Kind == "select":
		writeSelect(h, f)
	default:
		writeTextInput(h, f)
	}
	h.raw("\n")
	if f.Error != "" {
		h.raw(`<span class="field-error"`)
		h.attr("id", f.ID+"-error")
		h.raw(` role="alert">`)
		h.text(f.Error)
		h.raw("</span>\n")
	}
	h.raw(`<small>`)
	h.text(f.Doc)
	h.raw(` <span class="default">Default: `)
	h.text(f.Default)
	h.raw("</span></small>\n</div>")
}

// writeInputIDs writes the id and name attributes of a field's input.
func writeInputIDs(h html, f *formField) {
	h.attr("id", f.ID)
	h.attr("name", f.Key)
}

// writeInvalid marks an input whose value was refused, pointing to the
// message.
func writeInvalid(h html, f *formField) {
	if f.Error != "" {
		h.raw(` aria-invalid="true"`)
		h.attr("aria-describedby", f.ID+"-error")
	}
}

func writeCheckbox(h html, f *formField) {
	h.raw(`<input type="hidden"`)
	h.attr("name", f.Key+".present")
	h.raw(` value="1"><input type="checkbox"`)
	writeInputIDs(h, f)
	h.raw(` value="on"`)
	h.rawIf(f.Checked, ` checked`)
	h.rawIf(f.ReadOnly, ` disabled`)
	writeInvalid(h, f)
	h.raw(`>`)
}

func writeTextarea(h html, f *formField) {
	h.raw(`<textarea`)
	writeInputIDs(h, f)
	h.attr("rows", itoa(textareaRows(f.Value)))
	writeInvalid(h, f)
	h.raw(`>`)
	h.text(f.Value)
	h.raw(`</textarea>`)
}

// writeSecret writes a password field that never holds the value in force,
// with a checkbox to clear it.
func writeSecret(h html, f *formField) {
	placeholder := "not set"
	if f.Set > 0 {
		placeholder = "set: leave empty to keep"
	}
	if f.Kind == "lines" {
		h.raw(`<textarea rows="2" autocomplete="off"`)
		if f.Set > 0 {
			placeholder = itoa(f.Set) + " set: leave empty to keep, or type every line anew"
		}
	} else {
		h.raw(`<input type="password" autocomplete="new-password"`)
	}
	writeInputIDs(h, f)
	h.attr("placeholder", placeholder)
	writeInvalid(h, f)
	if f.Kind == "lines" {
		h.raw(`></textarea>`)
	} else {
		h.raw(`>`)
	}
	if f.Set > 0 {
		h.raw(`<label class="check"><input type="checkbox"`)
		h.attr("id", f.ID+"-clear")
		h.attr("name", f.Key+".clear")
		h.raw(` value="on"> clear</label>`)
	}
}

func writeTextInput(h html, f *formField) {
	switch {
	case f.Kind == "number" && f.Fraction:
		h.raw(`<input type="number" step="any"`)
	case f.Kind == "number":
		h.raw(`<input type="number" step="1"`)
	default:
		h.raw(`<input type="text"`)
	}
	writeInputIDs(h, f)
	if f.Range.Min != "" {
		h.attr("min", f.Range.Min)
	}
	if f.Range.Max != "" {
		h.attr("max", f.Range.Max)
	}
	h.attr("value", f.Value)
	h.rawIf(f.ReadOnly, ` readonly`)
	writeInvalid(h, f)
	h.raw(`>`)
}

// writeReadOnlyTable shows an array of tables the form cannot edit (the
// stream's extra listen sockets) as a labelled table, one row per element,
// and says where to change it.
func writeReadOnlyTable(h html, f *formField) {
	h.raw(`<div class="scroll"><table`)
	h.attr("id", f.ID)
	h.raw(`><thead><tr>`)
	for _, c := range f.Cols {
		h.el("th", c)
	}
	h.raw(`</tr></thead><tbody>`)
	for _, row := range f.Rows {
		h.raw(`<tr>`)
		for _, v := range row {
			if v == "" {
				v = "(empty)"
			}
			h.td(v)
		}
		h.raw(`</tr>`)
	}
	if len(f.Rows) == 0 {
		h.raw(`<tr><td`)
		h.attr("colspan", itoa(len(f.Cols)))
		h.raw(`>(none)</td></tr>`)
	}
	h.raw(`</tbody></table></div><p class="note">Read-only here: edit `)
	h.text(f.Key)
	h.raw(` in the configuration file (or a restore on the System page).</p>`)
}
