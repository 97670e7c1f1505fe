// The image-segmentation view: swatch colours and the overlay's opacity slider.
// (The CSP allows no inline styles or scripts: colours and opacity are set from here.)
(function () {
  function wire() {
    document.querySelectorAll(".seg-swatch[data-colour]").forEach(function (swatch) {
      swatch.style.backgroundColor = swatch.dataset.colour;
    });
    document.querySelectorAll(".seg-view").forEach(function (view) {
      var layer = view.querySelector(".seg-mask-layer");
      var slider = view.querySelector(".seg-opacity");
      if (!layer || !slider) return;
      var apply = function () { layer.style.opacity = String(slider.value / 100); };
      slider.addEventListener("input", apply);
      apply();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
