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
    "train/loss": { chart: "loss", label: "train loss", axis: "y" },
    "val/loss": { chart: "loss", label: "val loss", axis: "y" },
    "train/accuracy": { chart: "loss", label: "train accuracy", axis: "y2" },
    "val/accuracy": { chart: "loss", label: "val accuracy", axis: "y2" },
    "val/top5": { chart: "loss", label: "val top-5", axis: "y2" },
    "lr": { chart: "lr", label: "learning rate", axis: "y" },
    // segmentation (apps/mlmodels/tasks.py)
    "train/pixel_accuracy": { chart: "loss", label: "train pixel accuracy", axis: "y2" },
    "val/pixel_accuracy": { chart: "loss", label: "val pixel accuracy", axis: "y2" },
    "train/dice": { chart: "loss", label: "train Dice", axis: "y2" },
    "val/dice": { chart: "loss", label: "val Dice", axis: "y2" },
    "train/mean_iou": { chart: "loss", label: "train mean IoU", axis: "y2" },
    "val/mean_iou": { chart: "loss", label: "val mean IoU", axis: "y2" },
  };
  const PER_CLASS = /^(train|val)\/(dice|iou)_(\d+)$/;

  // A series' chart, label and axis; per-class Dice and IoU ("val/dice_1") are named by
  // the dataset's class names.
  function specOf(series, labelNames) {
    if (SERIES[series]) return SERIES[series];
    const match = PER_CLASS.exec(series);
    if (!match) return null;
    const name = labelNames[Number(match[3])] || match[3];
    const figure = match[2] === "dice" ? "Dice" : "IoU";
    return { chart: "loss", label: match[1] + " " + figure + " " + name, axis: "y2" };
  }

  function trainingCharts(root) {
    const config = JSON.parse(document.getElementById("chart-config").textContent);
    let stepsPerEpoch = config.steps_per_epoch || null;
    const labelNames = config.label_names || [];
    const pending = [];
    function makeChart(id, twoAxes) {
      const scales = { x: { type: "linear", title: { display: true, text: "epoch" } }, y: { position: "left" } };
      if (twoAxes) scales.y2 = { position: "right", min: 0, max: 1, grid: { drawOnChartArea: false } };
      return new Chart(document.getElementById(id), {
        type: "line", data: { datasets: [] },
        options: { animation: false, parsing: false, normalized: true, scales: scales, elements: { point: { radius: 0 } } },
      });
    }
    const charts = { loss: makeChart("loss-chart", true), lr: makeChart("lr-chart", false) };
    const datasets = {};
    function dataset(series) {
      if (!datasets[series]) {
        const spec = specOf(series, labelNames);
        const ds = { label: spec.label, data: [], yAxisID: spec.axis, borderWidth: 2, pointRadius: series.startsWith("val") ? 3 : 0 };
        charts[spec.chart].data.datasets.push(ds);
        datasets[series] = ds;
      }
      return datasets[series];
    }
    let scheduled = false;
    function redraw() {
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(function () { scheduled = false; charts.loss.update(); charts.lr.update(); });
    }
    function add(d) {
      if (d.series === "steps_per_epoch") {
        stepsPerEpoch = d.value;
        pending.splice(0).forEach(add);
        return;
      }
      if (!specOf(d.series, labelNames)) return;
      if (!stepsPerEpoch) { pending.push(d); return; }
      dataset(d.series).data.push({ x: d.step / stepsPerEpoch, y: d.value });
      root.dataset.chartPoints = String((Number(root.dataset.chartPoints) || 0) + 1);
      redraw();
    }
    root.addEventListener("digits:event", function (e) {
      if (e.detail.type === "metric") add(e.detail.data);
    });
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
