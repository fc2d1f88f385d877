"""Benchmarks measure in a child process with single-threaded BLAS, so the figures do not depend on how many
threads the parent happened to start, and read the child's JSON from its stdout."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


def measure_in_child(module: str, *args: str, single_thread_openmp: bool = False) -> dict:
    """Run ``python -m <module> --measure <args>`` from the repository root with ``OPENBLAS_NUM_THREADS=1``
    (and ``OMP_NUM_THREADS=1`` if asked); return the JSON it prints. Its stderr (progress) passes through."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if single_thread_openmp:
        env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", module, "--measure", *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout)


def print_measured(measure: Callable[[], dict]) -> int:
    """The child's side of :func:`measure_in_child`: run ``measure`` with its prints sent to stderr (progress, so
    that stdout holds the JSON alone), then print its figures as JSON. Returns the exit status."""
    with contextlib.redirect_stdout(sys.stderr):
        results = measure()
    print(json.dumps(results, default=str))
    return 0
