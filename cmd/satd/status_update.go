package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"satd.dev/satd/cmd/satd/update"
	"satd.dev/satd/cmd/satd/web"
)

// maxManifestSize bounds the manifest and signature members of an upload.
const maxManifestSize = 64 << 10

// errUpload is wrapped by every refusal of a malformed firmware upload.
var errUpload = errors.New("firmware upload")

// daemonUpdater is the web form's Updater over (*daemon).updateManager().
// The System page uploads one file; it is a tar archive holding the three
// update artefacts in this order: the manifest (*.json), its signature
// (*.minisig), then the payload (executable or RAUC bundle), e.g.
//
//	tar cf satd-update.tar satd-update.json satd-update.json.minisig satd-1.4.0
type daemonUpdater struct{ d *daemon }

var _ web.Updater = daemonUpdater{}

// Install reads the archive from r and hands its members to the manager,
// streaming the payload.
func (u daemonUpdater) Install(ctx context.Context, name string, r io.Reader, size int64) error {
	m := u.d.updateManager()
	if m == nil {
		return fmt.Errorf("updates are off ([update] public_keys and board not set): %w", web.ErrNotAvailable)
	}
	tr := tar.NewReader(r)
	manifest, err := smallMember(tr, name, ".json")
	if err != nil {
		return err
	}
	sig, err := smallMember(tr, name, ".minisig")
	if err != nil {
		return err
	}
	if _, err := nextFile(tr, name); err != nil {
		return fmt.Errorf("%w %s: payload: %v", errUpload, name, err)
	}
	return m.InstallUpload(ctx, manifest, sig, tr, nil)
}

// nextFile skips to the next regular file of tr.
func nextFile(tr *tar.Reader, name string) (*tar.Header, error) {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("missing; want a tar of manifest, manifest.minisig and payload")
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			return h, nil
		}
	}
}

// smallMember reads the next regular file of tr, which must end in suffix
// and be at most maxManifestSize bytes.
func smallMember(tr *tar.Reader, name, suffix string) ([]byte, error) {
	h, err := nextFile(tr, name)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %s member: %v", errUpload, name, suffix, err)
	}
	if !strings.HasSuffix(h.Name, suffix) {
		return nil, fmt.Errorf("%w %s: member %q: want a %s file here (order: manifest, signature, payload)", errUpload, name, h.Name, suffix)
	}
	if h.Size > maxManifestSize {
		return nil, fmt.Errorf("%w %s: member %q: %d bytes, at most %d", errUpload, name, h.Name, h.Size, maxManifestSize)
	}
	b, err := io.ReadAll(io.LimitReader(tr, maxManifestSize))
	if err != nil {
		return nil, fmt.Errorf("%w %s: member %q: %v", errUpload, name, h.Name, err)
	}
	return b, nil
}

// State maps the manager's status to the System page's progress: Done and
// Total count payload bytes while it is received, then the install's
// percentage.
func (u daemonUpdater) State() web.UpdateState {
	m := u.d.updateManager()
	if m == nil {
		return web.UpdateState{Phase: "unavailable", Message: "updates are off", Current: version}
	}
	s := m.Status()
	w := web.UpdateState{Phase: webPhase(s.Phase), Done: s.Done, Total: s.Total, Current: s.Running, New: s.Version, Message: s.Outcome}
	switch s.Phase {
	case update.PhaseInstalling:
		w.Done, w.Total = int64(s.Percent), 100
	case update.PhaseRestarting, update.PhaseHealth, update.PhaseDone:
		w.Done, w.Total = 100, 100
	}
	if s.Err != "" {
		w.Message = s.Err
	} else if s.Health != nil && w.Message == "" {
		w.Message = s.Health.String()
	}
	return w
}

// webPhase names an update phase in the web form's words.
func webPhase(p update.Phase) string {
	switch p {
	case update.PhaseChecking:
		return "verifying"
	case update.PhaseDownloading:
		return "receiving"
	}
	return string(p)
}
