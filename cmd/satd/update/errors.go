// Package update implements satd's over-the-air updates: signed manifests,
// resumable bounded downloads, anti-rollback, RAUC image installs, the
// binary-only self-update with its launcher, and post-update health checks.
//
// An update is a manifest (JSON, see Manifest) signed with minisign, plus the
// payload it describes by size and SHA-256. Nothing is installed before both
// the manifest signature and the payload digest have been verified.
package update

import "errors"

// The sentinel errors below are distinct for every way an update is refused,
// so that callers (the web form, the log, tests) can tell them apart with
// errors.Is. The wrapping error names the file or URL concerned.
var (
	// ErrBadSignature means the manifest does not match its signature: the
	// manifest or the signature was altered after signing.
	ErrBadSignature = errors.New("manifest signature does not verify")
	// ErrUnknownKey means the signature was made by a key that is not among
	// the configured public keys.
	ErrUnknownKey = errors.New("manifest signed by an unknown key")
	// ErrMalformedManifest means the manifest or signature could not be parsed.
	ErrMalformedManifest = errors.New("malformed manifest")
	// ErrWrongBoard means the manifest targets another board or architecture.
	ErrWrongBoard = errors.New("manifest is for another board")
	// ErrWrongKind means the box cannot install this kind of payload.
	ErrWrongKind = errors.New("payload kind not installable on this box")
	// ErrDowngrade means the manifest's version is older than the running
	// version and downgrades are not allowed.
	ErrDowngrade = errors.New("update would downgrade")
	// ErrUpToDate means the manifest's version is the running version.
	ErrUpToDate = errors.New("already running this version")
	// ErrTooOld means the running version is older than the manifest's
	// minimum version to update from.
	ErrTooOld = errors.New("running version too old for this update")
	// ErrPayloadTooLarge means the server sent, or announced, more bytes than
	// the manifest's size, or the manifest's size exceeds the configured cap.
	ErrPayloadTooLarge = errors.New("payload larger than announced")
	// ErrTruncated means the download ended before the announced size. The
	// partial file is kept; the next attempt resumes it with an HTTP Range
	// request.
	ErrTruncated = errors.New("payload download truncated")
	// ErrStalled means the update server sent nothing for Fetcher.Stall:
	// no answer, or no next bytes. The download counts as truncated.
	ErrStalled = errors.New("update server stalled")
	// ErrPayloadDigest means the payload's SHA-256 differs from the manifest's.
	ErrPayloadDigest = errors.New("payload SHA-256 mismatch")
	// ErrBusy means another update is in progress.
	ErrBusy = errors.New("an update is already in progress")
	// ErrHealth means the post-update health checks did not pass in time.
	ErrHealth = errors.New("health checks failed")
)
