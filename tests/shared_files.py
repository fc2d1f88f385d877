"""Files made once per test session and shared by pytest-xdist workers."""

import fcntl
import os
from pathlib import Path


def shared_file(tmp_path_factory, name: str, make) -> Path:
    """``make(path)`` once per test session, shared by pytest-xdist workers (a calibration takes seconds).

    Under xdist the workers' temporary directories share a per-session parent; a lock file there lets the
    first worker make the file and the others wait and reuse it. Without xdist: the session's own dir.
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = root / name
    with open(root / (name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not path.exists():
                make(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path
