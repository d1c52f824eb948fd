package web

import "strconv"

// The countdown page of a change awaiting confirmation.

func (d confirmData) write(h html) {
	if !d.Pending {
		h.raw(`<p id="outcome">No change is waiting for confirmation.`)
		if d.Outcome != "" {
			h.raw(` The last one was `)
			h.text(d.Outcome)
			h.raw(`.`)
		}
		h.raw("</p>\n")
		return
	}
	h.raw(`<p>The change was applied. It is <b>reverted in <span id="countdown"`)
	h.attr("data-deadline", strconv.FormatInt(d.Deadline.Unix(), 10))
	if d.RevertURL != "" {
		h.url("data-revert-url", d.RevertURL)
	} else {
		h.attr("data-revert-url", "")
	}
	h.raw(`>`)
	h.int(int64(d.Seconds))
	h.raw("</span> s</b> unless you confirm that you can still reach this page.</p>\n")
	if d.NewURL != "" {
		h.raw(`<p>The form moved: open <a id="new-url"`)
		h.url("href", d.NewURL)
		h.raw(`>`)
		h.text(d.NewURL)
		h.raw("</a> and confirm there.</p>\n")
	}
	h.raw("<form method=\"post\" action=\"/confirm\"><button id=\"confirm\">Keep this change</button></form>\n")
}
