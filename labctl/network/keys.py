"""CURVE key pairs of edges and the center, as ZeroMQ certificate files.

A pair is ``DIR/NAME.key`` (public: copy it to the other side) and ``DIR/NAME.key_secret`` (secret, mode
0600, never leaves its machine). The center admits the edges whose public files are in its allow folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import zmq.auth
from zmq.utils import z85

from labctl.network.errors import KeyFileError

__all__ = ["PUBLIC_SUFFIX", "SECRET_SUFFIX", "create_keys", "fingerprint", "load_allowed", "load_public",
           "load_secret"]

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def create_keys(name: str, directory: str | Path) -> tuple[Path, Path]:
    """Write a new key pair ``directory/name.key`` and ``directory/name.key_secret`` (mode 0600); returns
    their paths. ``directory`` is created if missing; an existing pair (or half of one) is never replaced.

    The pair is made in a private temporary folder and hard-linked into place, so the secret is never
    readable by others and an existing file is never overwritten, even by a concurrent call."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(SECRET_SUFFIX):
        raise KeyFileError(f"key name {name!r}: use 1-64 letters, digits, '_', '-', '.', starting with a letter "
                           "or digit (no path separators)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = directory / f"{name}{PUBLIC_SUFFIX}", directory / f"{name}{SECRET_SUFFIX}"
    existing = [str(p) for p in (public, secret) if p.exists()]
    if existing:
        raise KeyFileError(f"refusing to overwrite the existing key file(s) {', '.join(existing)}; choose another "
                           "name or remove them first")
    scratch = Path(tempfile.mkdtemp(prefix=".keys-", dir=directory))
    try:
        made_public, made_secret = (Path(p) for p in zmq.auth.create_certificates(scratch, name))
        os.chmod(made_secret, 0o600)
        os.chmod(made_public, 0o644)
        linked = []
        try:
            for made, target in ((made_public, public), (made_secret, secret)):
                os.link(made, target)
                linked.append(target)
        except FileExistsError:
            for target in linked:
                target.unlink()
            raise KeyFileError(f"refusing to overwrite {target}: it appeared while the pair was being made") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return public, secret


def _load(path: str | Path) -> tuple[bytes, bytes | None]:
    path = Path(path)
    if not path.is_file():
        raise KeyFileError(f"key file {path} does not exist (make one with `labctl keys create NAME --dir DIR`)")
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"key file {path} is not a CURVE certificate: {exc}") from None


def load_secret(path: str | Path) -> tuple[bytes, bytes]:
    """``(public, secret)`` Z85 keys of a ``.key_secret`` file."""
    public, secret = _load(path)
    if not secret:
        raise KeyFileError(f"key file {path} holds no secret key: give the NAME{SECRET_SUFFIX} file")
    return public, secret


def load_public(path: str | Path) -> bytes:
    """The Z85 public key of a ``.key`` (or ``.key_secret``) file."""
    return _load(path)[0]


def load_allowed(directory: str | Path) -> set[bytes]:
    """The Z85 public keys of every ``*.key`` file in ``directory`` (read afresh on each call, so a key
    added to or removed from the folder takes effect at the next connection)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise KeyFileError(f"allow folder {directory} does not exist")
    return {load_public(p) for p in sorted(directory.glob(f"*{PUBLIC_SUFFIX}"))}


def fingerprint(public: bytes) -> str:
    """A short, stable name of a public key for logs: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = z85.decode(public) if len(public) == 40 else public
    return hashlib.sha256(raw).hexdigest()[:16]
