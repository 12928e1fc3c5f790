// tidepost's small page helpers. Every page works without them; they add busy states and
// confirmations.
(function () {
  "use strict";
  // Busy state on submit: the button shows a spinner and cannot be pressed twice — only for a
  // submit that really leaves. A page script that refuses the submit (preventDefault, in its
  // own handler, before or after this one) keeps the button usable: the state is set after
  // every handler has run, and only if none cancelled.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented) return;
    var confirmText = form.getAttribute("data-confirm");
    if (confirmText && !window.confirm(confirmText)) {
      event.preventDefault();
      return;
    }
    var button = event.submitter || form.querySelector("button[type=submit], button:not([type])");
    if (!button) return;
    setTimeout(function () {
      if (event.defaultPrevented) return;
      button.classList.add("busy");
      button.disabled = true;
    }, 0);
  });
  // Back to a page kept in the browser's cache: its buttons are usable again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    Array.prototype.forEach.call(document.querySelectorAll("button.busy"), function (button) {
      button.classList.remove("busy");
      button.disabled = false;
    });
  });
  // A post still moving (its page says data-live): the page reloads to show where it is.
  if (document.querySelector("[data-live]")) {
    setTimeout(function () { window.location.reload(); }, 3000);
  }
  // A phone's navigation row scrolls sideways: start it where the current page's entry shows.
  var current = document.querySelector(".nav a[aria-current=page]");
  if (current) {
    var nav = current.parentNode;
    var past = current.getBoundingClientRect().right - nav.getBoundingClientRect().right;
    if (past > 0) nav.scrollLeft += past + 16;
  }
  // Avatars live on the provider's CDN and may not load (offline, an expired signed URL):
  // show the platform's initial instead of a broken image.
  function avatarFallback(img) {
    if (!img.hasAttribute("data-fallback") || !img.parentNode) return;
    var dot = document.createElement("span");
    dot.className = "dot " + (img.getAttribute("data-platform") || "");
    dot.textContent = img.getAttribute("data-fallback");
    dot.setAttribute("aria-hidden", "true");
    img.parentNode.replaceChild(dot, img);
  }
  document.addEventListener("error", function (event) {
    if (event.target.tagName === "IMG") avatarFallback(event.target);
  }, true);
  Array.prototype.forEach.call(document.querySelectorAll("img[data-fallback]"), function (img) {
    if (img.complete && img.naturalWidth === 0) avatarFallback(img);
  });
  // "Go back" on an error page: the browser's back, which keeps what was typed in the form;
  // the link itself when there is no history.
  document.addEventListener("click", function (event) {
    var back = event.target.closest("[data-back]");
    if (!back || window.history.length < 2) return;
    event.preventDefault();
    window.history.back();
  });
  // Copy buttons for secrets shown once.
  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-copy]");
    if (!target) return;
    var source = document.getElementById(target.getAttribute("data-copy"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        target.textContent = "Copied";
      });
    }
  });
  // The browser's time zone, for a person who has not chosen one in their settings: pages show
  // times in it from the next request on (the tp_tz cookie; zone names need no escaping).
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && /^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone) &&
        document.cookie.split("; ").indexOf("tp_tz=" + zone) < 0) {
      document.cookie = "tp_tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* no Intl: UTC */ }
})();
