// Sends the chosen files in one request with a progress bar, then opens the new batch's page.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  var input = document.getElementById("images");
  var zone = document.getElementById("dropzone");
  var chosen = document.getElementById("chosen");
  var progress = document.getElementById("upload-progress");
  var bar = progress.querySelector(".bar");
  var label = progress.querySelector(".progress-label");
  var errors = document.getElementById("upload-errors");
  var button = document.getElementById("upload-button");

  function showChosen() {
    var count = input.files.length;
    chosen.textContent = count ? count + " file" + (count === 1 ? "" : "s") + " chosen" : "";
  }
  function showErrors(list) {
    errors.innerHTML = "";
    list.forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      errors.appendChild(item);
    });
  }

  input.addEventListener("change", showChosen);
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    input.files = event.dataTransfer.files;
    showChosen();
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!input.files.length) { showErrors(["Choose at least one JPEG or PNG image."]); return; }
    showErrors([]);
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Accept", "application/json");
    progress.hidden = false;
    button.disabled = true;
    request.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var percent = Math.round((e.loaded / e.total) * 100);
      bar.style.width = percent + "%";
      label.textContent = percent < 100 ? percent + "% uploaded" : "Checking images…";
    });
    request.addEventListener("load", function () {
      var body = {};
      try { body = JSON.parse(request.responseText); } catch (ignored) { body = {}; }
      if (request.status === 201) { window.location.assign(body.url); return; }
      button.disabled = false;
      progress.hidden = true;
      showErrors(body.errors || ["The upload failed (HTTP " + request.status + "). Please try again."]);
    });
    request.addEventListener("error", function () {
      button.disabled = false;
      progress.hidden = true;
      showErrors(["The connection was lost during the upload. Please try again."]);
    });
    request.send(new FormData(form));
  });
})();
