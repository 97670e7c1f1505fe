// What the site's charts share (Chart.js underneath): stable colours (a series, a model
// keeps its colour on every page), axis titles, a toolbar (x axis step / epoch / wall
// time, linear or log scale, EMA smoothing, reset zoom), drag-to-zoom and shift-drag to
// pan, a crosshair and tooltip synced across the charts of a page, an empty state
// instead of an empty canvas, and a data table (<details>) as each chart's text
// alternative.
(function () {
  "use strict";

  // Axis labels and grid lines follow the colour theme (static/digits/theme.js), also
  // when the toggle switches it on an open page.
  function themeColours() {
    if (!window.Chart) return;
    const dark = document.documentElement.getAttribute("data-bs-theme") === "dark";
    Chart.defaults.color = dark ? "#dee2e6" : "#495057";
    Chart.defaults.borderColor = dark ? "rgba(255,255,255,0.15)" : "rgba(0,0,0,0.1)";
    Object.values(Chart.instances || {}).forEach(function (chart) {
      ["x", "y", "y1"].forEach(function (id) {
        const scale = chart.options.scales && chart.options.scales[id];
        if (!scale) return;
        scale.ticks = Object.assign(scale.ticks || {}, { color: Chart.defaults.color });
        scale.grid = Object.assign(scale.grid || {}, { color: Chart.defaults.borderColor });
        if (scale.title) scale.title.color = Chart.defaults.color;
      });
      chart.update("none");
    });
  }
  themeColours();
  new MutationObserver(themeColours).observe(document.documentElement, {
    attributes: true, attributeFilter: ["data-bs-theme"],
  });

  // Fixed colours for the series of one model's charts: the same series, the same colour.
  const SERIES_COLOURS = {
    "train/loss": "#1f77b4", "val/loss": "#ff7f0e", "train/accuracy": "#2ca02c",
    "val/accuracy": "#d62728", "val/top5": "#9467bd", "lr": "#8c564b",
    "system/cpu_percent": "#17becf", "system/memory_mb": "#7f7f7f",
  };

  function hash(text) {
    let h = 2166136261;  // FNV-1a
    for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 16777619); }
    return h >>> 0;
  }

  // A colour of its own for any key (a model id, a series name): a hue from its hash.
  function colourOf(key) {
    key = String(key);
    if (SERIES_COLOURS[key]) return SERIES_COLOURS[key];
    const h = hash(key);
    return "hsl(" + (h % 360) + ", " + (55 + (h >> 9) % 25) + "%, " + (35 + (h >> 17) % 12) + "%)";
  }

  // --- plugins: crosshair (synced) and drag-to-zoom -------------------------------
  const overlay = {
    id: "digitsOverlay",
    afterDraw: function (chart) {
      const ctx = chart.ctx, area = chart.chartArea;
      if (chart.$cross != null) {
        const px = chart.scales.x.getPixelForValue(chart.$cross);
        if (px >= area.left && px <= area.right) {
          ctx.save(); ctx.strokeStyle = "rgba(100,100,100,0.6)"; ctx.setLineDash([4, 3]);
          ctx.beginPath(); ctx.moveTo(px, area.top); ctx.lineTo(px, area.bottom); ctx.stroke(); ctx.restore();
        }
      }
      if (chart.$drag && chart.$drag.mode === "zoom") {
        const a = chart.$drag.from, b = chart.$drag.to;
        ctx.save(); ctx.fillStyle = "rgba(13,110,253,0.15)";
        ctx.fillRect(Math.min(a, b), area.top, Math.abs(b - a), area.bottom - area.top); ctx.restore();
      }
    },
  };

  function nearestIndex(data, x) {
    let lo = 0, hi = data.length - 1;
    if (hi < 0) return -1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (data[mid].x < x) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(data[lo - 1].x - x) < Math.abs(data[lo].x - x)) lo -= 1;
    return lo;
  }

  // --- a group: the charts of a page and their toolbar -----------------------------
  function group(toolbar, options) {
    options = options || {};
    const state = { xMode: options.xMode || "epoch", log: false, smoothing: 0, stepsPerEpoch: null, t0: null };
    const charts = [];

    function xOf(chart, p) {
      if (chart.$fixedX) return p.step;
      if (state.xMode === "step") return p.step;
      if (state.xMode === "time") return p.time - (state.t0 || p.time);
      return state.stepsPerEpoch ? p.step / state.stepsPerEpoch : p.step;
    }
    function xTitle(chart) {
      if (chart.$fixedX) return chart.$fixedX;
      return { step: "step", epoch: "epoch", time: "wall time (s)" }[state.xMode];
    }

    // The drawn points of a series, from its raw points: x by the chosen axis, EMA
    // smoothing (debiased, as TensorBoard does) for the series that take it.
    function points(chart, s) {
      const a = s.smooth ? state.smoothing : 0;
      let ema = 0;
      return s.raw.map(function (p, i) {
        let y = p.value;
        if (a > 0) { ema = a * ema + (1 - a) * y; y = ema / (1 - Math.pow(a, i + 1)); }
        return { x: xOf(chart, p), y: y };
      });
    }

    function redrawAll() {
      charts.forEach(function (chart) {
        chart.options.scales.x.title.text = xTitle(chart);
        if (chart.$logAxis) chart.options.scales[chart.$logAxis].type = state.log ? "logarithmic" : "linear";
        Object.values(chart.$series).forEach(function (s) { s.dataset.data = points(chart, s); });
        chart.$refresh();
      });
    }

    function bindToolbar() {
      if (!toolbar) return;
      const xAxis = toolbar.querySelector("[data-role=x-axis]");
      const log = toolbar.querySelector("[data-role=log-scale]");
      const smooth = toolbar.querySelector("[data-role=smoothing]");
      const reset = toolbar.querySelector("[data-role=reset-zoom]");
      if (xAxis) xAxis.addEventListener("change", function () { state.xMode = xAxis.value; resetZoom(); redrawAll(); });
      if (log) log.addEventListener("change", function () { state.log = log.checked; redrawAll(); });
      if (smooth) smooth.style.width = "8rem";
      if (smooth) smooth.addEventListener("input", function () {
        state.smoothing = Number(smooth.value);
        const out = toolbar.querySelector("[data-role=smoothing-value]");
        if (out) out.textContent = state.smoothing.toFixed(2);
        redrawAll();
      });
      if (reset) reset.addEventListener("click", function () { resetZoom(); redrawAll(); });
    }
    function resetZoom() {
      charts.forEach(function (c) { delete c.options.scales.x.min; delete c.options.scales.x.max; c.$zoomed = false; });
    }

    function syncCrosshair(source, x) {
      charts.forEach(function (chart) {
        if (!chart.canvas.offsetParent && x != null) return;  // hidden (empty)
        if (chart.$fixedX !== source.$fixedX) { chart.$cross = null; chart.draw(); return; }
        chart.$cross = x;
        if (chart !== source) {
          const active = [];
          if (x != null) chart.data.datasets.forEach(function (d, i) {
            const idx = nearestIndex(d.data, x);
            if (idx >= 0 && !chart.getDatasetMeta(i).hidden) active.push({ datasetIndex: i, index: idx });
          });
          const px = chart.scales.x.getPixelForValue(x);
          chart.tooltip.setActiveElements(active, { x: px, y: (chart.chartArea.top + chart.chartArea.bottom) / 2 });
          chart.setActiveElements(active);
        }
        chart.draw();
      });
    }

    function bindPointer(chart) {
      const canvas = chart.canvas;
      canvas.addEventListener("pointermove", function (e) {
        const px = e.offsetX, x = chart.scales.x.getValueForPixel(px);
        if (chart.$drag) {
          if (chart.$drag.mode === "pan") {
            const shift = chart.scales.x.getValueForPixel(chart.$drag.from) - x;
            chart.options.scales.x.min = chart.$drag.min + shift;
            chart.options.scales.x.max = chart.$drag.max + shift;
            chart.update("none");
          } else { chart.$drag.to = px; chart.draw(); }
        }
        syncCrosshair(chart, x);
      });
      canvas.addEventListener("pointerleave", function () { syncCrosshair(chart, null); });
      canvas.addEventListener("pointerdown", function (e) {
        if (e.button !== 0) return;
        chart.$drag = { mode: e.shiftKey ? "pan" : "zoom", from: e.offsetX, to: e.offsetX,
                        min: chart.scales.x.min, max: chart.scales.x.max };
      });
      window.addEventListener("pointerup", function () {
        const drag = chart.$drag;
        chart.$drag = null;
        if (!drag) return;
        if (drag.mode === "zoom" && Math.abs(drag.to - drag.from) > 5) {
          const a = chart.scales.x.getValueForPixel(Math.min(drag.from, drag.to));
          const b = chart.scales.x.getValueForPixel(Math.max(drag.from, drag.to));
          chart.options.scales.x.min = a; chart.options.scales.x.max = b; chart.$zoomed = true;
        }
        chart.update("none");
      });
    }

    // A line chart: ``axes`` maps axis ids to titles (the first on the left); ``logAxis``:
    // the axis the log toggle switches; ``fixedX``: a title for an x that is the step
    // itself (seconds of a system chart) whatever the toolbar's choice.
    function chart(canvas, opts) {
      const scales = { x: { type: "linear", title: { display: true, text: "" } } };
      Object.keys(opts.axes).forEach(function (axis, i) {
        scales[axis] = { position: i ? "right" : "left", title: { display: true, text: opts.axes[axis] } };
        if (i) scales[axis].grid = { drawOnChartArea: false };
      });
      canvas.setAttribute("role", "img");
      const empty = document.createElement("p");
      empty.className = "text-muted small border rounded p-3 text-center";
      empty.dataset.role = "chart-empty";
      empty.textContent = opts.empty || "No data yet.";
      canvas.insertAdjacentElement("beforebegin", empty);
      canvas.hidden = true;
      const c = new Chart(canvas, {
        type: "line", data: { datasets: [] }, plugins: [overlay],
        options: {
          animation: false, parsing: false, normalized: true, scales: scales, aspectRatio: opts.aspect || 2, elements: { point: { radius: 0 } },
          interaction: { mode: "nearest", axis: "x", intersect: false },
          // Our own colours: Chart.js's colors plugin colours only the datasets present
          // at the first update; later ones (validation lines) stayed grey.
          plugins: { colors: { enabled: false }, decimation: { enabled: false } },
        },
      });
      c.$series = {}; c.$logAxis = opts.logAxis; c.$fixedX = opts.fixedX || null;
      c.options.scales.x.title.text = xTitle(c);
      const table = dataTable(canvas, c, function () { return xTitle(c); });
      let scheduled = false;
      c.$refresh = function () {
        const has = c.data.datasets.some(function (d) { return d.data.length; });
        if (has === canvas.hidden) { canvas.hidden = !has; empty.hidden = has; if (has) c.resize(); }
        if (scheduled) return;
        scheduled = true;
        requestAnimationFrame(function () { scheduled = false; c.update("none"); table.refresh(); });
      };
      // A series of this chart: ``push(step, value, time)`` adds a point.
      c.series = function (key, spec) {
        if (c.$series[key]) return c.$series[key];
        const colour = spec.colour || colourOf(key);
        const dataset = {
          label: spec.label, data: [], yAxisID: spec.axis || "y", borderWidth: 2,
          borderColor: colour, backgroundColor: colour, pointRadius: spec.pointRadius || 0,
          stepped: spec.stepped || false,
        };
        const s = { raw: [], dataset: dataset, smooth: !!spec.smooth, ema: 0 };
        s.push = function (step, value, time) {
          if (state.t0 == null || time < state.t0) state.t0 = time;
          const p = { step: step, value: value, time: time };
          s.raw.push(p);
          const a = s.smooth ? state.smoothing : 0;
          let y = value;
          if (a > 0) { s.ema = a * s.ema + (1 - a) * value; y = s.ema / (1 - Math.pow(a, s.raw.length)); }
          else s.ema = a * s.ema + (1 - a) * value;
          dataset.data.push({ x: xOf(c, p), y: y });
          c.$refresh();
        };
        c.$series[key] = s;
        c.data.datasets.push(dataset);
        return s;
      };
      charts.push(c);
      bindPointer(c);
      return c;
    }

    bindToolbar();
    return {
      chart: chart, charts: charts, state: state, redraw: redrawAll,
      setStepsPerEpoch: function (n) { state.stepsPerEpoch = n; redrawAll(); },
    };
  }

  // A <details> table after the canvas listing each series' points: the chart's text
  // alternative; filled when opened (a long series is not rendered twice for nothing).
  function dataTable(canvas, chart, xTitle) {
    const details = document.createElement("details");
    details.className = "chart-data small";
    details.innerHTML = "<summary></summary><div class='table-responsive'></div>";
    details.lastElementChild.style.maxHeight = "20rem";  // CSSOM: the CSP forbids style attributes
    details.querySelector("summary").textContent = "Data table: " + (canvas.getAttribute("aria-label") || "chart");
    canvas.insertAdjacentElement("afterend", details);
    function fill() {
      if (!details.open) return;
      const table = document.createElement("table");
      table.className = "table table-sm";
      const head = table.createTHead().insertRow();
      ["series", xTitle(), "value"].forEach(function (t) {
        const th = document.createElement("th"); th.textContent = t; head.appendChild(th);
      });
      const body = table.createTBody();
      chart.data.datasets.forEach(function (d) {
        d.data.forEach(function (p) {
          const row = body.insertRow();
          [d.label, Number(p.x.toPrecision(6)), Number(p.y).toPrecision(5)].forEach(function (v) {
            row.insertCell().textContent = v;
          });
        });
      });
      details.querySelector("div").replaceChildren(table);
    }
    details.addEventListener("toggle", fill);
    return { refresh: fill };
  }

  window.DigitsCharts = { colourOf: colourOf, hash: hash, group: group, dataTable: dataTable };
})();
