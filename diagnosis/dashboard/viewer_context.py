"""What the study page's viewer needs from the server (issue 10), kept out of views.py so areas merge cleanly."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from diagnosis.models import Prediction, Study
from diagnosis.selectors.viewer import study_neighbours, viewer_settings_for


def viewer_context(request: HttpRequest, study: Study, prediction: Prediction | None) -> dict[str, Any]:
    """URLs and settings for ``study.js``: 16-bit rendition (or none), activation map (or none), preferences,
    and the previous/next study in worklist order."""
    neighbours = study_neighbours(user=request.user, study=study)
    info = study.display_image_16_info or {}
    return {
        "image16_url": reverse("dashboard:study_image16", kwargs={"study_id": study.id})
        if study.display_image_16
        else "",
        # A JSON string in a data- attribute (no inline script under the CSP).
        "image16_info": json.dumps(info) if study.display_image_16 else "",
        "activation_url": reverse("dashboard:study_activation", kwargs={"study_id": study.id})
        if prediction is not None and prediction.activation
        else "",
        "viewer_settings": viewer_settings_for(user=request.user),
        "preferences_url": reverse("dashboard:viewer_preferences"),
        "previous_study": neighbours.previous,
        "next_study": neighbours.next,
        "bits_label": f"{info.get('bits_stored')}-bit" if study.display_image_16 else "8-bit",
    }
