// A small tus 1.0.0 client (core + creation) for tidepost's /api/v1/uploads, reusable by any
// page: it sends a File in chunks with PATCH, resumes from the server's offset after a failed
// request (asking with HEAD), and reports progress.
//
//   var up = TidepostUpload.start(file, {
//     csrf: token,                    // the page's CSRF token (signed-in browsers)
//     chunkSize: 8 * 1024 * 1024,     // bytes per PATCH
//     onProgress: function (sent, total) {},
//     onSuccess: function (mediaId, upload) {},
//     onError: function (message) {},
//   });
//   up.abort();                       // stops and deletes the upload on the server
//
// The upload URL is kept in localStorage under the file's name, size and modification time, so
// a page reloaded in the middle of a large upload picks it up where the server has it.
(function () {
  "use strict";

  var ENDPOINT = "/api/v1/uploads";
  var RETRY_DELAYS = [500, 1000, 3000, 5000, 10000];

  function b64(text) {
    return btoa(unescape(encodeURIComponent(text)));
  }

  function storageKey(file) {
    return "tidepost-upload:" + file.name + ":" + file.size + ":" + file.lastModified;
  }

  function problemText(xhr) {
    try {
      var p = JSON.parse(xhr.responseText);
      if (p && p.detail) return p.detail;
    } catch (e) { /* not JSON */ }
    return xhr.status ? "the server answered " + xhr.status : "the connection failed";
  }

  function request(method, url, headers, body, onUpload) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url, true);
      Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onUpload && xhr.upload) {
        xhr.upload.onprogress = function (e) { if (e.lengthComputable) onUpload(e.loaded); };
      }
      xhr.onload = function () { resolve(xhr); };
      xhr.onerror = function () { resolve(xhr); };
      xhr.onabort = function () { resolve(xhr); };
      xhr.send(body === undefined ? null : body);
      request.current = xhr;
    });
  }

  function start(file, options) {
    options = options || {};
    var chunkSize = options.chunkSize || 8 * 1024 * 1024;
    var base = { "Tus-Resumable": "1.0.0" };
    if (options.csrf) base["X-CSRF-Token"] = options.csrf;
    var aborted = false;
    var url = null;
    var failures = 0;

    function headers(extra) {
      var h = {};
      Object.keys(base).forEach(function (k) { h[k] = base[k]; });
      Object.keys(extra || {}).forEach(function (k) { h[k] = extra[k]; });
      return h;
    }
    function progress(n) { if (options.onProgress) options.onProgress(Math.min(n, file.size), file.size); }
    function fail(message) {
      if (!aborted && options.onError) options.onError(message);
    }

    function create() {
      var meta = "filename " + b64(file.name) + ",filetype " + b64(file.type || "application/octet-stream");
      return request("POST", ENDPOINT, headers({ "Upload-Length": String(file.size), "Upload-Metadata": meta })).then(function (xhr) {
        if (xhr.status !== 201) throw new Error(problemText(xhr));
        url = xhr.getResponseHeader("Location");
        try { localStorage.setItem(storageKey(file), url); } catch (e) { /* private mode */ }
        return 0;
      });
    }

    // The server's offset for a known upload, or null when it is gone.
    function offset() {
      return request("HEAD", url, headers()).then(function (xhr) {
        if (xhr.status === 404 || xhr.status === 410) return null;
        if (xhr.status !== 200) throw new Error(problemText(xhr));
        var state = xhr.getResponseHeader("Tidepost-Upload-State");
        if (state === "failed") return null;
        return parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
      });
    }

    function finished(xhr) {
      try { localStorage.removeItem(storageKey(file)); } catch (e) { /* ignore */ }
      progress(file.size);
      if (options.onSuccess) options.onSuccess(xhr.getResponseHeader("Tidepost-Media-Id"), url);
    }

    function send(from) {
      if (aborted) return;
      progress(from);
      var end = Math.min(from + chunkSize, file.size);
      var chunk = file.slice(from, end);
      request("PATCH", url, headers({ "Upload-Offset": String(from), "Content-Type": "application/offset+octet-stream" }), chunk, function (n) {
        progress(from + n);
      }).then(function (xhr) {
        if (aborted) return;
        if (xhr.status === 204) {
          failures = 0;
          var next = parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
          if (next >= file.size) return finished(xhr);
          return send(next);
        }
        if (xhr.status === 409) {
          // Not where the server is: go on from its offset.
          var at = parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
          if (!isNaN(at) && failures++ < RETRY_DELAYS.length) return send(at);
        }
        if (xhr.status === 0 || xhr.status >= 500 || xhr.status === 423 || xhr.status === 409) {
          if (failures < RETRY_DELAYS.length) {
            var wait = RETRY_DELAYS[failures++];
            return setTimeout(function () { resume(); }, wait);
          }
        }
        try { localStorage.removeItem(storageKey(file)); } catch (e) { /* ignore */ }
        fail(problemText(xhr));
      });
    }

    function resume() {
      offset().then(function (at) {
        if (at === null) return create().then(send);
        send(at);
      }).catch(function (e) {
        if (failures < RETRY_DELAYS.length) {
          setTimeout(resume, RETRY_DELAYS[failures++]);
        } else {
          fail(e.message);
        }
      });
    }

    var known = null;
    try { known = localStorage.getItem(storageKey(file)); } catch (e) { /* ignore */ }
    if (known) {
      url = known;
      resume();
    } else {
      create().then(send).catch(function (e) { fail(e.message); });
    }

    return {
      abort: function () {
        aborted = true;
        if (request.current) request.current.abort();
        try { localStorage.removeItem(storageKey(file)); } catch (e) { /* ignore */ }
        if (url) request("DELETE", url, headers());
      },
      url: function () { return url; },
    };
  }

  window.TidepostUpload = { start: start };

  // The media library page: <form data-tus-upload> with a file input, a <progress> and a
  // status line; reloads the page when every chosen file is in.
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-tus-upload]");
    if (!form) return;
    var input = form.querySelector("input[type=file]");
    var bar = form.querySelector("progress");
    var status = form.querySelector("[data-status]");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var files = Array.prototype.slice.call(input.files || []);
      if (!files.length) { status.textContent = "Choose a file first."; return; }
      var total = files.reduce(function (s, f) { return s + f.size; }, 0);
      var done = 0;
      var errors = [];
      bar.hidden = false;
      bar.max = total;
      function next(i) {
        if (i >= files.length) {
          if (errors.length) {
            status.textContent = errors.join(" ");
            status.className = "notice error";
            status.setAttribute("role", "alert");
          } else {
            status.textContent = "Uploaded.";
            window.location.reload();
          }
          return;
        }
        var file = files[i];
        start(file, {
          csrf: form.getAttribute("data-csrf"),
          onProgress: function (sent) {
            bar.value = done + sent;
            status.textContent = file.name + ": " + Math.floor((100 * (done + sent)) / Math.max(total, 1)) + " %";
          },
          onSuccess: function () { done += file.size; next(i + 1); },
          onError: function (message) { errors.push(file.name + ": " + message); done += file.size; next(i + 1); },
        });
      }
      next(0);
    });
  });
})();
