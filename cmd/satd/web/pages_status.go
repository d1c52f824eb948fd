package web

import "strings"

// The Status page: uptime and memory, readers, services and stream mounts.

func (d statusData) write(h html) {
	h.raw("<section class=\"facts\" id=\"facts\">\n<div><b>Uptime</b> <span id=\"uptime\">")
	h.text(d.Uptime.String())
	h.raw("</span></div>\n<div><b>Started</b> ")
	h.text(clock(d.Started))
	h.raw("</div>\n<div><b>Memory</b> ")
	h.text(mib(d.Memory.Total))
	h.raw(" (heap ")
	h.text(mib(d.Memory.Heap))
	h.raw(")</div>\n<div><b>Goroutines</b> ")
	h.int(int64(d.Memory.Goroutines))
	h.raw("</div>\n</section>\n")
	writeReaders(h, d.Status.Readers)
	writeServices(h, d.Status.Services)
	writeMounts(h, d.Status.Mounts)
}

func writeReaders(h html, readers []ReaderStatus) {
	h.raw("<h2>Readers</h2>\n<div class=\"scroll\"><table id=\"readers\"><thead><tr><th>Reader</th><th>State</th><th>ATR</th><th>Protocol</th><th>Baud</th><th>System</th><th>CAID</th><th>Providers</th><th>Serial</th><th>Subscriptions</th><th>ECM ok/nok/tout</th><th>Avg</th><th>Card resets</th><th>Last error</th></tr></thead><tbody>\n")
	for _, rd := range readers {
		writeReader(h, &rd)
	}
	h.rawIf(len(readers) == 0, "<tr><td colspan=\"14\">No readers.</td></tr>\n")
	h.raw("</tbody></table></div>\n")
}

func writeReader(h html, rd *ReaderStatus) {
	h.raw(`<tr><td class="label">`)
	h.text(rd.Label)
	h.raw(`</td><td><span`)
	h.attr("class", "state "+rd.State)
	h.raw(`>`)
	h.text(rd.State)
	h.raw(`</span></td>`)
	h.tdMono(rd.ATR)
	h.td(rd.Protocol)
	h.raw(`<td>`)
	h.int(int64(rd.Baud))
	h.raw(`</td>`)
	h.td(rd.CardSystem)
	h.tdMono(hex4(rd.CAID))
	h.td(strings.Join(rd.Providers, ", "))
	h.tdMono(rd.Serial)
	h.raw("\n<td>")
	for _, sub := range rd.Subscriptions {
		h.raw(`<div>`)
		h.text(sub.Name)
		h.raw(`: `)
		h.text(date(sub.Start))
		h.raw(` – `)
		h.text(date(sub.End))
		h.raw(`</div>`)
	}
	h.raw("</td>\n<td>")
	h.uint(rd.ECMOK)
	h.raw(` / `)
	h.uint(rd.ECMNotFound)
	h.raw(` / `)
	h.uint(rd.ECMTimeout)
	h.raw(`</td>`)
	h.td(msMeasured(rd.AvgTime, rd.ECMOK > 0))
	h.raw(`<td>`)
	h.uint(rd.CardResets)
	h.raw(`</td>`)
	h.td(rd.LastError)
	h.raw("</tr>\n")
}

func writeServices(h html, services []ServiceStatus) {
	h.raw("<h2>Services being descrambled</h2>\n<div class=\"scroll\"><table id=\"services\"><thead><tr><th>Client</th><th>Channel</th><th>CAID@PROVID:SRVID</th><th>Adapter/demux</th><th>ECM PID</th><th>State</th><th>Reader</th><th>ECM time</th><th>ECM ok/failed</th><th>Last ECM</th><th>Since</th></tr></thead><tbody>\n")
	for _, sv := range services {
		writeService(h, &sv)
	}
	h.rawIf(len(services) == 0, "<tr><td colspan=\"11\">None.</td></tr>\n")
	h.raw("</tbody></table></div>\n")
}

func writeService(h html, sv *ServiceStatus) {
	h.raw(`<tr><td class="label"`)
	h.attr("title", sv.Peer)
	h.raw(`>`)
	h.text(sv.Client)
	h.raw(`</td>`)
	h.td(sv.Channel)
	h.tdMono(hex4(sv.CAID) + "@" + hex6(sv.Provider) + ":" + hex4(sv.SID))
	h.raw(`<td>`)
	h.int(int64(sv.Adapter))
	h.raw(`/`)
	h.int(int64(sv.Demux))
	h.raw(`</td>`)
	h.tdMono(hex4(sv.ECMPID))
	h.raw(`<td><span`)
	h.attr("class", "state "+serviceStateClass[sv.State])
	h.raw(`>`)
	h.text(sv.State)
	h.raw(`</span></td>`)
	h.raw(`<td class="label">`)
	h.text(sv.Reader)
	h.raw(`</td>`)
	h.td(msMeasured(sv.ECMTime, sv.ECMOK > 0))
	h.raw(`<td>`)
	h.uint(sv.ECMOK)
	h.raw(` / `)
	h.uint(sv.ECMFailed)
	h.raw(`</td>`)
	h.tds(clock(sv.LastECM), clock(sv.Since))
	h.raw("</tr>\n")
}

// serviceStateClass colours a service's state like a reader's: green while
// CWs flow, red while every ECM PID failed.
var serviceStateClass = map[string]string{"descrambling": "ready", "retrying": "error"}

func writeMounts(h html, mounts []MountStatus) {
	h.raw("<h2>Stream mounts</h2>\n<div class=\"scroll\"><table id=\"mounts\"><thead><tr><th>Mount</th><th>Source</th><th>Upstream in use</th><th>Listeners</th><th>Bitrate</th><th>Now playing</th></tr></thead><tbody>\n")
	for _, m := range mounts {
		h.raw(`<tr>`)
		h.tds(m.Name, m.Source, m.Upstream)
		h.raw(`<td>`)
		h.int(int64(m.Listeners))
		h.raw(`</td><td>`)
		h.int(int64(m.Bitrate))
		h.raw(` kbit/s</td><td class="title">`)
		h.text(m.Title)
		h.raw("</td></tr>\n")
	}
	h.rawIf(len(mounts) == 0, "<tr><td colspan=\"6\">No mounts.</td></tr>\n")
	h.raw("</tbody></table></div>\n")
}
