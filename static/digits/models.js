// Model pages: the learning-rate preview of the new-model form, and the live
// training charts of the model page (fed by jobs.js's event stream).
(function () {
  "use strict";

  function lrPreview(canvas) {
    const form = document.getElementById("model-form");
    const chart = new Chart(canvas, {
      type: "line",
      data: { labels: [], datasets: [{ label: "learning rate", data: [], pointRadius: 0, borderWidth: 2 }] },
      options: { animation: false, scales: { x: { title: { display: true, text: "epoch" } } } },
    });
    function refresh() {
      const params = new URLSearchParams();
      ["epochs", "policy", "base_lr", "gamma", "power", "step_size", "step_values"].forEach(function (name) {
        const input = form.elements[name];
        if (input && input.value !== "") params.set(name, input.value);
      });
      fetch(canvas.dataset.url + "?" + params, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          chart.data.labels = data.epochs.map(function (e) { return e.toFixed(1); });
          chart.data.datasets[0].data = data.lr;
          chart.update();
        });
    }
    form.addEventListener("change", refresh);
    refresh();
  }

  const SERIES = {
    "train/loss": { chart: "loss", label: "train loss", axis: "y", smooth: true },
    "val/loss": { chart: "loss", label: "val loss", axis: "y" },
    "train/accuracy": { chart: "loss", label: "train accuracy", axis: "y2", smooth: true },
    "val/accuracy": { chart: "loss", label: "val accuracy", axis: "y2" },
    "val/top5": { chart: "loss", label: "val top-5", axis: "y2" },
    "lr": { chart: "lr", label: "learning rate", axis: "y", stepped: "after" },
    // segmentation (apps/mlmodels/tasks.py)
    "train/pixel_accuracy": { chart: "loss", label: "train pixel accuracy", axis: "y2", smooth: true },
    "val/pixel_accuracy": { chart: "loss", label: "val pixel accuracy", axis: "y2" },
    "train/dice": { chart: "loss", label: "train Dice", axis: "y2", smooth: true },
    "val/dice": { chart: "loss", label: "val Dice", axis: "y2" },
    "train/mean_iou": { chart: "loss", label: "train mean IoU", axis: "y2", smooth: true },
    "val/mean_iou": { chart: "loss", label: "val mean IoU", axis: "y2" },
    // system metrics (apps/jobs/sysmetrics.py), about once a second
    "system/cpu_percent": { chart: "system", label: "CPU (%)", axis: "y" },
    "system/memory_mb": { chart: "system", label: "memory (MB)", axis: "y2" },
  };
  const PER_CLASS = /^(train|val)\/(dice|iou)_(\d+)$/;
  const GPU = /^system\/gpu(\d+)\/(utilization|memory_mb)$/;

  // A series' chart, label and axis; per-class Dice and IoU ("val/dice_1") are named by
  // the dataset's class names.
  function specOf(series, labelNames) {
    if (SERIES[series]) return SERIES[series];
    const gpu = GPU.exec(series);
    if (gpu) {
      const memory = gpu[2] === "memory_mb";
      return { chart: "system", label: "GPU " + gpu[1] + (memory ? " memory (MB)" : " (%)"), axis: memory ? "y2" : "y" };
    }
    const match = PER_CLASS.exec(series);
    if (!match) return null;
    const name = labelNames[Number(match[3])] || match[3];
    const figure = match[2] === "dice" ? "Dice" : "IoU";
    return { chart: "loss", label: match[1] + " " + figure + " " + name, axis: "y2" };
  }

  // Each finished epoch's row, as the server renders it (templates/mlmodels/detail.html).
  function epochRows(root, config) {
    const table = document.getElementById("epoch-table");
    if (!table) return;
    const body = table.tBodies[0];
    root.addEventListener("digits:event", function (e) {
      if (e.detail.type !== "epoch") return;
      const d = e.detail.data;
      if (body.querySelector('tr[data-epoch="' + d.epoch + '"]')) return;
      const empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      const tr = document.createElement("tr");
      tr.dataset.epoch = d.epoch;
      tr.insertCell().textContent = d.epoch;
      (config.columns || []).forEach(function (key) {
        const v = d.row[key];
        tr.insertCell().textContent = v == null ? "" : Number(v).toFixed(4);
      });
      const cell = tr.insertCell();
      if (d.row.snapshot && config.download_url) {
        const a = document.createElement("a");
        a.href = config.download_url + "?epoch=" + d.epoch;
        a.textContent = "download";
        cell.appendChild(a);
      }
      body.appendChild(tr);
    });
  }

  // The charts read the job's metrics once as downsampled series (the job's metrics
  // API), then follow the event stream from the seq those cover.
  function trainingCharts(root) {
    const config = JSON.parse(document.getElementById("chart-config").textContent);
    const labelNames = config.label_names || [];
    const charts = DigitsCharts.group(document.getElementById("chart-toolbar"));
    const byName = {
      loss: charts.chart(document.getElementById("loss-chart"), {
        axes: { y: "loss", y2: "accuracy" }, logAxis: "y", aspect: 2.2,
        empty: "No training metrics yet: the first points appear once training starts." }),
      lr: charts.chart(document.getElementById("lr-chart"), {
        axes: { y: "learning rate" }, logAxis: null, aspect: 1.6, empty: "No learning rate yet." }),
      system: charts.chart(document.getElementById("system-chart"), {
        axes: { y: "utilisation (%)", y2: "memory (MB)" }, fixedX: "time (s)", aspect: 1.6,
        empty: "No system metrics yet: sampled every second while the model trains." }),
    };
    if (config.steps_per_epoch) charts.state.stepsPerEpoch = config.steps_per_epoch;
    let covered = null;  // the seq the loaded series cover; null: not loaded yet
    const waiting = [];
    function add(d, time) {
      if (d.series === "steps_per_epoch") { charts.setStepsPerEpoch(d.value); return; }
      const spec = specOf(d.series, labelNames);
      if (!spec) return;
      const series = byName[spec.chart].series(d.series, {
        label: spec.label, axis: spec.axis, smooth: spec.smooth, stepped: spec.stepped,
        pointRadius: d.series.startsWith("val") ? 3 : 0,
      });
      series.push(d.step, d.value, time);
      root.dataset.chartPoints = String((Number(root.dataset.chartPoints) || 0) + 1);
    }
    root.addEventListener("digits:event", function (e) {
      if (e.detail.type !== "metric") return;
      if (covered === null) waiting.push(e.detail);
      else if (e.detail.seq > covered) add(e.detail.data, Date.parse(e.detail.time) / 1000);
    });
    root.addEventListener("digits:backfilled", function () {
      const started = performance.now();
      fetch(config.metrics_url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { series: {}, last_seq: 0 }; })
        .then(function (loaded) {
          const steps = loaded.series.steps_per_epoch;
          if (steps && steps.length) charts.setStepsPerEpoch(steps[steps.length - 1][1]);
          Object.keys(loaded.series).forEach(function (name) {
            loaded.series[name].forEach(function (p) { add({ series: name, step: p[0], value: p[1] }, p[2]); });
          });
          covered = loaded.last_seq;
          // Drawn on the next frame: the time from asking for the series to a drawn chart.
          requestAnimationFrame(function () {
            requestAnimationFrame(function () {
              root.dataset.seriesMs = String(Math.round(performance.now() - started));
              root.dataset.seriesLoaded = "true";
            });
          });
          waiting.splice(0).forEach(function (ev) {
            if (ev.seq > covered) add(ev.data, Date.parse(ev.time) / 1000);
          });
        });
    }, { once: true });
    epochRows(root, config);
  }

  // The new-model form offers the standard networks of the chosen dataset's task only.
  function networksOfTask(form) {
    const tasks = JSON.parse(document.getElementById("dataset-tasks").textContent);
    const networks = JSON.parse(document.getElementById("task-networks").textContent);
    const dataset = form.elements.dataset, select = form.elements.standard_network;
    if (!dataset || !select) return;
    function refresh() {
      const task = tasks[dataset.value];
      const allowed = task ? networks[task] : null;
      Array.from(select.options).forEach(function (option) {
        option.hidden = option.value !== "" && allowed !== null && allowed.indexOf(option.value) < 0;
      });
      Array.from(select.querySelectorAll("optgroup")).forEach(function (group) {
        group.hidden = Array.from(group.children).every(function (o) { return o.hidden; });
      });
      if (select.selectedOptions[0] && select.selectedOptions[0].hidden) select.value = "";
    }
    dataset.addEventListener("change", refresh);
    refresh();
  }

  document.addEventListener("DOMContentLoaded", function () {
    const preview = document.getElementById("lr-preview");
    if (preview) lrPreview(preview);
    const form = document.getElementById("model-form");
    if (form && document.getElementById("dataset-tasks")) networksOfTask(form);
    const job = document.getElementById("job");
    if (job && document.getElementById("loss-chart")) trainingCharts(job);
  });
})();
