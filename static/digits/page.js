// Behaviour every page shares, kept out of the HTML: the Content-Security-Policy
// allows no inline script (onsubmit=...) and no inline style (style=...).
(function () {
  "use strict";

  // <form data-confirm="Delete this?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // <div class="progress-bar" data-width="42">: the bar's width in percent.
  function applyWidths(root) {
    root.querySelectorAll("[data-width]").forEach(function (bar) {
      bar.style.width = bar.dataset.width + "%";
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { applyWidths(document); });
  } else {
    applyWidths(document);
  }
})();
