// The composer (/compose), the one posting form: what needs a script on top of the plain form.
// Shows each picked account's platform panel and keeps it consistent (TikTok: the options of a
// direct post only for a direct post, the brand boxes under "Disclose commercial content",
// branded content never "Only me", the consent line naming the Branded Content Policy when it
// applies, no duets or stitches for a photo post; Instagram: a reel's cover and feed choice),
// fills in the browser's time zone, uploads new files into the media library with a progress
// bar (resumable, tus_upload.js), previews the post per platform (drawn by preview.js, shared
// with the post page; on an Instagram image or carousel item a click tags a person there,
// written as a line of the "People tagged" field, which stays the way without a script or a
// pointer), and checks the post as it is edited through POST /api/v1/posts/validate, showing
// each problem beside the account it concerns. A submit the page can already tell is incomplete (no account, no media, an upload
// still going or too large, no privacy chosen, a disclosure without its kind) is refused
// before it leaves: the message says why, focus moves to the field, what was typed stays and
// the button stays usable. Otherwise the form submits normally; the server checks it all again.
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

  function role(fs, name) {
    return fs.querySelector('[data-role="' + name + '"]');
  }

  // A box that counts: ticked and not turned off (a disabled box is not sent either).
  function on(fs, name) {
    var box = role(fs, name);
    return !!(box && box.checked && !box.disabled);
  }

  function isDirect(fs) {
    var mode = role(fs, "mode");
    return !mode || mode.value !== "inbox";
  }

  // The picked media, in the order the post lists them: [{id, name, kind, duration}] (a
  // library item has its id and, for a video, its probed length in milliseconds).
  function pickedMedia() {
    var media = $all('input[name="media"]:checked').map(function (box) {
      return {
        id: box.value,
        name: box.getAttribute("data-name"),
        kind: box.getAttribute("data-kind"),
        duration: Number(box.getAttribute("data-duration-ms") || "0"),
        duration_ms: Number(box.getAttribute("data-duration-ms") || "0"),
        width: Number(box.getAttribute("data-width") || "0"),
        height: Number(box.getAttribute("data-height") || "0"),
      };
    });
    if (value("media_url")) media.push({ name: value("media_url"), url: value("media_url"), kind: value("media_url_kind") || "video" });
    return media;
  }

  // The one video of the post when it is a library item of known length (the frame picker's
  // video), else null.
  function pickedVideo() {
    var media = pickedMedia();
    if (media.length !== 1 || media[0].kind !== "video" || !media[0].id || !(media[0].duration > 0)) return null;
    return media[0];
  }

  function photoPost() {
    var media = pickedMedia();
    return media.length > 0 && media.every(function (m) { return m.kind === "image"; });
  }

  // An Instagram panel's media type: the one chosen, or what the media make it (one image,
  // one video a reel, several a carousel).
  // A Threads panel's post type: chosen, or what the media make it (none: text).
  function thType(fs) {
    var type = role(fs, "th-type");
    if (type && type.value) return type.value;
    var media = pickedMedia();
    if (media.length > 1) return "carousel";
    if (media.length === 1) return media[0].kind === "image" ? "image" : "video";
    return "text";
  }

  function igType(fs) {
    var type = role(fs, "ig-type");
    if (type && type.value) return type.value;
    var media = pickedMedia();
    if (media.length > 1) return "carousel";
    if (media.length === 1) return media[0].kind === "image" ? "image" : "reel";
    return "";
  }

  // The "People tagged" field: one tag a line, "[N: ]username[ x y]" (N counted from 1).
  // A number that does not read is sent as typed, so the check names the field.
  function parseTags(text) {
    return parseTagLines(text).map(function (t) { return t.tag; });
  }

  // Each tag of the field with the number of its line (from 0): [{line, tag}].
  function parseTagLines(text) {
    return text.split("\n").map(function (line, n) { return { n: n, text: line.trim() }; }).filter(function (l) {
      return l.text;
    }).map(function (l) {
      var line = l.text;
      var tag = {};
      var m = /^(\d+)\s*:\s*(.*)$/.exec(line);
      if (m) {
        tag.item = Number(m[1]) - 1;
        line = m[2];
      }
      var words = line.split(/\s+/);
      tag.username = words[0] || "";
      var number = function (w) { return /^-?\d*\.?\d+$/.test(w) ? Number(w) : w; };
      if (words.length > 1) tag.x = number(words[1]);
      if (words.length > 2) tag.y = number(words[2]);
      return { line: l.n, tag: tag };
    });
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
      if (fs.getAttribute("data-platform") === "threads") {
        spec.threads = {};
        var thType0 = role(fs, "th-type");
        if (thType0 && thType0.value) spec.threads.media_type = thType0.value;
        var reply = role(fs, "th-reply");
        if (reply && reply.value) spec.threads.reply_control = reply.value;
        var link = shownField(fs, "th-link");
        if (link && link.value.trim()) spec.threads.link_attachment = link.value.trim();
        var alt = shownField(fs, "th-alt");
        if (alt && alt.value.trim()) spec.threads.alt_text = alt.value.trim();
        return spec;
      }
      if (fs.getAttribute("data-platform") === "instagram") {
        var type = role(fs, "ig-type");
        spec.instagram = {};
        if (type && type.value) spec.instagram.media_type = type.value;
        var kind = igType(fs);
        var text = function (name) {
          var el = role(fs, name);
          return el ? el.value.trim() : "";
        };
        // The reel's part shows (and counts) once "Reel" is chosen, as without the script.
        if (type && type.value === "reel") {
          var cover = role(fs, "ig-cover");
          if (cover && cover.value.trim()) spec.instagram.cover_url = cover.value.trim();
          spec.instagram.share_to_feed = on(fs, "ig-share");
          // Not a whole number: sent as typed, so the check names the field.
          if (text("ig-thumb")) spec.instagram.thumb_offset = /^\d+$/.test(text("ig-thumb")) ? Number(text("ig-thumb")) : text("ig-thumb");
          if (text("ig-audio")) spec.instagram.audio_name = text("ig-audio");
          if (text("ig-trial")) spec.instagram.trial_params = { graduation_strategy: text("ig-trial") };
        }
        if (kind === "image" && text("ig-alt")) spec.instagram.alt_text = text("ig-alt");
        if (kind !== "story") {
          if (text("ig-collaborators")) {
            spec.instagram.collaborators = text("ig-collaborators").split(/[\s,]+/).filter(Boolean);
          }
          if (text("ig-tags")) spec.instagram.user_tags = parseTags(text("ig-tags"));
          if (text("ig-location")) spec.instagram.location_id = text("ig-location");
          if (text("ig-comment")) spec.instagram.first_comment = text("ig-comment");
        }
      } else {
        var privacy = role(fs, "privacy");
        var disclose = on(fs, "disclose");
        // "Allow …" unticked (or turned off) is the interaction disabled.
        spec.tiktok = {
          mode: isDirect(fs) ? "direct" : "inbox",
          disable_comment: !on(fs, "allow-comment"),
          disable_duet: !on(fs, "allow-duet"),
          disable_stitch: !on(fs, "allow-stitch"),
          brand_organic_toggle: disclose && on(fs, "brand-organic"),
          brand_content_toggle: disclose && on(fs, "brand-content"),
          is_aigc: on(fs, "aigc"),
        };
        if (privacy && privacy.value) spec.tiktok.privacy_level = privacy.value;
        // A photo post's title, description and music (disabled for a video: not sent).
        var photoText = function (name) {
          var el = role(fs, name);
          return el && !el.disabled ? el.value.trim() : "";
        };
        if (photoText("photo-title")) spec.tiktok.title = photoText("photo-title");
        if (photoText("photo-description")) spec.tiktok.description = photoText("photo-description");
        if (on(fs, "auto-music")) spec.tiktok.auto_add_music = true;
        // The cover photo, counted from 1 on the form, from 0 in the API.
        var coverPhoto = photoText("photo-cover");
        if (coverPhoto) spec.tiktok.photo_cover_index = /^\d+$/.test(coverPhoto) && Number(coverPhoto) >= 1 ? Number(coverPhoto) - 1 : coverPhoto;
        var cover = role(fs, "cover-ms");
        var coverText = cover && !cover.disabled ? cover.value.trim() : "";
        // Not a whole number: sent as typed, so the check names the field.
        if (coverText) spec.tiktok.video_cover_timestamp_ms = /^\d+$/.test(coverText) ? Number(coverText) : coverText;
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

  // A time as the person reads it: in the zone the form names (the one they typed, else the
  // browser's), with that zone said.
  function zoned(at) {
    var tz = value("time_zone");
    var date = new Date(at);
    try {
      return date.toLocaleString(undefined, {
        timeZone: tz || undefined, dateStyle: "medium", timeStyle: "short",
      }) + " (" + (tz || Intl.DateTimeFormat().resolvedOptions().timeZone) + ")";
    } catch (e) {
      // An unknown zone is the server's to refuse; meanwhile UTC, named.
      return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
    }
  }

  function showVerdict(result) {
    clearIssues();
    var loose = [];
    var names = pickedMedia().map(function (m) { return m.name; });
    (result.errors || []).forEach(function (issue) {
      var text = capital(issue.message);
      // A media rule names the file it is about.
      var item = /^media\[(\d+)\]/.exec(issue.field || "");
      var counted = /^Item (\d+): /.exec(text);
      if (item && names[Number(item[1])]) {
        text = names[Number(item[1])] + ": " + text;
      } else if (counted && names[Number(counted[1]) - 1]) {
        text = "Item " + counted[1] + " (" + names[Number(counted[1]) - 1] + "): " + text.slice(counted[0].length);
      }
      if (issue.next_slot_at) text += " (next free slot: " + zoned(issue.next_slot_at) + ")";
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
        (times.length ? ", going out " + zoned(times[0]) : ", going out now") + ".";
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

  // The chosen cover frame of a target (TikTok's cover or a reel's), 0 when none.
  function coverOf(fs) {
    var field = role(fs, "cover-ms") || role(fs, "ig-thumb");
    var n = field && !field.disabled ? Number(field.value) : 0;
    return isFinite(n) && n > 0 ? Math.floor(n / 100) * 100 : 0;
  }

  // A target's field when it is shown (a part hidden for this media type is not sent).
  function shownField(fs, name) {
    var field = role(fs, name);
    return field && !field.closest("[hidden]") ? field : null;
  }

  // A person tagged by clicking the preview: a line of the "People tagged" field, the one
  // place the form keeps tags ("N: " first on a carousel, N counted from 1).
  function addTag(fs, item, x, y, username) {
    var field = role(fs, "ig-tags");
    var line = (igType(fs) === "carousel" ? (item + 1) + ": " : "") + username + " " + x + " " + y;
    var text = field.value.replace(/\s+$/, "");
    field.value = text ? text + "\n" + line : line;
    field.dispatchEvent(new Event("input", { bubbles: true }));
    renderPreview();
  }

  function removeTag(fs, tag) {
    var field = role(fs, "ig-tags");
    var lines = field.value.split("\n");
    lines.splice(tag.line, 1);
    field.value = lines.join("\n");
    field.dispatchEvent(new Event("input", { bubbles: true }));
    renderPreview();
  }

  // What the shared preview (preview.js) draws for one picked account, read from the form.
  function previewModel(fs, media) {
    var platform = fs.getAttribute("data-platform");
    var own = option(fs, "caption");
    var model = {
      platform: platform,
      target: fs.getAttribute("data-target"),
      name: fs.getAttribute("data-name"),
      caption: own && own.value.trim() ? own.value.trim() : form.elements.caption.value.trim(),
      media: media,
      labels: [],
      collaborators: [],
      tags: [],
    };
    if (platform === "threads") {
      model.kind = thType(fs);
      var thLink = shownField(fs, "th-link");
      if (thLink && thLink.value.trim()) model.link_attachment = thLink.value.trim();
    } else if (platform === "instagram") {
      model.kind = igType(fs);
      if (model.kind === "reel") {
        model.cover_ms = coverOf(fs);
        var coverUrl = role(fs, "ig-cover");
        if (coverUrl && coverUrl.value.trim()) model.cover_url = coverUrl.value.trim();
      }
      var collab = shownField(fs, "ig-collaborators");
      if (collab) model.collaborators = collab.value.split(/[\s,]+/).filter(Boolean);
      var tagged = shownField(fs, "ig-tags");
      if (tagged) {
        model.tags = parseTagLines(tagged.value).map(function (t) {
          t.tag.line = t.line;
          return t.tag;
        });
        model.taggable = true;
      }
    } else {
      model.kind = photoPost() ? "photo" : "video";
      model.cover_ms = coverOf(fs);
      var coverPhoto = role(fs, "photo-cover");
      if (model.kind === "photo" && coverPhoto && /^\d+$/.test(coverPhoto.value.trim())) {
        model.start = Math.max(0, Number(coverPhoto.value.trim()) - 1);
      }
      if (on(fs, "disclose")) {
        if (on(fs, "brand-organic")) model.labels.push("Promotional content");
        if (on(fs, "brand-content")) model.labels.push("Paid partnership");
      }
      if (on(fs, "aigc")) model.labels.push("AI-generated");
    }
    return model;
  }

  var lastDrawn = "";

  // One preview per picked account (preview.js draws it). While a tag's username is being
  // typed in a preview, the previews wait, not to lose it.
  function renderPreview() {
    var preview = window.TidepostPreview;
    if (!preview || preview.typing()) return;
    preview.settle();
    var picked = targets();
    var media = pickedMedia();
    var models = picked.map(function (fs) { return previewModel(fs, media); });
    // Drawn again only when something it shows changed: a redraw replaces the images and
    // buttons under the pointer (a click on a marker's × would be lost).
    var drawn = JSON.stringify(models) + "|" + preview.state();
    if (drawn === lastDrawn) return;
    lastDrawn = drawn;
    var list = document.getElementById("preview-list");
    var empty = document.getElementById("preview-empty");
    list.textContent = "";
    empty.hidden = picked.length > 0;
    picked.forEach(function (fs, i) {
      list.appendChild(preview.card(models[i], {
        redraw: renderPreview,
        tag: function (item, x, y, username) { addTag(fs, item, x, y, username); },
        untag: function (tag) { removeTag(fs, tag); },
      }));
    });
  }

  // The frame pickers (a slider and the frame the server renders) under the cover-frame
  // fields, for the picked video. The slider moves in 100 ms steps over the video's probed
  // length and writes the field; the field typed moves the slider. Nothing is chosen until the
  // person moves one of them (TikTok and Instagram then use the first frame).
  var frameTimers = [];
  function frameField(picker) {
    return picker.parentNode.querySelector("[data-frame-input]");
  }

  function showFrame(picker, ms) {
    var img = role(picker, "frame-image");
    var time = role(picker, "frame-time");
    var id = picker.getAttribute("data-media");
    time.textContent = "Frame at " + (ms / 1000).toFixed(1) + " s";
    var url = window.TidepostPreview.frameUrl(id, ms);
    if (img.getAttribute("src") === url) return;
    img.onload = function () { img.hidden = false; };
    img.onerror = function () {
      // The server says why (a time past the end, a file it cannot read) as problem+json.
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (p) {
        time.textContent = "The frame could not be shown: " + (p.detail || p.title || "unknown error");
      }).catch(function () { time.textContent = "The frame could not be shown."; });
      img.hidden = true;
    };
    img.src = url;
  }

  function frameStep(value, max) {
    var n = Math.floor(Number(value) / 100) * 100;
    if (!isFinite(n) || n < 0) n = 0;
    return Math.min(n, max);
  }

  function syncFrames() {
    var video = pickedVideo();
    $all('[data-role="frame-picker"]').forEach(function (picker) {
      var field = frameField(picker);
      if (!video || !field || field.disabled) {
        picker.hidden = true;
        return;
      }
      var slider = role(picker, "frame-slider");
      var max = Math.max(0, Math.floor((video.duration - 1) / 100) * 100);
      slider.max = String(max);
      picker.setAttribute("data-media", video.id);
      picker.hidden = false;
      slider.value = String(frameStep(field.value || "0", max));
      showFrame(picker, Number(slider.value));
    });
  }

  // A slider moved or a cover-frame field typed: the other follows, the frame after a pause.
  function frameInput(target) {
    var picker, field;
    if (target.getAttribute("data-role") === "frame-slider") {
      picker = target.closest('[data-role="frame-picker"]');
      field = frameField(picker);
      field.value = target.value;
    } else if (target.hasAttribute("data-frame-input")) {
      field = target;
      picker = field.parentNode.querySelector('[data-role="frame-picker"]');
      if (!picker || picker.hidden) return;
      var slider = role(picker, "frame-slider");
      slider.value = String(frameStep(field.value || "0", Number(slider.max)));
    } else {
      return;
    }
    var index = $all('[data-role="frame-picker"]').indexOf(picker);
    var ms = Number(role(picker, "frame-slider").value);
    role(picker, "frame-time").textContent = "Frame at " + (ms / 1000).toFixed(1) + " s";
    clearTimeout(frameTimers[index]);
    frameTimers[index] = setTimeout(function () { showFrame(picker, ms); }, 120);
  }

  function syncTargets() {
    $all("fieldset.target").forEach(function (fs) {
      var box = fs.querySelector('input[name="targets"]');
      var options = fs.querySelector(".target-options");
      if (options) options.hidden = !(box && box.checked);
    });
  }

  // Each panel's parts that depend on its other parts (and on the media, for TikTok).
  function syncPanels() {
    var photos = photoPost();
    $all("fieldset.target").forEach(function (fs) {
      if (fs.getAttribute("data-platform") === "threads") {
        var thKind = thType(fs);
        $all("[data-types]", fs).forEach(function (box) {
          box.hidden = box.getAttribute("data-types").split(" ").indexOf(thKind) < 0;
        });
        return;
      }
      if (fs.getAttribute("data-platform") === "instagram") {
        var type = role(fs, "ig-type");
        var reel = role(fs, "reel-options");
        if (reel) reel.hidden = !(type && type.value === "reel");
        // Each option shows for the media types that take it.
        var kind = igType(fs);
        $all("[data-types]", fs).forEach(function (box) {
          box.hidden = kind !== "" && box.getAttribute("data-types").split(" ").indexOf(kind) < 0;
        });
        return;
      }
      var direct = role(fs, "direct");
      if (!direct) return;
      direct.hidden = !isDirect(fs);
      // A title, description and music are a photo post's (music a direct one's); a cover
      // frame is a video's. Disabled, a part is not sent either.
      var photoBox = role(fs, "photo-box");
      if (photoBox) {
        photoBox.hidden = !photos;
        $all("input, textarea", photoBox).forEach(function (el) { el.disabled = !photos; });
        role(fs, "auto-music").disabled = !photos || !isDirect(fs);
      }
      var coverBox = role(fs, "cover-box");
      if (coverBox) {
        coverBox.hidden = photos;
        role(fs, "cover-ms").disabled = photos;
      }
      var privacy = role(fs, "privacy");
      var disclose = on(fs, "disclose");
      role(fs, "brands").hidden = !disclose;
      // Branded content cannot be private: "Only me" and branded content exclude each other.
      var branded = role(fs, "brand-content");
      var selfOnly = privacy && privacy.value === "SELF_ONLY";
      branded.disabled = !!selfOnly;
      role(fs, "branded-reason").hidden = !selfOnly;
      var brandedOn = disclose && branded.checked && !branded.disabled;
      if (privacy) {
        $all("option", privacy).forEach(function (o) {
          if (o.value === "SELF_ONLY") o.disabled = brandedOn;
        });
      }
      role(fs, "private-branded").hidden = !brandedOn;
      role(fs, "disclose-missing").hidden = !(disclose && !on(fs, "brand-organic") && !brandedOn);
      role(fs, "consent-branded").hidden = !brandedOn;
      // Duets and stitches are for videos; a box the creator turned off stays off.
      $all("input[data-video-only]", fs).forEach(function (box) {
        if (box.hasAttribute("data-creator-off")) return;
        box.disabled = photos;
        var reason = box.parentNode.querySelector('[data-role="photo-reason"]');
        if (reason) reason.hidden = !photos;
      });
    });
    syncFrames();
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
  var maxBytes = Number(form.getAttribute("data-max-bytes") || "0");
  var fileInput = document.getElementById("compose-file");
  var box = document.getElementById("compose-upload");
  var bar = document.getElementById("compose-upload-bar");
  var status = document.getElementById("compose-upload-status");
  var name = document.getElementById("compose-upload-name");
  var uploadError = document.getElementById("compose-upload-error");
  var submit = document.getElementById("compose-submit");
  var uploading = false;

  // Sizes as the server writes them (media::rules::bytes): "4 GiB", "1.5 MiB", "900 bytes".
  function size(n) {
    var units = [[1073741824, "GiB"], [1048576, "MiB"], [1024, "KiB"]];
    for (var i = 0; i < units.length; i++) {
      if (n >= units[i][0]) {
        var v = n / units[i][0];
        return (Math.abs(v - Math.round(v)) < 0.05 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i][1];
      }
    }
    return n + " bytes";
  }

  // The chosen files this server would refuse for their size: a message, or "".
  function tooLarge() {
    if (!fileInput || !maxBytes) return "";
    var big = Array.prototype.filter.call(fileInput.files || [], function (f) { return f.size > maxBytes; });
    if (!big.length) return "";
    return big.map(function (f) { return f.name + " is " + size(f.size); }).join(", ") +
      ": larger than the " + size(maxBytes) + " this server accepts. Choose a smaller file.";
  }

  function uploadFailed(message) {
    uploading = false;
    box.hidden = false;
    box.classList.remove("done");
    box.classList.add("failed");
    status.textContent = "Not uploaded.";
    uploadError.textContent = message;
    uploadError.hidden = false;
  }

  var lastUploaded = null;
  function uploadNext(files) {
    if (!files.length) {
      uploading = false;
      box.classList.add("done");
      fileInput.value = "";
      validateSoon();
      return;
    }
    var file = files.shift();
    uploading = true;
    box.hidden = false;
    box.classList.remove("failed", "done");
    uploadError.hidden = true;
    name.textContent = file.name;
    bar.value = 0;
    bar.max = file.size || 1;
    status.textContent = "Uploading…";
    window.TidepostUpload.start(file, {
      csrf: csrf,
      onProgress: function (sent, total) {
        bar.max = total || 1;
        bar.value = Math.max(bar.value, sent);
        status.textContent = Math.round((100 * sent) / (total || 1)) + " % of " + size(total);
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
        // Files chosen together keep their order (a carousel's order), first on top.
        picker.insertBefore(li, lastUploaded ? lastUploaded.nextSibling : picker.firstChild);
        lastUploaded = li;
        var empty = document.getElementById("media-empty");
        if (empty) empty.hidden = true;
        // What the server found in the file (its kind, a video's length for the frame picker).
        fetch("/api/v1/media/" + encodeURIComponent(mediaId), { credentials: "same-origin" }).then(function (r) {
          return r.ok ? r.json() : null;
        }).then(function (m) {
          if (!m) return;
          input.setAttribute("data-kind", m.kind);
          input.setAttribute("data-duration-ms", String(Math.round((m.duration_secs || 0) * 1000)));
          if (m.width) input.setAttribute("data-width", String(m.width));
          if (m.height) input.setAttribute("data-height", String(m.height));
          renderPreview();
          syncPanels();
        }).catch(function () { /* the picker waits for a reload */ });
        syncPanels();
        uploadNext(files);
      },
      onError: function (message) {
        var end = /[.!?]$/.test(message) ? "" : ".";
        // A refusal that names the file already says which one.
        uploadFailed(message.indexOf(file.name) === 0
          ? message + end + " It was not uploaded."
          : file.name + " was not uploaded: " + capital(message) + end);
        fileInput.value = "";
      },
    });
  }
  if (fileInput) {
    fileInput.addEventListener("change", function () {
      uploadError.hidden = true;
      if (!fileInput.files || !fileInput.files.length) return;
      var big = tooLarge();
      if (big) {
        // Kept in the input (the submit says so too) until another file is chosen.
        uploadFailed(big);
        fileInput.focus();
        return;
      }
      if (!window.TidepostUpload) {
        uploadFailed("The uploader did not load; reload the page.");
        return;
      }
      lastUploaded = null;
      uploadNext(Array.prototype.slice.call(fileInput.files));
    });
  }

  // What keeps the post from going out that the page can tell on its own: {message, field,
  // target}, or null.
  function refusal() {
    var picked = targets();
    if (!picked.length) {
      return { message: "Pick at least one account to post to.", field: form.querySelector('input[name="targets"]:not([disabled])') };
    }
    var big = tooLarge();
    if (big) return { message: big, field: fileInput };
    if (uploading) return { message: "Wait for the upload to finish before publishing.", field: fileInput };
    // Threads publishes text alone; every other platform needs media.
    var textOnly = picked.every(function (fs) { return fs.getAttribute("data-platform") === "threads"; });
    if (!pickedMedia().length && !textOnly) {
      return { message: "Choose the media first: upload a file, pick one from the library, or give a public URL.", field: fileInput || picker };
    }
    for (var i = 0; i < picked.length; i++) {
      var fs = picked[i];
      if (fs.getAttribute("data-platform") !== "tiktok" || !isDirect(fs)) continue;
      var who = fs.getAttribute("data-name");
      var privacy = role(fs, "privacy");
      if (privacy && !privacy.value) {
        return { message: "Choose who can see the post on " + who + ": TikTok asks the creator to pick it.", field: privacy, target: fs };
      }
      if (on(fs, "disclose") && !on(fs, "brand-organic") && !on(fs, "brand-content")) {
        return { message: "You need to indicate if your content promotes yourself, a third party, or both (" + who + ").", field: role(fs, "brand-organic"), target: fs };
      }
    }
    return null;
  }

  form.addEventListener("submit", function (event) {
    // "Save draft" keeps the post as it is, unfinished too: nothing to check before.
    if (event.submitter && event.submitter.value === "draft") return;
    var problem = refusal();
    if (!problem) return;
    event.preventDefault();
    clearIssues();
    showGeneral([problem.message]);
    if (problem.target) {
      var ul = problem.target.querySelector("[data-issues-for]");
      var li = document.createElement("li");
      li.textContent = problem.message;
      ul.appendChild(li);
      problem.target.classList.add("has-issues");
    }
    verdict.className = "small bad-text";
    verdict.textContent = "Not published: " + problem.message;
    submit.disabled = false;
    submit.classList.remove("busy");
    if (problem.field && problem.field.focus) problem.field.focus();
  });

  // The preview's own inputs (a tag's username) are not the post's.
  function inPreview(target) {
    return !!(target.closest && target.closest("#preview"));
  }

  form.addEventListener("change", function (event) {
    if (event.target === fileInput || inPreview(event.target)) return;
    syncTargets();
    syncPanels();
    syncWhen();
    validateSoon();
  });
  form.addEventListener("input", function (event) {
    if (event.target === fileInput || inPreview(event.target)) return;
    frameInput(event.target);
    syncCount();
    validateSoon();
  });
  syncTargets();
  syncPanels();
  syncWhen();
  syncCount();
  validate();
})();
