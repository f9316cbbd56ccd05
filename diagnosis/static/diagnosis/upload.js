// Sends each selected file on its own request so every file gets a progress bar and its own result.
// Without this script the form still works: one plain POST, then a redirect to the new study.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var input = form.querySelector("input[type=file]");
  var submit = document.getElementById("upload-submit");
  var card = document.getElementById("upload-results-card");
  var list = document.getElementById("upload-results");
  var done = document.getElementById("upload-done");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var CONCURRENCY = 2;

  function formatSize(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
    return Math.max(1, Math.round(bytes / 1024)) + " kB";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function makeItem(file) {
    var item = el("li", "upload-item");
    item.dataset.state = "waiting";
    var head = el("div", "upload-item__head");
    head.appendChild(el("span", "upload-item__name", file.name));
    head.appendChild(el("span", "muted small", formatSize(file.size)));
    var bar = el("div", "upload-item__bar");
    var progress = el("progress");
    progress.max = 100;
    progress.value = 0;
    progress.setAttribute("aria-label", "Upload progress for " + file.name);
    var pct = el("span", "upload-item__pct", "0 %");
    bar.appendChild(progress);
    bar.appendChild(pct);
    var detail = el("p", "upload-item__detail", "Waiting…");
    item.appendChild(head);
    item.appendChild(bar);
    item.appendChild(detail);
    list.appendChild(item);
    return { file: file, item: item, progress: progress, pct: pct, detail: detail };
  }

  function setProgress(entry, percent) {
    var value = Math.max(0, Math.min(100, Math.round(percent)));
    entry.progress.value = value;
    entry.pct.textContent = value + " %";
  }

  function finish(entry, state, message, link) {
    entry.item.dataset.state = state;
    entry.detail.textContent = message;
    if (link) {
      entry.detail.appendChild(document.createTextNode(" "));
      var a = el("a", "upload-item__link", "Open study");
      a.href = link;
      entry.detail.appendChild(a);
    }
  }

  function send(entry, fields) {
    return new Promise(function (resolve) {
      var data = new FormData();
      data.append("file", entry.file, entry.file.name);
      Object.keys(fields).forEach(function (key) { data.append(key, fields[key]); });
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.fileUrl);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      entry.item.dataset.state = "uploading";
      entry.detail.textContent = "Uploading…";
      xhr.upload.onprogress = function (event) {
        if (event.lengthComputable) setProgress(entry, (event.loaded / event.total) * 100);
      };
      xhr.upload.onload = function () {
        setProgress(entry, 100);
        entry.detail.textContent = "Checking the file…";
      };
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
        if (xhr.status >= 200 && xhr.status < 300) {
          setProgress(entry, 100);
          finish(entry, "done", body.detail || "Received.", body.url);
        } else {
          var reason = body.detail || "The server answered " + xhr.status + ".";
          finish(entry, "error", "Refused: " + reason);
        }
        resolve();
      };
      xhr.onerror = function () {
        finish(entry, "error", "Network error: the file was not sent. Try again.");
        resolve();
      };
      xhr.send(data);
    });
  }

  form.addEventListener("submit", function (event) {
    if (!input.files || input.files.length === 0) return; // let the browser show "required"
    event.preventDefault();
    var fields = {
      patient_id: form.querySelector("[name=patient_id]").value,
      accession_number: form.querySelector("[name=accession_number]").value,
    };
    var queue = Array.prototype.map.call(input.files, makeItem);
    input.value = "";
    card.hidden = false;
    done.hidden = true;
    submit.disabled = true;
    var workers = [];
    for (var i = 0; i < Math.min(CONCURRENCY, queue.length); i++) {
      workers.push((function next() {
        var entry = queue.shift();
        return entry ? send(entry, fields).then(next) : Promise.resolve();
      })());
    }
    Promise.all(workers).then(function () {
      submit.disabled = false;
      done.hidden = false;
    });
  });
})();
