package web

import (
	"path/filepath"
	"strconv"
	"strings"

	"satd.dev/satd/cmd/satd/channels"
	"satd.dev/satd/cmd/satd/config"
)

// Channel names come from the names table (oscam.srvid, oscam.srvid2,
// lamedb: package channels), looked up here so that the Status page, the
// statistics rows and the explanations name services the same way.

// channelOf names service sid under caid@prov, or "" without a table.
func (s *Server) channelOf(caid uint16, prov uint32, sid uint16) string {
	if s.opt.Names == nil {
		return ""
	}
	return s.opt.Names.Name(caid, prov, sid)
}

// nameServices fills in the channel of the services that have none.
func (s *Server) nameServices(svcs []ServiceStatus) {
	for i := range svcs {
		if svcs[i].Channel == "" {
			svcs[i].Channel = s.channelOf(svcs[i].CAID, svcs[i].Provider, svcs[i].SID)
		}
	}
}

// nameStats fills in the channel of the statistics rows that have none.
func (s *Server) nameStats(rows []StatsRow) {
	for i := range rows {
		if rows[i].Channel == "" {
			rows[i].Channel = s.channelOfKey(rows[i].Key)
		}
	}
}

// nameDecisions fills in the channel of the decisions that have none.
func (s *Server) nameDecisions(ds []Decision) {
	for i := range ds {
		if ds[i].Channel == "" {
			ds[i].Channel = s.channelOfKey(ds[i].Service)
		}
	}
}

// channelOfKey names the service of a balancer key, or "".
func (s *Server) channelOfKey(k string) string {
	if caid, prov, sid, ok := parseServiceKey(k); ok {
		return s.channelOf(caid, prov, sid)
	}
	return ""
}

// parseServiceKey reads "CAID@PROVID:SRVID[:…]", the balancer's key.
func parseServiceKey(k string) (caid uint16, prov uint32, sid uint16, ok bool) {
	cp, rest, ok1 := strings.Cut(k, "@")
	pv, rest, ok2 := strings.Cut(rest, ":")
	sv, _, _ := strings.Cut(rest, ":")
	c, err1 := strconv.ParseUint(cp, 16, 16)
	p, err2 := strconv.ParseUint(pv, 16, 24)
	s, err3 := strconv.ParseUint(sv, 16, 16)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return uint16(c), uint32(p), uint16(s), true
}

// namesImport is the channel names part of an OSCam import, for its page.
type namesImport struct {
	Count    int
	Problems []channels.Problem
}

// importNames parses the uploaded name files and keeps the table until the
// import is applied (one pending import at a time; a new one replaces it).
func (s *Server) importNames(f channels.Files) (namesImport, error) {
	if f.Empty() {
		s.pendingNames.Store(nil)
		return namesImport{}, nil
	}
	t, probs, err := channels.Import(f)
	if err != nil {
		return namesImport{}, err
	}
	s.pendingNames.Store(t)
	return namesImport{Count: t.Len(), Problems: probs}, nil
}

// applyNames saves the pending names table under cfg's state directory and
// puts it in force.
func (s *Server) applyNames(cfg *config.Config) error {
	t := s.pendingNames.Swap(nil)
	if t == nil || s.opt.Names == nil {
		return nil
	}
	if err := channels.Save(filepath.Join(cfg.Global.StateDir, channels.File), t); err != nil {
		return err
	}
	s.opt.Names.Set(t)
	s.opt.Log.Info("web: channel names imported", "names", t.Len())
	return nil
}
