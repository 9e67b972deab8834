// The guest screen runs unattended: when its board session closes, reconnect by itself.
(function () {
  "use strict";
  var watcher = new MutationObserver(function () {
    if (document.body.classList.contains("-closed")) {
      watcher.disconnect();
      setTimeout(function () { window.location.reload(); }, 5000);
    }
  });
  watcher.observe(document.body, { attributes: true, attributeFilter: ["class"] });
})();
