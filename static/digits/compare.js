// The compare page: one line per model and epoch in each chart (the data is in the page),
// each model in its own colour (the same on every page), and the sweep view: parallel
// coordinates of the options that differ against the chosen metric.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const modelColour = function (id) { return DigitsCharts.colourOf("model:" + id); };

  const data = JSON.parse(document.getElementById("compare-curves").textContent);
  document.querySelectorAll("canvas[data-curve]").forEach(function (canvas) {
    const key = canvas.dataset.curve;
    const datasets = data.models.map(function (model) {
      const colour = modelColour(model.id);
      return {
        label: model.name,
        data: model.series[key].map(function (point) { return { x: point[0], y: point[1] }; }),
        borderWidth: 2, pointRadius: 2, borderColor: colour, backgroundColor: colour,
      };
    });
    canvas.setAttribute("role", "img");
    canvas.chart = new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false, parsing: false, plugins: { colors: { enabled: false } },
        scales: {
          x: { type: "linear", title: { display: true, text: "epoch" }, ticks: { precision: 0 } },
          y: { title: { display: true, text: canvas.dataset.title || key.replace("_", " ") } },
        },
      },
    });
    DigitsCharts.dataTable(canvas, canvas.chart, function () { return "epoch"; });
  });
  document.getElementById("compare-charts").dataset.ready = "true";

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  // An axis maps a model's value to 0 (bottom) .. 1 (top): numbers on a linear or log
  // scale, anything else as evenly spaced categories.
  function scaleOf(axis, models) {
    const values = models.map(function (m) { return m.values[axis.key]; }).filter(function (v) { return v != null; });
    if (!axis.numeric) {
      const cats = Array.from(new Set(values.map(String))).sort();
      return { ticks: cats, at: function (v) { return v == null ? null : cats.length < 2 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1); } };
    }
    const f = axis.log ? Math.log10 : function (v) { return v; };
    const lo = Math.min.apply(null, values.map(f)), hi = Math.max.apply(null, values.map(f));
    const at = function (v) { return v == null ? null : hi === lo ? 0.5 : (f(v) - lo) / (hi - lo); };
    const fmt = function (v) { return Number(v.toPrecision(3)).toString(); };
    return { ticks: [fmt(Math.min.apply(null, values)), fmt(Math.max.apply(null, values))], at: at, numeric: true };
  }

  function parallelCoordinates(svg, sweep, metricKey) {
    const metric = sweep.metrics.find(function (m) { return m.key === metricKey; });
    const axes = sweep.axes.concat([{ key: metric.key, title: metric.title, numeric: true, log: false }]);
    const width = svg.clientWidth || 800, height = 280, top = 30, bottom = 30, left = 60, right = 60;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("height", height);
    svg.replaceChildren();
    const step = (width - left - right) / Math.max(axes.length - 1, 1);
    const y = function (f) { return top + (1 - f) * (height - top - bottom); };
    const scales = axes.map(function (a) { return scaleOf(a, sweep.models); });
    axes.forEach(function (axis, i) {
      const x = left + i * step, g = el("g", { "data-axis": axis.key }, svg);
      el("line", { x1: x, x2: x, y1: top, y2: height - bottom, stroke: "currentColor", "stroke-opacity": 0.5 }, g);
      const title = el("text", { x: x, y: 14, "text-anchor": "middle", "font-size": 12, fill: "currentColor", "font-weight": i === axes.length - 1 ? "bold" : "normal" }, g);
      title.textContent = axis.title + (axis.log ? " (log)" : "");
      const s = scales[i];
      (s.numeric ? [[s.ticks[0], 0], [s.ticks[1], 1]] : s.ticks.map(function (t) { return [t, s.at(t)]; }))
        .forEach(function (tick) {
          const label = el("text", { x: x - 6, y: y(tick[1]) + 4, "text-anchor": "end", "font-size": 10, fill: "currentColor" }, g);
          label.textContent = tick[0];
        });
    });
    sweep.models.forEach(function (model) {
      const points = axes.map(function (a, i) {
        const f = scales[i].at(model.values[a.key]);
        return f == null ? null : (left + i * step) + "," + y(f);
      }).filter(Boolean);
      const line = el("polyline", {
        points: points.join(" "), fill: "none", stroke: modelColour(model.id), "stroke-width": 2.5,
        "data-model": model.id, tabindex: 0,
      }, svg);
      el("title", {}, line).textContent = model.name + ": " + axes.map(function (a) {
        return a.title + " " + (model.values[a.key] == null ? "—" : model.values[a.key]);
      }).join(", ");
    });
  }

  const svg = document.getElementById("parallel-coordinates");
  if (svg) {
    const sweep = JSON.parse(document.getElementById("parallel-data").textContent);
    const select = document.querySelector("[data-role=sweep-metric]");
    const draw = function () { parallelCoordinates(svg, sweep, select.value); };
    select.addEventListener("change", draw);
    window.addEventListener("resize", draw);
    draw();
    svg.dataset.ready = "true";
  }
})();
