"""Bench parts of the optical network and computing core: EDFA, AWGR, microring bank, mux, splitter.

(Being written for issue 4.)
"""

from __future__ import annotations

from sim_backends.world import Component

NETWORK_COMPONENTS: dict[str, type[Component]] = {}
