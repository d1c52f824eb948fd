// satd web form: progressive enhancements only; every page works without it.
(function () {
  "use strict";

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
        // After a revert the form listens where it did before.
        var back = cd.getAttribute("data-revert-url");
        setTimeout(function () { if (back) { location.href = back; } else { location.reload(); } }, 1500);
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
      [new Date(e.time).toLocaleString(), e.level, e.msg, e.attrs].forEach(function (v, i) {
        var td = document.createElement("td");
        if (i === 3) { td.className = "mono"; }
        td.textContent = v;
        tr.appendChild(td);
      });
      body.appendChild(tr);
      while (body.rows.length > 500) { body.deleteRow(0); }
    };
  }
  var level = document.getElementById("level");
  if (level) {
    level.addEventListener("change", function () { level.form.submit(); });
  }

  // System page: firmware upload with a progress bar.
  var fw = document.getElementById("firmware-form");
  if (fw && window.FormData) {
    fw.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var bar = document.getElementById("upload-progress");
      var phase = document.getElementById("update-phase");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", fw.action);
      xhr.upload.onprogress = function (p) {
        if (p.lengthComputable) { bar.value = Math.round(100 * p.loaded / p.total); }
      };
      xhr.onload = function () {
        bar.value = 100;
        var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        var msg = doc.querySelector(".flash, .error");
        phase.textContent = msg ? msg.textContent : ("HTTP " + xhr.status);
      };
      xhr.send(new FormData(fw));
    });
  }
})();
