// Admin traffic page: live total of the shares (red until they add up to 100 %). A static file, not an inline
// script, so the Content-Security-Policy can forbid inline scripts everywhere.
(function () {
  "use strict";
  var inputs = document.querySelectorAll("#traffic-form .traffic-share");
  var total = document.getElementById("traffic-total");
  if (!total) { return; }
  function update() {
    var sum = 0;
    inputs.forEach(function (el) { sum += parseInt(el.value, 10) || 0; });
    total.textContent = sum + " %";
    total.classList.toggle("traffic-total--off", sum !== 100);
  }
  inputs.forEach(function (el) { el.addEventListener("input", update); });
  update();
})();
