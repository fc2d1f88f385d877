"""An edge's own transmitter and fibre link for the data plane in simulation (docs/network.md).

An edge bench file is a bench file (``labctl.config``: the same validation, line-precise errors) with the
edge's lasers, the OCC-16 board whose fast and bias DACs drive its modulators, the modulators, the mux and
its link (fibres, DCF, ...) ending at the one optical output no part takes: the center's input port. Its
``opu:`` section (weight-stationary, one core) names the lasers' channels and power.
``sim_backends/benches/edge_metro.yaml`` is the reference edge: core 1's transmitter and link of the
built-in center, copied, so it matches the center's calibration of that core.

For each program of a job the center sends a ``drive`` (the DAC codes its controller would send to its
input DACs, with its converter settings); :meth:`EdgeTransmitter.launch` turns it into the light arriving
at the center's input port with this edge's transmitter noise and link, and the edge sends it back. An
amplifier in the link (``edge_metro_amplified.yaml``) adds its gain to that light and its ASE as light on
no input's wavelength, which travels with it (the center sees it as its detectors' background).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from labctl.errors import ConfigError
from labctl.files import load_document
from sim_backends.instruments.labctl_occ import Drive, SimLabctlOCC

__all__ = ["EdgeTransmitter"]

_INT16 = (-32768, 32767)


class EdgeTransmitter:
    """The transmitter and link of an edge bench file, opened as a simulated bench (``seed``; ``changes``
    as :func:`labctl.open_bench` takes them, e.g. ``{"edge_fibre1.length_km": 50.0}``), lasers on."""

    def __init__(self, bench_path: str | Path, *, seed: int | None = 0, changes: Mapping[str, Any] | None = None):
        from labctl.bench import open_bench
        from labctl.opu.stationary import StationaryOPU
        from labctl.opu.stationary.config import StationaryConfig

        self.path = Path(bench_path)
        self.bench = open_bench(self.path, mode="sim", seed=seed, changes=dict(changes or {}))
        try:
            cores = StationaryConfig.from_bench(self.bench).cores
            if len(cores) != 1:
                raise ConfigError(self.path, "opu.cores", f"an edge bench describes one transmitter; it lists "
                                                          f"{len(cores)} cores", line=_line(self.path, "opu", "cores"))
            transmitter = StationaryOPU(self.bench, core=0)
            controller = self.bench.sim.world.nodes.get(transmitter.name)
            if not isinstance(controller, SimLabctlOCC):
                raise ConfigError(self.path, "opu.cores.0.controller", f"{transmitter.name} is not a labctl.OCC16 "
                                  "board: an edge's DACs are an OCC-16's", line=_line(self.path, "opu", "cores"))
            transmitter.lasers_on(True)
        except BaseException:
            self.bench.close()
            raise
        self.n_in = transmitter.n_in
        #: the center's core this transmitter belongs to (its controller's name): its calibration includes
        #: these modulators, so the edge asks the center for that core
        self.core = transmitter.name
        self._controller = controller
        self._lock = threading.Lock()

    def launch(self, codes: np.ndarray, drive: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(light, idle, background)`` at the center's input port for a ``drive`` message's codes (tiles,
        slots, inputs; whole numbers in the int16 range) and settings: float32 W per input and slot and in
        the gaps, and float64 (n, 2) wavelength m and power W of the link's light on no input's wavelength
        (an amplifier's ASE; (0, 2) without). A center's simulated controller takes ``launch`` as its light
        source. ValueError if the codes are not DAC codes or the drive is for another number of inputs."""
        codes = np.asarray(codes)
        if codes.ndim != 3 or codes.shape[2] != self.n_in:
            raise ValueError(f"a drive for {codes.shape[2:] or '?'} inputs; this transmitter has {self.n_in}")
        if codes.size and (codes.min() < _INT16[0] or codes.max() > _INT16[1] or np.any(codes != np.round(codes))):
            raise ValueError("the drive's codes are not whole numbers in the DAC's int16 range")
        settings = Drive(symbol_rate_hz=drive.symbol_rate_hz, dac_amplitude_v=drive.dac_amplitude_v,
                         gap_slots=drive.gap_slots, bias_v=tuple(drive.bias_v), rin_band_hz=drive.rin_band_hz,
                         dac_noise_referral=drive.dac_noise_referral)
        if len(settings.bias_v) != self.n_in:
            raise ValueError(f"the drive has {len(settings.bias_v)} biases; this transmitter has {self.n_in} inputs")
        with self._lock:
            light, idle, background = self._controller.launch(codes.astype(np.int16), settings)
        return (np.ascontiguousarray(light, dtype=np.float32), np.ascontiguousarray(idle, dtype=np.float32),
                np.ascontiguousarray(background, dtype=np.float64))

    def close(self) -> None:
        """Close the edge's bench (its safe shutdown: lasers off)."""
        self.bench.close()

    def __enter__(self) -> EdgeTransmitter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _line(path: Path, *location: str) -> int | None:
    try:
        return load_document(path).line_of(location)
    except (ConfigError, OSError, ValueError):
        return None
