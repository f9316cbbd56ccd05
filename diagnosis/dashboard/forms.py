"""Dashboard forms: they parse and validate input only; the views hand the cleaned data to services."""

from __future__ import annotations

from typing import Any

from django import forms

from diagnosis.models import Prediction, Review, Study

ACCEPTED_UPLOAD_TYPES = ".dcm,.dicom,.png,.jpg,.jpeg,application/dicom,image/png,image/jpeg"


class WorklistFilterForm(forms.Form):
    """GET filters of the worklist. Unknown values are ignored rather than answered with an error page."""

    status = forms.ChoiceField(choices=[("", "All statuses"), *Study.Status.choices], required=False)
    label = forms.ChoiceField(
        choices=[("", "All findings"), *Prediction.Label.choices], required=False, label="AI finding"
    )

    def filters(self) -> dict[str, str | None]:
        self.is_valid()  # an invalid field is left out of cleaned_data; the valid one still applies
        return {name: self.cleaned_data.get(name) or None for name in ("status", "label")}


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
