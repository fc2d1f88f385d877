"""No orphan centers: `labctl center serve --exit-with-parent` stops (with its orderly shutdown) when the
process that started it dies, or when that process closes its stdin pipe."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import center_command

#: A parent that starts a center in its own session (so killing the parent signals only the parent), its
#: stdin not a pipe (so only the parent-pid watch can notice), prints the center's pid and waits forever.
PARENT = """
import json, subprocess, sys, time
command, log = json.loads(sys.argv[1]), sys.argv[2]
with open(log, "ab") as out:
    center = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              start_new_session=True)
print(center.pid, flush=True)
while True:
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for init to reap it has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_for(predicate, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s} s")
        time.sleep(0.1)


def test_the_center_stops_when_its_parent_is_killed(keys, calibration, tmp_path):
    log = tmp_path / "center.log"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, json.dumps(center_command(keys, calibration)), str(log)],
                              stdout=subprocess.PIPE, text=True)
    center_pid = None
    try:
        center_pid = int(parent.stdout.readline())
        _wait_for(lambda: "serving 1 core(s)" in log.read_text(errors="replace"), "the center did not serve")
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        _wait_for(lambda: not _alive(center_pid), "the center outlived its parent")
    finally:
        parent.kill()
        parent.wait(30)
        parent.stdout.close()
        if center_pid is not None and _alive(center_pid):
            os.killpg(center_pid, signal.SIGKILL)  # the center's own session: nothing else is in it
    text = log.read_text(errors="replace")
    assert re.search(rf"the parent process \(pid {parent.pid}\) is gone: stopping", text)
    assert re.search(r"center on tcp://127\.0\.0\.1:\d+ stopped", text)  # the orderly way out (bench shutdown)


def test_the_center_stops_when_its_stdin_closes(start_center):
    center = start_center()
    center.process.stdin.close()
    assert center.process.wait(120) == 0
    assert "(stdin closed): stopping" in center.log()
    assert re.search(r"center on tcp://127\.0\.0\.1:\d+ stopped", center.log())
