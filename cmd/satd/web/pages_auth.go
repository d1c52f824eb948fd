package web

// The login and first-password pages.

// loginForm is the content of the login page; Next is the page to return
// to after it.
type loginForm struct{ Next string }

func (d loginForm) write(h html) {
	h.raw("<form method=\"post\" action=\"/login\" class=\"narrow\">\n")
	if d.Next != "" && d.Next != "/" {
		h.raw(`<input type="hidden" name="next"`)
		h.attr("value", d.Next)
		h.raw(">\n")
	}
	h.raw("<label for=\"password\">Password</label>\n" +
		"<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus>\n" +
		"<button id=\"login\">Log in</button>\n</form>")
}

// setupForm is the content of the page that sets the first password;
// NeedCode asks for the setup code (a browser not on loopback).
type setupForm struct {
	NeedCode bool
}

func (d setupForm) write(h html) {
	h.raw("<p>No password is set yet. Choose the password of this receiver's web form (at least 8 characters).</p>\n" +
		"<form method=\"post\" action=\"/setup\" class=\"narrow\">\n")
	h.rawIf(d.NeedCode, "<label for=\"code\">Setup code (printed in satd's log)</label>\n"+
		"<input id=\"code\" name=\"code\" autocomplete=\"off\" required>")
	h.raw("\n<label for=\"password\">New password</label>\n" +
		"<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\" minlength=\"8\" required>\n" +
		"<label for=\"repeat\">Repeat it</label>\n" +
		"<input type=\"password\" id=\"repeat\" name=\"repeat\" autocomplete=\"new-password\" minlength=\"8\" required>\n" +
		"<button id=\"setup\">Set password</button>\n</form>")
}
