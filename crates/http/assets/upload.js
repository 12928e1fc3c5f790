// The TikTok upload form: a real progress bar (bytes received by tidepost from
// XMLHttpRequest's upload.onprogress, then bytes sent to TikTok and processing by polling
// GET /api/v1/posts/{id}), errors in plain words. The post detail page refreshes itself while
// a target is still moving. No inline script (CSP).
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  function problemText(xhr) {
    try {
      var p = JSON.parse(xhr.responseText);
      return p.detail || p.title || ("HTTP " + xhr.status);
    } catch (e) {
      return xhr.status === 413 ? "The file is larger than this server accepts." :
        xhr.status === 0 ? "The connection to tidepost was lost; check your network and try again." :
        "tidepost answered HTTP " + xhr.status + ".";
    }
  }

  function bytes(n) {
    if (n >= 1073741824) return (n / 1073741824).toFixed(2) + " GB";
    if (n >= 1048576) return (n / 1048576).toFixed(1) + " MB";
    if (n >= 1024) return (n / 1024).toFixed(0) + " KB";
    return n + " bytes";
  }

  var form = $("upload-form");
  if (form) {
    var csrf = form.getAttribute("data-csrf");
    var maxBytes = Number(form.getAttribute("data-max-bytes") || "0");
    var bar = $("bar"), phase = $("phase"), detail = $("detail"), errorBox = $("upload-error");

    // One bar from the first byte to published, never moving backwards: bytes received by
    // tidepost fill 0-40 %, bytes sent to TikTok 40-85 %, processing 90 %, published 100 %.
    var box = $("progress");
    function show(p, value, text) {
      box.hidden = false;
      box.classList.remove("failed");
      phase.textContent = p;
      bar.value = Math.max(bar.value, Math.min(100, value));
      detail.textContent = text || "";
    }
    function fail(message) {
      if (!box.hidden) {
        box.classList.add("failed");
        phase.textContent = "Not published";
        detail.textContent = "";
      }
      errorBox.textContent = message;
      errorBox.hidden = false;
      $("submit").disabled = false;
      $("submit").classList.remove("busy");
    }

    var account = $("account_id");
    if (account) {
      account.addEventListener("change", function () {
        window.location = "/posts/new?account=" + encodeURIComponent(account.value);
      });
    }
    var modes = form.querySelectorAll("input[name=mode]");
    Array.prototype.forEach.call(modes, function (radio) {
      radio.addEventListener("change", function () {
        var direct = form.querySelector("input[name=mode]:checked").value === "direct";
        $("direct-options").hidden = !direct;
      });
    });
    var drop = $("dropzone"), file = $("file");
    if (drop && file) {
      ["dragenter", "dragover"].forEach(function (t) {
        drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
      });
      ["dragleave", "drop"].forEach(function (t) {
        drop.addEventListener(t, function () { drop.classList.remove("over"); });
      });
      drop.addEventListener("drop", function (e) {
        e.preventDefault();
        if (e.dataTransfer && e.dataTransfer.files.length) file.files = e.dataTransfer.files;
      });
    }

    function poll(id) {
      var xhr = new XMLHttpRequest();
      xhr.open("GET", "/api/v1/posts/" + encodeURIComponent(id));
      xhr.onload = function () {
        if (xhr.status !== 200) { fail(problemText(xhr)); return; }
        var post = JSON.parse(xhr.responseText);
        var t = post.targets[0];
        if (t.state === "published") {
          box.classList.add("done");
          show("Published", 100, t.mode === "inbox" ? "The draft is in the creator's TikTok inbox." :
            "TikTok's public post id may appear only after moderation.");
          window.location = "/posts/" + encodeURIComponent(id);
          return;
        }
        if (t.state === "failed" || t.state === "cancelled") {
          fail(t.state === "cancelled" ? "The post was cancelled." :
            (t.error ? t.error.message : "The post did not go through."));
          return;
        }
        if (t.state === "processing") {
          show("TikTok is processing the video", 90, "This can take a minute.");
        } else if (t.bytes_total > 0) {
          show("Sending to TikTok", 40 + Math.floor(45 * t.bytes_sent / t.bytes_total),
            bytes(t.bytes_sent) + " of " + bytes(t.bytes_total) +
            (t.error ? " — retrying: " + t.error.message : ""));
        } else {
          show("Waiting for a worker", 40, t.error ? "Retrying: " + t.error.message : "");
        }
        setTimeout(function () { poll(id); }, 1500);
      };
      xhr.onerror = function () {
        detail.textContent = "Lost touch with tidepost; trying again…";
        setTimeout(function () { poll(id); }, 3000);
      };
      xhr.send();
    }

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      errorBox.hidden = true;
      box.hidden = true;
      box.classList.remove("failed", "done");
      bar.value = 0;
      var chosen = file.files[0];
      if (!chosen) { fail("Choose a video file first."); return; }
      if (maxBytes && chosen.size > maxBytes) { fail("The file is larger than the " + bytes(maxBytes) + " this server accepts."); return; }
      var mode = form.querySelector("input[name=mode]:checked").value;
      var privacy = $("privacy_level");
      if (mode === "direct" && (!privacy || !privacy.value)) { fail("Choose who can see the post."); return; }
      var data = new FormData();
      data.append("account_id", account.value);
      data.append("mode", mode);
      data.append("caption", $("caption").value);
      if (mode === "direct") {
        data.append("privacy_level", privacy.value);
        ["comment", "duet", "stitch"].forEach(function (k) {
          var box = form.querySelector("input[name=allow_" + k + "]");
          data.append("disable_" + k, box && box.checked && !box.disabled ? "false" : "true");
        });
        ["brand_organic_toggle", "brand_content_toggle", "is_aigc"].forEach(function (k) {
          data.append(k, form.querySelector("input[name=" + k + "]").checked ? "true" : "false");
        });
      }
      data.append("file", chosen, chosen.name);
      $("submit").disabled = true;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/posts");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.upload.onprogress = function (ev) {
        if (ev.lengthComputable) {
          show("Uploading to tidepost", Math.floor(40 * ev.loaded / ev.total), bytes(ev.loaded) + " of " + bytes(ev.total));
        }
      };
      xhr.onload = function () {
        if (xhr.status !== 202 && xhr.status !== 200) { fail(problemText(xhr)); return; }
        var post = JSON.parse(xhr.responseText);
        show("Sending to TikTok", 40, "tidepost has the file.");
        poll(post.id);
      };
      xhr.onerror = function () { fail(problemText(xhr)); };
      show("Uploading to tidepost", 0);
      xhr.send(data);
    });
  }

  var live = document.querySelector("[data-live]");
  if (live) setTimeout(function () { window.location.reload(); }, 3000);
})();
