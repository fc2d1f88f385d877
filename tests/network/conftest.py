"""A center in its own process on loopback (the simulated optical computing center, one calibrated core).

No center outlives its test: each runs in its own process group with ``--exit-with-parent`` (it stops when
this pytest worker dies or closes its stdin) and is killed, group and all, by its fixture's finalizer or,
failing that, at this process's exit."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labctl.network import create_keys
from tests.shared_files import ring_core_calibration

SEED = 1  # the seed the shared calibration was made at


def center_command(keys: dict, calibration: Path, *, port: str = "*", args: tuple = ()) -> list[str]:
    """The command line of a test center on 127.0.0.1 (one core of the built-in center, the shared calibration)."""
    return [sys.executable, "-m", "labctl", "center", "serve", "--sim", "--seed", str(SEED), "--calibration",
            str(calibration), "--cores", "1", "--bind", f"tcp://127.0.0.1:{port}", "--key", str(keys["center"][1]),
            "--allow", str(keys["allow"]), "--exit-with-parent", *args]


class CenterProcess:
    """``labctl center serve`` on 127.0.0.1 with its log in a file; ``endpoint`` once it serves. It runs in
    its own process group, its stdin a pipe from this process, and is killed at this process's exit if no
    one killed it before."""

    def __init__(self, keys: dict, calibration: Path, log: Path, *, port: str = "*", args: tuple = ()):
        self.log_path = log
        self._log = open(log, "ab")
        self.process = subprocess.Popen(center_command(keys, calibration, port=port, args=args), stdin=subprocess.PIPE,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        atexit.register(self.kill)
        self.endpoint = self._wait_until_serving()

    def _wait_until_serving(self, timeout_s: float = 120.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.findall(r"serving \d+ core\(s\) \([^)]*\) on (tcp://127\.0\.0\.1:\d+)", self.log())
            if found:
                return found[-1]
            if self.process.poll() is not None:
                raise RuntimeError(f"the center exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the center did not start within {timeout_s} s:\n{self.log()}")

    @property
    def port(self) -> str:
        return self.endpoint.rsplit(":", 1)[1]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout_s: float = 30.0) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log())
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not in the center's log within {timeout_s} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL to the center's process group (the center and anything it started); idempotent."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it exited meanwhile
        self.process.wait(30)
        self._close()

    def terminate(self, timeout_s: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout_s)
        self._close()
        return code

    def _close(self) -> None:
        self.process.stdin.close()
        self._log.close()
        atexit.unregister(self.kill)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict:
    """Key pairs ``name -> (public, secret)`` of the center, two allowed edges and a rogue; ``allow``: the
    folder of the allowed edges' public keys."""
    root = tmp_path_factory.mktemp("keys")
    pairs = {name: create_keys(name, root / "pairs") for name in ("center", "edge1", "edge2", "rogue")}
    allow = root / "allow"
    allow.mkdir()
    for name in ("edge1", "edge2"):
        shutil.copy(pairs[name][0], allow)
    return {**pairs, "allow": allow}


@pytest.fixture(scope="module")
def calibration(tmp_path_factory) -> Path:
    """A calibration folder holding core occ1 of the built-in center, calibrated once per session."""
    folder = tmp_path_factory.mktemp("calibration")
    shutil.copy(ring_core_calibration(tmp_path_factory, 0), folder / "occ1.json")
    return folder


@pytest.fixture
def start_center(keys, calibration, tmp_path):
    """``start_center(*args, port="*")``: a center process, killed after the test if still running."""
    started = []

    def start(*args: str, port: str = "*") -> CenterProcess:
        center = CenterProcess(keys, calibration, tmp_path / f"center{len(started)}.log", port=port, args=args)
        started.append(center)
        return center

    yield start
    for center in started:
        center.kill()


@pytest.fixture(scope="module")
def shared_center(keys, calibration, tmp_path_factory):
    """One center for the tests that only need one that is up (max array 4096 B, quick timeouts)."""
    center = CenterProcess(keys, calibration, tmp_path_factory.mktemp("center") / "center.log",
                           args=("--max-array-bytes", "4096", "--heartbeat", "0.2", "--edge-timeout", "2"))
    yield center
    center.kill()
