"""The campaign's typed error."""

from __future__ import annotations

from labctl.errors import LabctlError


class CampaignError(LabctlError):
    """A campaign cannot run as asked: its output, a resume file from another campaign, a scheduler that
    cannot be reached or cannot be used with the bench."""


__all__ = ["CampaignError"]
