// satd web form: progressive enhancements only; every page works without it.
(function () {
  "use strict";

  // Phone layout: tables become cards (satd.css); each cell is labelled
  // with its column's heading.
  var label = function (tr) {
    var table = tr.closest("table");
    var ths = table ? table.querySelectorAll("thead th") : [];
    for (var i = 0; i < tr.cells.length && i < ths.length; i++) {
      if (ths[i].textContent) { tr.cells[i].setAttribute("data-label", ths[i].textContent); }
    }
  };
  document.querySelectorAll("tbody tr").forEach(label);

  // Status and Load balancer pages: refresh the live parts every 5 s from
  // the same page, swapping whole elements (no reload, no flicker). A
  // session that expired stops it; the next click goes to the login.
  var live = ["facts", "readers", "services", "mounts", "decisions"].filter(function (id) {
    return document.getElementById(id);
  });
  if (live.length && window.fetch && window.DOMParser) {
    var refresh = function () {
      if (document.hidden) { setTimeout(refresh, 5000); return; }
      fetch(location.href, {credentials: "same-origin"}).then(function (resp) {
        if (!resp.ok || resp.redirected) { return null; }
        return resp.text();
      }).then(function (text) {
        if (text === null) { return; }
        var doc = new DOMParser().parseFromString(text, "text/html");
        live.forEach(function (id) {
          var now = document.getElementById(id), next = doc.getElementById(id);
          if (now && next) { now.replaceWith(next); next.querySelectorAll("tbody tr").forEach(label); }
        });
        setTimeout(refresh, 5000);
      }).catch(function () { setTimeout(refresh, 5000); });
    };
    setTimeout(refresh, 5000);
  }

  // Configuration form: the edits survive an expired session. They are kept
  // in sessionStorage on submit, dropped once the save went through (or the
  // server showed them back), and put back when the form returns after a
  // login.
  var cf = document.getElementById("config-form") || document.getElementById("reader-form");
  if (cf && window.sessionStorage) {
    var store = "satd-edits:" + cf.elements.section.value;
    var kept = sessionStorage.getItem(store);
    sessionStorage.removeItem(store);
    if (kept && !document.querySelector(".flash, #page-error")) {
      JSON.parse(kept).forEach(function (f) {
        var el = cf.elements.namedItem(f[0]);
        if (!el || el.length) { return; }
        if (el.type === "checkbox") { el.checked = f[1] === "on"; } else { el.value = f[1]; }
      });
      var note = document.createElement("p");
      note.className = "note";
      note.id = "edits-restored";
      note.textContent = "Your edits from before the login are back in the form; they are not saved yet.";
      cf.parentNode.insertBefore(note, cf);
    }
    cf.addEventListener("submit", function () {
      var out = [];
      Array.prototype.forEach.call(cf.elements, function (el) {
        if (!el.name || el.type === "password" || el.type === "file" || el.type === "hidden") { return; }
        out.push([el.name, el.type === "checkbox" ? (el.checked ? "on" : "") : el.value]);
      });
      sessionStorage.setItem(store, JSON.stringify(out));
    });
  }

  // Confirm page after the form moved: go to the new address at once (the
  // old listener is closing); the user confirms from there.
  var moved = document.getElementById("new-url");
  if (moved) {
    location.href = moved.href;
    return;
  }

  // Confirm page: count down to the revert and show the outcome.
  var cd = document.getElementById("countdown");
  if (cd) {
    var deadline = parseInt(cd.getAttribute("data-deadline"), 10) * 1000;
    var tick = function () {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      cd.textContent = String(left);
      if (left <= 0) {
        // After a revert the form listens where it did before. satd binds
        // the old address before it lets go of this one, so once this
        // address stops answering the old one is there; a loaded receiver
        // may take a while to get to the revert.
        var back = cd.getAttribute("data-revert-url");
        if (!back) {
          setTimeout(function () { location.reload(); }, 1500);
          return;
        }
        var follow = function () {
          fetch(location.pathname, { cache: "no-store" }).then(
            function () { setTimeout(follow, 500); },
            function () { location.href = back; });
        };
        setTimeout(follow, 1500);
        return;
      }
      setTimeout(tick, 1000);
    };
    tick();
  }

  // Log page: live tail over server-sent events, rows built with textContent.
  var log = document.getElementById("log");
  if (log && window.EventSource) {
    var body = document.getElementById("log-body");
    var url = "/log/events?level=" + encodeURIComponent(log.getAttribute("data-level")) +
      "&since=" + encodeURIComponent(log.getAttribute("data-since"));
    var es = new EventSource(url);
    es.onmessage = function (ev) {
      var e = JSON.parse(ev.data);
      var tr = document.createElement("tr");
      tr.className = "lv-" + e.level;
      // The server's time format (the box's local time): "2006-01-02 15:04:05".
      var when = String(e.time).slice(0, 19).replace("T", " ");
      [when, e.level, e.msg, e.attrs].forEach(function (v, i) {
        var td = document.createElement("td");
        if (i === 3) { td.className = "mono"; }
        td.textContent = v;
        tr.appendChild(td);
      });
      body.appendChild(tr);
      label(tr);
      while (body.rows.length > 500) { body.deleteRow(0); }
    };
  }
  var level = document.getElementById("level");
  if (level) {
    level.addEventListener("change", function () { level.form.submit(); });
  }
  // Reader page: a new protocol shows its fields at once, the edits kept
  // (the Change button posts them as a preview).
  var change = document.getElementById("change-protocol");
  var proto = document.querySelector("#protocol-switch select");
  if (change && proto) {
    proto.addEventListener("change", function () { change.click(); });
  }

  // System page: firmware upload with progress bars for the upload and the
  // install, then the outcome, followed through /api/update across the
  // restart into the new version.
  var fw = document.getElementById("firmware-form");
  if (fw && window.FormData && window.fetch) {
    var up = document.getElementById("upload-progress");
    var inst = document.getElementById("install-progress");
    var phase = document.getElementById("update-phase");
    var running = document.getElementById("update-running");
    var msg = document.getElementById("update-message");
    var show = function (st) {
      phase.textContent = st.phase;
      running.textContent = st.current_version;
      msg.textContent = st.message || "";
      if (st.total > 0) { inst.value = Math.round(100 * st.done / st.total); }
      if (st.phase === "done") { inst.value = 100; }
    };
    var follow = function (from) {
      var polls = 0;
      var t = setInterval(function () {
        if (++polls > 900) { clearInterval(t); msg.textContent = "no outcome after 10 minutes; reload the page"; return; }
        fetch("/api/update", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
          if (r.status === 401 || r.status === 403) { clearInterval(t); msg.textContent = "log in again to see the outcome"; return; }
          if (!r.ok) { throw r.status; }
          return r.json().then(function (st) {
            show(st);
            if (st.phase === "done" || st.phase === "failed" || (st.phase === "idle" && st.current_version !== from)) {
              clearInterval(t);
              fw.classList.add(st.phase === "failed" ? "update-failed" : "update-finished");
            }
          });
        }).catch(function () {
          phase.textContent = "restarting";
          msg.textContent = "waiting for satd to come back";
        });
      }, 700);
    };
    fw.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var from = running.textContent;
      up.value = 0; inst.value = 0;
      phase.textContent = "uploading";
      msg.textContent = "";
      fw.classList.remove("update-failed", "update-finished");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", fw.action);
      xhr.upload.onprogress = function (p) {
        if (p.lengthComputable) { up.value = Math.round(100 * p.loaded / p.total); }
      };
      xhr.onload = function () {
        up.value = 100;
        var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        var m = doc.querySelector(".flash, .error");
        msg.textContent = m ? m.textContent : ("HTTP " + xhr.status);
        if (xhr.status === 200) {
          phase.textContent = "installing";
          follow(from);
        } else {
          phase.textContent = "refused";
          fw.classList.add("update-failed");
        }
      };
      xhr.onerror = function () {
        phase.textContent = "failed";
        msg.textContent = "the upload was cut off";
        fw.classList.add("update-failed");
      };
      xhr.send(new FormData(fw));
    });
  }
})();
