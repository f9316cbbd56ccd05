"""Per-user settings of the study viewer (issue 10): remembered on the server, so they follow the reader."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class ViewerPreference(models.Model):
    """How one user likes the Grad-CAM layer: shown or not, its opacity, colour map and low-activation cut-off.

    Not clinical data and not audited: it changes what the reader's own screen shows, never a finding.
    """

    class Colormap(models.TextChoices):
        VIRIDIS = "viridis", "Viridis"
        INFERNO = "inferno", "Inferno"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="viewer_preference")
    heatmap_visible = models.BooleanField(default=True)
    heatmap_opacity = models.PositiveSmallIntegerField(
        default=40, validators=[MinValueValidator(0), MaxValueValidator(100)], help_text="Per cent."
    )
    colormap = models.CharField(max_length=16, choices=Colormap.choices, default=Colormap.VIRIDIS)
    threshold = models.PositiveSmallIntegerField(
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(95)],
        help_text="Activations below this per cent of the maximum are not drawn.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Viewer preferences of {self.user_id}"
