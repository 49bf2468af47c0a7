// FrontDesk console: the few behaviours htmx does not cover. No dependencies.
(function () {
  "use strict";

  // Live calls: show each call's running duration (the server sends its start time only, so
  // the panel's HTML changes only when the call does).
  function tickDurations() {
    var now = Date.now() / 1000;
    document.querySelectorAll(".duration[data-started]").forEach(function (el) {
      var s = Math.max(0, Math.floor(now - parseFloat(el.dataset.started)));
      el.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    });
  }
  setInterval(tickDurations, 1000);
  document.addEventListener("htmx:sseMessage", tickDurations);
  document.addEventListener("DOMContentLoaded", tickDurations);

  // Call detail: choose a transcript line to hear it; the line being played is highlighted.
  document.addEventListener("click", function (e) {
    var button = e.target.closest("button.seek");
    var audio = document.getElementById("recording");
    if (!button || !audio) { return; }
    audio.currentTime = parseInt(button.dataset.seekMs, 10) / 1000;
    audio.play().catch(function () { /* autoplay refused: the position is still set */ });
  });
  document.addEventListener("DOMContentLoaded", function () {
    var audio = document.getElementById("recording");
    if (!audio) { return; }
    var lines = Array.prototype.slice.call(document.querySelectorAll(".transcript li[data-start-ms]"));
    audio.addEventListener("timeupdate", function () {
      var ms = audio.currentTime * 1000;
      lines.forEach(function (li) {
        var on = ms >= parseInt(li.dataset.startMs, 10) && ms <= parseInt(li.dataset.endMs, 10) + 300;
        li.classList.toggle("playing", on);
      });
    });
  });

  // htmx posts carry the page's CSRF token too (forms already have it as a field).
  document.addEventListener("htmx:configRequest", function (e) {
    var field = document.querySelector("input[name=csrf]");
    if (field) { e.detail.headers["X-CSRF-Token"] = field.value; }
  });
})();
