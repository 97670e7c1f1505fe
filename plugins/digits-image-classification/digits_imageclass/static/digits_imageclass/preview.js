// The image classification dataset form: show the chosen source's fields, and preview
// a sample image resized with the chosen options (POSTed to the plugin's preview page).
(function () {
  "use strict";
  const root = document.getElementById("imageclass-form");
  if (!root) return;
  const prefix = root.dataset.prefix || "";
  const form = root.closest("form");
  const field = (name) => form.querySelector(`[name="${prefix}${name}"]`);

  // --- one source at a time -----------------------------------------------------------
  const source = field("source");
  function showSource() {
    root.querySelectorAll("[data-imageclass-source]").forEach((set) => {
      set.hidden = source && set.dataset.imageclassSource !== source.value;
    });
  }
  if (source) {
    source.addEventListener("change", showSource);
    showSource();
  }

  // --- preview ------------------------------------------------------------------------
  const box = document.getElementById("imageclass-preview");
  if (!box) return;
  const sample = box.querySelector("input[type=file]");
  const original = box.querySelector(".imageclass-original");
  const result = box.querySelector(".imageclass-result");
  const message = box.querySelector(".imageclass-message");
  const options = ["width", "height", "resize_mode", "image_type"];
  let pending = null;

  function show(img, blob) {
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    img.hidden = false;
  }

  async function update() {
    const file = sample.files[0];
    if (!file) return;
    const body = new FormData();
    body.append("image", file);
    for (const name of options) {
      const input = field(name);
      body.append(name, input ? input.value : "");
    }
    if (!body.get("width")) body.set("width", "256");
    if (!body.get("height")) body.set("height", "256");
    if (!body.get("resize_mode")) body.set("resize_mode", "squash");
    const token = form.querySelector("[name=csrfmiddlewaretoken]");
    if (pending) pending.abort();
    pending = new AbortController();
    try {
      const response = await fetch(box.dataset.url, {
        method: "POST",
        body,
        headers: token ? { "X-CSRFToken": token.value } : {},
        credentials: "same-origin",
        signal: pending.signal,
      });
      if (response.ok) {
        show(result, await response.blob());
        message.textContent = "";
      } else {
        const text = await response.text();
        let error = text;
        try { error = JSON.parse(text).error || text; } catch (e) { /* not JSON */ }
        message.textContent = error;
        result.hidden = true;
      }
    } catch (err) {
      if (err.name !== "AbortError") message.textContent = String(err);
    }
  }

  sample.addEventListener("change", () => {
    if (sample.files[0]) show(original, sample.files[0]);
    update();
  });
  for (const name of options) {
    const input = field(name);
    if (input) {
      input.addEventListener("change", update);
      input.addEventListener("input", update);
    }
  }
})();
