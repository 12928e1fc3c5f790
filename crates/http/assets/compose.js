// The composer (/compose): what needs a script on top of the plain form. Shows each picked
// account's options, fills in the browser's time zone, uploads new files into the media
// library with a progress bar (tus_upload.js), previews the post per platform, and checks the
// post as it is edited through POST /api/v1/posts/validate, showing each problem beside the
// account it concerns. The form still submits normally; the server checks everything again.
(function () {
  "use strict";

  var form = document.getElementById("compose");
  if (!form) return;
  var csrf = form.getAttribute("data-csrf");
  var general = document.getElementById("compose-general");
  var verdict = document.getElementById("validation");
  var picker = document.getElementById("media-picker");

  function $all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  function value(name) {
    var el = form.elements[name];
    return el ? (el.value || "").trim() : "";
  }

  function when() {
    var checked = form.querySelector('input[name="when"]:checked');
    return checked ? checked.value : "now";
  }

  function targets() {
    return $all("fieldset.target").filter(function (fs) {
      var box = fs.querySelector('input[name="targets"]');
      return box && box.checked && !box.disabled;
    });
  }

  function option(fs, field) {
    var id = fs.getAttribute("data-target");
    return form.elements[field + ":" + id];
  }

  // The request POST /api/v1/posts/validate takes: the composite shape of POST /posts.
  function body() {
    var media = $all('input[name="media"]:checked').map(function (box) {
      return { media_id: box.value };
    });
    if (value("media_url")) {
      media.push({ url: value("media_url"), kind: value("media_url_kind") || "video" });
    }
    var list = targets().map(function (fs) {
      var spec = { account_id: fs.getAttribute("data-target") };
      var caption = option(fs, "caption");
      if (caption && caption.value.trim()) spec.caption = caption.value.trim();
      if (fs.getAttribute("data-platform") === "instagram") {
        var type = option(fs, "ig_type");
        spec.instagram = type && type.value ? { media_type: type.value } : {};
      } else {
        var privacy = option(fs, "privacy");
        var mode = option(fs, "mode");
        spec.tiktok = {
          mode: mode ? mode.value : "direct",
          disable_comment: !!(option(fs, "disable_comment") || {}).checked,
          disable_duet: !!(option(fs, "disable_duet") || {}).checked,
          disable_stitch: !!(option(fs, "disable_stitch") || {}).checked,
        };
        if (privacy && privacy.value) spec.tiktok.privacy_level = privacy.value;
      }
      return spec;
    });
    var out = { caption: form.elements.caption.value, media: media, targets: list };
    var w = when();
    if (w !== "now" && value("scheduled_at")) {
      out.scheduled_at = value("scheduled_at");
      if (value("time_zone")) out.time_zone = value("time_zone");
    }
    if (w === "next") out.schedule = "next_free_slot";
    return out;
  }

  function clearIssues() {
    $all("[data-issues-for]").forEach(function (ul) { ul.textContent = ""; });
    $all("fieldset.target").forEach(function (fs) { fs.classList.remove("has-issues"); });
    general.textContent = "";
  }

  function showGeneral(messages) {
    if (!messages.length) return;
    var box = document.createElement("div");
    box.className = "notice error";
    var ul = document.createElement("ul");
    ul.className = "issues";
    messages.forEach(function (m) {
      var li = document.createElement("li");
      li.textContent = m;
      ul.appendChild(li);
    });
    box.appendChild(ul);
    general.appendChild(box);
  }

  function capital(text) {
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  }

  function showVerdict(result) {
    clearIssues();
    var loose = [];
    (result.errors || []).forEach(function (issue) {
      var text = capital(issue.message);
      if (issue.next_slot_at) text += " (next free slot: " + new Date(issue.next_slot_at).toLocaleString() + ")";
      var ul = issue.account_id && form.querySelector('[data-issues-for="' + issue.account_id + '"]');
      if (ul) {
        var li = document.createElement("li");
        li.textContent = text;
        ul.appendChild(li);
        ul.closest("fieldset").classList.add("has-issues");
      } else {
        loose.push(text);
      }
    });
    showGeneral(loose);
    if (result.valid) {
      var times = (result.targets || []).map(function (t) { return t.run_at; }).filter(Boolean);
      verdict.className = "small ok-text";
      verdict.textContent = "Ready for " + result.targets.length + " account" +
        (result.targets.length === 1 ? "" : "s") +
        (times.length ? ", going out " + new Date(times[0]).toLocaleString() : ", going out now") + ".";
    } else {
      var n = (result.errors || []).length;
      verdict.className = "small bad-text";
      verdict.textContent = n + " problem" + (n === 1 ? "" : "s") + " to fix before publishing.";
    }
  }

  var timer = null;
  var sequence = 0;
  function validateSoon() {
    clearTimeout(timer);
    timer = setTimeout(validate, 350);
  }

  function validate() {
    renderPreview();
    if (!targets().length) {
      clearIssues();
      verdict.className = "small muted";
      verdict.textContent = "Pick at least one account.";
      return;
    }
    var mine = ++sequence;
    verdict.className = "small loading";
    verdict.textContent = "Checking…";
    fetch("/api/v1/posts/validate", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body()),
    }).then(function (response) {
      return response.json().then(function (json) { return { ok: response.ok, json: json }; });
    }).then(function (answer) {
      if (mine !== sequence) return; // a newer check is on its way
      if (answer.ok) {
        showVerdict(answer.json);
      } else {
        clearIssues();
        showGeneral([answer.json.detail || "The post could not be checked."]);
        verdict.className = "small bad-text";
        verdict.textContent = "Fix the problem above.";
      }
    }).catch(function () {
      if (mine !== sequence) return;
      verdict.className = "small muted";
      verdict.textContent = "Could not check the post right now; it is checked again when you publish.";
    });
  }

  // One preview per picked account: the caption it will carry and the media.
  function renderPreview() {
    var list = document.getElementById("preview-list");
    var empty = document.getElementById("preview-empty");
    list.textContent = "";
    var picked = targets();
    empty.hidden = picked.length > 0;
    var media = $all('input[name="media"]:checked').map(function (box) {
      return box.getAttribute("data-kind") + ": " + box.getAttribute("data-name");
    });
    if (value("media_url")) media.push((value("media_url_kind") || "video") + ": " + value("media_url"));
    picked.forEach(function (fs) {
      var platform = fs.getAttribute("data-platform");
      var own = option(fs, "caption");
      var caption = own && own.value.trim() ? own.value.trim() : form.elements.caption.value.trim();
      var card = document.createElement("article");
      card.className = "preview preview-" + platform;
      var head = document.createElement("p");
      head.className = "preview-head";
      head.textContent = (platform === "instagram" ? "Instagram · " : "TikTok · ") + fs.getAttribute("data-name");
      var frame = document.createElement("div");
      frame.className = "preview-frame";
      frame.textContent = media.length ? media.join("\n") : "No media yet";
      var text = document.createElement("p");
      text.className = "preview-caption";
      text.textContent = caption || "(no caption)";
      card.appendChild(head);
      card.appendChild(frame);
      card.appendChild(text);
      list.appendChild(card);
    });
  }

  function syncTargets() {
    $all("fieldset.target").forEach(function (fs) {
      var box = fs.querySelector('input[name="targets"]');
      var options = fs.querySelector(".target-options");
      if (options) options.hidden = !(box && box.checked);
    });
  }

  function syncWhen() {
    document.getElementById("when-at").hidden = when() === "now";
  }

  function syncCount() {
    document.getElementById("caption-count").textContent = String(form.elements.caption.value.length);
  }

  // The browser's zone, unless the page came back with one the person chose.
  var zone = form.elements.time_zone;
  try {
    var mineZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && mineZone && (zone.value === "" || zone.value === "UTC") && !value("scheduled_at")) {
      zone.value = mineZone;
    }
    $all("a[data-add-tz]").forEach(function (a) {
      a.href = a.pathname + "?tz=" + encodeURIComponent(mineZone);
    });
  } catch (e) { /* no Intl: the zone stays as typed */ }

  // New files go to the media library first, then are picked for this post.
  var fileInput = document.getElementById("compose-file");
  var box = document.getElementById("compose-upload");
  var bar = document.getElementById("compose-upload-bar");
  var status = document.getElementById("compose-upload-status");
  var name = document.getElementById("compose-upload-name");
  var submit = document.getElementById("compose-submit");
  function uploadNext(files) {
    if (!files.length) {
      submit.disabled = false;
      fileInput.value = "";
      validateSoon();
      return;
    }
    var file = files.shift();
    box.hidden = false;
    submit.disabled = true;
    name.textContent = file.name;
    bar.value = 0;
    bar.max = file.size || 1;
    status.textContent = "Uploading…";
    window.TidepostUpload.start(file, {
      csrf: csrf,
      onProgress: function (sent, total) {
        bar.max = total || 1;
        bar.value = sent;
        status.textContent = Math.round((100 * sent) / (total || 1)) + " % of " + (total / 1048576).toFixed(1) + " MiB";
      },
      onSuccess: function (mediaId) {
        status.textContent = "Uploaded and added to the library.";
        var li = document.createElement("li");
        var label = document.createElement("label");
        label.className = "check";
        var input = document.createElement("input");
        input.type = "checkbox";
        input.name = "media";
        input.value = mediaId;
        input.checked = true;
        input.setAttribute("data-kind", /^image\//.test(file.type) ? "image" : "video");
        input.setAttribute("data-name", file.name);
        var span = document.createElement("span");
        span.textContent = " " + file.name + " (just uploaded)";
        label.appendChild(input);
        label.appendChild(span);
        li.appendChild(label);
        picker.insertBefore(li, picker.firstChild);
        var empty = document.getElementById("media-empty");
        if (empty) empty.hidden = true;
        uploadNext(files);
      },
      onError: function (message) {
        status.textContent = "The upload failed: " + message;
        submit.disabled = false;
      },
    });
  }
  if (fileInput) {
    fileInput.addEventListener("change", function () {
      if (!window.TidepostUpload) {
        status.textContent = "The uploader did not load; reload the page.";
        return;
      }
      uploadNext(Array.prototype.slice.call(fileInput.files));
    });
  }

  form.addEventListener("change", function (event) {
    if (event.target === fileInput) return;
    syncTargets();
    syncWhen();
    validateSoon();
  });
  form.addEventListener("input", function (event) {
    if (event.target === fileInput) return;
    syncCount();
    validateSoon();
  });
  syncTargets();
  syncWhen();
  syncCount();
  validate();
})();
