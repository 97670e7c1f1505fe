// The colour theme, loaded in <head> before the styles so that a dark page never flashes
// light: the system's setting (prefers-color-scheme) unless the toggle in the navigation
// stored a choice in localStorage. Marks <html class="js"> for the no-script fallbacks.
(function () {
  "use strict";
  const KEY = "digits-theme";
  const root = document.documentElement;
  const system = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }
  function current() {
    return stored() || (system && system.matches ? "dark" : "light");
  }
  function apply(theme) {
    root.setAttribute("data-bs-theme", theme);
    const button = document.getElementById("theme-toggle");
    if (button) {
      button.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
      button.textContent = theme === "dark" ? "Light mode" : "Dark mode";
    }
  }

  root.classList.add("js");
  apply(current());
  if (system && system.addEventListener) {
    system.addEventListener("change", function () { if (!stored()) apply(current()); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    button.hidden = false;
    apply(current());
    button.addEventListener("click", function () {
      const next = current() === "dark" ? "light" : "dark";
      try { window.localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
      apply(next);
    });
  });
})();
