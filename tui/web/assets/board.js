// The staff board's page: which layout its board process takes, and the tablet's soft keyboard.
(function () {
  "use strict";
  var terminal = document.getElementById("terminal");
  var layout = terminal.dataset.layout;
  if (layout !== "touch" && layout !== "compact") {
    // [board] layout = "auto": a touch screen (a coarse pointer) gets the touch layout.
    layout = window.matchMedia("(pointer: coarse)").matches ? "touch" : "compact";
  }
  // textual.js (on load) connects to this URL and draws at this font size.
  terminal.dataset.sessionWebsocketUrl += "/" + layout;
  if (layout === "touch" && terminal.dataset.touchFontSize) {
    terminal.dataset.fontSize = terminal.dataset.touchFontSize;
  }
  document.body.classList.add("-" + layout);

  // The board says which keyboard its focused field wants in the address's fragment
  // (#keyboard=numeric|text|none, through Textual's open_url: same page, no reload). xterm.js
  // takes typing through a hidden textarea, whose inputmode picks the soft keyboard: the number
  // pad for a pager number or a party size, none while nothing is to be typed.
  if (window.location.hash) {
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  function keyboard() {
    var wanted = /keyboard=(numeric|text|none)/.exec(window.location.hash);
    var mode = wanted ? wanted[1] : layout === "touch" ? "none" : "text";
    var area = document.querySelector(".xterm-helper-textarea");
    if (area) {
      area.setAttribute("inputmode", mode);
    }
    document.body.dataset.keyboard = mode;
  }
  window.addEventListener("hashchange", keyboard);
  window.addEventListener("load", function () {
    setTimeout(keyboard, 0); // after textual.js has made its terminal (and the textarea)
  });
})();
