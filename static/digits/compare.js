// The compare page: one line per model and epoch in each chart (the data is in the page).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("compare-curves").textContent);
  document.querySelectorAll("canvas[data-curve]").forEach(function (canvas) {
    const key = canvas.dataset.curve;
    const datasets = data.models.map(function (model) {
      return {
        label: model.name,
        data: model.series[key].map(function (point) { return { x: point[0], y: point[1] }; }),
        borderWidth: 2,
        pointRadius: 2,
      };
    });
    canvas.chart = new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        parsing: false,
        scales: { x: { type: "linear", title: { display: true, text: "epoch" }, ticks: { precision: 0 } } },
      },
    });
  });
  document.getElementById("compare-charts").dataset.ready = "true";
})();
