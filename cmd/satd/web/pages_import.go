package web

import (
	"strconv"

	"satd.dev/satd/cmd/satd/oscamimport"
)

// The result page of an OSCam import: the report, then the resulting
// configuration to apply through the restore path.

func (d importData) write(h html) {
	h.raw("<h2>Mapped</h2>\n<div class=\"scroll\"><table id=\"mapped\"><thead><tr><th>OSCam</th><th>Value</th><th>satd</th><th>Note</th></tr></thead><tbody>\n")
	writeItems(h, d.Report.Mapped, true)
	h.raw("</tbody></table></div>\n<h2>Ignored</h2>\n<div class=\"scroll\"><table id=\"ignored\"><thead><tr><th>OSCam</th><th>Value</th><th>Why</th></tr></thead><tbody>\n")
	writeItems(h, d.Report.Ignored, false)
	h.raw("</tbody></table></div>\n")
	for _, n := range d.Report.Notes {
		h.raw(`<p class="note">`)
		h.text(n)
		h.raw(`</p>`)
	}
	h.raw("\n")
	if d.Problems != "" {
		h.raw(`<pre class="error">`)
		h.text(d.Problems)
		h.raw("</pre>\n")
		return
	}
	if d.NoReader {
		h.raw("<p class=\"error\" id=\"import-no-reader\">The import recognised no reader, so there is nothing to apply: " +
			"applying it would delete every reader of this receiver. Check the oscam.server you uploaded (the Ignored table says why each reader was left out).</p>\n")
		return
	}
	if d.NewListen != "" {
		h.raw(`<p class="note" id="import-listen">Applying this moves the web form from <b>`)
		h.text(d.OldListen)
		h.raw(`</b> to <b>`)
		h.text(d.NewListen)
		h.raw("</b> (OSCam httpport). You then confirm the move at the new address; it is reverted if you cannot reach it.</p>\n")
	}
	if d.Names.Count > 0 {
		h.raw(`<p class="note" id="import-names">`)
		h.int(int64(d.Names.Count))
		h.raw(" channel names, shown on the Status and Load balancer pages once applied.</p>\n")
	}
	for i, p := range d.Names.Problems {
		h.raw(`<p class="note">`)
		if i == maxNameProblems {
			h.text("… and " + strconv.Itoa(len(d.Names.Problems)-i) + " more skipped lines")
			h.raw("</p>\n")
			break
		}
		h.text(p.String())
		h.raw("</p>\n")
	}
	h.raw("<form method=\"post\" action=\"/system/restore\">\n")
	h.rawIf(d.Names.Count > 0, "<input type=\"hidden\" name=\"names\" value=\"1\">\n")
	h.raw(
		"<label for=\"toml\">Resulting configuration (you may edit it before applying)</label>\n" +
			"<textarea id=\"toml\" name=\"toml\" rows=\"16\" class=\"mono\">")
	h.text(d.TOML)
	h.raw("</textarea>\n<button id=\"apply-import\">Apply this configuration</button></form>\n")
}

// maxNameProblems caps the skipped lines of name files listed on the page.
const maxNameProblems = 20

// writeItems writes the rows of the mapped (withTo: with the satd key) or
// ignored table.
func writeItems(h html, items []oscamimport.Item, withTo bool) {
	for i := range items {
		it := &items[i]
		h.raw(`<tr>`)
		h.tdMono(it.File + ":" + strconv.Itoa(it.Line) + " " + it.Key)
		h.td(it.Value)
		if withTo {
			h.tdMono(it.To)
		}
		h.td(it.Reason)
		h.raw(`</tr>`)
	}
}
