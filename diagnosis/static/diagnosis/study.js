// Study page: the reading-room viewer (canvas), its keyboard shortcuts, the review button wording, and a reload
// once screening finishes.
//
// Why a small canvas module of our own rather than Cornerstone3D (issue 10 asked us to choose):
// * One 2D radiograph per study. What the reader needs (zoom, pan, window/level, invert, a coloured overlay,
//   comparison) is a few hundred lines over CanvasRenderingContext2D; Cornerstone3D is a multi-megabyte npm
//   bundle built for volumes, MPR and DICOMweb loading, none of which this page uses.
// * The site runs under a strict Content-Security-Policy (script-src 'self', no eval) with no bundler: Cornerstone's
//   image loaders decode in web workers and WebAssembly codecs, which need worker-src/blob: and 'wasm-unsafe-eval'
//   relaxations and a build step.
// * Decoding stays on the server side of the trust boundary anyway: the worker stores a lossless 16-bit rendition
//   (raw little-endian uint16 modality samples, gzip-encoded on the wire, see diagnosis/dashboard/viewer.py), so the
//   browser needs no DICOM parser, only a lookup table per window.
// No framework, no eval, no inline script or style; all state lives in this closure.
(function () {
  "use strict";

  var isTyping = function (target) {
    if (!target) return false;
    if (target.isContentEditable) return true;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    if (target.tagName !== "INPUT") return false;
    // Checkboxes, radios, buttons and sliders take no text: shortcuts stay on there.
    return !/^(checkbox|radio|button|submit|reset|range|color|file|image)$/i.test(target.type || "text");
  };

  // --- Colour maps (matplotlib's viridis and inferno, 17 control points, linearly interpolated) -------------------
  var CONTROL = {
    viridis: "44015448186a472d7b4240863b528b33638d2c728e26828e21918c1fa08828ae803fbc735ec96284d44baddc30d8e219fde725",
    inferno: "0000040b0724210c4a3d096557106e71196e8a226aa32c61bc3754d24644e45a31f1731df98e09fcac11f9cb35f2ea69fcffa4",
    // Only for the legend of older results, whose heatmap PNG was coloured with OpenCV's jet on the server.
    jet: "00008000009000a0ff0000ff0040ff0080ff00c0ff00ffff40ffbf80ff80bfff40ffff00ffc000ff8000ff4000ff0000c00000800000"
  };
  var colormap = function (name) {
    var hex = CONTROL[name] || CONTROL.viridis;
    var points = [];
    for (var i = 0; i < hex.length; i += 6) {
      points.push([parseInt(hex.substr(i, 2), 16), parseInt(hex.substr(i + 2, 2), 16), parseInt(hex.substr(i + 4, 2), 16)]);
    }
    var lut = new Uint8ClampedArray(256 * 3);
    for (var v = 0; v < 256; v++) {
      var pos = (v / 255) * (points.length - 1);
      var k = Math.min(Math.floor(pos), points.length - 2);
      var t = pos - k;
      for (var c = 0; c < 3; c++) lut[v * 3 + c] = Math.round(points[k][c] * (1 - t) + points[k + 1][c] * t);
    }
    return lut;
  };

  // --- The viewer ---------------------------------------------------------------------------------------------------
  var stage = document.getElementById("viewer-stage");
  var canvas = document.getElementById("viewer-canvas");
  var viewer = null;
  if (stage && canvas && canvas.getContext && stage.dataset.imageUrl) {
    viewer = createViewer(stage, canvas);
  }

  function createViewer(stage, canvas) {
    var ctx = canvas.getContext("2d");
    var tools = document.getElementById("viewer-tools");
    var imgEl = document.getElementById("xray-image");
    var jetEl = document.getElementById("heatmap-layer");
    var zoomOut = document.getElementById("viewer-zoom");
    var wlOut = document.getElementById("viewer-wl");
    var presetSelect = document.getElementById("viewer-preset");
    var invertButton = document.getElementById("viewer-invert");
    var toggle = document.getElementById("heatmap-toggle");
    var opacity = document.getElementById("heatmap-opacity");
    var opacityOut = document.getElementById("heatmap-opacity-value");
    var mapSelect = document.getElementById("heatmap-colormap");
    var threshold = document.getElementById("heatmap-threshold");
    var thresholdOut = document.getElementById("heatmap-threshold-value");
    var compareSelect = document.getElementById("viewer-compare");
    var legend = document.getElementById("heatmap-legend-bar");
    var flickerLabel = document.getElementById("viewer-flicker-label");

    var img = null; // {width, height, samples, maxSample, slope, intercept, mono1, defaultCenter, defaultWidth, hist}
    var base = document.createElement("canvas"); // the windowed image at full resolution
    var heat = document.createElement("canvas"); // the coloured heatmap (activation map or the older jet PNG)
    var activation = null; // {width, height, values} upsampled activation values, 0..255
    var hasHeat = false;
    var state = { zoom: 1, cx: 0, cy: 0, center: 0, width: 1, invert: false, tool: "wl", compare: "off", flickerOn: true };
    var flickerTimer = null;
    var frame = 0;

    // ---- Loading ----
    var loadImage = function (url) {
      return new Promise(function (resolve, reject) {
        var image = new Image();
        image.onload = function () { resolve(image); };
        image.onerror = function () { reject(new Error("image " + url)); };
        image.src = url;
      });
    };
    var reuse = function (el, url) {
      // The page's own <img> (already requested) when it is there; else a new request.
      if (el && el.getAttribute("src") === url) {
        if (el.complete && el.naturalWidth > 0) return Promise.resolve(el);
        return new Promise(function (resolve, reject) {
          el.addEventListener("load", function () { resolve(el); }, { once: true });
          el.addEventListener("error", function () { reject(new Error("image " + url)); }, { once: true });
        });
      }
      return loadImage(url);
    };
    var pixelsOf = function (image, width, height) {
      var scratch = document.createElement("canvas");
      scratch.width = width;
      scratch.height = height;
      var sctx = scratch.getContext("2d", { willReadFrequently: true });
      sctx.imageSmoothingEnabled = true;
      sctx.imageSmoothingQuality = "high";
      sctx.drawImage(image, 0, 0, width, height);
      return sctx.getImageData(0, 0, width, height).data;
    };
    var histogram = function (samples, maxSample) {
      var hist = new Uint32Array(maxSample + 1);
      for (var i = 0; i < samples.length; i++) hist[samples[i]]++;
      return hist;
    };
    var from8bit = function (image) {
      var w = image.naturalWidth, h = image.naturalHeight;
      var rgba = pixelsOf(image, w, h);
      var samples = new Uint8Array(w * h);
      for (var i = 0; i < samples.length; i++) samples[i] = rgba[i * 4];
      // The display PNG is already bright = dense; the identity window reproduces it exactly.
      return { width: w, height: h, samples: samples, maxSample: 255, slope: 1, intercept: 0, mono1: false,
        defaultCenter: 127.5, defaultWidth: 256, bits: 8 };
    };
    var from16bit = function (buffer, info) {
      var count = info.width * info.height;
      if (buffer.byteLength !== count * 2) throw new Error("rendition size");
      var samples;
      var littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
      if (littleEndian) {
        samples = new Uint16Array(buffer);
      } else {
        var view = new DataView(buffer);
        samples = new Uint16Array(count);
        for (var i = 0; i < count; i++) samples[i] = view.getUint16(i * 2, true);
      }
      var maxSample = 0;
      for (var j = 0; j < count; j++) if (samples[j] > maxSample) maxSample = samples[j];
      return { width: info.width, height: info.height, samples: samples, maxSample: maxSample,
        slope: Number(info.slope) || 1, intercept: Number(info.intercept) || 0,
        mono1: info.photometric === "MONOCHROME1",
        defaultCenter: Number(info.window_center), defaultWidth: Math.max(Number(info.window_width) || 1, 1),
        bits: info.bits_stored };
    };
    var loadBase = function () {
      var url16 = stage.dataset.image16Url;
      if (url16 && window.fetch) {
        var info = JSON.parse(stage.dataset.image16Info || "{}");
        return fetch(url16, { credentials: "same-origin" })
          .then(function (response) {
            if (!response.ok) throw new Error("rendition " + response.status);
            return response.arrayBuffer();
          })
          .then(function (buffer) { stage.dataset.source = "image16"; return from16bit(buffer, info); })
          .catch(function () {
            // Never leave the reader without an image: the 8-bit display PNG is always there.
            stage.dataset.source = "image8";
            return reuse(imgEl, stage.dataset.imageUrl).then(from8bit);
          });
      }
      stage.dataset.source = "image8";
      return reuse(imgEl, stage.dataset.imageUrl).then(from8bit);
    };
    var loadHeat = function () {
      var activationUrl = stage.dataset.activationUrl;
      if (activationUrl) {
        return loadImage(activationUrl).then(function (image) {
          // Upsampled (bilinear) to at most 1024 px on the long side: smooth enough once drawn over the image.
          var scale = Math.min(1, 1024 / Math.max(img.width, img.height));
          var w = Math.max(1, Math.round(img.width * scale)), h = Math.max(1, Math.round(img.height * scale));
          var rgba = pixelsOf(image, w, h);
          var values = new Uint8Array(w * h);
          for (var i = 0; i < values.length; i++) values[i] = rgba[i * 4];
          activation = { width: w, height: h, values: values };
          colourHeat();
          stage.dataset.heatmap = "activation";
          hasHeat = true;
        });
      }
      if (stage.dataset.heatmapUrl) {
        return reuse(jetEl, stage.dataset.heatmapUrl).then(function (image) {
          heat.width = image.naturalWidth;
          heat.height = image.naturalHeight;
          heat.getContext("2d").drawImage(image, 0, 0);
          stage.dataset.heatmap = "jet";
          hasHeat = true;
        });
      }
      return Promise.resolve();
    };

    // ---- Heatmap colouring ----
    var colourHeat = function () {
      if (!activation) return;
      var lut = colormap(mapSelect ? mapSelect.value : "viridis");
      var cut = threshold ? Math.round((Number(threshold.value) / 100) * 255) : 0;
      heat.width = activation.width;
      heat.height = activation.height;
      var hctx = heat.getContext("2d");
      var out = hctx.createImageData(activation.width, activation.height);
      var d = out.data, values = activation.values;
      for (var i = 0; i < values.length; i++) {
        var v = values[i];
        d[i * 4] = lut[v * 3];
        d[i * 4 + 1] = lut[v * 3 + 1];
        d[i * 4 + 2] = lut[v * 3 + 2];
        d[i * 4 + 3] = cut > 0 && v < cut ? 0 : 255;
      }
      hctx.putImageData(out, 0, 0);
    };
    var drawLegend = function () {
      if (!legend) return;
      var name = stage.dataset.heatmap === "jet" ? "jet" : (mapSelect ? mapSelect.value : "viridis");
      var lut = colormap(name);
      var lctx = legend.getContext("2d");
      var data = lctx.createImageData(legend.width, legend.height);
      var cut = stage.dataset.heatmap === "jet" || !threshold ? 0 : (Number(threshold.value) / 100) * 255;
      for (var x = 0; x < legend.width; x++) {
        var v = Math.round((x / (legend.width - 1)) * 255);
        for (var y = 0; y < legend.height; y++) {
          var o = (y * legend.width + x) * 4;
          var hidden = cut > 0 && v < cut;
          data.data[o] = hidden ? 40 : lut[v * 3];
          data.data[o + 1] = hidden ? 40 : lut[v * 3 + 1];
          data.data[o + 2] = hidden ? 40 : lut[v * 3 + 2];
          data.data[o + 3] = 255;
        }
      }
      lctx.putImageData(data, 0, 0);
    };

    // ---- Window/level ----
    var percentile = function (q) {
      var total = img.samples.length, target = q * (total - 1), seen = 0;
      for (var s = 0; s < img.hist.length; s++) {
        seen += img.hist[s];
        if (seen > target) return s * img.slope + img.intercept;
      }
      return img.maxSample * img.slope + img.intercept;
    };
    // Presets as percentiles of density (bright = dense), so they mean the same on any detector and bit depth:
    // lung stretches the dark (air-filled) part, bone the bright part. MONOCHROME1 stores density reversed.
    var PRESETS = { full: [0, 1], lung: [0.01, 0.6], soft: [0.2, 0.95], bone: [0.5, 0.998] };
    var applyPreset = function (name) {
      if (name === "default" || !PRESETS[name]) {
        state.center = img.defaultCenter;
        state.width = img.defaultWidth;
        name = "default";
      } else {
        var q = PRESETS[name];
        var lo = img.mono1 ? percentile(1 - q[1]) : percentile(q[0]);
        var hi = img.mono1 ? percentile(1 - q[0]) : percentile(q[1]);
        state.width = Math.max(hi - lo + img.slope, img.slope);
        state.center = (lo + hi + img.slope) / 2;
      }
      if (presetSelect) presetSelect.value = name;
      renderBase();
    };
    var renderBase = function () {
      var maxS = img.maxSample;
      var lut = new Uint32Array(maxS + 1);
      var low = state.center - state.width / 2;
      var flip = img.mono1 !== state.invert; // MONOCHROME1 displays inverted; "Invert" flips once more
      for (var s = 0; s <= maxS; s++) {
        var y = (s * img.slope + img.intercept - low) / state.width;
        var g = Math.round((y < 0 ? 0 : y > 1 ? 1 : y) * 255);
        if (flip) g = 255 - g;
        lut[s] = 0xff000000 | (g << 16) | (g << 8) | g; // RGBA bytes on a little-endian platform
      }
      if (base.width !== img.width || base.height !== img.height) {
        base.width = img.width;
        base.height = img.height;
      }
      var bctx = base.getContext("2d");
      var out = bctx.createImageData(img.width, img.height);
      var pixels = new Uint32Array(out.data.buffer);
      var samples = img.samples;
      for (var i = 0; i < samples.length; i++) pixels[i] = lut[samples[i]];
      bctx.putImageData(out, 0, 0);
      if (wlOut) wlOut.textContent = "W " + Math.round(state.width) + " · L " + Math.round(state.center);
      stage.dataset.center = String(Math.round(state.center * 100) / 100);
      stage.dataset.width = String(Math.round(state.width * 100) / 100);
      draw();
    };

    // ---- Drawing ----
    var resize = function () {
      var ratio = window.devicePixelRatio || 1;
      var box = stage.getBoundingClientRect();
      var w = Math.max(1, Math.round(box.width * ratio)), h = Math.max(1, Math.round(box.height * ratio));
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
      }
    };
    var panes = function () {
      var w = canvas.width, h = canvas.height;
      if (state.compare === "side" && hasHeat) {
        var half = Math.floor(w / 2);
        return [{ x: 0, w: half - 1, heat: false }, { x: half + 1, w: w - half - 1, heat: true }];
      }
      return [{ x: 0, w: w, heat: heatVisible() && (state.compare !== "flicker" || state.flickerOn) }];
    };
    var heatVisible = function () { return hasHeat && (!toggle || toggle.checked); };
    var scaleFor = function (pane) {
      return Math.min(pane.w / img.width, canvas.height / img.height) * state.zoom;
    };
    var draw = function () {
      if (!img) return;
      frame = 0;
      resize();
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      panes().forEach(function (pane) {
        var s = scaleFor(pane);
        ctx.save();
        ctx.beginPath();
        ctx.rect(pane.x, 0, pane.w, canvas.height);
        ctx.clip();
        ctx.setTransform(s, 0, 0, s, pane.x + pane.w / 2 - state.cx * s, canvas.height / 2 - state.cy * s);
        ctx.imageSmoothingEnabled = s < 2; // past 2x, show the detector's pixels
        ctx.drawImage(base, 0, 0);
        if (pane.heat) {
          ctx.globalAlpha = opacity ? Number(opacity.value) / 100 : 0.4;
          ctx.imageSmoothingEnabled = true;
          ctx.drawImage(heat, 0, 0, img.width, img.height);
          ctx.globalAlpha = 1;
        }
        ctx.restore();
      });
      if (zoomOut) zoomOut.textContent = Math.round(state.zoom * 100) + " %";
      stage.dataset.zoom = String(state.zoom);
    };
    var redraw = function () {
      if (!frame) frame = window.requestAnimationFrame(draw);
    };

    // ---- View operations ----
    var zoomBy = function (factor, px, py) {
      // Keep the image point under (px, py) (canvas pixels) where it is.
      var pane = panes()[0];
      var s = scaleFor(pane);
      var ax = px === undefined ? state.cx : state.cx + (px - pane.x - pane.w / 2) / s;
      var ay = py === undefined ? state.cy : state.cy + (py - canvas.height / 2) / s;
      state.zoom = Math.min(32, Math.max(0.25, state.zoom * factor));
      var s2 = scaleFor(pane);
      state.cx = ax - (ax - state.cx) * (s / s2);
      state.cy = ay - (ay - state.cy) * (s / s2);
      redraw();
    };
    var reset = function () {
      state.zoom = 1;
      state.cx = img.width / 2;
      state.cy = img.height / 2;
      state.invert = false;
      if (invertButton) invertButton.setAttribute("aria-pressed", "false");
      applyPreset("default");
    };
    var setTool = function (tool) {
      state.tool = tool;
      if (tools) {
        tools.querySelectorAll("[data-tool]").forEach(function (b) {
          b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
        });
      }
      stage.dataset.tool = tool;
    };
    var setInvert = function (on) {
      state.invert = on;
      if (invertButton) invertButton.setAttribute("aria-pressed", String(on));
      renderBase();
    };
    var setCompare = function (mode) {
      state.compare = mode;
      if (compareSelect) compareSelect.value = mode;
      if (flickerTimer) window.clearInterval(flickerTimer);
      flickerTimer = null;
      state.flickerOn = true;
      if (flickerLabel) flickerLabel.hidden = mode !== "flicker";
      if (mode === "flicker") {
        flickerTimer = window.setInterval(function () {
          state.flickerOn = !state.flickerOn;
          if (flickerLabel) flickerLabel.textContent = state.flickerOn ? "Overlay" : "Original";
          redraw();
        }, 700);
        if (flickerLabel) flickerLabel.textContent = "Overlay";
      }
      stage.dataset.compare = mode;
      redraw();
    };

    // ---- Pointer: drag = the tool (W/L or pan); Shift/Ctrl/middle button = pan; wheel = zoom ----
    var drag = null;
    canvas.addEventListener("pointerdown", function (event) {
      if (!img) return;
      var pan = state.tool === "pan" || event.shiftKey || event.ctrlKey || event.metaKey || event.button === 1;
      drag = { x: event.clientX, y: event.clientY, pan: pan, cx: state.cx, cy: state.cy,
        center: state.center, width: state.width };
      canvas.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var dx = event.clientX - drag.x, dy = event.clientY - drag.y;
      if (drag.pan) {
        var ratio = window.devicePixelRatio || 1;
        var s = scaleFor(panes()[0]);
        state.cx = drag.cx - (dx * ratio) / s;
        state.cy = drag.cy - (dy * ratio) / s;
        redraw();
        return;
      }
      // Window/level: right = wider window, down = higher level; a full-width drag spans the image's range.
      var range = Math.max((img.maxSample + 1) * img.slope, 1);
      var box = canvas.getBoundingClientRect();
      state.width = Math.max(img.slope, drag.width + (dx / Math.max(box.width, 1)) * range);
      state.center = drag.center + (dy / Math.max(box.height, 1)) * range;
      if (presetSelect) presetSelect.value = "custom";
      if (!frame) frame = window.requestAnimationFrame(function () { frame = 0; renderBase(); });
    });
    var endDrag = function () { drag = null; };
    canvas.addEventListener("pointerup", endDrag);
    canvas.addEventListener("pointercancel", endDrag);
    canvas.addEventListener("wheel", function (event) {
      if (!img) return;
      event.preventDefault();
      var box = canvas.getBoundingClientRect();
      var ratio = canvas.width / Math.max(box.width, 1);
      zoomBy(event.deltaY < 0 ? 1.15 : 1 / 1.15, (event.clientX - box.left) * ratio, (event.clientY - box.top) * ratio);
    }, { passive: false });
    canvas.addEventListener("contextmenu", function (event) { event.preventDefault(); });

    // ---- Controls ----
    if (tools) {
      tools.addEventListener("click", function (event) {
        var button = event.target.closest("button");
        if (!button || !img) return;
        if (button.dataset.tool) setTool(button.dataset.tool);
        var command = button.dataset.command;
        if (command === "zoom-in") zoomBy(1.25);
        else if (command === "zoom-out") zoomBy(1 / 1.25);
        else if (command === "invert") setInvert(!state.invert);
        else if (command === "reset") reset();
      });
    }
    if (presetSelect) presetSelect.addEventListener("change", function () { if (img) applyPreset(presetSelect.value); });
    if (compareSelect) compareSelect.addEventListener("change", function () { setCompare(compareSelect.value); });

    // Heatmap settings are remembered per user on the server (debounced POST).
    var saveTimer = null;
    var savePreferences = function () {
      var url = stage.dataset.preferencesUrl;
      var token = document.querySelector("input[name=csrfmiddlewaretoken]");
      if (!url || !token || !window.fetch) return;
      if (saveTimer) window.clearTimeout(saveTimer);
      saveTimer = window.setTimeout(function () {
        var body = { heatmap_visible: toggle ? toggle.checked : true, heatmap_opacity: Number(opacity.value) };
        if (mapSelect && !mapSelect.disabled) body.colormap = mapSelect.value;
        if (threshold && !threshold.disabled) body.threshold = Number(threshold.value);
        fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": token.value, Accept: "application/json" },
          body: JSON.stringify(body)
        }).then(function (response) {
          stage.dataset.preferences = response.ok ? "saved" : "failed";
        }).catch(function () { stage.dataset.preferences = "failed"; });
      }, 300);
    };
    var heatControls = function () {
      if (opacityOut && opacity) opacityOut.textContent = opacity.value + " %";
      if (thresholdOut && threshold) thresholdOut.textContent = threshold.value + " %";
      if (opacity && toggle) opacity.disabled = !toggle.checked;
    };
    if (toggle) toggle.addEventListener("change", function () { heatControls(); redraw(); savePreferences(); });
    if (opacity) opacity.addEventListener("input", function () { heatControls(); redraw(); savePreferences(); });
    if (mapSelect) mapSelect.addEventListener("change", function () { colourHeat(); drawLegend(); redraw(); savePreferences(); });
    if (threshold) threshold.addEventListener("input", function () {
      heatControls(); colourHeat(); drawLegend(); redraw(); savePreferences();
    });
    heatControls();

    if (window.ResizeObserver) new ResizeObserver(redraw).observe(stage);
    else window.addEventListener("resize", redraw);

    loadBase()
      .then(function (loaded) {
        img = loaded;
        img.hist = histogram(img.samples, img.maxSample);
        state.cx = img.width / 2;
        state.cy = img.height / 2;
        // The canvas takes over from the plain <img> layers (which stay as the view without scripts).
        stage.classList.add("viewer--canvas");
        canvas.hidden = false;
        if (tools) tools.hidden = false;
        applyPreset("default");
        return loadHeat().catch(function () { hasHeat = false; });
      })
      .then(function () {
        drawLegend();
        draw();
        stage.dataset.state = "ready";
      })
      .catch(function () {
        stage.dataset.state = "failed"; // the <img> layers stay visible
      });

    return {
      ready: function () { return Boolean(img); },
      zoomBy: function (f) { if (img) zoomBy(f); },
      reset: function () { if (img) reset(); },
      invert: function () { if (img) setInvert(!state.invert); },
      tool: function (t) { if (img) setTool(t); },
      preset: function (name) { if (img) applyPreset(name); },
      toggleHeatmap: function () {
        if (!toggle) return;
        toggle.checked = !toggle.checked;
        toggle.dispatchEvent(new Event("change"));
      },
      cycleCompare: function () {
        if (!compareSelect) return;
        var order = ["off", "side", "flicker"];
        setCompare(order[(order.indexOf(state.compare) + 1) % order.length]);
      }
    };
  }

  // --- Keyboard shortcuts (listed in the "?" dialog) --------------------------------------------------------------
  var dialog = document.getElementById("viewer-shortcuts");
  var openHelp = function () {
    if (!dialog) return;
    if (dialog.open) dialog.close();
    else if (dialog.showModal) dialog.showModal();
    else dialog.setAttribute("open", "");
  };
  document.querySelectorAll("[data-command=help]").forEach(function (button) {
    button.addEventListener("click", openHelp);
  });
  // By physical key (event.code), so the keys are the same on any layout (AZERTY's 1 is "&" unshifted).
  var FINDINGS = { Digit1: "NORMAL", Digit2: "PNEUMONIA", Digit3: "OTHER_ABNORMALITY", Digit4: "NON_DIAGNOSTIC",
    Numpad1: "NORMAL", Numpad2: "PNEUMONIA", Numpad3: "OTHER_ABNORMALITY", Numpad4: "NON_DIAGNOSTIC" };
  var PRESET_KEYS = { Digit1: "default", Digit2: "full", Digit3: "lung", Digit4: "soft", Digit5: "bone" };
  // A hidden control is never acted on: a standing review's form stays hidden until "Amend review" is pressed, so
  // no key can change a reviewed study by accident.
  var usable = function (el) { return Boolean(el) && !el.disabled && !el.closest("[hidden]"); };
  var clickFirst = function (selector) {
    var el = document.querySelector(selector);
    if (!usable(el)) return false;
    el.click();
    return true;
  };
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) return;
    if (dialog && dialog.open && event.key !== "?") return; // the dialog has its own keys (Esc)
    var key = event.key, handled = true;
    if (key === "?") openHelp();
    else if (event.shiftKey && PRESET_KEYS[event.code] && viewer) viewer.preset(PRESET_KEYS[event.code]);
    else if (FINDINGS[event.code] && !event.shiftKey) {
      var finding = document.querySelector('[data-finding="' + FINDINGS[event.code] + '"]');
      if (usable(finding)) { finding.click(); if (finding.focus) finding.focus(); } else handled = false;
    } else if (key === "s") handled = clickFirst('[data-action="save"]');
    else if (key === "S") handled = clickFirst('[data-action="save-next"]');
    else if (key === "j" || key === "k") handled = clickFirst('[data-nav="' + (key === "j" ? "next" : "prev") + '"]');
    else if (key === "c") {
      var comment = document.getElementById("review-comment") || document.querySelector("#review-form textarea");
      if (usable(comment)) comment.focus(); else handled = false;
    } else if (!viewer) handled = false;
    else if (key === "h") viewer.toggleHeatmap();
    else if (key === "f") viewer.cycleCompare();
    else if (key === "+" || key === "=") viewer.zoomBy(1.25);
    else if (key === "-" || key === "_") viewer.zoomBy(1 / 1.25);
    else if (key === "i") viewer.invert();
    else if (key === "r") viewer.reset();
    else if (key === "w") viewer.tool("wl");
    else if (key === "m") viewer.tool("pan");
    else handled = false;
    if (handled) event.preventDefault();
  });

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
