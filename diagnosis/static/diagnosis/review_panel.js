// Review panel (templates/diagnosis/_review_panel.html): "Amend review" reveals the amend form (a separate step),
// the reason box becomes required for an override or an amendment, and the save button says what it will do.
// The server enforces every rule (services/reviews.py); this only helps the reader before the round trip.
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  if (!form) return;
  var comment = document.getElementById("review-comment");
  var save = document.getElementById("review-submit");
  var note = document.getElementById("override-note");
  var aiFinding = form.dataset.aiFinding || "";
  var amending = form.dataset.amend === "1";

  var update = function () {
    var checked = form.querySelector("input[data-finding]:checked");
    var overriding = Boolean(aiFinding && checked && checked.value !== aiFinding);
    if (comment) comment.required = amending || overriding;
    if (note) note.hidden = !overriding || amending;
    if (save && !amending && aiFinding) {
      save.textContent = overriding ? "Override AI finding" : "Confirm AI finding";
      save.classList.toggle("button--warn", overriding);
    }
  };
  form.addEventListener("change", update);
  update();

  // "Amend review": show the form in place (the link's ?amend=1 does the same without scripts).
  var amend = document.querySelector("[data-action=amend]");
  if (amend) {
    amend.addEventListener("click", function (event) {
      event.preventDefault();
      form.hidden = false;
      var bar = document.getElementById("review-amend-bar");
      if (bar) bar.hidden = true;
      var first = form.querySelector("input[data-finding]");
      if (first) first.focus();
    });
  }
})();
