"""The study viewer in a real browser (issue 10): window/level on a 12-bit DICOM changes the rendered canvas, and
the reading-room layout needs no scrolling at 1440×900 (nor sideways scrolling at 390 px).

The study is built the way the worker leaves a screened 12-bit DICOM: the 8-bit display PNG and the lossless 16-bit
rendition both come from mlcore's readers of a synthetic 12-bit CR, plus a raw activation map (no model runs here).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ComputedRadiographyImageStorage, ExplicitVRLittleEndian, generate_uid

from diagnosis.models import Study, ViewerPreference
from mlcore.dicom import read_dicom
from mlcore.rendition import read_dicom_rendition
from tests.browser_support import screenshot, wait_until, watch_csp_violations
from tests.dashboard.test_browser import log_in
from tests.factories import PredictionFactory, RadiologistFactory, StudyFactory

pytestmark = pytest.mark.browser

SIZE = (600, 500)  # rows, columns


def _chest_12_bit() -> np.ndarray:
    """A chest-like 12-bit frontal radiograph (bright = dense): body, darker lungs, a spine, detector noise."""
    rows, cols = SIZE
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)

    def blob(cy: float, cx: float, sy: float, sx: float) -> np.ndarray:
        return np.exp(-(((y - cy * rows) / (sy * rows)) ** 2 + ((x - cx * cols) / (sx * cols)) ** 2))

    body = np.clip(blob(0.55, 0.5, 0.55, 0.42) * 1.6, 0, 1)
    lungs = np.clip(blob(0.48, 0.31, 0.25, 0.12) + blob(0.48, 0.69, 0.25, 0.12), 0, 1)
    image = 0.1 + 0.6 * body - 0.35 * lungs + 0.25 * blob(0.5, 0.5, 0.6, 0.035)
    noise = np.random.default_rng(0).normal(0, 0.004, image.shape)
    return np.clip((image + noise) * 4095, 0, 4095).astype(np.uint16)


def _cr_dicom(pixels: np.ndarray) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.Modality, ds.ViewPosition = "PAT-12BIT", "CR", "PA"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = pixels.astype("<u2").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _screened_12_bit_study() -> Study:
    data = _cr_dicom(_chest_12_bit())
    display, _ = read_dicom(data, max_pixels=10_000_000)
    rendition = read_dicom_rendition(data, max_pixels=10_000_000)
    assert rendition is not None
    activation = np.zeros((12, 12), np.uint8)
    activation[6:9, 2:5] = 255  # right lower zone (image left)
    activation[5:10, 1:6] = np.maximum(activation[5:10, 1:6], 120)
    prediction = PredictionFactory(
        probability=0.91,
        activation=ContentFile(_png(activation), name="activation.png"),
        study__format=Study.Format.DICOM,
        study__width=SIZE[1],
        study__height=SIZE[0],
        study__patient_id="PAT-12BIT",
        study__display_image=ContentFile(_png(display), name="image.png"),
        study__display_image_16=ContentFile(rendition.to_gzip(), name="image16.u16.gz"),
        study__display_image_16_info=rendition.info(),
        study__dicom_metadata={"modality": "CR", "view_position": "PA", "body_part_examined": "CHEST"},
    )
    return prediction.study


def _canvas_pixels(page: Any) -> list[int]:
    """A 64×64 grid of the canvas's grey values (red channel), read through the DevTools protocol."""
    return page.evaluate(
        """() => { const c = document.getElementById('viewer-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const out = [];
        for (let j = 0; j < 64; j++) for (let i = 0; i < 64; i++) {
          const x = Math.floor((i + .5) * c.width / 64), y = Math.floor((j + .5) * c.height / 64);
          out.push(d[(y * c.width + x) * 4]); }
        return out; }"""
    )


