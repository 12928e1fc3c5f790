// The Instagram post form: the media type decides which media rules are checked, live, before
// anything is uploaded (the same rules tidepost checks again on the server); every message names
// the rule. Files and an `instagram` part go to POST /api/v1/posts with XMLHttpRequest (a real
// upload bar), then GET /api/v1/posts/{id} is polled until the post is published, and the
// detail page shows the permalink. No inline script (CSP).
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }
  var form = $("ig-form");
  if (!form) return;

  var MIB = 1048576;
  var csrf = form.getAttribute("data-csrf");
  var maxBytes = Number(form.getAttribute("data-max-bytes") || "0");
  var files = $("ig-files"), urls = $("ig-urls"), caption = $("caption"), cover = $("ig-cover");
  var rulesBox = $("ig-rules"), chosenList = $("ig-chosen");
  var bar = $("bar"), phase = $("phase"), detail = $("detail"), box = $("progress");
  var errorBox = $("upload-error"), submit = $("submit");

  // What is known of each chosen file: kind, format, size, pixel size, duration.
  var known = [];
  var checking = 0;

  var TYPES = {
    image: { label: "Image", accept: "image/jpeg,.jpg,.jpeg", multiple: false,
      hint: "Drop a JPEG here, or choose one." },
    carousel: { label: "Images and videos", accept: "image/jpeg,.jpg,.jpeg,video/mp4,video/quicktime,.mp4,.mov", multiple: true,
      hint: "Choose 2 to 10 JPEG images and MP4/MOV videos, in the order they should appear." },
    reel: { label: "Video", accept: "video/mp4,video/quicktime,.mp4,.mov", multiple: false,
      hint: "Drop an MP4 or MOV video (3 seconds to 15 minutes), or choose one." },
    story: { label: "Image or video", accept: "image/jpeg,.jpg,.jpeg,video/mp4,video/quicktime,.mp4,.mov", multiple: false,
      hint: "One JPEG image, or one MP4/MOV video of 3 to 60 seconds." }
  };

  function mediaType() { return form.querySelector("input[name=media_type]:checked").value; }

  function problemText(xhr) {
    try {
      var p = JSON.parse(xhr.responseText);
      return p.detail || p.title || ("HTTP " + xhr.status);
    } catch (e) {
      return xhr.status === 413 ? "The files are larger than this server accepts." :
        xhr.status === 0 ? "The connection to tidepost was lost; check your network and try again." :
        "tidepost answered HTTP " + xhr.status + ".";
    }
  }

  function size(n) {
    if (n >= 1073741824) return (n / 1073741824).toFixed(2) + " GB";
    if (n >= MIB) return (n / MIB).toFixed(1) + " MB";
    if (n >= 1024) return (n / 1024).toFixed(0) + " KB";
    return n + " bytes";
  }

  function extensionOf(name) {
    var path = name.split("?")[0].split("#")[0];
    var last = path.split("/").pop();
    var dot = last.lastIndexOf(".");
    if (dot < 0) return "";
    var ext = last.slice(dot + 1).toLowerCase();
    return /^[a-z0-9]{1,5}$/.test(ext) ? ext : "";
  }

  function kindOf(type, name) {
    if (/^video\//.test(type)) return "video";
    if (/^image\//.test(type)) return "image";
    var ext = extensionOf(name);
    if (["mp4", "mov", "m4v", "webm"].indexOf(ext) >= 0) return "video";
    if (["jpg", "jpeg", "png", "webp", "gif", "heic"].indexOf(ext) >= 0) return "image";
    return "";
  }

  function isJpeg(type, name) {
    if (type) return type === "image/jpeg";
    var ext = extensionOf(name);
    return ext === "" || ext === "jpg" || ext === "jpeg";
  }

  function isMp4OrMov(type, name) {
    if (type) return type === "video/mp4" || type === "video/quicktime";
    var ext = extensionOf(name);
    return ext === "" || ext === "mp4" || ext === "mov" || ext === "m4v";
  }

  // Reads the pixel size of an image or the duration of a video, then checks again.
  function measure(entry, file) {
    var url = URL.createObjectURL(file);
    checking += 1;
    function done() { URL.revokeObjectURL(url); checking -= 1; check(); }
    if (entry.kind === "image") {
      var img = new Image();
      img.onload = function () { entry.width = img.naturalWidth; entry.height = img.naturalHeight; done(); };
      img.onerror = function () { entry.unreadable = true; done(); };
      img.src = url;
    } else if (entry.kind === "video") {
      var video = document.createElement("video");
      video.preload = "metadata";
      video.onloadedmetadata = function () { entry.duration = video.duration; done(); };
      video.onerror = function () { done(); };
      video.src = url;
    } else {
      done();
    }
  }

  function readFiles() {
    known = [];
    chosenList.innerHTML = "";
    Array.prototype.forEach.call(files.files, function (file) {
      var entry = { name: file.name, type: file.type, size: file.size, kind: kindOf(file.type, file.name) };
      known.push(entry);
      var li = document.createElement("li");
      li.textContent = file.name + " · " + size(file.size);
      chosenList.appendChild(li);
      measure(entry, file);
    });
    chosenList.hidden = known.length === 0;
    check();
  }

  function urlItems() {
    return urls.value.split(/\s+/).filter(function (u) { return u.length > 0; }).map(function (u) {
      return { name: u, url: u, type: "", size: null, kind: kindOf("", u) };
    });
  }

  // Instagram's rules for the chosen media type; each message names the rule.
  function problems() {
    var type = mediaType();
    var out = [];
    var items = urlItems().concat(known);
    var text = caption.value;
    var chars = Array.from ? Array.from(text).length : text.length;
    if (type !== "story") {
      if (chars > 2200) out.push("Captions are at most 2200 characters (this one has " + chars + ").");
      var tags = (text.match(/#/g) || []).length;
      if (tags > 30) out.push("A caption has at most 30 hashtags (this one has " + tags + ").");
      var mentions = (text.match(/@/g) || []).length;
      if (mentions > 20) out.push("A caption has at most 20 @mentions (this one has " + mentions + ").");
    }
    var n = items.length;
    if (type === "carousel") {
      if (n > 0 && (n < 2 || n > 10)) out.push("A carousel has 2 to 10 images or videos (this one has " + n + ").");
    } else if (n > 1) {
      out.push("A" + (type === "image" ? "n image post" : " " + type) + " has exactly one media (this one has " + n + "); use a carousel for several.");
    }
    var total = 0;
    items.forEach(function (it, i) {
      var which = (n > 1 ? "Item " + (i + 1) + " (" + it.name + ")" : it.name) + ": ";
      total += it.size || 0;
      if (!it.kind) { out.push(which + "tidepost cannot tell whether this is an image or a video."); return; }
      if (type === "image" && it.kind === "video") out.push(which + "a video cannot be an image post: publish it as a reel.");
      if (type === "reel" && it.kind === "image") out.push(which + "a reel is a video (MP4 or MOV), not an image.");
      if (it.kind === "image") {
        if (!isJpeg(it.type, it.name)) out.push(which + "Instagram only takes JPEG images, not " + (it.type || "." + extensionOf(it.name)) + ".");
        if (it.unreadable && isJpeg(it.type, it.name)) out.push(which + "this file cannot be read as an image.");
        if (it.size && it.size > 8 * MIB) out.push(which + "images are at most 8 MiB (this one is " + (it.size / MIB).toFixed(1) + " MiB).");
        if (type !== "story" && it.width && it.height) {
          var ratio = it.width / it.height;
          if (ratio < 0.799 || ratio > 1.911) {
            out.push(which + "the aspect ratio must be between 4:5 (0.8) and 1.91:1 (this image is " +
              it.width + "x" + it.height + ", " + ratio.toFixed(2) + ").");
          }
        }
      } else {
        if (!isMp4OrMov(it.type, it.name)) out.push(which + "Instagram takes MP4 or MOV videos, not " + (it.type || "." + extensionOf(it.name)) + ".");
        var limits = type === "reel" ? [300, 3, 900, "reels last 3 seconds to 15 minutes"] :
          type === "story" ? [100, 3, 60, "story videos last 3 to 60 seconds"] :
          [300, 3, 60, "carousel videos last 3 to 60 seconds"];
        if (it.size && it.size > limits[0] * MIB) out.push(which + "this video is " + (it.size / MIB).toFixed(0) + " MiB, over the " + limits[0] + " MiB Instagram accepts here.");
        if (it.duration && isFinite(it.duration) && (it.duration < limits[1] || it.duration > limits[2])) {
          out.push(which + limits[3] + " (this one lasts " + it.duration.toFixed(1) + " s).");
        }
      }
    });
    if (maxBytes && total > maxBytes) out.push("The files add up to " + size(total) + ", more than the " + size(maxBytes) + " this server accepts.");
    if (type === "reel" && cover.value.trim() && ["", "jpg", "jpeg"].indexOf(extensionOf(cover.value.trim())) < 0) {
      out.push("Cover: the reel cover must be a JPEG image.");
    }
    return out;
  }

  function check() {
    var list = problems();
    var ul = rulesBox.querySelector("ul");
    ul.innerHTML = "";
    list.forEach(function (message) {
      var li = document.createElement("li");
      li.textContent = message;
      ul.appendChild(li);
    });
    rulesBox.hidden = list.length === 0;
    var chars = Array.from ? Array.from(caption.value).length : caption.value.length;
    $("ig-caption-count").textContent = chars + " of 2200 characters";
    return list;
  }

  function setType() {
    var type = mediaType(), spec = TYPES[type];
    $("ig-files-label").textContent = spec.label;
    $("ig-files-hint").textContent = spec.hint;
    files.setAttribute("accept", spec.accept);
    files.multiple = spec.multiple;
    $("ig-caption-box").hidden = type === "story";
    $("ig-reel-options").hidden = type !== "reel";
    check();
  }

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
    submit.disabled = false;
  }

  function poll(id) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", "/api/v1/posts/" + encodeURIComponent(id));
    xhr.onload = function () {
      if (xhr.status !== 200) { fail(problemText(xhr)); return; }
      var t = JSON.parse(xhr.responseText).targets[0];
      if (t.state === "published") {
        box.classList.add("done");
        show("Published", 100, t.post_url ? t.post_url : "");
        window.location = "/posts/" + encodeURIComponent(id);
        return;
      }
      if (t.state === "failed" || t.state === "cancelled") {
        fail(t.state === "cancelled" ? "The post was cancelled." :
          (t.error ? t.error.message : "The post did not go through."));
        return;
      }
      var retrying = t.error ? " Retrying: " + t.error.message : "";
      if (t.state === "processing") {
        show("Instagram is processing the media", 80,
          (t.provider_status ? "Container " + t.provider_status + "." : "") + retrying);
      } else if (t.state === "uploading") {
        show("Meta is fetching the media", 60, "From tidepost's signed links." + retrying);
      } else {
        show("Waiting for a worker", 45, retrying);
      }
      setTimeout(function () { poll(id); }, 1500);
    };
    xhr.onerror = function () {
      detail.textContent = "Lost touch with tidepost; trying again…";
      setTimeout(function () { poll(id); }, 3000);
    };
    xhr.send();
  }

  $("account_id").addEventListener("change", function () {
    window.location = "/posts/new?account=" + encodeURIComponent($("account_id").value);
  });
  Array.prototype.forEach.call(form.querySelectorAll("input[name=media_type]"), function (radio) {
    radio.addEventListener("change", setType);
  });
  files.addEventListener("change", readFiles);
  [urls, caption, cover].forEach(function (el) { el.addEventListener("input", check); });
  var drop = $("ig-dropzone");
  ["dragenter", "dragover"].forEach(function (t) {
    drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    drop.addEventListener(t, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) { files.files = e.dataTransfer.files; readFiles(); }
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    errorBox.hidden = true;
    box.hidden = true;
    box.classList.remove("failed", "done");
    bar.value = 0;
    var type = mediaType();
    var list = check();
    if (list.length) { fail("Fix what is listed above first: " + list[0]); return; }
    if (checking > 0) { fail("Still reading the chosen files; try again in a moment."); return; }
    var fromUrls = urlItems();
    if (fromUrls.length + known.length === 0) {
      fail(type === "carousel" ? "Choose 2 to 10 images or videos first." : "Choose the " + TYPES[type].label.toLowerCase() + " first.");
      return;
    }
    var instagram = { media_type: type, items: fromUrls.map(function (it) {
      var item = { url: it.url };
      if (it.kind) item.kind = it.kind;
      return item;
    }) };
    if (type === "reel") {
      if (cover.value.trim()) instagram.cover_url = cover.value.trim();
      instagram.share_to_feed = $("ig-share").checked;
    }
    var data = new FormData();
    data.append("account_id", $("account_id").value);
    if (type !== "story") data.append("caption", caption.value);
    data.append("instagram", JSON.stringify(instagram));
    Array.prototype.forEach.call(files.files, function (f) { data.append("file", f, f.name); });
    submit.disabled = true;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/posts");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.onprogress = function (ev) {
      if (ev.lengthComputable) {
        show("Uploading to tidepost", Math.floor(40 * ev.loaded / ev.total), size(ev.loaded) + " of " + size(ev.total));
      }
    };
    xhr.onload = function () {
      if (xhr.status !== 202 && xhr.status !== 200) { fail(problemText(xhr)); return; }
      var post = JSON.parse(xhr.responseText);
      show("Queued for Instagram", 40, "tidepost has the media.");
      poll(post.id);
    };
    xhr.onerror = function () { fail(problemText(xhr)); };
    show("Uploading to tidepost", 0);
    xhr.send(data);
  });

  setType();
})();
