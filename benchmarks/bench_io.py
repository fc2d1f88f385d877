"""Benchmarks: simulated SCPI round trip vs pyvisa-sim, AWG upload and scope capture rates.

Run: ``make bench`` (or ``python -m benchmarks.bench_io``). Timings are medians of repeated runs,
reported as ratios measured in the same process, never asserted in tests.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pyvisa

from labctl import open_bench

HERE = Path(__file__).parent
RESOURCE = "TCPIP0::laser.labsim::inst0::INSTR"


def _median_time(fn: Callable[[], object], repeats: int, inner: int = 1) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def scpi_round_trip(repeats: int = 7, inner: int = 300) -> dict:
    """Median time per query for *IDN? and a numeric query, labsim vs pyvisa-sim, same process, on the
    characterisation bench's laser (the instrument the pyvisa-sim reference file describes)."""
    from sim_backends.highlevel import LabSimVisaLibrary

    ours = pyvisa.ResourceManager(LabSimVisaLibrary("characterisation")).open_resource(
        RESOURCE, read_termination="\n", write_termination="\n")
    reference = pyvisa.ResourceManager(f"{HERE / 'pyvisa_sim_reference.yaml'}@sim").open_resource(
        RESOURCE, read_termination="\n", write_termination="\n")
    out = {}
    for label, query in (("idn", "*IDN?"), ("numeric", ":SOUR1:WAV?")):
        t_ours = _median_time(lambda: ours.query(query), repeats, inner)
        t_ref = _median_time(lambda: reference.query(query), repeats, inner)
        out[label] = {"query": query, "labsim_us": t_ours * 1e6, "pyvisa_sim_us": t_ref * 1e6,
                      "speedup_vs_pyvisa_sim": t_ref / t_ours}
    ours.close()
    reference.close()
    return out


def bulk_transfers(samples: int = 1_000_000, repeats: int = 5) -> dict:
    """MB/s of a 1 M-sample AWG upload and a 1 M-point scope capture through the real drivers."""
    with open_bench("characterisation", mode="sim", seed=0) as bench:
        awg_channel = bench.role("awg", 1)
        # 2**20 samples: the M8195A needs a multiple of 256, and 1,000,000 would be padded to 4 M
        awg_samples = 2**20
        waveform = np.sin(2 * np.pi * np.arange(awg_samples) / 1280.0)
        t_upload = _median_time(lambda: awg_channel.upload_waveform(waveform), repeats)
        scope = bench.role("scope")
        scope.record_length = samples
        t_capture = _median_time(lambda: scope.capture([1]), repeats)
        points = len(scope.capture([1])[1][1])
        # the transfer alone: re-read the record just acquired (WORD format, as capture() leaves it)
        t_transfer = _median_time(lambda: scope.read_waveform(1), repeats)
    upload_bytes = awg_samples  # int8 DAC codes
    capture_bytes = points * 2  # WORD format
    return {
        "awg_upload": {"samples": awg_samples, "bytes": upload_bytes, "seconds": t_upload,
                       "MB_per_s": upload_bytes / t_upload / 1e6},
        "scope_capture": {"points": points, "bytes": capture_bytes, "seconds": t_capture,
                          "MB_per_s": capture_bytes / t_capture / 1e6,
                          "note": "acquisition includes simulating the whole optical chain at 1 M points"},
        "scope_transfer": {"points": points, "bytes": capture_bytes, "seconds": t_transfer,
                           "MB_per_s": capture_bytes / t_transfer / 1e6},
    }


def hostile_parsing_growth(length: int = 20_000, factor: int = 8, repeats: int = 5) -> dict:
    """Time to refuse hostile SCPI text of ``length`` and ``factor`` x ``length`` characters, side by side.

    A parser linear in the text's length gives a ratio near ``factor``; a backtracking one near ``factor**2``.
    """
    from sim_backends.scpi import CommandTree, Param, ScpiError

    def refuse(n: int) -> Callable[[], object]:
        texts = ("1e" + "1" * n + " " * n + "!", "1" + " " * (2 * n) + "x!")

        def run():
            for text in texts:
                try:
                    Param(text).number()
                except ScpiError:
                    pass
            try:
                CommandTree().resolve("A" * (2 * n) + "!")
            except ScpiError:
                pass
        return run

    short = _median_time(refuse(length), repeats)
    long = _median_time(refuse(length * factor), repeats)
    return {"length": length, "factor": factor, "short_s": short, "long_s": long,
            "ratio": long / short, "linear_ratio": factor, "quadratic_ratio": factor ** 2}
