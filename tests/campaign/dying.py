"""An experiment whose process dies mid-point (for the Dask worker-loss test): it ends its own process the
first time (``once``) or every time (``always``) it runs, as a crashed or killed worker would."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from labctl.runner import Experiment, RunContext


class Parameters(BaseModel):
    marker: str
    dies: str = "once"


class Dying(Experiment):
    name = "dying"
    Parameters = Parameters

    def run(self, ctx: RunContext) -> dict:
        marker = Path(ctx.params.marker)
        attempts = int(marker.read_text()) + 1 if marker.exists() else 1
        marker.write_text(str(attempts))
        if ctx.params.dies == "always" or attempts == 1:
            os._exit(1)
        return {"attempts": attempts}
