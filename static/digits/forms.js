// Forms that reveal fields by choice: a field wrapper marked
// data-show-if="policy" data-show-values="step sigmoid" shows only while the form's
// "policy" field has one of those values (apps/core/templatetags/digits_forms.py `reveal`).
// Without this script every field shows (progressive enhancement); a field with an error
// always shows.
(function () {
  "use strict";

  function valueOf(form, name) {
    const control = form.elements[name];
    if (!control) return null;
    if (control instanceof RadioNodeList) return control.value;
    if (control.type === "checkbox") return control.checked ? "on" : "";
    return control.value;
  }

  function update(form) {
    form.querySelectorAll("[data-show-if]").forEach(function (wrapper) {
      const value = valueOf(form, wrapper.dataset.showIf);
      if (value === null) return;
      const shown = wrapper.dataset.showValues.split(" ").indexOf(value) >= 0;
      wrapper.hidden = !shown && !wrapper.querySelector(".is-invalid");
    });
  }

  function init() {
    document.querySelectorAll("form").forEach(function (form) {
      if (!form.querySelector("[data-show-if]")) return;
      form.addEventListener("change", function () { update(form); });
      update(form);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
