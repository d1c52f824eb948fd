package main

// What the OTA cases share: a signing key made at run time, satd builds
// stamped with the versions the cases need, signed releases, and a loopback
// update server.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"aead.dev/minisign"
)

// otaBoard is the board the OTA cases' daemons are and their builds name.
const otaBoard = "hostile-board"

// srcDir is the module the versioned builds come from (-src), and goTool
// the go command that builds them (-go).
var srcDir, goTool = ".", "go"

// ota is the run's kit; its key pair lives only in this process.
var ota otaKit

type otaKit struct {
	keyOnce sync.Once
	pub     minisign.PublicKey
	priv    minisign.PrivateKey

	mu     sync.Mutex
	dir    string            // the builds, removed by cleanup
	builds map[string]string // version → executable
}

func (k *otaKit) key() {
	k.keyOnce.Do(func() {
		var err error
		if k.pub, k.priv, err = minisign.GenerateKey(rand.Reader); err != nil {
			panic("hostile: minisign key: " + err.Error())
		}
	})
}

// publicKey is the trusted key as [update] public_keys takes it.
func (k *otaKit) publicKey() string {
	k.key()
	return k.pub.String()
}

// build returns a satd stamped with version, built once per run from srcDir
// with the flags of `make build` (only the version differs from dist/satd).
func (k *otaKit) build(version string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if exe, ok := k.builds[version]; ok {
		return exe, nil
	}
	if k.dir == "" {
		dir, err := os.MkdirTemp("", "hostile-builds-")
		if err != nil {
			return "", err
		}
		k.dir, k.builds = dir, map[string]string{}
	}
	exe := filepath.Join(k.dir, "satd-"+version)
	cmd := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false", "-tags", "nethttpomithttp2 satd_nodemo",
		"-ldflags", "-s -w -X main.version="+version, "-o", exe, "./cmd/satd")
	cmd.Dir = srcDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build satd %s in %s: %v\n%s", version, srcDir, err, out)
	}
	k.builds[version] = exe
	return exe, nil
}

func (k *otaKit) cleanup() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dir != "" {
		os.RemoveAll(k.dir)
		k.dir, k.builds = "", nil
	}
}

// crashingBuild is a payload that passes the updater's self-test (`-version`
// prints version, `-check` accepts the configuration) and then dies at every
// start: a build the launcher must roll back.
func crashingBuild(version string) []byte {
	return []byte("#!/bin/sh\ncase \"$1\" in\n-version) echo \"satd " + version + "\"; exit 0 ;;\n-check) exit 0 ;;\nesac\necho 'hostile: this build dies at start' >&2\nexit 3\n")
}

// release is a signed update: the manifest, its minisign signature and the
// payload.
type release struct {
	Manifest, Sig, Payload []byte
}

// manifest is the update manifest (docs/update.md); satd decodes it
// strictly, so it has exactly these fields.
type manifest struct {
	Version string `json:"version"`
	Board   string `json:"board"`
	Kind    string `json:"kind"`
	Size    int    `json:"size"`
	SHA256  string `json:"sha256"`
	URL     string `json:"url"`
}

// signedRelease makes a release of payload as version, signed with the
// trusted key, or with key if not nil (an attacker's).
func signedRelease(version string, payload []byte, key *minisign.PrivateKey) release {
	ota.key()
	sum := sha256.Sum256(payload)
	doc, _ := json.MarshalIndent(manifest{Version: version, Board: otaBoard, Kind: "binary", Size: len(payload),
		SHA256: hex.EncodeToString(sum[:]), URL: "payload"}, "", "  ")
	priv := ota.priv
	if key != nil {
		priv = *key
	}
	// Prehashed, as `minisign -S` signs by default.
	r := minisign.NewReader(bytes.NewReader(doc))
	io.Copy(io.Discard, r)
	sig := r.SignWithComments(priv, "timestamp:0\tfile:satd-update.json", "signature from the hostile harness")
	return release{Manifest: doc, Sig: sig, Payload: payload}
}

