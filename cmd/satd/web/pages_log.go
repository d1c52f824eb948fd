package web

import "strconv"

// The Log page: the last records with a level filter; satd.js adds the live
// tail from /log/events, building rows with textContent.

func (d logData) write(h html) {
	h.raw("<form method=\"get\" action=\"/log\" class=\"inline\" id=\"log-filter\">\n<label for=\"level\">Level</label>\n<select id=\"level\" name=\"level\">")
	for _, lv := range d.Levels {
		h.raw(`<option`)
		h.rawIf(lv == d.Level, ` selected`)
		h.raw(`>`)
		h.text(lv)
		h.raw(`</option>`)
	}
	h.raw("</select>\n<button>Filter</button></form>\n")
	if !d.Connected {
		h.raw("<p>The log tail is not connected in this build.</p>\n")
		return
	}
	h.raw(`<div class="scroll"><table id="log"`)
	h.attr("data-since", strconv.FormatUint(d.Last, 10))
	h.attr("data-level", d.Level)
	h.raw("><thead><tr><th>Time</th><th>Level</th><th>Message</th><th>Details</th></tr></thead><tbody id=\"log-body\">\n")
	for i := range d.Entries {
		e := &d.Entries[i]
		h.raw(`<tr`)
		h.attr("class", "lv-"+e.Level)
		h.raw(`>`)
		h.tds(clock(e.Time), e.Level, e.Msg)
		h.tdMono(e.Attrs)
		h.raw(`</tr>`)
	}
	h.raw("\n</tbody></table></div>\n")
}
