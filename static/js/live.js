// One websocket per page for the signed-in user's events. It re-dispatches each message as a
// DOM event ("ecg:<type>") and shows a notification when a batch completes. It reconnects with
// backoff; the server sends the current state on every (re)connect, so nothing is missed.
(function () {
  "use strict";
  var path = document.body.dataset.liveUrl;
  if (!path) return;
  var retryMs = 1000;
  var socket = null;

  function toast(html) {
    var box = document.getElementById("toasts");
    var item = document.createElement("div");
    item.className = "toast";
    item.setAttribute("role", "status");
    item.innerHTML = html;
    box.appendChild(item);
    setTimeout(function () { item.classList.add("fade"); }, 8000);
    setTimeout(function () { item.remove(); }, 9000);
  }

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + path);
    window.ecgLive = { socket: socket, send: function (msg) { if (socket.readyState === 1) socket.send(JSON.stringify(msg)); } };
    socket.addEventListener("open", function () {
      retryMs = 1000;
      document.dispatchEvent(new CustomEvent("ecg:open"));
    });
    socket.addEventListener("message", function (event) {
      var message = JSON.parse(event.data);
      document.dispatchEvent(new CustomEvent("ecg:" + message.type, { detail: message }));
      if (message.type === "batch.completed") {
        var batch = message.batch;
        var failed = batch.counts.failed ? ", " + batch.counts.failed + " failed" : "";
        toast("Batch <a href=\"" + batch.url + "\">" + escapeHtml(batch.name) + "</a> is complete: " +
              batch.counts.succeeded + " classified" + failed + ".");
      }
    });
    socket.addEventListener("close", function (event) {
      if (event.code === 4401) return; // signed out: nothing to reconnect to
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    });
  }
  connect();
})();
