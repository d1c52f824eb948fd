package config

import "strings"

// IsLabelChar reports whether r may stand in a reader label or board name.
func IsLabelChar(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'
}

// IsLabel reports whether s is a valid reader label or board name: 1 to 32
// of A-Z, a-z, 0-9, '_', '.', '-'.
func IsLabel(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !IsLabelChar(r) {
			return false
		}
	}
	return true
}

// isPIN reports whether s is a 4-digit card PIN.
func isPIN(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// OSCamName returns the OSCam option names a key's doc comment gives in
// "(OSCam: name)", or "" when it gives none.
func OSCamName(doc string) string {
	const mark = "(OSCam: "
	i := strings.Index(doc, mark)
	if i < 0 {
		return ""
	}
	rest := doc[i+len(mark):]
	j := strings.IndexByte(rest, ')')
	if j <= 0 {
		return ""
	}
	return rest[:j]
}
