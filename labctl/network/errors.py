"""Typed errors of the control plane between edge nodes and the optical computing center."""

from __future__ import annotations

from labctl.errors import LabctlError


class NetworkError(LabctlError):
    """Something between an edge and the center went wrong (keys, messages, admission, the connection)."""


class KeyFileError(NetworkError, ValueError):
    """A CURVE key file is missing, unreadable, holds no key of the kind needed, or would be overwritten."""


class NetworkSettingError(NetworkError, ValueError):
    """A setting of a center or an edge is out of range (timeouts, limits, no cores)."""


class ProtocolError(NetworkError, ValueError):
    """A message broke the protocol; ``code`` is the error code the center replies with (see
    :data:`labctl.network.messages.ERROR_CODES`)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"{code}: {message}")


class RemoteError(NetworkError):
    """The center answered with an error reply (``code`` and its message)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"center replied {code}: {message}")


class AdmissionRefused(RemoteError):
    """The center refused to admit this edge (more cores asked for than it has, or none free in time)."""


class CenterUnavailable(NetworkError, TimeoutError):
    """No answer from the center in time: it is not running, unreachable, or refused this edge's key."""


class KeyRefused(NetworkError, PermissionError):
    """The center's authenticator refused this edge's public key (it is not in the center's allow folder)."""


class DataPlaneError(NetworkError):
    """The light of a job's program did not come: the edge's light did not fit its drive, the edge could not
    launch it, or the edge left while the center waited for it."""
