"""labctl: drive an optical computing center from a lab bench or from a faithful simulation of one.

    >>> import labctl
    >>> with labctl.open_bench() as bench:          # the built-in system: the optical computing center
    ...     laser = bench.role("laser1_1", 1)           # core 1's first input laser
    ...     laser.power = 10e-3                      # W; refused if above the bench's safety limit

See README.md for the architecture and docs/ for bench files and experiments.
"""

from labctl.bench import Bench, open_bench
from labctl.config import BenchConfig, load_bench
from labctl.errors import (
    ConfigError,
    InstrumentError,
    LabctlError,
    RoleError,
    SafetyLimitError,
    UnknownResourceError,
)
from labctl.runner import Experiment, RunContext, run_experiment
from labctl.network import connect
from labctl.opu import OPU  # noqa: E402  (after the bench and config modules it uses)

__version__ = "0.1.0"

__all__ = [
    "Bench",
    "BenchConfig",
    "ConfigError",
    "Experiment",
    "InstrumentError",
    "LabctlError",
    "OPU",
    "RoleError",
    "RunContext",
    "SafetyLimitError",
    "UnknownResourceError",
    "connect",
    "load_bench",
    "open_bench",
    "run_experiment",
]


def __getattr__(name):
    """``labctl.offload`` is imported on first use, so importing labctl does not import torch."""
    if name == "offload":
        import importlib

        return importlib.import_module("labctl.offload")
    raise AttributeError(f"module 'labctl' has no attribute {name!r}")
