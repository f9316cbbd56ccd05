"""Dashboard forms: they parse and validate input only; the views hand the cleaned data to services."""

from __future__ import annotations

from typing import Any

from django import forms

from diagnosis.models import Prediction, Review
from diagnosis.selectors.worklist import SCOPE_AWAITING, SCOPES

ACCEPTED_UPLOAD_TYPES = ".dcm,.dicom,.png,.jpg,.jpeg,application/dicom,image/png,image/jpeg"


class WorklistFilterForm(forms.Form):
    """GET filters of the worklist: tab (scope), search, sort and AI finding.

    Unknown values are ignored rather than answered with an error page; the sort is checked against the selector's
    whitelist, never passed to ``order_by`` as given.
    """

    scope = forms.ChoiceField(choices=list(SCOPES.items()), required=False)
    q = forms.CharField(required=False, max_length=64, label="Search")
    sort = forms.CharField(required=False, max_length=32)
    label = forms.ChoiceField(
        choices=[("", "All findings"), *Prediction.Label.choices], required=False, label="AI finding"
    )

    def filters(self) -> dict[str, Any]:
        self.is_valid()  # an invalid field is left out of cleaned_data; the valid ones still apply
        data = self.cleaned_data
        return {
            "scope": data.get("scope") or SCOPE_AWAITING,
            "query": (data.get("q") or "").strip(),
            "sort": data.get("sort") or "",
            "label": data.get("label") or None,
        }


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that cleans to a list (Django's documented recipe for ``<input type=file multiple>``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        clean_one = super().clean
        files = [item for item in (data if isinstance(data, (list, tuple)) else [data]) if item]
        if not files:
            clean_one(None, initial)  # raises "This field is required." when it is
            return []
        return [clean_one(item, initial) for item in files]


class UploadForm(forms.Form):
    """The page's script sends each selected file on its own request; without scripts the form posts them all."""

    file = MultipleFileField(
        label="Chest X-ray files",
        widget=MultipleFileInput(attrs={"accept": ACCEPTED_UPLOAD_TYPES, "multiple": True}),
        help_text="DICOM, PNG or JPEG. Select one or several files.",
    )
    patient_id = forms.CharField(label="Patient ID", max_length=64, required=False)
    accession_number = forms.CharField(label="Accession number", max_length=64, required=False)


DICOM_MAGIC_OFFSET = 128


def upload_is_dicom(upload: Any) -> bool:
    """Whether an uploaded file is DICOM Part 10 ("DICM" at offset 128), read without moving the caller's position."""
    try:
        upload.seek(DICOM_MAGIC_OFFSET)
        magic = upload.read(4)
    finally:
        upload.seek(0)
    return bool(magic == b"DICM")


def patient_id_error(*, upload: Any, patient_id: str, required: bool) -> str | None:
    """The refusal for a PNG/JPEG sent without a patient ID when the site requires one (DICOM carries its own)."""
    if not required or patient_id.strip() or upload_is_dicom(upload):
        return None
    return (
        "A PNG or JPEG file carries no patient data: give its patient ID (this site requires one for every image "
        "that is not DICOM)."
    )


class UploadFileForm(forms.Form):
    """One file of the upload page's script, with its own patient ID and accession number (PNG/JPEG only)."""

    file = forms.FileField()
    patient_id = forms.CharField(max_length=64, required=False)
    accession_number = forms.CharField(max_length=64, required=False)

    def __init__(self, *args: Any, require_patient_id: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.require_patient_id = require_patient_id

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("file")
        if upload is not None:
            error = patient_id_error(
                upload=upload, patient_id=cleaned.get("patient_id", ""), required=self.require_patient_id
            )
            if error:
                self.add_error("patient_id", error)
        return cleaned


class ReviewForm(forms.Form):
    """The review panel's form (templates/diagnosis/_review_panel.html renders its controls by hand for the
    keyboard contract). Whether a reason is required is the service's rule (``services.reviews``), not the form's."""

    finding = forms.ChoiceField(choices=Review.Finding.choices, widget=forms.RadioSelect, label="Your finding")
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 5000, "id": "review-comment"}),
        required=False,
        max_length=5000,
        label="Comment",
    )
    # Set only by the explicit "Amend review" step: without it the server refuses to replace a standing review.
    amend = forms.BooleanField(required=False, widget=forms.HiddenInput)
