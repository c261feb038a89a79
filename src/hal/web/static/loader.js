/* HAL widget loader: paste into your page (inline), set HAL_BASE, then call HalWidget.*. */
(function (w, d, base) {
  if (w.HalWidget) return;
  var queue = [], stub = { _q: queue };
  ["boot", "identify", "setProperties", "track", "setStage", "setDeal", "reset", "open",
    "close", "on", "getVisitorId", "sendMessage", "fetchMessages"].forEach(function (name) {
    stub[name] = function () {
      var args = arguments;
      return new Promise(function (resolve, reject) { queue.push([name, args, resolve, reject]); });
    };
  });
  w.HalWidget = stub;
  var script = d.createElement("script");
  script.async = true;
  script.src = base + "/widget.js";
  d.head.appendChild(script);
})(window, document, window.HAL_BASE || "");
