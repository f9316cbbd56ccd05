// Keeps the worklist current: polls the rows endpoint with the page's own tab, search and sort (the query string)
// and swaps the table body. Also: j/k move between rows, Enter opens (the focused row link), a click anywhere on
// a row opens it.
(function () {
  "use strict";
  var script = document.getElementById("worklist-script");
  var tbody = document.getElementById("worklist-rows");
  if (!script || !tbody) return;
  var pollUrl = script.dataset.pollUrl;
  var intervalMs = Math.max(2, parseInt(script.dataset.pollSeconds, 10) || 5) * 1000;
  var banner = document.getElementById("unvalidated-banner");
  var pagination = document.getElementById("worklist-pagination");
  var count = document.getElementById("worklist-count");
  var indicator = document.getElementById("live-indicator");
  var indicatorText = indicator && indicator.querySelector(".live-indicator__text");
  var timer = null;
  var inFlight = false;
  var stopped = false;

  function setIndicator(state, text) {
    if (!indicator) return;
    indicator.dataset.state = state;
    if (indicatorText) indicatorText.textContent = text;
  }

  function swap(container, html) {
    if (container.innerHTML.trim() === html.trim()) return;
    // Keep keyboard focus on the same study link across a refresh.
    var active = document.activeElement;
    var focusedRow = container.contains(active) && active.closest("tr") ? active.closest("tr").id : null;
    container.innerHTML = html;
    if (focusedRow) {
      var link = document.querySelector("#" + CSS.escape(focusedRow) + " a.row-link");
      if (link) link.focus();
    }
  }

  function poll() {
    if (inFlight || document.hidden) return schedule();
    inFlight = true;
    var url = pollUrl + window.location.search;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          stopped = true;
          setIndicator("error", "Session ended — reload to log in");
          throw new Error("session");
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        var table = tbody.closest("table");
        if (table && data.show_model_column !== table.classList.contains("worklist--models")) {
          // The model column comes or goes with the versions on the page: the header must change too.
          window.location.reload();
          return;
        }
        swap(tbody, data.rows_html);
        if (pagination) swap(pagination, data.pagination_html);
        if (count) count.textContent = data.count;
        if (banner) banner.hidden = !data.any_unvalidated;
        var time = new Date(data.generated_at);
        setIndicator("ok", "Updated " + time.toLocaleTimeString());
      })
      .catch(function (error) {
        if (error.message !== "session") setIndicator("error", "Cannot reach the server — retrying");
      })
      .finally(function () {
        inFlight = false;
        schedule();
      });
  }

  function schedule() {
    window.clearTimeout(timer);
    if (stopped) return;
    timer = window.setTimeout(poll, intervalMs);
  }

  function rowLinks() {
    return Array.prototype.slice.call(tbody.querySelectorAll("a.row-link"));
  }

  function move(step) {
    var links = rowLinks();
    if (!links.length) return;
    var current = links.indexOf(document.activeElement);
    var next = current < 0 ? (step > 0 ? 0 : links.length - 1) : Math.max(0, Math.min(links.length - 1, current + step));
    links[next].focus();
    var row = links[next].closest("tr");
    if (row && row.scrollIntoView) row.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    if (event.key === "j") { event.preventDefault(); move(1); }
    else if (event.key === "k") { event.preventDefault(); move(-1); }
  });

  // A click on a cell (not on a link or a control) opens the row's study; the stretched link covers most clicks.
  tbody.addEventListener("click", function (event) {
    if (event.target.closest("a, button, input, select, textarea")) return;
    var row = event.target.closest("tr[data-href]");
    if (row) window.location.assign(row.dataset.href);
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) poll();
  });
  schedule();
})();
