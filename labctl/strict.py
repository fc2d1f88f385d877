"""The project's one strict pydantic base.

Bench files and OPU configs are written by hand; a misspelt key must fail loudly
instead of being silently ignored, so every config model derives from this.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel"]


class StrictModel(BaseModel):
    """Pydantic model that rejects unknown fields."""

    model_config = ConfigDict(extra="forbid")
