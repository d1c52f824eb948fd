package web

import (
	"strconv"
	"strings"
)

// The Load balancer page: the last decision per service and the OSCam
// readerstats rows, one page of statsPerPage at a time.

func (d balancerData) write(h html) {
	writeDecisions(h, d.Decisions)
	h.raw("<h2>Statistics</h2>\n<p>")
	h.int(int64(d.Total))
	h.raw(` rows`)
	if d.Pages > 1 {
		h.raw(`; page `)
		h.int(int64(d.Page))
		h.raw(` of `)
		h.int(int64(d.Pages))
		h.raw(`:`)
		for _, n := range d.PageLinks {
			h.raw(` <a`)
			h.url("href", "/balancer?page="+strconv.Itoa(n))
			h.raw(`>`)
			h.int(int64(n))
			h.raw(`</a>`)
		}
	}
	h.raw("</p>\n<form method=\"post\" action=\"/balancer/reset\" class=\"inline\"><input type=\"hidden\" name=\"reader\" value=\"\"><button id=\"reset-all\">Reset all statistics</button></form>\n")
	writeStats(h, d.Stats)
}

func writeDecisions(h html, decisions []Decision) {
	h.raw("<h2>Last decision per service</h2>\n<div class=\"scroll\"><table id=\"decisions\"><thead><tr><th>Service</th><th>Channel</th><th>When</th><th>Readers asked</th><th>Why</th></tr></thead><tbody>\n")
	for _, dc := range decisions {
		h.raw(`<tr>`)
		h.tdMono(dc.Service)
		h.tds(dc.Channel, clock(dc.When), strings.Join(dc.Readers, ", "))
		writeWhy(h, &dc)
		h.raw("</tr>\n")
	}
	h.rawIf(len(decisions) == 0, "<tr><td colspan=\"5\">No decisions yet.</td></tr>")
	h.raw("</tbody></table></div>\n")
}

// writeWhy writes the explanation of a decision: the lb_mode then in force
// and one line per reader, the asked ones marked.
func writeWhy(h html, dc *Decision) {
	h.raw(`<td>`)
	if dc.Mode != "" {
		h.raw(`<span class="mode">lb_mode `)
		h.text(dc.Mode)
		h.raw(` at that decision</span>`)
	}
	if len(dc.Why) == 0 {
		h.text(dc.Explanation)
		h.raw(`</td>`)
		return
	}
	h.raw(`<ul class="why">`)
	for _, w := range dc.Why {
		if w.Asked {
			h.raw(`<li class="asked"><b>`)
		} else {
			h.raw(`<li><b>`)
		}
		h.text(w.Reader)
		h.raw(`</b>`)
		if w.Asked {
			h.raw(` ✓ asked`)
			if w.Role != "" {
				h.text(" (" + w.Role + ")")
			}
		}
		h.raw(`: `)
		h.text(w.Reason)
		h.raw(`</li>`)
	}
	h.raw(`</ul></td>`)
}

func writeStats(h html, rows []StatsRow) {
	h.raw("<div class=\"scroll\"><table id=\"stats\"><thead><tr><th>Reader</th><th>Channel (CAID@PROVID:SRVID:CHID:LEN)</th><th>Name</th><th>Result</th><th>Count</th><th>Avg</th><th>Last</th><th>Fail factor</th><th>Last seen</th><th>Blocked until</th><th></th></tr></thead><tbody>\n")
	for i := range rows {
		writeStatsRow(h, &rows[i])
	}
	h.rawIf(len(rows) == 0, "<tr><td colspan=\"11\">No statistics yet.</td></tr>")
	h.raw("</tbody></table></div>\n")
}

func writeStatsRow(h html, row *StatsRow) {
	h.raw(`<tr>`)
	h.td(row.Reader)
	h.tdMono(row.Key)
	h.tds(row.Channel, row.Result)
	h.raw(`<td>`)
	h.int(int64(row.Count))
	h.raw(`</td>`)
	h.tds(msMeasured(row.Avg, row.Count > 0 && row.Result == "found"), msMeasured(row.Last, row.Count > 0 && row.Result == "found"))
	h.raw(`<td>`)
	h.int(int64(row.FailFactor))
	h.raw(`</td>`)
	h.tds(clock(row.LastSeen), clock(row.BlockedUntil))
	h.raw("\n<td><form method=\"post\" action=\"/balancer/clear\"><input type=\"hidden\" name=\"reader\"")
	h.attr("value", row.Reader)
	h.raw(`><input type="hidden" name="key"`)
	h.attr("value", row.Key)
	h.raw("><button class=\"small\">Clear</button> <button class=\"small\" formaction=\"/balancer/reset\">Reset reader</button></form></td></tr>\n")
}
