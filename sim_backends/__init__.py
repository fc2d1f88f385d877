"""Simulated VISA back end: simulated instruments speaking their real models' SCPI on one physics model.

``pyvisa.ResourceManager("@labsim")`` opens the built-in system bench; see ``highlevel``.
"""

from sim_backends.bench import (
    BUILTIN_BENCHES,
    CHARACTERISATION_BENCH_PATH,
    SIM_MODELS,
    SYSTEM_BENCH_PATH,
    BenchFileError,
    build_bench,
    builtin_bench,
    load_bench_file,
)
from sim_backends.datasheets import DatasheetPower, idle_power_datasheet
from sim_backends.highlevel import LabSimVisaLibrary, UnknownResource

__all__ = [
    "BUILTIN_BENCHES",
    "CHARACTERISATION_BENCH_PATH",
    "SYSTEM_BENCH_PATH",
    "SIM_MODELS",
    "BenchFileError",
    "DatasheetPower",
    "LabSimVisaLibrary",
    "UnknownResource",
    "build_bench",
    "builtin_bench",
    "idle_power_datasheet",
    "load_bench_file",
]
