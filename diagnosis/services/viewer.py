"""Writes for the study viewer (issue 10): a reader's viewer preferences."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from diagnosis.exceptions import InvalidInputError
from diagnosis.models import ViewerPreference


def viewer_preference_update(
    *,
    user: AbstractBaseUser,
    heatmap_visible: bool | None = None,
    heatmap_opacity: int | None = None,
    colormap: str | None = None,
    threshold: int | None = None,
) -> ViewerPreference:
    """Change the given settings of the user's viewer (the others stay). Any logged-in dashboard user may.

    Raises ``InvalidInputError`` (400) for an out-of-range value; nothing is saved then.
    """
    if heatmap_opacity is not None and not 0 <= heatmap_opacity <= 100:
        raise InvalidInputError("Heatmap opacity must be between 0 and 100 %.")
    if threshold is not None and not 0 <= threshold <= 95:
        raise InvalidInputError("The low-activation threshold must be between 0 and 95 %.")
    if colormap is not None and colormap not in ViewerPreference.Colormap.values:
        raise InvalidInputError(f"Unknown colour map; choose one of {', '.join(ViewerPreference.Colormap.values)}.")
    preference, _ = ViewerPreference.objects.get_or_create(user_id=user.pk)
    changes = {
        "heatmap_visible": heatmap_visible,
        "heatmap_opacity": heatmap_opacity,
        "colormap": colormap,
        "threshold": threshold,
    }
    changed = [name for name, value in changes.items() if value is not None and getattr(preference, name) != value]
    if not changed:
        return preference
    for name in changed:
        setattr(preference, name, changes[name])
    preference.save(update_fields=[*changed, "updated_at"])
    return preference
