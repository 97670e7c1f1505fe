// Dataset pages: the class-distribution chart (Chart.js, data from json_script)
// and the explore page's class filter, which applies as soon as a class is picked.
(function () {
  "use strict";

  const STAGE_COLOURS = { train: "#0d6efd", val: "#fd7e14", test: "#198754" };

  function classChart(canvas, data) {
    if (!window.Chart) return;
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.classes,
        datasets: data.stages.map(function (s) {
          return { label: s.stage, data: s.counts, backgroundColor: STAGE_COLOURS[s.stage] || "#6c757d" };
        }),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  const canvas = document.getElementById("class-distribution");
  const source = document.getElementById("class-distribution-data");
  if (canvas && source) classChart(canvas, JSON.parse(source.textContent));

  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { form.submit(); });
    });
  });
})();
