// Live job page: polls the status endpoint while the job is queued or running, fills the
// progress bar, the epoch table and the loss chart, and reloads once when the job ends.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function el(name, attrs) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function drawLines(svg, series, opts) {
    // series: [{points: [[x, y], ...], cls: "train", dots: bool}]
    opts = opts || {};
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    // As wide in user units as on screen (up to 600): on a phone the labels keep their 12px size
    // instead of shrinking with a 600-unit drawing.
    var shown = svg.getBoundingClientRect().width;
    var w = shown ? Math.round(Math.max(280, Math.min(600, shown))) : 600;
    var h = svg.viewBox.baseVal.height || 240, pad = 36;
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    var all = [];
    series.forEach(function (s) { all = all.concat(s.points); });
    if (!all.length) {
      var t = el("text", {x: w / 2, y: h / 2, "text-anchor": "middle", "class": "chart-empty"});
      t.textContent = "No data yet";
      svg.appendChild(t);
      return;
    }
    var tx = opts.logx ? function (v) { return Math.log10(v); } : function (v) { return v; };
    var xs = all.map(function (p) { return tx(p[0]); }), ys = all.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min(0, Math.min.apply(null, ys)), y1 = Math.max.apply(null, ys);
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) y1 = y0 + 1;
    function sx(v) { return pad + (tx(v) - x0) / (x1 - x0) * (w - 2 * pad); }
    function sy(v) { return h - pad + 8 - (v - y0) / (y1 - y0) * (h - 2 * pad); }
    svg.appendChild(el("line", {x1: pad, y1: h - pad + 8, x2: w - pad, y2: h - pad + 8, "class": "axis"}));
    svg.appendChild(el("line", {x1: pad, y1: pad - 8, x2: pad, y2: h - pad + 8, "class": "axis"}));
    [y0, (y0 + y1) / 2, y1].forEach(function (v) {
      var label = el("text", {x: pad - 4, y: sy(v) + 4, "text-anchor": "end", "class": "tick"});
      label.textContent = v.toFixed(2);
      svg.appendChild(label);
    });
    if (opts.xlabel) {
      var xl = el("text", {x: w / 2, y: h - 4, "text-anchor": "middle", "class": "tick"});
      xl.textContent = opts.xlabel;
      svg.appendChild(xl);
    }
    series.forEach(function (s) {
      if (!s.points.length) return;
      var d = s.points.map(function (p, i) { return (i ? "L" : "M") + sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); }).join(" ");
      svg.appendChild(el("path", {d: d, "class": "line " + s.cls}));
      if (s.dots) s.points.forEach(function (p) {
        svg.appendChild(el("circle", {cx: sx(p[0]), cy: sy(p[1]), r: 4, "class": "dot " + s.cls}));
      });
    });
  }

  function lossSeries(train, epochs, nBatches) {
    var valid = (epochs || []).map(function (e) {
      return [e.epoch * (nBatches || 1), e.valid_loss];
    });
    return [{points: train || [], cls: "train"}, {points: valid, cls: "valid", dots: true}];
  }

  function readJSON(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function fmt(v, digits) { return (v === null || v === undefined) ? "–" : Number(v).toFixed(digits); }

  function renderEpochs(tbody, epochs) {
    tbody.innerHTML = "";
    epochs.forEach(function (e) {
      var tr = document.createElement("tr");
      [e.epoch, fmt(e.error_rate, 6), fmt(e.valid_loss, 6), fmt(e.train_loss, 6), e.phase, fmt(e.seconds, 0) + " s"]
        .forEach(function (v) { var td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
      tbody.appendChild(tr);
    });
  }

  var PHASES = {head: "Training the new head (body frozen)", whole: "Training the whole model",
    lr_find: "Finding a learning rate", starting: "Preparing the data and the model", done: "Finishing"};

  function startJobPage(root) {
    var chart = document.getElementById("loss-chart");
    var table = document.querySelector("#epoch-table tbody");
    var nBatches = Number(root.dataset.nBatches) || 1;
    drawLines(chart, lossSeries(readJSON("loss-data"), readJSON("epochs-data") || [], nBatches), {xlabel: "batches"});
    var lr = readJSON("lr-data");
    if (lr && lr.points) {
      drawLines(document.getElementById("lr-chart"), [{points: lr.points, cls: "train"}], {logx: true, xlabel: "learning rate (log scale)"});
    }
    if (root.dataset.live !== "1") return;
    var url = root.dataset.statusUrl, failures = 0;
    function poll() {
      fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (s) {
          failures = 0;
          document.getElementById("job-progress").value = s.progress;
          var state = document.getElementById("job-state");
          state.textContent = s.state.charAt(0).toUpperCase() + s.state.slice(1);
          state.className = "state state-" + s.state;
          document.getElementById("queue-note").textContent =
            s.queue_position ? "Waiting in the queue: position " + s.queue_position + "." : "";
          var phase = PHASES[s.phase] || s.phase || "";
          if (s.state === "running" && s.n_batches) {
            phase += " · epoch " + s.epoch + " of " + s.total_epochs + ", batch " + s.batch + " of " + s.n_batches;
          }
          if (s.cancel_requested) phase = "Stopping at the next batch…";
          document.getElementById("phase-note").textContent = phase;
          renderEpochs(table, s.epochs);
          drawLines(chart, lossSeries(s.train_losses, s.epochs, s.n_batches), {xlabel: "batches"});
          if (!s.live) { window.location.reload(); return; }
          setTimeout(poll, 1000);
        })
        .catch(function () { failures += 1; setTimeout(poll, Math.min(10000, 1000 * (1 + failures))); });
    }
    poll();
  }

  function startCompare() {
    var a = readJSON("loss-a") || [], b = readJSON("loss-b") || [];
    drawLines(document.getElementById("compare-chart"),
      [{points: a, cls: "train"}, {points: b, cls: "valid"}], {xlabel: "batches"});
  }

  function pollUntilDone(root, url) {
    // Prediction pages: reload once the answer is in.
    if (root.dataset.live !== "1") return;
    function poll() {
      if (!url) { setTimeout(function () { window.location.reload(); }, 1500); return; }
      fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
        if (!s.live) { window.location.reload(); return; }
        setTimeout(poll, 500);
      }).catch(function () { setTimeout(poll, 2000); });
    }
    poll();
  }

  function dropzone(form) {
    var input = form.querySelector("input[type=file]");
    ["dragenter", "dragover"].forEach(function (name) {
      form.addEventListener(name, function (e) { e.preventDefault(); form.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      form.addEventListener(name, function () { form.classList.remove("dragging"); });
    });
    form.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; form.submit(); }
    });
  }

  function archWithoutWeights(form) {
    // New-experiment form: an architecture whose pretrained weights this server lacks can only be
    // trained from scratch, so picking one unticks (and locks) "pretrained" and says why; picking
    // another gives the student's own choice back. The server refuses the combination anyway.
    var arch = form.querySelector("select[name=arch]");
    var pretrained = form.querySelector("input[name=pretrained]");
    if (!arch || !pretrained) return;
    var help = document.getElementById(pretrained.id + "_helptext");
    var helpText = help ? help.textContent : "";
    var chosen = pretrained.checked;
    function update() {
      var option = arch.options[arch.selectedIndex];
      var scratchOnly = option && option.hasAttribute("data-no-weights");
      if (scratchOnly) {
        if (!pretrained.disabled) chosen = pretrained.checked;
        pretrained.checked = false;
        pretrained.disabled = true;
        if (help) help.textContent = option.textContent.replace(/ \(.*$/, "") +
          "'s pretrained weights are not installed on this server, so it trains from scratch.";
      } else if (pretrained.disabled) {
        pretrained.disabled = false;
        pretrained.checked = chosen;
        if (help) help.textContent = helpText;
      }
    }
    arch.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var jobForm = document.querySelector("form.job-form");
    if (jobForm) archWithoutWeights(jobForm);
    var prediction = document.getElementById("prediction");
    if (prediction) pollUntilDone(prediction, prediction.dataset.statusUrl);
    var batch = document.getElementById("batch");
    if (batch) pollUntilDone(batch, null);
    var drop = document.getElementById("predict-form");
    if (drop) dropzone(drop);
    var root = document.getElementById("job");
    if (root) startJobPage(root);
    if (document.getElementById("compare-chart")) startCompare();
  });
})();
