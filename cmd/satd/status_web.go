package main

import (
	"fmt"
	"strconv"
	"strings"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cmd/satd/web"
)

// The adapters in this file show the running daemon to the web form. Each
// looks its component up at call time, so a component that is disabled or
// not started yet shows as empty (or "not available") instead of failing.

// streamStatus returns the stream relay's mounts for the Status page, or
// nil when the relay is off. The relay keeps no upstream switch count yet.
var streamStatus = func(d *daemon) []web.MountStatus {
	st, ok := d.streamStats()
	if !ok {
		return nil
	}
	out := make([]web.MountStatus, len(st.Mounts))
	for i, m := range st.Mounts {
		out[i] = web.MountStatus{Name: m.Name, Source: m.Source, Upstream: m.Upstream, Listeners: m.Listeners, Bitrate: m.Bitrate, Title: m.Title}
	}
	return out
}

// serviceStatus returns the services dvbapi clients asked for, or nil when
// the dvbapi front door is off or idle. The dvbapi protocol carries no
// channel names, so Channel stays empty.
func serviceStatus(d *daemon) []web.ServiceStatus {
	svcs := d.dvbapiServices()
	if len(svcs) == 0 {
		return nil
	}
	out := make([]web.ServiceStatus, len(svcs))
	for i, s := range svcs {
		out[i] = web.ServiceStatus{Client: s.Client, Peer: s.Peer, Adapter: s.Adapter, Demux: s.Demux,
			CAID: s.CAID, Provider: s.Provider, SID: s.SID, ECMPID: s.ECMPID, State: s.State,
			Reader: s.Reader, CardSystem: s.System, ECMTime: s.ECMTime,
			ECMOK: s.ECMOK, ECMFailed: s.ECMFailed, LastECM: s.LastECM, Since: s.Since}
	}
	return out
}

// daemonStatus is the web form's StatusSource over the running daemon.
type daemonStatus struct{ d *daemon }

var _ web.StatusSource = daemonStatus{}

// Status returns the readers, services and mounts now.
func (s daemonStatus) Status() web.Status {
	var st web.Status
	for _, r := range s.d.readers() {
		st.Readers = append(st.Readers, webReader(r))
	}
	st.Services = serviceStatus(s.d)
	st.Mounts = streamStatus(s.d)
	return st
}

// webReader converts a reader snapshot to the web form's row.
func webReader(r ReaderStatus) web.ReaderStatus {
	w := web.ReaderStatus{
		Label: r.Label, State: r.State, ATR: r.ATR, Protocol: r.Protocol, Baud: r.Baud, CardSystem: r.System,
		Serial: r.Serial, ECMOK: r.Found, ECMNotFound: r.NotFound, LastError: r.LastError,
		Note: r.Note, CardResets: r.CardResets, AvgTime: r.AvgFound,
	}
	if r.ATR != "" {
		// A card answered: show its transmission protocol, not the reader kind.
		w.Protocol = fmt.Sprintf("T=%d", r.CardProtocol)
	}
	if len(r.CAIDs) > 0 {
		w.CAID = r.CAIDs[0]
	}
	for _, p := range r.Providers {
		w.Providers = append(w.Providers, fmt.Sprintf("%06X", p))
	}
	for _, sub := range r.Subscriptions {
		name := sub.Name
		if name == "" {
			name = fmt.Sprintf("%06X/%04X", sub.Provider, sub.ID)
		}
		w.Subscriptions = append(w.Subscriptions, web.Subscription{Name: name, Start: sub.Start, End: sub.End})
	}
	return w
}

// balancerView is the web form's BalancerView over the running Dispatcher.
type balancerView struct{ d *daemon }

var _ web.BalancerView = balancerView{}

// errNoBalancer is returned by the actions when no balancer runs (no
// readers configured).
var errNoBalancer = fmt.Errorf("load balancer not running (no readers configured): %w", web.ErrNotAvailable)

// Stats returns OSCam's readerstats rows.
func (v balancerView) Stats() []web.StatsRow {
	b := v.d.balancer()
	if b == nil {
		return nil
	}
	views := b.StatViews()
	rows := make([]web.StatsRow, len(views))
	for i, s := range views {
		rows[i] = web.StatsRow{Reader: s.Reader, Key: s.Key.String(), Result: s.Result.String(), Count: s.Count,
			Avg: s.Avg, Last: s.Last, FailFactor: s.Fail, LastSeen: s.LastSeen, BlockedUntil: s.BlockedUntil}
	}
	return rows
}

// Decisions returns the explanation of the last ECM of every service.
func (v balancerView) Decisions() []web.Decision {
	b := v.d.balancer()
	if b == nil {
		return nil
	}
	origin := b.Origin()
	var out []web.Decision
	for _, x := range b.Explanations() {
		dc := web.Decision{Service: fmt.Sprintf("%04X@%06X:%04X", x.CAID, x.PRID, x.SrvID), When: origin.Add(x.At), Mode: strconv.Itoa(x.Mode)}
		why := make([]string, 0, len(x.Readers))
		for _, r := range x.Readers {
			if r.Asked {
				dc.Readers = append(dc.Readers, r.Reader)
			}
			why = append(why, r.Reader+": "+r.Reason)
			dc.Why = append(dc.Why, web.ReaderWhy{Reader: r.Reader, Asked: r.Asked, Role: r.Role, Reason: r.Reason})
		}
		dc.Explanation = strings.Join(why, "; ")
		out = append(out, dc)
	}
	return out
}

// Reset forgets the statistics of one reader, or of all when reader is "".
func (v balancerView) Reset(reader string) error {
	b := v.d.balancer()
	if b == nil {
		return errNoBalancer
	}
	_, err := b.ResetStats(reader)
	return err
}

// Clear deletes one statistics row; key is CAID@PROVID:SRVID:CHID:ECMLEN.
func (v balancerView) Clear(reader, key string) error {
	b := v.d.balancer()
	if b == nil {
		return errNoBalancer
	}
	k, err := balancer.ParseStatKey(key)
	if err != nil {
		return err
	}
	return b.ClearStat(reader, k)
}
