// The calendar's drag and drop: a scheduled post dropped on another day keeps its time of day
// and is moved through its own Move form (the same request as without a script). While it is
// dragged over a day, the day says whether the post can go there (limits included), asked of
// /calendar/check.
(function () {
  "use strict";
  var calendar = document.getElementById("calendar");
  if (!calendar) return;
  var dragged = null;
  var verdicts = {};
  var live = document.createElement("p");
  live.id = "calendar-live";
  live.className = "small";
  live.setAttribute("role", "status");
  live.setAttribute("aria-live", "polite");
  calendar.parentNode.insertBefore(live, calendar);

  function dayOf(node) {
    while (node && node !== calendar) {
      if (node.classList && node.classList.contains("calendar-day")) return node;
      node = node.parentNode;
    }
    return null;
  }
  function newTime(entry, day) {
    return day.getAttribute("data-date") + "T" + entry.getAttribute("data-time");
  }
  function clear() {
    Array.prototype.forEach.call(calendar.querySelectorAll(".drop-ok, .drop-refused"), function (d) {
      d.classList.remove("drop-ok", "drop-refused");
      d.removeAttribute("title");
    });
  }
  function show(day, verdict) {
    if (!dragged || dayOf(dragged) === day) return;
    day.classList.toggle("drop-ok", verdict.ok);
    day.classList.toggle("drop-refused", !verdict.ok);
    day.title = verdict.message;
    live.textContent = verdict.message;
    live.className = "small " + (verdict.ok ? "ok-text" : "error-text");
  }
  function check(entry, day) {
    var at = newTime(entry, day);
    var key = entry.getAttribute("data-post") + "@" + at;
    if (verdicts[key]) {
      show(day, verdicts[key]);
      return;
    }
    var zone = entry.querySelector("input[name=time_zone]");
    var url = "/calendar/check?post=" + encodeURIComponent(entry.getAttribute("data-post")) +
      "&scheduled_at=" + encodeURIComponent(at) +
      "&time_zone=" + encodeURIComponent(zone ? zone.value : "UTC");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (verdict) {
        if (!verdict) return;
        verdicts[key] = verdict;
        if (dragged === entry && day.classList.contains("drag-over")) show(day, verdict);
      })
      .catch(function () {});
  }

  calendar.addEventListener("dragstart", function (event) {
    var entry = event.target.closest && event.target.closest(".calendar-entry[draggable=true]");
    if (!entry) return;
    dragged = entry;
    entry.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", entry.getAttribute("data-post"));
  });
  calendar.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    clear();
  });
  calendar.addEventListener("dragover", function (event) {
    var day = dayOf(event.target);
    if (!dragged || !day) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
  });
  calendar.addEventListener("dragenter", function (event) {
    var day = dayOf(event.target);
    if (!dragged || !day || day.classList.contains("drag-over")) return;
    Array.prototype.forEach.call(calendar.querySelectorAll(".drag-over"), function (d) {
      d.classList.remove("drag-over");
    });
    clear();
    day.classList.add("drag-over");
    if (dayOf(dragged) !== day) check(dragged, day);
  });
  calendar.addEventListener("drop", function (event) {
    var day = dayOf(event.target);
    if (!dragged || !day) return;
    event.preventDefault();
    var entry = dragged;
    if (dayOf(entry) === day) return;
    var form = entry.querySelector(".move form");
    if (!form) return;
    form.querySelector("input[name=scheduled_at]").value = newTime(entry, day);
    live.textContent = "Moving…";
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });
})();
