package main

import (
	"context"
	"path/filepath"
	"slices"
	"time"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cardreader/constcw"
	"satd.dev/satd/cmd/satd/config"
)

// constcwPath is the file of a constcw reader: its device key as in OSCam,
// or <global.state_dir>/<label>.cw when that is empty.
func constcwPath(g config.Global, r config.Reader) string {
	if r.Device != "" {
		return r.Device // OSCam: device = path of the constant.cw file
	}
	return filepath.Join(g.StateDir, r.Label+".cw")
}

// constcwPoll is how often a constcw reader re-checks its file for the
// balancer's eligibility; lookups re-check it on every ECM anyway.
const constcwPoll = 2 * time.Second

// constcwSource answers ECMs from a constant.cw file.
type constcwSource struct {
	file *constcw.File
}

// run publishes the CAIDs and services of the file's rules; a missing or
// broken file makes the reader absent.
func (c *constcwSource) run(ctx context.Context, publish func(balancer.Status)) {
	t := time.NewTicker(constcwPoll)
	defer t.Stop()
	for {
		rules, err := c.file.Rules()
		if err != nil {
			publish(balancer.Status{})
		} else {
			publish(eligibility(rules))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// eligibility lists the CAIDs and services the rules serve.
func eligibility(rules []constcw.Rule) balancer.Status {
	s := balancer.Status{Present: true, NoECM: true}
	for _, r := range rules {
		if !slices.Contains(s.CAIDs, r.CAID) {
			s.CAIDs = append(s.CAIDs, r.CAID)
		}
		if !slices.Contains(s.Services, r.SID) {
			s.Services = append(s.Services, r.SID)
		}
	}
	return s
}

func (c *constcwSource) solve(req *balancer.Request) (balancer.Result, [16]byte, string) {
	cw, ok, err := c.file.Lookup(constcw.Query{CAID: req.CAID, PROVID: req.PRID, SID: req.SrvID,
		PMTPID: req.PMTPID, ECMPID: req.ECMPID, VPID: req.VPID})
	switch {
	case err != nil:
		return balancer.NotFound, cw, err.Error()
	case !ok:
		return balancer.NotFound, cw, "no constant.cw rule for this CAID and service"
	}
	return balancer.Found, cw, ""
}

func (c *constcwSource) describe(s *ReaderStatus) {
	s.File = c.file.Path()
	s.State = "ready"
	if _, err := c.file.Rules(); err != nil {
		s.State, s.LastError = "absent", err.Error()
	}
}

// demoConstCW is written to the demo's constcw file when it is missing
// (test data: the same rules as testdata/constcw/demo.cw).
const demoConstCW = `# satd demo: fixed control words for the constant-CW reader (test data).
# CAID 2600 services 0001-0003.
2600:000000:0001:0000:0000::01 02 03 06 04 05 06 0F 11 12 13 36 14 15 16 3F
2600:000000:0002:0000:0000::21 22 23 66 24 25 26 6F 31 32 33 96 34 35 36 9F
2600:000000:0003:0000:0000::41 42 43 C6 44 45 46 CF 51 52 53 F6 54 55 56 FF
`
