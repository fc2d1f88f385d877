"""Cyclic N x N arrayed-waveguide grating router (AWGR): wavelength routing, passbands, crosstalk.

Routing (ports numbered 1..N): input p sends wavelength

    lambda(p, q, n) = lambda0 + (p - q) dlambda + n FSR,      FSR = N dlambda   (cyclic AWGR)

to output q. Sign convention: lambda0 goes straight across (p -> p); each +dlambda step moves the
output one port down (q -> q - 1, cyclically). The mirrored convention of some datasheets is a port
relabelling q -> N + 1 - q. Because FSR = N dlambda, each (p, q) pair gets exactly one wavelength
per FSR and every input reaches every output (the routing table is a Latin square). Channels are
uniform in wavelength, dlambda = lambda0^2 df / c when given in Hz (the <0.2 % non-uniformity in
frequency across a 32 x 100 GHz comb is neglected).

Power transmission from p to q at wavelength lambda (sum over spectral channels k near lambda):

    T = IL * sum_k S(lambda - lambda_k) X(dist(q, q_k)),    lambda_k = lambda0 + k dlambda,
    q_k = ((p - k - 1) mod N) + 1 (the port channel k routes to),
    X = 1 (routed), X_adj (cyclic neighbour), X_nonadj (others),
    S(d) = 2^(-(2 d / w)^(2m)),  m = 1 Gaussian, m = 3 flat-top (super-Gaussian), w = -3 dB full width.

So at a channel centre the routed port gets IL, a neighbouring port IL X_adj, and the outputs add to
IL (1 + 2 X_adj + (N - 3) X_nonadj) <= 1 (checked at construction).
"""

from __future__ import annotations

import numpy as np

from sim_backends.physics.constants import C
from sim_backends.physics.validation import require_int, require_range

PASSBANDS = {"gaussian": 1, "flat-top": 3}
_NEIGHBOUR_CHANNELS = 3  # S(3 dlambda) < 2^-36 for w <= dlambda: farther channels are negligible