// version is the version the release's manifest names.
func (r release) version() string {
	var m manifest
	json.Unmarshal(r.Manifest, &m)
	return m.Version
}

// image is the release as the System page uploads it: a tar of manifest,
// signature and payload, in that order.
func (r release) image() []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range []struct {
		name string
		data []byte
	}{{"satd-update.json", r.Manifest}, {"satd-update.json.minisig", r.Sig}, {"satd-payload", r.Payload}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write(f.data)
	}
	tw.Close()
	return b.Bytes()
}

// Upload posts r to the System page's firmware form with c (logged in) and
// returns the status code and the page's text.
func (t *Target) Upload(ctx context.Context, c *http.Client, r release) (int, string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("image", "satd-update.tar")
	fw.Write(r.image())
	mw.Close()
	req, err := http.NewRequestWithContext(ctx, "POST", t.URL("/system/firmware"), &body)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", "http://"+t.Web)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("upload: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), nil
}

// updateState is the web form's GET /api/update.
type updateState struct {
	Phase   string `json:"phase"`
	Message string `json:"message"`
	Current string `json:"current_version"`
	New     string `json:"new_version"`
}

// UpdateState reads /api/update with c (logged in).
func (t *Target) UpdateState(ctx context.Context, c *http.Client) (updateState, error) {
	var st updateState
	resp, b, err := t.Get(ctx, c, "/api/update")
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/api/update: %s", resp.Status)
	}
	return st, json.Unmarshal(b, &st)
}

// WaitUpdate polls /api/update until cond holds or within passes.
func (t *Target) WaitUpdate(ctx context.Context, c *http.Client, within time.Duration, cond func(updateState) bool) (updateState, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var st updateState
	for {
		s, err := t.UpdateState(ctx, c)
		if err == nil {
			st = s
			if cond(st) {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("update state not reached within %v; last %+v", within, st)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// updateServer serves one release at a time on the case's spare port, as
// a static update directory does, and counts the payload's downloads.
type updateServer struct {
	mu       sync.Mutex
	rel      release
	payloads int
}

func (s *updateServer) publish(r release) {
	s.mu.Lock()
	s.rel = r
	s.mu.Unlock()
}

func (s *updateServer) release() release {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rel
}

func (s *updateServer) payloadGets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.payloads
}

func (s *updateServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rel := s.rel
	if r.URL.Path == "/payload" {
		s.payloads++
	}
	s.mu.Unlock()
	switch r.URL.Path {
	case "/satd-update.json":
		w.Write(rel.Manifest)
	case "/satd-update.json.minisig":
		w.Write(rel.Sig)
	case "/payload":
		http.ServeContent(w, r, "payload", time.Time{}, bytes.NewReader(rel.Payload))
	default:
		http.NotFound(w, r)
	}
}

// serveUpdates runs s on t.Spare until ctx ends.
func serveUpdates(ctx context.Context, t *Target, s *updateServer) error {
	ln, err := net.Listen("tcp", t.Spare)
	if err != nil {
		return fmt.Errorf("listen %s for the update server: %w", t.Spare, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "hostile: update server:", err)
		}
	}()
	return nil
}

// otaConfig is the [update] table of the OTA cases: binary updates under
// `satd launch`, the run's key trusted, polling the spare port if poll.
func otaConfig(poll bool) string {
	return fmt.Sprintf(`
[update]
enabled = %v
url = "http://{spare}/satd-update.json"
interval = "1m"
public_keys = ["{pubkey}"]
board = "{board}"
install = "binary"
health_timeout = "30s"
`, poll)
}

// binFiles lists the update directory's bin/ (the staged builds).
func binFiles(t *Target) []string {
	es, _ := os.ReadDir(filepath.Join(t.UpdateDir(), "bin"))
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// link returns where the update directory's symlink name points ("" if
// it does not exist).
func link(t *Target, name string) string {
	s, _ := os.Readlink(filepath.Join(t.UpdateDir(), name))
	return s
}

// contains reports whether s contains every one of subs.
func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
