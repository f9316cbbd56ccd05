// Study page: heatmap layer toggle and opacity, review button wording, and a reload once screening finishes.
(function () {
  "use strict";

  // --- Grad-CAM layer ------------------------------------------------------------------------------------------
  var layer = document.getElementById("heatmap-layer");
  var toggle = document.getElementById("heatmap-toggle");
  var slider = document.getElementById("heatmap-opacity");
  var output = document.getElementById("heatmap-opacity-value");
  if (layer && toggle && slider) {
    var applyOpacity = function () {
      layer.style.opacity = String(Number(slider.value) / 100);
      if (output) output.textContent = slider.value + " %";
    };
    var applyVisibility = function () {
      layer.hidden = !toggle.checked;
      slider.disabled = !toggle.checked;
    };
    slider.addEventListener("input", applyOpacity);
    toggle.addEventListener("change", applyVisibility);
    // Keyboard shortcut: "h" toggles the heatmap (not while typing in a field).
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.key !== "h" || event.ctrlKey || event.metaKey || event.altKey) return;
      if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
      toggle.checked = !toggle.checked;
      applyVisibility();
    });
    applyOpacity();
    applyVisibility();
  }

  // --- Review: "Confirm AI finding" vs "Override AI finding" ----------------------------------------------------
  var form = document.getElementById("review-form");
  if (form && form.dataset.aiLabel) {
    var button = document.getElementById("review-submit");
    var note = document.getElementById("override-note");
    var update = function () {
      var checked = form.querySelector("input[name=finding]:checked");
      var overriding = checked && checked.value !== form.dataset.aiLabel;
      button.textContent = overriding ? "Override AI finding" : "Confirm AI finding";
      button.classList.toggle("button--warn", Boolean(overriding));
      if (note) note.hidden = !overriding;
    };
    form.addEventListener("change", update);
    update();
  }

  // --- Queued / processing: reload when the status changes ------------------------------------------------------
  var progress = document.getElementById("study-progress");
  if (progress && window.fetch) {
    var intervalMs = Math.max(2, parseInt(progress.dataset.pollSeconds, 10) || 3) * 1000;
    var check = function () {
      fetch(progress.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data && data.status !== progress.dataset.status) {
            window.location.reload();
          } else {
            window.setTimeout(check, intervalMs);
          }
        })
        .catch(function () { window.setTimeout(check, intervalMs * 2); });
    };
    window.setTimeout(check, intervalMs);
  }
})();
