// The Test page: show the options of the chosen view only.
(function () {
  var select = document.querySelector("[data-role=view-select]");
  if (!select) return;
  function show() {
    document.querySelectorAll(".view-options").forEach(function (fieldset) {
      fieldset.hidden = fieldset.dataset.view !== select.value;
    });
  }
  select.addEventListener("change", show);
  show();
})();
