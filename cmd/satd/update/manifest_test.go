package update

import (
	"bytes"
	"errors"
	"testing"
)

func TestVerifyRejectsWithDistinctErrors(t *testing.T) {
	key, other := newTestKey(t), newTestKey(t)
	payload := []byte("new satd")
	good := manifestFor(t, payload, nil)
	tests := []struct {
		name   string
		doc    []byte
		sig    []byte
		policy func(*Policy)
		want   error
	}{
		{name: "valid", doc: good, sig: key.sign(good)},
		{name: "tampered manifest", doc: bytes.Replace(good, []byte("1.1.0"), []byte("9.1.0"), 1), sig: key.sign(good), want: ErrBadSignature},
		{name: "unknown key", doc: good, sig: other.sign(good), want: ErrUnknownKey},
		{name: "other board", doc: manifestFor(t, payload, func(m *Manifest) { m.Board = "satrx-mipsle" }), want: ErrWrongBoard},
		{name: "downgrade", doc: manifestFor(t, payload, func(m *Manifest) { m.Version, m.MinVersion = "0.9.0", "" }), want: ErrDowngrade},
		{name: "downgrade allowed", doc: manifestFor(t, payload, func(m *Manifest) { m.Version, m.MinVersion = "0.9.0", "" }),
			policy: func(p *Policy) { p.AllowDowngrade = true }},
		{name: "same version", doc: manifestFor(t, payload, func(m *Manifest) { m.Version = "1.0.0" }), want: ErrUpToDate},
		{name: "running too old", doc: manifestFor(t, payload, func(m *Manifest) { m.MinVersion = "1.0.1" }), want: ErrTooOld},
		{name: "pre-release is older than release", doc: manifestFor(t, payload, func(m *Manifest) { m.Version, m.MinVersion = "1.0.0-rc1", "" }), want: ErrDowngrade},
		{name: "unknown field", doc: []byte(`{"version":"1.1.0","extra":1}`), want: ErrMalformedManifest},
		{name: "bad digest field", doc: manifestFor(t, payload, func(m *Manifest) { m.SHA256 = "abc" }), want: ErrMalformedManifest},
		{name: "garbage signature", doc: good, sig: []byte("not a signature"), want: ErrMalformedManifest},
		{name: "second key after rotation", doc: good, sig: other.sign(good),
			policy: func(p *Policy) { p.PublicKeys = append(p.PublicKeys, other.pubText(t)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy(key.pubText(t))
			if tc.policy != nil {
				tc.policy(&p)
			}
			v, err := NewVerifier(p)
			if err != nil {
				t.Fatal(err)
			}
			sig := tc.sig
			if sig == nil {
				sig = key.sign(tc.doc)
			}
			_, err = v.Verify("satd-update.json", tc.doc, sig)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			for _, other := range allRefusals {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("error %v also matches %v", err, other)
				}
			}
		})
	}
}

// allRefusals are the sentinel errors that must not overlap.
var allRefusals = []error{ErrBadSignature, ErrUnknownKey, ErrMalformedManifest, ErrWrongBoard, ErrWrongKind,
	ErrDowngrade, ErrUpToDate, ErrTooOld, ErrPayloadTooLarge, ErrTruncated, ErrPayloadDigest}

func TestParsePublicKeyAcceptsFileAndLine(t *testing.T) {
	k := newTestKey(t)
	line := k.pubText(t)
	for _, s := range []string{line, "untrusted comment: minisign public key\n" + line + "\n"} {
		got, err := ParsePublicKey(s)
		if err != nil || got.ID() != k.pub.ID() {
			t.Errorf("ParsePublicKey(%q) = %v, %v", s, got.ID(), err)
		}
	}
	if _, err := ParsePublicKey("RWQ"); err == nil {
		t.Error("short key accepted")
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0}, {"1.0.1", "1.0.0", 1}, {"1.2.0", "1.10.0", -1}, {"2.0.0", "1.99.99", 1},
		{"1.0.0-rc1", "1.0.0", -1}, {"1.0.0-rc2", "1.0.0-rc1", 1}, {"dev", "0.0.1", -1}, {"v1.0.0", "1.0.0", 0},
	}
	for _, tc := range tests {
		a, err1 := ParseVersion(tc.a)
		b, err2 := ParseVersion(tc.b)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if got := a.Compare(b); got != tc.want {
			t.Errorf("%s vs %s = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	for _, bad := range []string{"", "1", "1.0", "1.0.x", "01.0.0", "1.-1.0", "1.0.0.0"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(manifestFor(f, []byte("x"), nil))
	f.Add([]byte(`{"version":"1.0.0","board":"b","kind":"rauc","size":1,"sha256":"00","url":"u"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":"1.0.0"} {}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		m, err := ParseManifest("fuzz", doc)
		if err == nil && (m.Size <= 0 || m.Board == "") {
			t.Fatalf("accepted %+v", m)
		}
		if err != nil && !errors.Is(err, ErrMalformedManifest) {
			t.Fatalf("error %v is not ErrMalformedManifest", err)
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	k := newTestKey(f)
	doc := manifestFor(f, []byte("x"), nil)
	f.Add(k.sign(doc))
	f.Add([]byte("untrusted comment: x\nRUQ=\ntrusted comment: y\nAA==\n"))
	v, err := NewVerifier(testPolicy(k.pubText(f)))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sig []byte) {
		m, err := v.Verify("fuzz", doc, sig)
		if err == nil && m.Version != "1.1.0" {
			t.Fatal("wrong manifest")
		}
	})
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.0.0", "v2.3.4-rc1", "dev", "", "1..1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		w, err := ParseVersion(v.String())
		if err != nil || w.Compare(v) != 0 {
			t.Fatalf("%q -> %q does not round-trip: %v", s, v, err)
		}
	})
}
