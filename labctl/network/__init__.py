"""The control plane between edge nodes and the optical computing center (docs/network.md).

* :mod:`~labctl.network.keys` -- CURVE key pairs (``labctl keys create``) and the center's allow folder;
* :mod:`~labctl.network.messages` -- the versioned message schemas: a JSON header plus raw array frames;
* :mod:`~labctl.network.center` -- the center: admission, core allocation, fair scheduling, heartbeats;
* :mod:`~labctl.network.client` -- :func:`connect`: a remote OPU with the local engines' interface;
* :mod:`~labctl.network.edge` -- an edge's own transmitter and link for the data plane in simulation.
"""

from labctl.network.errors import (
    AdmissionRefused,
    CenterUnavailable,
    DataPlaneError,
    KeyFileError,
    KeyRefused,
    NetworkError,
    NetworkSettingError,
    ProtocolError,
    RemoteError,
)
from labctl.network.client import RemoteOPU, connect
from labctl.network.edge import EdgeTransmitter
from labctl.network.keys import create_keys, fingerprint, load_public, load_secret

__all__ = [
    "AdmissionRefused",
    "CenterUnavailable",
    "DataPlaneError",
    "EdgeTransmitter",
    "KeyFileError",
    "KeyRefused",
    "NetworkError",
    "NetworkSettingError",
    "ProtocolError",
    "RemoteError",
    "RemoteOPU",
    "connect",
    "create_keys",
    "fingerprint",
    "load_public",
    "load_secret",
]
