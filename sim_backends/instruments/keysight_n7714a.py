"""Simulated Keysight N7714A four-port tunable laser source (and the laser physics it shares).

SCPI follows the *Keysight N77xx Series Programming Guide* for the N7711A/N7714A, whose source
commands are those of the *8163A/B, 8164A/B & 8166A/B Mainframes Programming Guide* (chapter 4):

=====================================================================  ==============================
``[:SOURce#][:CHANnel#]:WAVelength <v>[PM|NM|UM|MM|M]|MIN|MAX|DEF``     set; query ``? [MIN|MAX|DEF]``
``[:SOURce#][:CHANnel#]:POWer[:LEVel][:IMMediate][:AMPLitude] <v>``    ``[PW|NW|UW|MW|W|DBM]|MIN|MAX|DEF``
``[:SOURce#][:CHANnel#]:POWer:UNIT DBM|W|0|1``                          query ``+0`` (dBm) / ``+1`` (W)
``[:SOURce#][:CHANnel#]:POWer:STATe 0|1|OFF|ON``                        query ``+0`` / ``+1``
=====================================================================  ==============================

``SOURce#`` is the laser port (1..4; omitted = 1), ``CHANnel#`` must be 1. Unsuffixed power values
are read, and power queries answer, in the unit chosen by ``:POWer:UNIT``. Numbers are answered in
the instrument's format, e.g. ``+1.55000000E-006``. Out-of-range values put -222 in the error queue,
an absent port -114.

Physics (PHYSICS.md section 3, "Laser"; :func:`sim_backends.physics.laser.laser_field`): an enabled
port emits one carrier ``Lightwave(wavelength, E)`` with ``E(t) = sqrt(P (1 + n_RIN(t))) exp(j phi(t))``. ``n_RIN`` is white
Gaussian with per-sample variance ``RIN_lin Fs / 2`` (``Fs`` = 1 / sample spacing of ``t``);
``phi`` is a random walk with increment variance ``2 pi linewidth / Fs``. A single time point
carries neither (no bandwidth to define them). A disabled port emits nothing.

Default parameters (``sim.params``; data-sheet figures not re-verified):

* ``wavelength_min_nm`` / ``wavelength_max_nm``: 1527.605 / 1565.496 nm, the C-band range
  (191.50 .. 196.25 THz) of the N7711A/N7714A data sheet;
* ``power_min_dbm`` / ``power_max_dbm``: +6 / +13.5 dBm output power setting range (data sheet);
* ``rin_db_per_hz``: -145 dB/Hz, ``linewidth_hz``: 100 kHz (ITLA-class lasers; PHYSICS.md table 2).

*RST (model assumption; the guide only defines DEF as the preset value): 1550 nm, power at its
minimum setting, unit dBm, all outputs off.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sim_backends.datasheets import datasheet_idle_w
from sim_backends.instrument import SimInstrument
from sim_backends.physics.power import laser_draw_w
from sim_backends.physics.laser import laser_field
from sim_backends.physics.units import dbm_to_w, w_to_dbm
from sim_backends.physics.validation import param
from sim_backends.scpi import Call, CommandTree, Param, ScpiError, format_number
from sim_backends.world import OPTICAL_OUT, Lightwave

# --- unit helpers (the laser field itself is sim_backends.physics.laser.laser_field) -------------


def _dbm_of(watt: float) -> float:
    """A power written in W for a setting kept in dBm: 0 W (or less) has no dBm value (-222)."""
    if not watt > 0:
        raise ScpiError(-222, f"{watt:g} W has no dBm value")
    return w_to_dbm(watt)


#: Numbers the way Keysight lightwave instruments answer: ``+1.55000000E-006``.
scpi_float = partial(format_number, digits=8, sign=True, exponent_digits=3)


# --- the instrument ----------------------------------------------------------------------------------


@dataclass
class LaserPort:
    """Settings of one laser port."""

    wavelength: float  # m
    power_w: float  # W
    unit: str  # "DBM" or "W"
    enabled: bool


class SimKeysightN7714A(SimInstrument):
    """Simulated Keysight N7714A: four independent tunable laser ports ``out1`` .. ``out4``."""

    MODEL = "keysight.N7714A"
    IDN = ("Keysight Technologies", "N7714A", "1.2.0")
    TERMINATION = b"\n"
    PORT_COUNT = 4
    PORTS = {f"out{i}": OPTICAL_OUT for i in range(1, PORT_COUNT + 1)}
    DEFAULT_WAVELENGTH = 1550e-9
    #: Electrical draw (W). ``idle_power_w`` (frame, controller, fans) defaults to this model's entry in
    #: ``sim_backends.datasheets`` (assumed; the reasoning is there). The per-port terms are assumed too,
    #: typical of a DFB/ECL laser diode (wall-plug ~10 %) held by a TEC (~1 W) per port.
    POWER = {"idle_power_w": (datasheet_idle_w(MODEL), 0.0, 1e4), "wall_plug_efficiency": (0.1, 1e-4, 1.0),
             "tec_power_w": (1.0, 0.0, 100.0)}
    PARAMS = frozenset({"wavelength_min_nm", "wavelength_max_nm", "power_min_dbm", "power_max_dbm",
                        "rin_db_per_hz", "linewidth_hz"}) | frozenset(POWER)

    def __init__(self, name, world, params=None, serial=""):
        p = dict(params or {})
        self.wavelength_min = param(p, "wavelength_min_nm", 1527.605, 800.0, 2000.0) * 1e-9
        self.wavelength_max = param(p, "wavelength_max_nm", 1565.496, 800.0, 2000.0) * 1e-9
        if self.wavelength_min >= self.wavelength_max:
            raise ValueError("wavelength_min_nm must be below wavelength_max_nm")
        self.power_min_dbm = param(p, "power_min_dbm", 6.0, -60.0, 30.0)
        self.power_max_dbm = param(p, "power_max_dbm", 13.5, -60.0, 30.0)
        if self.power_min_dbm >= self.power_max_dbm:
            raise ValueError("power_min_dbm must be below power_max_dbm")
        self.rin_db_per_hz = param(p, "rin_db_per_hz", -145.0, -200.0, -80.0)
        self.linewidth_hz = param(p, "linewidth_hz", 100e3, 0.0, 1e9)
        self.ports_state: list[LaserPort] = []
        super().__init__(name, world, p, serial)

    # -- derived limits -----------------------------------------------------------------------

    @property
    def default_wavelength(self) -> float:
        return min(max(self.DEFAULT_WAVELENGTH, self.wavelength_min), self.wavelength_max)

    def _power_limits(self, unit: str) -> tuple[float, float, float]:
        """(MIN, MAX, DEF) of the power setting in ``unit``."""
        if unit == "DBM":
            return self.power_min_dbm, self.power_max_dbm, self.power_min_dbm
        low, high = dbm_to_w(self.power_min_dbm), dbm_to_w(self.power_max_dbm)
        return low, high, low

    # -- SCPI -------------------------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        prefix = "[:SOURce#][:CHANnel#]"
        tree.add(prefix + ":WAVelength", setter=self._set_wavelength, getter=self._get_wavelength)
        tree.add(prefix + ":POWer:UNIT", setter=self._set_unit, getter=self._get_unit)
        tree.add(prefix + ":POWer:STATe", setter=self._set_state, getter=self._get_state)
        tree.add(prefix + ":POWer[:LEVel][:IMMediate][:AMPLitude]", setter=self._set_power,
                 getter=self._get_power)

    def reset(self) -> None:
        self.ports_state = [
            LaserPort(self.default_wavelength, dbm_to_w(self.power_min_dbm), "DBM", False)
            for _ in range(self.PORT_COUNT)
        ]

    def _port(self, call: Call) -> LaserPort:
        index = call.suffix(0, 1, self.PORT_COUNT)
        call.suffix(1, 1, 1)
        return self.ports_state[index - 1]

    @staticmethod
    def _limit_word(call: Call) -> str | None:
        """The optional MIN|MAX|DEF of a query, or None."""
        call.expect(0, 1)
        if not call.params:
            return None
        return call.param().choice(["MINimum", "MAXimum", "DEFault"])

    def _set_wavelength(self, call: Call) -> None:
        port = self._port(call)
        call.expect(1)
        port.wavelength = call.param().number("M", self.wavelength_min, self.wavelength_max,
                                              self.default_wavelength)

    def _get_wavelength(self, call: Call) -> str:
        port = self._port(call)
        word = self._limit_word(call)
        value = {None: port.wavelength, "MINIMUM": self.wavelength_min,
                 "MAXIMUM": self.wavelength_max, "DEFAULT": self.default_wavelength}[word]
        return scpi_float(value)

    def _parse_power(self, param: Param, unit: str) -> float:
        """Parse a power value (unsuffixed = current unit); return W."""
        low, high, default = self._power_limits(unit)
        if unit == "DBM":
            return dbm_to_w(param.number("DBM", low, high, default, alt_units={"W": _dbm_of}))
        return param.number("W", low, high, default, alt_units={"DBM": dbm_to_w})

    def _set_power(self, call: Call) -> None:
        port = self._port(call)
        call.expect(1)
        port.power_w = self._parse_power(call.param(), port.unit)

    def _get_power(self, call: Call) -> str:
        port = self._port(call)
        word = self._limit_word(call)
        low, high, default = self._power_limits(port.unit)
        if word is None:
            value = w_to_dbm(port.power_w) if port.unit == "DBM" else port.power_w
        else:
            value = {"MINIMUM": low, "MAXIMUM": high, "DEFAULT": default}[word]
        return scpi_float(value)

    def _set_unit(self, call: Call) -> None:
        port = self._port(call)
        call.expect(1)
        word = call.param().upper
        if word in ("0", "1"):
            port.unit = "DBM" if word == "0" else "W"
        else:
            port.unit = "DBM" if call.param().choice(["DBM", "Watt"]) == "DBM" else "W"

    def _get_unit(self, call: Call) -> str:
        port = self._port(call)
        call.expect(0)
        return "+0" if port.unit == "DBM" else "+1"

    def _set_state(self, call: Call) -> None:
        port = self._port(call)
        call.expect(1)
        port.enabled = call.param().boolean()

    def _get_state(self, call: Call) -> str:
        port = self._port(call)
        call.expect(0)
        return "+1" if port.enabled else "+0"

    # -- physics ----------------------------------------------------------------------------------

    def state_power_w(self) -> float:
        """Each lit port: its optical output over the diode's wall-plug efficiency, plus its TEC."""
        p = self.power_params
        return sum(laser_draw_w(port.power_w, p["wall_plug_efficiency"], p["tec_power_w"])
                   for port in self.ports_state if port.enabled)

    def optical_output(self, port: str, t) -> list[Lightwave]:
        state = self.ports_state[int(port[3:]) - 1]
        if not state.enabled:
            return []
        field = laser_field(state.power_w, t, self.rin_db_per_hz, self.linewidth_hz, self.world.rng)
        return [Lightwave(state.wavelength, field)]