def test_window_level_on_a_12_bit_dicom_changes_the_canvas_and_the_page_fits_the_screen(
    live_server: Any, transactional_db: None, page: Any
) -> None:
    radiologist = RadiologistFactory(username="wanda.window")
    study = _screened_12_bit_study()
    following = StudyFactory(completed=True, priority=-5)  # the next study in worklist order
    csp_violations = watch_csp_violations(page)
    log_in(page, live_server.url, radiologist.username)

    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/studies/{study.id}/")
    wait_until(page, "document.getElementById('viewer-stage').dataset.state === 'ready'")
    stage = page.locator("#viewer-stage")
    assert stage.get_attribute("data-source") == "image16"  # the 16-bit rendition, not the 8-bit PNG
    assert stage.get_attribute("data-heatmap") == "activation"
    assert page.locator("#viewer-depth").inner_text() == "12-bit"
    # Read and review without scrolling: the page is no taller than the window, the review's save button on screen.
    assert page.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight")
    save = page.locator('[data-action="save"]').bounding_box()
    assert save is not None and save["y"] + save["height"] <= 900
    canvas_box = page.locator("#viewer-canvas").bounding_box()
    assert canvas_box is not None and canvas_box["height"] >= 600  # the image gets the viewport's height
    screenshot(page, "study-viewer-1440x900.png")

    # Window/level by drag: narrow the window (drag left) and lower the level (drag up).
    page.keyboard.press("h")  # heatmap off, so only the radiograph is compared
    wait_until(page, "!document.getElementById('heatmap-toggle').checked")
    before = _canvas_pixels(page)
    width_before = float(stage.get_attribute("data-width") or 0)
    x, y = canvas_box["x"] + canvas_box["width"] / 2, canvas_box["y"] + canvas_box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - canvas_box["width"] * 0.35, y - 40, steps=6)
    page.mouse.up()
    wait_until(page, f"Number(document.getElementById('viewer-stage').dataset.width) < {width_before}")
    page.wait_for_timeout(100)  # the next animation frame draws the new window
    after = _canvas_pixels(page)
    changed = sum(1 for a, b in zip(before, after, strict=True) if abs(a - b) > 8)
    assert changed > len(before) // 4, f"only {changed} of {len(before)} sampled pixels changed"
    # More distinct greys than the 8-bit image could give in this window: an 8-bit source has one level per 16
    # modality units of this 12-bit image, so at most width/16 (+2 for the clipped ends) greys.
    width_after = float(stage.get_attribute("data-width") or 0)
    assert len(set(after)) > width_after / 16 + 2, (len(set(after)), width_after)
    screenshot(page, "study-viewer-windowed.png")

    # The heatmap setting is remembered for this reader (saved on the server by the "h" above).
    wait_until(page, "document.getElementById('viewer-stage').dataset.preferences === 'saved'")
    assert ViewerPreference.objects.get(user=radiologist).heatmap_visible is False
    page.keyboard.press("?")
    assert page.locator("#viewer-shortcuts").is_visible()
    page.keyboard.press("Escape")

    page.set_viewport_size({"width": 1920, "height": 1080})
    page.reload()
    wait_until(page, "document.getElementById('viewer-stage').dataset.state === 'ready'")
    assert not page.locator("#heatmap-toggle").is_checked()  # remembered
    assert page.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight")
    screenshot(page, "study-viewer-1920x1080.png")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    wait_until(page, "document.getElementById('viewer-stage').dataset.state === 'ready'")
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    box = page.locator("#viewer-canvas").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    screenshot(page, "study-viewer-390x844.png")

    # Shortcuts drive the comparison, the review form (finding keys) and the worklist (next study).
    page.set_viewport_size({"width": 1440, "height": 900})
    page.keyboard.press("h")
    page.keyboard.press("f")
    assert stage.get_attribute("data-compare") == "side"
    screenshot(page, "study-viewer-side-by-side.png")
    page.keyboard.press("1")
    assert page.locator('input[name="finding"][value="NORMAL"]').is_checked()
    page.locator("body").click(position={"x": 5, "y": 5})  # leave the radio: shortcuts work from anywhere but text
    page.keyboard.press("j")
    page.wait_for_url(f"{live_server.url}/studies/{following.id}/")
    assert csp_violations == []
