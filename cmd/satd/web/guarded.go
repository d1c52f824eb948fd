package web

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"satd.dev/satd/cmd/satd/config"
)

// A web login alone must not be root code execution or a way to write any
// file: changing the update trust (keys, sources, commands) or any file path
// needs the current password again, and file paths set from the form are
// confined to a few directories (docs/web.md, "Limits").

// guardedKeys need the current password to change; arrays of tables are
// written with [] for any index.
var guardedKeys = map[string]bool{
	"update.public_keys": true, "update.url": true, "update.hawkbit_url": true, "update.allow_downgrade": true,
	"update.rauc_command": true, "update.reboot_command": true, "update.install": true,
}

// pathKeys are file paths: guarded, and confined to pathDirs.
var pathKeys = map[string]bool{
	"global.state_dir": true, "web.password_file": true,
	"dvbapi.ecm_info": true, "dvbapi.socket": true, "dvbapi.device_root": true,
	"stream.ssl-certificate": true, "stream.ssl-key": true, "stream.mount[].file": true,
	"board[].device": true,
}

// pathDirs are where the form may point a file path, besides the state
// directory in force.
var pathDirs = []string{"/tmp", "/run", "/var/run", "/var/lib/satd", "/media", "/mnt", "/dev"}

// ErrPathConfined refuses a file path outside the allowed directories.
var ErrPathConfined = errors.New("file paths set from the web form must be inside the state directory, " + strings.Join(pathDirs, ", "))

// plainKey turns the indexes of a key path into "[]" ("reader[2].device" →
// "reader[].device"), the form the key tables use.
func plainKey(key string) string { return replaceIndexes(key, "[]") }

// replaceIndexes replaces every "[digits]" in key with repl.
func replaceIndexes(key, repl string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		if key[i] == '[' {
			j := i + 1
			for j < len(key) && key[j] >= '0' && key[j] <= '9' {
				j++
			}
			if j > i+1 && j < len(key) && key[j] == ']' {
				b.WriteString(repl)
				i = j
				continue
			}
		}
		b.WriteByte(key[i])
	}
	return b.String()
}

// guardedChanges returns the guarded keys that differ between old and new,
// and an error naming a changed file path outside the allowed directories.
func guardedChanges(old, new *config.Config) (keys []string, err error) {
	diffFields("", reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem(), func(key string, o, n reflect.Value) {
		plain := plainKey(key)
		if !guardedKeys[plain] && !pathKeys[plain] {
			return
		}
		keys = append(keys, key)
		if pathKeys[plain] && err == nil {
			err = confined(key, n, old.Global.StateDir)
		}
	})
	return keys, err
}

// confined checks a path field's value.
func confined(key string, v reflect.Value, stateDir string) error {
	p := v.String()
	if p == "" {
		return nil
	}
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("%s = %q: %w (an absolute, clean path)", key, p, ErrPathConfined)
	}
	for _, d := range append([]string{stateDir}, pathDirs...) {
		if d != "" && (p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/")) {
			return nil
		}
	}
	return fmt.Errorf("%s = %q: %w", key, p, ErrPathConfined)
}

// diffFields calls fn for every leaf key whose value differs; arrays of
// tables are compared element by element (a missing element is zero).
func diffFields(prefix string, o, n reflect.Value, fn func(key string, o, n reflect.Value)) {
	t := n.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("toml") == "-" {
			continue
		}
		key := joinKey(prefix, tomlName(f))
		of, nf := o.Field(i), n.Field(i)
		switch {
		case isTable(f.Type):
			diffFields(key, of, nf, fn)
		case f.Type.Kind() == reflect.Slice && isTable(f.Type.Elem()):
			zero := reflect.New(f.Type.Elem()).Elem()
			for j := range max(of.Len(), nf.Len()) {
				oe, ne := zero, zero
				if j < of.Len() {
					oe = of.Index(j)
				}
				if j < nf.Len() {
					ne = nf.Index(j)
				}
				diffFields(fmt.Sprintf("%s[%d]", key, j), oe, ne, fn)
			}
		case !sameValue(of, nf):
			fn(key, of, nf)
		}
	}
}

// sameValue is DeepEqual with an empty slice or map equal to a nil one (the
// form and the TOML decoder make either).
func sameValue(a, b reflect.Value) bool {
	if k := a.Kind(); (k == reflect.Slice || k == reflect.Map) && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// guardChange lets a change to cfg through, or answers the refusal: a path
// outside the allowed directories (422), or guarded keys changed without
// the right current password (403, 429 when throttled). password is what
// the client sent as the current password.
func (s *Server) guardChange(r *http.Request, cfg *config.Config, password string) (status int, err error) {
	keys, err := guardedChanges(s.opt.Config(), cfg)
	if err != nil {
		return http.StatusUnprocessableEntity, err
	}
	if len(keys) == 0 {
		return 0, nil
	}
	keys = slices.Compact(keys)
	if status, err := s.recheckPassword(r, password); err != nil {
		return status, fmt.Errorf("changing %s needs the current password: %w", strings.Join(keys, ", "), err)
	}
	s.opt.Log.Warn("web: guarded settings changed", "keys", strings.Join(keys, ","), "from", clientKey(r))
	return 0, nil
}