class AWGR:
    """Cyclic N x N AWGR with Gaussian or flat-top passbands and adjacent/non-adjacent crosstalk.

    Defaults: 16 x 16, 100 GHz ITU grid (0.8 nm) centred on 1550.12 nm (193.4 THz), IL 5 dB,
    adjacent crosstalk -25 dB, non-adjacent -35 dB, Gaussian passband 3-dB width 0.5 x spacing.
    Sources: silica AWG/AWGR datasheet classes list IL 3-6 dB, adjacent <= -25 dB, non-adjacent
    <= -30...-35 dB, Gaussian 3-dB width ~0.4-0.5 x spacing (dagger: vendor datasheet figures,
    not re-verified); Okamoto, Fundamentals of Optical Waveguides 2nd ed., ch. 9 (AWG theory,
    Gaussian and flat passbands); Maru & Abe, Opt. Express 15, 18351 (2007): 32-ch silica AWG,
    3.3-3.7 dB loss. Silicon AWGRs are worse (e.g. Opt. Express 26, 6276 (2018): 8 x 8, >= 2.5 dB
    loss, ~-11 dB crosstalk); set those values in the bench file.
    """

    def __init__(self, ports: int = 16, channel_spacing_hz: float | None = 100e9, dlambda_m: float | None = None,
                 center_wavelength_m: float = 1550.12e-9, insertion_loss_db: float = 5.0,
                 adjacent_crosstalk_db: float = -25.0, nonadjacent_crosstalk_db: float = -35.0,
                 passband: str = "gaussian", passband_3db_hz: float | None = None):
        self.ports = require_int("ports", ports, 2, 4096)
        self.center_wavelength_m = require_range("center_wavelength_m", center_wavelength_m, 100e-9, 20e-6)
        lam0 = self.center_wavelength_m
        if dlambda_m is not None:
            self.dlambda_m = require_range("dlambda_m", dlambda_m, 1e-13, lam0 / self.ports / 2)
        elif channel_spacing_hz is not None:
            spacing = require_range("channel_spacing_hz", channel_spacing_hz, 1e6, C / lam0 / self.ports / 2)
            self.dlambda_m = lam0**2 * spacing / C
        else:
            raise ValueError("give channel_spacing_hz or dlambda_m")
        if passband not in PASSBANDS:
            raise ValueError(f"passband={passband!r} is not one of {tuple(PASSBANDS)}")
        self.passband = passband
        self._order = PASSBANDS[passband]
        if passband_3db_hz is None:
            self.passband_3db_m = (0.5 if passband == "gaussian" else 0.75) * self.dlambda_m
        else:
            width = require_range("passband_3db_hz", passband_3db_hz, 1.0, self.channel_spacing_hz)
            self.passband_3db_m = lam0**2 * width / C
        self.insertion_loss_db = require_range("insertion_loss_db", insertion_loss_db, 0.0, 40.0)
        self.adjacent_crosstalk_db = require_range("adjacent_crosstalk_db", adjacent_crosstalk_db, -100.0, 0.0)
        self.nonadjacent_crosstalk_db = require_range("nonadjacent_crosstalk_db", nonadjacent_crosstalk_db, -100.0, 0.0)
        self._il = 10 ** (-self.insertion_loss_db / 10)
        self._x_adj = 10 ** (self.adjacent_crosstalk_db / 10)
        self._x_non = 10 ** (self.nonadjacent_crosstalk_db / 10)
        peak = self._il * self.crosstalk_budget * self._comb_peak()
        if peak > 1.0:
            raise ValueError(
                f"insertion_loss_db={self.insertion_loss_db}, adjacent_crosstalk_db={self.adjacent_crosstalk_db}, "
                f"nonadjacent_crosstalk_db={self.nonadjacent_crosstalk_db} give {peak:.3f} of the input power "
                "summed over the outputs; the allowed range is <= 1 (passive device)")

    # -- grid ---------------------------------------------------------------------------------------

    @property
    def fsr_m(self) -> float:
        """Free spectral range of a cyclic AWGR: N dlambda."""
        return self.ports * self.dlambda_m

    @property
    def channel_spacing_hz(self) -> float:
        return C * self.dlambda_m / self.center_wavelength_m**2

    @property
    def passband_3db_hz(self) -> float:
        return C * self.passband_3db_m / self.center_wavelength_m**2

    @property
    def crosstalk_budget(self) -> float:
        """sum_q X(dist(q, routed)) = 1 + 2 X_adj + (N - 3) X_nonadj (1 + X_adj for N = 2)."""
        q = np.arange(1, self.ports + 1)
        return float(np.sum(self._x(self._distance(q, 1))))

    def _check_port(self, name: str, port) -> np.ndarray:
        arr = np.asarray(port)
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.equal(np.mod(arr, 1), 0)):
                raise ValueError(f"{name}={port!r} must be an integer port number in 1..{self.ports}")
            arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 1 or arr.max() > self.ports):
            raise ValueError(f"{name}={port!r} is outside the ports 1..{self.ports}")
        return arr

    def _distance(self, q, q_routed):
        d = np.mod(np.asarray(q) - np.asarray(q_routed), self.ports)
        return np.minimum(d, self.ports - d)

    def _x(self, dist):
        return np.where(dist == 0, 1.0, np.where(dist == 1, self._x_adj, self._x_non))

    def _shape(self, d):
        return 2.0 ** (-np.abs(2 * d / self.passband_3db_m) ** (2 * self._order))

    def _comb_peak(self) -> float:
        d = np.linspace(-0.5, 0.5, 2001) * self.dlambda_m
        m = np.arange(-_NEIGHBOUR_CHANNELS, _NEIGHBOUR_CHANNELS + 1)[:, None]
        return float(np.max(np.sum(self._shape(d - m * self.dlambda_m), axis=0)))

    # -- routing ------------------------------------------------------------------------------------

    def wavelength_for(self, input_port, output_port, order: int = 0):
        """lambda(p, q, n) = lambda0 + (p - q) dlambda + n FSR, in m."""
        p = self._check_port("input_port", input_port)
        q = self._check_port("output_port", output_port)
        return self.center_wavelength_m + (p - q) * self.dlambda_m + np.asarray(order) * self.fsr_m

    def routing_table(self, order: int = 0) -> np.ndarray:
        """(N, N) wavelengths: [p - 1, q - 1] is the wavelength routed p -> q in FSR order ``order``."""
        ports = np.arange(1, self.ports + 1)
        return self.wavelength_for(ports[:, None], ports[None, :], order)

    def _channel(self, wavelength):
        lam = np.asarray(wavelength, dtype=float)
        if lam.size and np.min(lam) <= 0:
            raise ValueError("wavelength must be > 0 m")
        return (lam - self.center_wavelength_m) / self.dlambda_m

    def output_port(self, input_port, wavelength):
        """Output port (1..N) that the nearest grid channel to ``wavelength`` is routed to from ``input_port``."""
        p = self._check_port("input_port", input_port)
        k = np.rint(self._channel(wavelength)).astype(np.int64)
        out = np.mod(p - k - 1, self.ports) + 1
        return int(out) if np.ndim(out) == 0 else out

    def _transmission(self, p, q, x):
        k0 = np.rint(x)
        total = 0.0
        for m in range(-_NEIGHBOUR_CHANNELS, _NEIGHBOUR_CHANNELS + 1):
            k = k0 + m
            routed = np.mod(p - k - 1, self.ports) + 1
            total = total + self._shape((x - k) * self.dlambda_m) * self._x(self._distance(q, routed))
        return self._il * total

    def transmission(self, input_port, output_port, wavelength):
        """Power transmission p -> q at ``wavelength`` (m; array ok; ports broadcast with it)."""
        p = self._check_port("input_port", input_port)
        q = self._check_port("output_port", output_port)
        return self._transmission(p, q, self._channel(wavelength))

    def transfer_matrix(self, wavelengths) -> np.ndarray:
        """Power transmissions, shape (N_in, N_out, n_wavelengths)."""
        x = np.atleast_1d(self._channel(wavelengths))
        ports = np.arange(1, self.ports + 1)
        return self._transmission(ports[:, None, None], ports[None, :, None], x[None, None, :])

    def route(self, input_port, wavelengths, fields) -> np.ndarray:
        """Field envelopes at every output for carriers entering ``input_port``.

        ``wavelengths`` (n_wl,), ``fields`` (n_wl, n_samples) in sqrt(W); returns (N_out, n_wl, n_samples)
        scaled by sqrt(T) (the passband phase is not modelled).
        """
        p = self._check_port("input_port", input_port)
        x = np.atleast_1d(self._channel(wavelengths))
        q = np.arange(1, self.ports + 1)[:, None]
        amp = np.sqrt(self._transmission(p, q, x[None, :]))
        fields = np.asarray(fields)
        fields = fields.reshape(x.size, -1) if fields.ndim <= 1 else fields
        return amp[:, :, None] * fields[None, :, :]
