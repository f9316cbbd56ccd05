// Upload page: a drag-and-drop zone, a preview of every chosen file (object URLs, never sent anywhere) with its own
// patient ID and accession number for PNG/JPEG (DICOM files use their header), then one request per file so every
// file gets a progress bar and its own result. Without this script the form still works: one plain POST.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var input = form.querySelector("input[type=file]");
  var submit = document.getElementById("upload-submit");
  var card = document.getElementById("upload-results-card");
  var list = document.getElementById("upload-results");
  var done = document.getElementById("upload-done");
  var zone = document.getElementById("drop-zone");
  var staged = document.getElementById("staged-files");
  var batch = document.getElementById("batch-ids");
  var help = document.getElementById("ids-help");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var requirePatientId = form.dataset.requirePatientId === "true";
  var CONCURRENCY = 2;
  var entries = [];
  var counter = 0;

  // With the script, IDs are given per file: the batch fields (the no-script path) go away.
  if (batch) batch.remove();
  if (help) {
    help.textContent = "Each PNG or JPEG gets its own patient ID and accession number; DICOM files use their header." +
      (requirePatientId ? " A patient ID is required for PNG and JPEG files." : "");
  }
  input.required = false;
  document.getElementById("drop-hint").hidden = false;
  zone.classList.add("drop-zone--active");

  function isDicom(file) {
    // DICOM Part 10: "DICM" at byte 128. The extension is only a hint; the server checks again.
    return file.slice(128, 132).arrayBuffer().then(function (buffer) {
      var bytes = new Uint8Array(buffer);
      return bytes.length === 4 && bytes[0] === 68 && bytes[1] === 73 && bytes[2] === 67 && bytes[3] === 77;
    }).catch(function () { return false; });
  }

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

  function field(entry, name, labelText, required) {
    var wrap = el("div", "field field--compact");
    var id = "staged-" + entry.key + "-" + name;
    var label = el("label", "", labelText);
    label.htmlFor = id;
    var box = el("input");
    box.type = "text";
    box.id = id;
    box.name = name;
    box.maxLength = 64;
    box.autocomplete = "off";
    box.setAttribute("aria-label", labelText + " for " + entry.file.name);
    if (required) box.required = true;
    wrap.appendChild(label);
    wrap.appendChild(box);
    return { wrap: wrap, input: box };
  }

  function stage(file) {
    var entry = { key: ++counter, file: file, dicom: false, url: null };
    var item = el("li", "staged-item");
    item.dataset.state = "checking";
    var preview = el("div", "staged-item__preview");
    var body = el("div", "staged-item__body");
    var name = el("p", "staged-item__name", file.name);
    name.appendChild(el("span", "muted small", " " + formatSize(file.size)));
    body.appendChild(name);
    var remove = el("button", "button button--ghost staged-item__remove", "Remove");
    remove.type = "button";
    remove.setAttribute("aria-label", "Remove " + file.name);
    remove.addEventListener("click", function () {
      entries = entries.filter(function (other) { return other !== entry; });
      if (entry.url) URL.revokeObjectURL(entry.url);
      item.remove();
      staged.hidden = entries.length === 0;
    });
    item.appendChild(preview);
    item.appendChild(body);
    item.appendChild(remove);
    staged.appendChild(item);
    staged.hidden = false;
    entry.item = item;
    entries.push(entry);
    entry.ready = isDicom(file).then(function (dicom) {
      entry.dicom = dicom;
      item.dataset.state = "ready";
      if (dicom) {
        preview.appendChild(el("span", "staged-item__badge", "DICOM"));
        body.appendChild(el("p", "muted small", "DICOM: patient ID and accession come from the file's header."));
        return;
      }
      if (/^image\/(png|jpeg)$/.test(file.type)) {
        var img = el("img", "staged-item__thumb");
        entry.url = URL.createObjectURL(file);
        img.src = entry.url;
        img.alt = "Preview of " + file.name;
        preview.appendChild(img);
      } else {
        preview.appendChild(el("span", "staged-item__badge", "?"));
      }
      var row = el("div", "staged-item__fields");
      entry.patient = field(entry, "patient_id", "Patient ID", requirePatientId);
      entry.accession = field(entry, "accession_number", "Accession", false);
      row.appendChild(entry.patient.wrap);
      row.appendChild(entry.accession.wrap);
      body.appendChild(row);
    });
  }

  function addFiles(files) {
    Array.prototype.forEach.call(files, stage);
  }

  input.addEventListener("change", function () {
    addFiles(input.files);
    input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.add("drop-zone--over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("drop-zone--over"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files) addFiles(event.dataTransfer.files);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (entries.length === 0) {
      input.focus();
      return;
    }
    Promise.all(entries.map(function (entry) { return entry.ready; })).then(function () {
      var missing = entries.filter(function (entry) { return entry.patient && requirePatientId && !entry.patient.input.value.trim(); });
      if (missing.length) {
        missing[0].patient.input.reportValidity();
        missing[0].patient.input.focus();
        return;
      }
      var queue = entries.map(function (entry) {
        var fields = {};
        if (entry.patient) {
          fields.patient_id = entry.patient.input.value.trim();
          fields.accession_number = entry.accession.input.value.trim();
        }
        var sent = makeItem(entry.file);
        sent.fields = fields;
        if (entry.url) URL.revokeObjectURL(entry.url);
        return sent;
      });
      entries = [];
      staged.innerHTML = "";
      staged.hidden = true;
      card.hidden = false;
      done.hidden = true;
      submit.disabled = true;
      var workers = [];
      for (var i = 0; i < Math.min(CONCURRENCY, queue.length); i++) {
        workers.push((function next() {
          var sent = queue.shift();
          return sent ? send(sent, sent.fields).then(next) : Promise.resolve();
        })());
      }
      Promise.all(workers).then(function () {
        submit.disabled = false;
        done.hidden = false;
      });
    });
  });
})();
