package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Errors of CheckReplacement: the rule a reloaded file broke.
var (
	// ErrEmptyConfig: a file with no key at all never replaces a running
	// configuration (a truncated or zeroed file would apply every default:
	// readers dropped, stream stopped).
	ErrEmptyConfig = errors.New("the file sets nothing")
	// ErrMissingSection: a section the configuration in force sets is
	// absent from the file; a reload never returns a whole section to its
	// defaults by omission.
	ErrMissingSection = errors.New("section missing")
)

// CheckReplacement reports whether doc (already parsed into a valid
// configuration) may replace running on a reload: it must set at least one
// key, and it must mention every top-level section that running sets to
// anything but the defaults. To turn a section off, the file says so
// ("[stream] enabled = false", "reader = []").
func CheckReplacement(doc []byte, running *Config) error {
	lines := scanKeyLines(doc)
	if len(lines) == 0 {
		return fmt.Errorf("%w (rule: an empty file never replaces the configuration in force)", ErrEmptyConfig)
	}
	def := reflect.ValueOf(Default()).Elem()
	cur := reflect.ValueOf(running).Elem()
	t := cur.Type()
	var missing []string
	for i := range t.NumField() {
		name := tomlName(t.Field(i))
		if name == "" || name == "-" || reflect.DeepEqual(cur.Field(i).Interface(), def.Field(i).Interface()) {
			continue
		}
		if !mentions(lines, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: [%s] in force but absent from the file (rule: a reload never resets a whole section by omission; write the section, e.g. enabled = false, or reader = [])",
			ErrMissingSection, strings.Join(missing, "], ["))
	}
	return nil
}

// mentions reports whether the document has the table name or a key in it.
func mentions(lines keyLines, name string) bool {
	for k := range lines {
		if k == name || strings.HasPrefix(k, name+".") || strings.HasPrefix(k, name+"[") {
			return true
		}
	}
	return false
}
