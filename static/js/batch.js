// Renders one batch and keeps it current from the websocket: a progress bar for the batch and,
// per image, its status, label, four probability bars and, once the worker has digitised the
// page, its twelve leads redrawn by the server (an SVG image) with links to their CSV and JSON,
// and a small table of what was measured on them.
(function () {
  "use strict";
  var batch = JSON.parse(document.getElementById("batch-data").textContent);
  var classNames = JSON.parse(document.getElementById("class-names").textContent);
  var jobsBox = document.getElementById("jobs");
  var jobs = {};
  batch.jobs.forEach(function (job) { jobs[job.id] = job; });

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderJob(job) {
    var card = document.getElementById("job-" + job.id);
    if (!card) {
      card = el("article", "job card");
      card.id = "job-" + job.id;
      card.dataset.jobId = job.id;
      jobsBox.appendChild(card);
    }
    card.dataset.status = job.status;
    card.innerHTML = "";
    var thumb = el("img", "thumb");
    thumb.src = job.image_url;
    thumb.alt = job.image_name;
    thumb.loading = "lazy";
    card.appendChild(thumb);
    var body = el("div", "job-body");
    body.appendChild(el("h3", "job-name", job.image_name));
    var status = el("p", "job-status pill " + job.status, job.status);
    body.appendChild(status);
    if (job.status === "succeeded" && job.probabilities) {
      var labelName = classNames.find(function (pair) { return pair[0] === job.label; });
      var result = el("p", "job-label label-" + job.label, labelName ? labelName[1] : job.label);
      result.dataset.label = job.label;
      body.appendChild(result);
      if (job.label_note) body.appendChild(el("p", "label-note small", job.label_note));
      if (job.photographed) {
        body.appendChild(el("p", "photo-note small", "Read from a photo: the page was found and straightened."));
      }
      var bars = el("dl", "probabilities");
      classNames.forEach(function (pair) {
        var value = job.probabilities[pair[0]];
        var row = el("div", "prob-row" + (pair[0] === job.label ? " top" : ""));
        row.dataset.class = pair[0];
        row.appendChild(el("dt", "", pair[1]));
        var dd = el("dd", "");
        var track = el("span", "prob-track");
        var fill = el("span", "prob-fill");
        fill.style.width = (value * 100).toFixed(1) + "%";
        track.appendChild(fill);
        dd.appendChild(track);
        dd.appendChild(el("span", "prob-value", (value * 100).toFixed(1) + "%"));
        row.appendChild(dd);
        bars.appendChild(row);
      });
      body.appendChild(bars);
      var about = el("p", "muted small job-model");
      var model = el("a", "model-link", job.model_version);
      model.href = job.model_url;
      model.title = "What this model learnt from, how well it does and what it cannot do";
      about.appendChild(model);
      about.appendChild(document.createTextNode(" · " + job.inference_ms.toFixed(0) + " ms"));
      body.appendChild(about);
      if (job.explanation) body.appendChild(renderExplanation(job));
    } else if (job.status === "failed") {
      body.appendChild(el("p", "job-error", job.error || "This image could not be classified."));
    }
    if (job.report_url) {
      var report = el("a", "job-report small", "PDF report");
      report.href = job.report_url;
      report.setAttribute("download", "");
      body.appendChild(report);
    }
    card.appendChild(body);
    if (job.status === "succeeded" && job.signal_svg_url) card.appendChild(renderSignal(job));
    if (job.status === "succeeded" && job.measurements) card.appendChild(renderMeasurements(job.measurements));
  }

  var UNMEASURED = "\u2014";  // an em dash: the software could not measure it on this page

  function rounded(value) {
    return value === null || value === undefined ? UNMEASURED : String(Math.round(value));
  }

  function millivolts(value) {
    return (value > 0 ? "+" : "") + value.toFixed(2);
  }

  // The summary the server sends (classifier.presenters.measurements_summary): intervals and
  // rate (null: not measured), the leads whose ST deviates by st_threshold_mv or more ({}: none;
  // null: not measured), the leads with a pathological Q wave ([]: none; null: not assessed).
  function renderMeasurements(m) {
    var table = el("table", "measurements");
    table.appendChild(el(
      "caption", "muted small",
      "Read from the printout by software, not a clinical measurement: check them on the ECG."
    ));
    var stLeads = m.st_mv === null ? null : Object.keys(m.st_mv);
    var threshold = m.st_threshold_mv.toFixed(1) + " mV";
    var rows = [
      ["heart_rate_bpm", "Heart rate (bpm)", rounded(m.heart_rate_bpm)],
      ["pr_ms", "PR (ms)", rounded(m.pr_ms)],
      ["qrs_ms", "QRS (ms)", rounded(m.qrs_ms)],
      ["qt_ms", "QT (ms)", rounded(m.qt_ms)],
      ["qtc_ms", "QTc (" + m.qtc_formula + ") (ms)", rounded(m.qtc_ms)],
      [
        "st_mv", "ST at J+60 ms (|ST| \u2265 " + threshold + ")",
        stLeads === null ? UNMEASURED
          : stLeads.length ? stLeads.map(function (lead) {
            return lead + " " + millivolts(m.st_mv[lead]) + " mV";
          }).join(", ")
          : "none \u2265 " + threshold
      ],
      [
        "q_waves", "Pathological Q waves",
        m.q_waves === null ? UNMEASURED : m.q_waves.length ? m.q_waves.join(", ") : "none"
      ]
    ];
    var body = el("tbody");
    rows.forEach(function (row) {
      var tr = el("tr");
      tr.dataset.measure = row[0];
      var th = el("th", "", row[1]);
      th.scope = "row";
      tr.appendChild(th);
      tr.appendChild(el("td", row[2] === UNMEASURED ? "unmeasured" : "", row[2]));
      body.appendChild(tr);
    });
    table.appendChild(body);
    return table;
  }

  // The leads as the printout lays them out (3 rows of 4 panels and the rhythm strip), drawn on
  // the server: an image from this site, so the page needs no charting script.
  function renderSignal(job) {
    var figure = el("figure", "signal");
    var image = el("img", "signal-image");
    image.src = job.signal_svg_url;
    image.alt = "The twelve leads of " + job.image_name + ", as digitised";
    image.loading = "lazy";
    var full = el("a", "signal-full");
    full.href = job.signal_svg_url;  // the drawing at full size, in its own tab
    full.target = "_blank";
    full.rel = "noopener";
    full.appendChild(image);
    figure.appendChild(full);
    var caption = el("figcaption", "muted small", "The twelve leads as read from the page (mV) · ");
    var csv = el("a", "signal-csv", "CSV");
    csv.href = job.signal_csv_url;
    csv.setAttribute("download", "");
    caption.appendChild(csv);
    caption.appendChild(document.createTextNode(" · "));
    var json = el("a", "signal-json", "JSON");
    json.href = job.signal_url;
    caption.appendChild(json);
    figure.appendChild(caption);
    return figure;
  }

  // The sentence, and the page with the model's weight map over it behind a button (loaded on
  // the first click: one more image per result only for those who ask).
  function renderExplanation(job) {
    var box = el("div", "explanation");
    box.appendChild(el("p", "explanation-text", job.explanation.text + "."));
    var toggle = el("button", "link explanation-toggle", "Show where on the page");
    toggle.type = "button";
    var picture = el("img", "explanation-overlay");
    picture.alt = job.image_name + ": " + job.explanation.text;
    picture.hidden = true;
    toggle.addEventListener("click", function () {
      if (!picture.getAttribute("src")) picture.src = job.explanation.page_image_url;
      picture.hidden = !picture.hidden;
      toggle.textContent = picture.hidden ? "Show where on the page" : "Hide the overlay";
    });
    box.appendChild(toggle);
    box.appendChild(picture);
    return box;
  }

  function renderSummary() {
    var list = Object.keys(jobs).map(function (id) { return jobs[id]; });
    var done = list.filter(function (j) { return j.status === "succeeded" || j.status === "failed"; }).length;
    var failed = list.filter(function (j) { return j.status === "failed"; }).length;
    var percent = list.length ? Math.round((done / list.length) * 100) : 0;
    var progress = document.getElementById("batch-progress");
    progress.querySelector(".bar").style.width = percent + "%";
    progress.querySelector(".progress-label").textContent = done + " of " + list.length + " done";
    progress.dataset.done = done;
    var text = done === list.length ? "Complete." : "Classifying… results appear here as they arrive.";
    if (failed) text += " " + failed + " could not be classified.";
    document.getElementById("batch-status").textContent = text;
  }

  function update(job) {
    if (job.batch !== batch.id) return;
    jobs[job.id] = job;
    renderJob(job);
    renderSummary();
  }

  batch.jobs.forEach(renderJob);
  renderSummary();

  document.addEventListener("ecg:job.updated", function (e) { update(e.detail.job); });
  document.addEventListener("ecg:open", function () {
    window.ecgLive.send({ type: "batch.subscribe", batch: batch.id });
  });
  document.addEventListener("ecg:batch.state", function (e) {
    if (e.detail.batch.id === batch.id) e.detail.batch.jobs.forEach(update);
  });
})();
