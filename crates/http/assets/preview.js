// The post previews, shared by the composer (/compose, drawn from the form as it is edited) and
// the post page (/posts/{id}, drawn from what was stored): one card per account with the media
// cropped as the platform shows it (TikTok, reels and stories 9:16; Instagram's feed 4:5 or
// 1:1), the chosen video frame, the images of the media library (through
// /api/v1/media/{id}/content), a carousel's or photo post's items one at a time, the caption
// cut where the platform cuts it ("… more"), the hashtag and mention counts against the
// platform's limits, collaborators, the people tagged (a marker where each sits), the
// disclosure labels, and on the post page the link to the post on the platform.
//
// window.TidepostPreview.card(model, hooks) returns the card of one target. The model:
//   {platform: "instagram"|"tiktok", name, target, kind (Instagram: image, carousel, reel,
//    story; TikTok: video, photo), media: [{kind: "image"|"video", id?, url?, name?, width?,
//    height?, duration_ms?}], cover_ms, cover_url? (a reel's cover image), start? (the item
//    shown first: a TikTok photo post's cover), caption, labels: [..], collaborators: [..],
//    tags: [{item?, username, x?, y?, line?}], link?: {href, text}}
// hooks (the composer's, for tagging people by clicking an image): {tag(item, x, y, username),
// untag(tag)}; without them the card is read-only.
// On a page, every element with data-preview (a model as JSON) is replaced by its card.
(function () {
  "use strict";

  // The platforms' caption limits (Instagram: 30 hashtags, 20 @ tags; TikTok documents none)
  // and where Instagram's feed cuts a caption ("… more").
  var LIMITS = { instagram: { hashtags: 30, mentions: 20 }, tiktok: { hashtags: 0, mentions: 0 } };
  var NAMES = { instagram: "Instagram", tiktok: "TikTok", threads: "Threads" };
  // Threads counts 500, every non-ASCII character as its UTF-8 bytes (an emoji is 4), and at
  // most 5 distinct links (the link attachment included).
  var THREADS_TEXT = 500, THREADS_LINKS = 5;

  function threadsLength(text) {
    var n = 0;
    for (var ch of text) {
      var c = ch.codePointAt(0);
      n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    }
    return n;
  }

  function threadsLinks(text, attachment) {
    var links = (text.match(/https?:\/\/\S+/g) || []).map(function (l) { return l.replace(/[.,)!?]+$/, ""); });
    if (attachment) links.push(attachment);
    return links.filter(function (l, i) { return links.indexOf(l) === i; }).length;
  }
  var INSTAGRAM_MORE_AT = 125;

  // The item shown of each target's carousel or photo post, kept across redraws.
  var shown = {};
  // The tag being typed ({target, item, x, y, text, fresh}) while its small input is open
  // (fresh: opened by the click just made, its input not focused yet).
  var pending = null;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function count(text, re) {
    return (text.match(re) || []).length;
  }

  // How the platform shows the media: "9x16", "4x5" or "1x1" (a square first image).
  function ratio(platform, kind, first) {
    if (platform === "threads") return kind === "video" ? "9x16" : "4x5";
    if (platform !== "instagram" || kind === "reel" || kind === "story") return "9x16";
    if (first && first.width && Number(first.width) === Number(first.height)) return "1x1";
    return "4x5";
  }

  function frameUrl(mediaId, ms) {
    return "/api/v1/media/" + encodeURIComponent(mediaId) + "/frame?at_ms=" + ms;
  }

  function contentUrl(mediaId) {
    return "/api/v1/media/" + encodeURIComponent(mediaId) + "/content";
  }

  // Where the image's own 0..1 coordinates (Instagram's x/y, from its top left) fall in the
  // frame that crops it (object-fit: cover, centred), as fractions of the frame.
  function geometry(img) {
    var fw = img.clientWidth, fh = img.clientHeight;
    var nw = img.naturalWidth, nh = img.naturalHeight;
    if (!fw || !fh || !nw || !nh) return null;
    var s = Math.max(fw / nw, fh / nh);
    var dw = nw * s, dh = nh * s;
    return { fw: fw, fh: fh, ox: (fw - dw) / 2, oy: (fh - dh) / 2, dw: dw, dh: dh };
  }

  function round(n) {
    return Math.round(Math.min(1, Math.max(0, n)) * 1000) / 1000;
  }

  // The media of one item: a library image, an image URL, a library video's frame, or names.
  function mediaNode(model, item) {
    if (!item) return el("span", "preview-names", "No media yet");
    if (item.kind === "image" && (item.id || item.url)) {
      var img = el("img");
      img.alt = item.name ? "The image " + item.name : "The image";
      img.src = item.id ? contentUrl(item.id) : item.url;
      img.setAttribute("data-role", "preview-image");
      return img;
    }
    if (item.kind === "video" && model.cover_url && /^https?:\/\//.test(model.cover_url)) {
      // A reel's own cover image, shown instead of a frame.
      var cover = el("img");
      cover.alt = "The reel's cover image";
      cover.src = model.cover_url;
      cover.setAttribute("data-role", "preview-cover");
      return cover;
    }
    if (item.kind === "video" && item.id) {
      var at = Math.floor((Number(model.cover_ms) || 0) / 100) * 100;
      if (item.duration_ms > 0) at = Math.min(at, Math.max(0, Math.floor((item.duration_ms - 1) / 100) * 100));
      var frame = el("img");
      frame.alt = "The video's frame at " + (at / 1000).toFixed(1) + " s";
      frame.src = frameUrl(item.id, at);
      frame.setAttribute("data-role", "preview-video-frame");
      return frame;
    }
    return el("span", "preview-names", item.kind + ": " + (item.name || item.url || ""));
  }

  // The markers of the people tagged on this item, placed once the image's size is known.
  function placeMarkers(frame, img, tags, hooks) {
    $(frame, ".preview-tag").forEach(function (m) { m.parentNode.removeChild(m); });
    var g = geometry(img);
    if (!g) return;
    tags.forEach(function (tag) {
      var left = (g.ox + tag.x * g.dw) / g.fw, top = (g.oy + tag.y * g.dh) / g.fh;
      var marker = el("span", "preview-tag" + (left > 0.6 ? " flip" : ""));
      marker.style.left = (left * 100).toFixed(2) + "%";
      marker.style.top = (top * 100).toFixed(2) + "%";
      marker.setAttribute("data-username", tag.username);
      marker.setAttribute("data-x", String(tag.x));
      marker.setAttribute("data-y", String(tag.y));
      marker.appendChild(el("span", "preview-tag-name", "@" + tag.username));
      if (hooks && hooks.untag) {
        var remove = el("button", "preview-tag-remove", "×");
        remove.type = "button";
        remove.setAttribute("aria-label", "Remove the tag of " + tag.username);
        remove.addEventListener("click", function (event) {
          event.stopPropagation();
          hooks.untag(tag);
        });
        marker.appendChild(remove);
      }
      frame.appendChild(marker);
    });
  }

  function $(root, selector) {
    return Array.prototype.slice.call(root.querySelectorAll(selector));
  }

  // The small input asking whom a click tags, at the point clicked.
  function tagInput(frame, model, hooks, redraw) {
    // A dot where the click was, the input across the frame just under it (above it near
    // the bottom), so it fits however narrow the preview.
    var dot = el("span", "preview-pending");
    dot.style.left = (pending.left * 100).toFixed(2) + "%";
    dot.style.top = (pending.top * 100).toFixed(2) + "%";
    frame.appendChild(dot);
    var box = el("span", "preview-tag-input" + (pending.top > 0.7 ? " above" : ""));
    box.style.top = (pending.top * 100).toFixed(2) + "%";
    var input = el("input");
    input.type = "text";
    input.setAttribute("aria-label", "Username to tag here");
    input.placeholder = "username";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.setAttribute("data-role", "tag-username");
    input.value = pending.text || "";
    var ok = el("button", "small", "Tag");
    ok.type = "button";
    ok.setAttribute("data-role", "tag-confirm");
    var cancel = el("button", "small secondary", "Cancel");
    cancel.type = "button";
    function close() {
      pending = null;
      redraw();
    }
    function commit() {
      var name = input.value.trim().replace(/^@/, "");
      var at = pending;
      pending = null;
      if (name) hooks.tag(at.item, at.x, at.y, name);
      else redraw();
    }
    input.addEventListener("input", function (event) {
      event.stopPropagation();
      if (pending) pending.text = input.value;
    });
    input.addEventListener("change", function (event) { event.stopPropagation(); });
    input.addEventListener("keydown", function (event) {
      // Enter tags (and never submits the post); Escape closes.
      if (event.key === "Enter") { event.preventDefault(); commit(); }
      if (event.key === "Escape") { event.preventDefault(); close(); }
    });
    ok.addEventListener("click", function (event) { event.stopPropagation(); commit(); });
    cancel.addEventListener("click", function (event) { event.stopPropagation(); close(); });
    box.addEventListener("click", function (event) { event.stopPropagation(); });
    box.appendChild(input);
    box.appendChild(ok);
    box.appendChild(cancel);
    frame.appendChild(box);
    setTimeout(function () {
      input.focus();
      if (pending) pending.fresh = false;
    }, 0);
  }

  function card(model, hooks) {
    var platform = model.platform;
    var media = model.media || [];
    var caption = model.caption || "";
    var node = el("article", "preview preview-" + platform);
    node.setAttribute("data-preview-for", model.target || "");
    node.appendChild(el("p", "preview-head", (NAMES[platform] || platform) + " · " + (model.name || "")));

    var several = media.length > 1;
    // The item shown first: the one last chosen here, else the post's cover (TikTok photos).
    var start = shown[model.target] !== undefined ? shown[model.target] : Number(model.start) || 0;
    var index = Math.min(start, Math.max(0, media.length - 1));
    var item = media[index];
    var frame = el("div", "preview-frame ratio-" + ratio(platform, model.kind, media[0]));
    frame.setAttribute("data-role", "preview-media");
    frame.setAttribute("data-item", String(index));
    var shownMedia = mediaNode(model, item);
    frame.appendChild(shownMedia);
    // The disclosure labels together, the AI-generated label above them.
    var labels = model.labels || [];
    var disclosed = labels.filter(function (l) { return !/^AI/.test(l); });
    if (disclosed.length) frame.appendChild(el("span", "preview-label", disclosed.join(" · ")));
    labels.filter(function (l) { return /^AI/.test(l); }).forEach(function (l) {
      frame.appendChild(el("span", "preview-label aigc", l));
    });
    if (several) frame.appendChild(el("span", "preview-index", (index + 1) + "/" + media.length));

    // People tagged on this item where they sit (Instagram images: x/y of the image).
    var placed = (model.tags || []).filter(function (t) {
      var on = several ? t.item === index : t.item === undefined || t.item === null || t.item === 0;
      return on && typeof t.x === "number" && typeof t.y === "number" && isFinite(t.x) && isFinite(t.y);
    });
    var taggable = platform === "instagram" && hooks && hooks.tag && model.taggable && item && item.kind === "image" && (item.id || item.url);
    var redraw = hooks && hooks.redraw ? hooks.redraw : function () {};
    if (shownMedia.tagName === "IMG" && item.kind === "image") {
      var draw = function () {
        placeMarkers(frame, shownMedia, placed, hooks);
      };
      if (shownMedia.complete && shownMedia.naturalWidth) setTimeout(draw, 0);
      else shownMedia.addEventListener("load", draw);
      if (taggable) {
        frame.classList.add("taggable");
        frame.title = "Click the picture where a person is to tag them";
        shownMedia.addEventListener("click", function (event) {
          var g = geometry(shownMedia);
          if (!g) return;
          var r = shownMedia.getBoundingClientRect();
          var px = event.clientX - r.left, py = event.clientY - r.top;
          pending = {
            target: model.target, item: index,
            x: round((px - g.ox) / g.dw), y: round((py - g.oy) / g.dh),
            left: px / g.fw, top: py / g.fh, text: "", fresh: true,
          };
          redraw();
        });
        if (pending && pending.target === model.target && pending.item === index) tagInput(frame, model, hooks, redraw);
      }
    }
    if (platform !== "threads" || media.length) node.appendChild(frame);
    if (taggable) node.appendChild(el("p", "preview-extra preview-hint small muted", "Click the picture to tag someone there."));

    if (several) {
      var pager = el("div", "preview-items");
      pager.setAttribute("role", "group");
      pager.setAttribute("aria-label", "Items");
      media.forEach(function (m, i) {
        var b = el("button", "preview-item" + (i === index ? " current" : ""), String(i + 1));
        b.type = "button";
        b.setAttribute("aria-label", "Show item " + (i + 1) + (m.name ? " (" + m.name + ")" : ""));
        if (i === index) b.setAttribute("aria-current", "true");
        b.addEventListener("click", function () {
          shown[model.target] = i;
          if (pending && pending.target === model.target) pending = null;
          var again = card(model, hooks);
          node.parentNode.replaceChild(again, node);
        });
        pager.appendChild(b);
      });
      node.appendChild(pager);
    }

    var text = el("p", "preview-caption");
    text.setAttribute("data-role", "preview-caption");
    if (!caption) {
      text.textContent = "(no caption)";
    } else if (platform === "instagram" && caption.length > INSTAGRAM_MORE_AT) {
      text.appendChild(document.createTextNode(caption.slice(0, INSTAGRAM_MORE_AT).replace(/\s+\S*$/, "") + "… "));
      text.appendChild(el("span", "more", "more"));
    } else {
      text.textContent = caption;
      if (platform === "tiktok") text.classList.add("clamped");
    }
    node.appendChild(text);
    var limits = LIMITS[platform] || { hashtags: 0, mentions: 0 };
    var hashtags = count(caption, /(^|\s)#[^\s#]+/g);
    var mentions = count(caption, /(^|\s)@[\w.]+/g);
    var counts = el("p", "preview-counts small");
    counts.setAttribute("data-role", "preview-counts");
    counts.textContent = hashtags + (limits.hashtags ? " of " + limits.hashtags : "") + " hashtags · " +
      mentions + (limits.mentions ? " of " + limits.mentions : "") + " mentions";
    if ((limits.hashtags && hashtags > limits.hashtags) || (limits.mentions && mentions > limits.mentions)) {
      counts.classList.add("bad-text");
      counts.textContent += ": over " + (platform === "instagram" ? "Instagram" : "TikTok") + "'s limit";
    }
    if (platform === "threads") {
      var length = threadsLength(caption);
      var links = threadsLinks(caption, model.link_attachment);
      counts.textContent = length + " of " + THREADS_TEXT + " characters (an emoji counts 4) · " + links + " of " + THREADS_LINKS + " links";
      if (length > THREADS_TEXT || links > THREADS_LINKS) {
        counts.classList.add("bad-text");
        counts.textContent += ": over Threads' limit";
      }
      if (model.link_attachment) node.appendChild(el("p", "preview-extra small", "Link card: " + model.link_attachment));
    }
    node.appendChild(counts);
    if ((model.collaborators || []).length) node.appendChild(el("p", "preview-extra small", "With " + model.collaborators.join(", ")));
    if ((model.tags || []).length) {
      var people = el("p", "preview-extra small", "Tagged: " + model.tags.map(function (t) { return t.username; }).join(", "));
      people.setAttribute("data-role", "preview-tagged");
      node.appendChild(people);
    }
    // Only a web link is made a link (the permalink comes from the platform).
    if (model.link && /^https?:\/\//.test(model.link.href || "")) {
      var p = el("p", "preview-extra small preview-link");
      var a = el("a", "", model.link.text || model.link.href);
      a.href = model.link.href;
      a.rel = "noopener";
      p.appendChild(a);
      node.appendChild(p);
    }
    return node;
  }

  // Whether the small tag input is open (a redraw then waits, not to lose what is typed).
  function typing() {
    var active = document.activeElement;
    return !!(pending && active && active.getAttribute && active.getAttribute("data-role") === "tag-username");
  }

  // Before a redraw: a tag input the person left (they went on elsewhere) is closed, not
  // opened again to take the focus back.
  function settle() {
    if (pending && !pending.fresh && !typing()) pending = null;
  }

  // What of the previews' own state a redraw would show (the tag input open or not).
  function state() {
    return pending ? JSON.stringify([pending.target, pending.item, pending.x, pending.y]) : "";
  }

  window.TidepostPreview = {
    card: card, ratio: ratio, frameUrl: frameUrl, typing: typing, settle: settle, state: state,
  };

  // The post page: each stored preview drawn where the page puts it.
  Array.prototype.forEach.call(document.querySelectorAll("[data-preview]"), function (slot) {
    try {
      var model = JSON.parse(slot.getAttribute("data-preview"));
      slot.textContent = "";
      slot.appendChild(card(model, null));
    } catch (e) { /* the page's facts stay as they are */ }
  });
})();
