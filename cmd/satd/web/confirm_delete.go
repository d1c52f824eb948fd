package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// deletionConfirmed asks before a save of list section name that deletes
// elements (their "delete" boxes ticked), like every destructive action.
// The question page posts the same form again; the current password is not
// written into it, so a deletion that also changes a guarded key asks for
// it on the form again.
func (s *Server) deletionConfirmed(w http.ResponseWriter, r *http.Request, name string) bool {
	dels := deletions(r.PostForm, name)
	if len(dels) == 0 || r.PostForm.Get("confirmed") == "1" {
		return true
	}
	r.PostForm.Del("current")
	return s.confirmed(w, r, "Delete", "Delete "+strings.Join(dels, ", ")+" and save the "+name+" section?", "Delete and save")
}

// deletions names the elements of list section name that form deletes.
func deletions(form map[string][]string, name string) []string {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	count, _ := strconv.Atoi(get(name + ".count"))
	var out []string
	for i := range min(count, 256) {
		if get(fmt.Sprintf("%s[%d].delete", name, i)) != "" {
			out = append(out, fmt.Sprintf("%s %d", name, i+1))
		}
	}
	return out
}
