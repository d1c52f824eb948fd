package web

// The System page: backup, restore, password, firmware update and restart.

func (d systemData) write(h html) {
	h.raw("<section class=\"cards\">\n" +
		"<div class=\"card\"><h2>Backup</h2><p>Download the configuration in force (the password is not in it).</p><a class=\"button\" id=\"backup\" href=\"/system/backup\" download>Download backup</a></div>\n" +
		"<div class=\"card\"><h2>Restore</h2><form method=\"post\" action=\"/system/restore\" enctype=\"multipart/form-data\">\n" +
		"<label for=\"backup-file\">Configuration file (.toml)</label><input type=\"file\" id=\"backup-file\" name=\"backup\" accept=\".toml,text/plain\" required>\n" +
		"<label for=\"restore-current\">Current password (if the file changes update settings or file paths)</label><input type=\"password\" id=\"restore-current\" name=\"current\" autocomplete=\"current-password\">\n" +
		"<button id=\"restore\">Validate and restore</button></form></div>\n" +
		"<div class=\"card\"><h2>Change password</h2><form method=\"post\" action=\"/system/password\">\n" +
		"<label for=\"current\">Current password</label><input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\" required>\n" +
		"<label for=\"new\">New password</label><input type=\"password\" id=\"new\" name=\"new\" autocomplete=\"new-password\" minlength=\"8\" required>\n" +
		"<label for=\"repeat\">Repeat it</label><input type=\"password\" id=\"repeat\" name=\"repeat\" autocomplete=\"new-password\" minlength=\"8\" required>\n" +
		"<button id=\"change-password\">Change password</button></form></div>\n")
	writeFirmwareCard(h, &d.Update)
	if d.CanRestart {
		h.raw("<div class=\"card\"><h2>Restart</h2><p>Restarts satd; cards are re-initialised and listeners reconnect.</p>\n" +
			"<form method=\"post\" action=\"/system/restart\"><button id=\"restart\" class=\"danger\">Restart satd</button></form></div>")
	}
	h.raw("\n</section>\n")
}

func writeFirmwareCard(h html, u *UpdateState) {
	h.raw(`<div class="card"><h2>Firmware update</h2><p>State: <span id="update-phase">`)
	if u.Phase != "" {
		h.text(u.Phase)
	} else {
		h.raw(`idle`)
	}
	h.raw(`</span>, running <span id="update-running">`)
	h.text(u.Current)
	h.raw(`</span></p><p id="update-message" role="status">`)
	h.text(u.Message)
	h.raw("</p>\n<form method=\"post\" action=\"/system/firmware\" enctype=\"multipart/form-data\" id=\"firmware-form\">\n" +
		"<label for=\"image\">Signed update image (tar of manifest, signature and payload)</label><input type=\"file\" id=\"image\" name=\"image\" required>\n" +
		"<label for=\"upload-progress\">Upload</label><progress id=\"upload-progress\" max=\"100\" value=\"0\"></progress>\n" +
		"<label for=\"install-progress\">Install</label><progress id=\"install-progress\" max=\"100\" value=\"0\"></progress>\n" +
		"<button id=\"upload\">Upload and verify</button></form></div>\n")
}
