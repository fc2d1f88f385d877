"""Keysight N6700 low-profile modular power system (N6700C mainframe, N673xB/N674xB modules).

Command syntax follows the *Keysight N6700 Modular Power System Programmer's Reference Guide*, as
printed in the Agilent "Series N6700 User's Guide" (Output, Source, Measurement, Status and System
subsystems) and the SCPI chapter of the Keysight N6700C Operating and Service Guide (N6700C
mainframes, 2017+ editions):

* every output command takes a channel list as its last parameter: ``(@1)``, ``(@1,3)``, ``(@1:4)``;
  a setting applies one value to every channel of the list, a query answers one value per listed
  channel, separated by commas;
* ``[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude] <value>|MIN|MAX, (@<chanlist>)``,
  ``[SOURce:]CURRent[...]``, ``[SOURce:]VOLTage:PROTection[:LEVel]``,
  ``OUTPut[:STATe] ON|OFF, (@<chanlist>)``, ``OUTPut:PROTection:CLEar (@<chanlist>)``,
  ``MEASure[:SCALar]:VOLTage[:DC]? (@<chanlist>)``, ``MEASure[:SCALar]:CURRent[:DC]?``,
  ``STATus:OPERation:CONDition? (@<chanlist>)`` (bit 0 CV, bit 1 CC, bit 2 OFF),
  ``STATus:QUEStionable:CONDition? (@<chanlist>)`` (bit 0 OV, bit 1 OC),
  ``SYSTem:CHANnel[:COUNt]?``, ``SYSTem:CHANnel:MODel? (@<chanlist>)``, ``SYSTem:ERRor?``.

Module ranges (programming maximum = 102 % of rating, OVP maximum setting) are from the *Keysight
N6700 Modular Power System Family Specifications Guide* (N6731B-N6745B table). The default module is
the N6733B: 20 V / 2.5 A / 50 W, programmable to 20.4 V and 2.55 A, OVP up to 22 V.

Every quantity here is already in SI units (V, A), so the ``DCSourceChannel`` role members
(``voltage``, ``current_limit``, ``output_enabled``, ``measure_voltage()``, ``measure_current()``,
``shutdown()``) are the pymeasure properties themselves or thin methods on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Iterable, Mapping, Sequence

from pymeasure.instruments import Instrument

from drivers.base import LabChannel, LabInstrument, in_range, in_set
from drivers.errors import ValueOutOfRange
from drivers.limits import (CURRENT_SUFFIXES, READ, SET, VOLTAGE_SUFFIXES, Enables, Limited, LimitedCommand,
                            channel_members)
from drivers.scpi import channel_list, grouped_message

#: What an output emits once on: its voltage setpoint and current limit.
_OUTPUT_LEVELS = (("voltage", "dc_voltage", "V"), ("current_limit", "dc_current_limit", "A"))


class OperationStatus(IntFlag):
    """Bits of ``STATus:OPERation:CONDition?`` (per channel)."""

    CV = 1  #: Output is in constant voltage.
    CC = 2  #: Output is in constant current.
    OFF = 4  #: Output is programmed off.
    WTG_MEAS = 8  #: Measurement system is waiting for a trigger.
    WTG_TRAN = 16  #: Transient system is waiting for a trigger.


class QuestionableStatus(IntFlag):
    """Bits of ``STATus:QUEStionable:CONDition?`` (per channel)."""

    OV = 1  #: Output disabled by the over-voltage protection.
    OC = 2  #: Output disabled by the over-current protection.
    PF = 4  #: Output disabled by an AC power failure.
    CP_POS = 8  #: Output limited by the positive power limit.
    OT = 16  #: Over-temperature protection tripped.
    INH = 512  #: Output inhibited by an external signal.
    UNR = 1024  #: Output is unregulated.
    PROT = 2048  #: Output disabled by a protection coupled from another channel.


@dataclass(frozen=True)
class ModuleRating:
    """Programming limits of one N67xx module (Specifications Guide)."""

    max_voltage: float  #: V, 102 % of the rated voltage.
    max_current: float  #: A, programming maximum.
    max_ovp: float  #: V, maximum over-voltage protection setting.


#: Programming ranges per module model (N6700 Family Specifications Guide, N6731B-N6745B table).
MODULES: dict[str, ModuleRating] = {
    "N6731B": ModuleRating(5.1, 10.2, 7.5),
    "N6732B": ModuleRating(8.16, 6.375, 10.0),
    "N6733B": ModuleRating(20.4, 2.55, 22.0),
    "N6734B": ModuleRating(35.7, 1.53, 38.5),
    "N6735B": ModuleRating(61.2, 0.85, 66.0),
    "N6741B": ModuleRating(5.1, 20.4, 7.5),
    "N6742B": ModuleRating(8.16, 12.75, 10.0),
    "N6743B": ModuleRating(20.4, 5.1, 22.0),
    "N6744B": ModuleRating(35.7, 3.06, 38.5),
    "N6745B": ModuleRating(61.2, 1.7, 66.0),
}

CHANNEL_IDS = (1, 2, 3, 4)  #: The N6700C mainframe holds up to four modules.


class N6700Channel(LabChannel):
    """One output (module) of the N6700 mainframe; implements the ``DCSourceChannel`` role."""

    safety_members = {
        "voltage": Limited("dc_voltage", "V"), "current_limit": Limited("dc_current_limit", "A"),
        "output_enabled": Enables(_OUTPUT_LEVELS), "ovp_level": SET, "clear_protection": Enables(_OUTPUT_LEVELS),
        "measured_voltage": READ, "measured_current": READ, "measure_voltage": READ, "measure_current": READ,
        "operation_condition": READ, "questionable_condition": READ, "module_model": READ, "mode": READ,
        "protection_tripped": READ, "rating": READ, "limits": READ, "voltage_range": READ,
    }

    voltage = LabChannel.control(
        "VOLT? (@{ch})",
        "VOLT %g,(@{ch})",
        """Control the output voltage setpoint (float, V, 0 .. 102 % of the module rating,
        e.g. 0 .. 20.4 V for an N6733B).""",
        validator=in_range,
        values=(0.0, 20.4),
        dynamic=True,
        check_set_errors=True,
    )

    current_limit = LabChannel.control(
        "CURR? (@{ch})",
        "CURR %g,(@{ch})",
        """Control the current limit, the constant-current setpoint (float, A, 0 .. 102 % of the
        module rating, e.g. 0 .. 2.55 A for an N6733B).""",
        validator=in_range,
        values=(0.0, 2.55),
        dynamic=True,
        check_set_errors=True,
    )

    output_enabled = LabChannel.control(
        "OUTP? (@{ch})",
        "OUTP %d,(@{ch})",
        """Control whether the output is on (bool).""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        check_set_errors=True,
    )

    ovp_level = LabChannel.control(
        "VOLT:PROT? (@{ch})",
        "VOLT:PROT %g,(@{ch})",
        """Control the over-voltage protection level (float, V, 0 .. module maximum,
        e.g. 0 .. 22 V for an N6733B).""",
        validator=in_range,
        values=(0.0, 22.0),
        dynamic=True,
        check_set_errors=True,
    )

    measured_voltage = LabChannel.measurement(
        "MEAS:VOLT? (@{ch})",
        """Measure the output voltage (float, V).""",
    )

    measured_current = LabChannel.measurement(
        "MEAS:CURR? (@{ch})",
        """Measure the output current (float, A).""",
    )

    operation_condition = LabChannel.measurement(
        "STAT:OPER:COND? (@{ch})",
        """Get the operation condition register (OperationStatus: CV, CC, OFF, ...).""",
        cast=int,
        get_process=lambda v: OperationStatus(int(v)),
    )

    questionable_condition = LabChannel.measurement(
        "STAT:QUES:COND? (@{ch})",
        """Get the questionable condition register (QuestionableStatus: OV, OC, ...).""",
        cast=int,
        get_process=lambda v: QuestionableStatus(int(v)),
    )

    module_model = LabChannel.measurement(
        "SYST:CHAN:MOD? (@{ch})",
        """Get the model of the module installed at this channel (str, e.g. 'N6733B').""",
        cast=str,
        get_process=lambda v: v.strip().strip('"'),
    )

    # -- role interface (DCSourceChannel) --------------------------------------------------------

    @property
    def voltage_range(self) -> tuple[float, float]:
        """Get the settable output voltage range (V) of this channel's module: its programming limits."""
        low, high = self.limits["voltage"]
        return float(low), float(high)

    def measure_voltage(self) -> float:
        """Measure the output voltage, in V."""
        return float(self.measured_voltage)

    def measure_current(self) -> float:
        """Measure the output current, in A."""
        return float(self.measured_current)

    def shutdown(self) -> None:
        """Turn the output off (the safe state)."""
        self.output_enabled = False

    # -- status -------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """Get the regulation mode: 'CV', 'CC', 'OFF' (programmed off) or '' (e.g. tripped)."""
        cond = self.operation_condition
        if cond & OperationStatus.OFF:
            return "OFF"
        if cond & OperationStatus.CC:
            return "CC"
        if cond & OperationStatus.CV:
            return "CV"
        return ""

    @property
    def protection_tripped(self) -> bool:
        """Get whether the over-voltage protection has disabled the output (bool)."""
        return bool(self.questionable_condition & QuestionableStatus.OV)

    def clear_protection(self) -> None:
        """Set the output back to its programmed state after a protection trip (OUTP:PROT:CLE)."""
        self.write("OUTP:PROT:CLE (@{ch})")
        self.check_errors()

    def _set_ranges(self, rating: ModuleRating) -> None:
        #: The module's programming limits; the validator ranges below follow them.
        self.rating = rating
        self.limits = {
            "voltage": (0.0, rating.max_voltage),
            "current_limit": (0.0, rating.max_current),
            "ovp_level": (0.0, rating.max_ovp),
        }
        for prop, limits in self.limits.items():
            setattr(self, f"{prop}_values", limits)


class KeysightN6700(LabInstrument):
    """Keysight N6700C modular power system with up to four DC power modules.

    ``modules`` names the module in each slot (one model for all, a sequence for slots 1.., or a
    ``{channel: model}`` mapping); it sets each channel's validator ranges. Nothing is sent at
    construction.

    .. code-block:: python

        dc = KeysightN6700("TCPIP0::heaters::inst0::INSTR", modules="N6733B")
        dc.ch_1.current_limit = 0.02
        dc.set_voltages({1: 1.5, 2: 1.5, 3: 2.0})   # one message: VOLT 1.5,(@1,2);VOLT 2,(@3)
        dc.set_outputs(True)
        print(dc.ch_1.measure_current())
    """

    channels = Instrument.MultiChannelCreator(N6700Channel, CHANNEL_IDS, prefix="ch_")

    safety_members = {
        **channel_members(*CHANNEL_IDS), "modules": READ, "channel_count": READ,
        "set_voltages": Limited("dc_voltage", "V", argument="voltages"),
        "set_current_limits": Limited("dc_current_limit", "A", argument="limits"),
        "set_outputs": Enables(_OUTPUT_LEVELS, argument="enabled", channels="channels"),
        "measure_voltages": READ, "measure_currents": READ,
    }
    #: Output levels, immediate and triggered, in either priority mode; one value for a whole channel list.
    limited_commands = (
        LimitedCommand("[:SOURce]:VOLTage[:LEVel][:IMMediate][:AMPLitude]", "dc_voltage", "V", VOLTAGE_SUFFIXES),
        LimitedCommand("[:SOURce]:VOLTage[:LEVel]:TRIGgered[:AMPLitude]", "dc_voltage", "V", VOLTAGE_SUFFIXES),
        LimitedCommand("[:SOURce]:VOLTage:LIMit[:POSitive][:IMMediate][:AMPLitude]", "dc_voltage", "V",
                       VOLTAGE_SUFFIXES),
        LimitedCommand("[:SOURce]:CURRent[:LEVel][:IMMediate][:AMPLitude]", "dc_current_limit", "A",
                       CURRENT_SUFFIXES),
        LimitedCommand("[:SOURce]:CURRent[:LEVel]:TRIGgered[:AMPLitude]", "dc_current_limit", "A",
                       CURRENT_SUFFIXES),
        LimitedCommand("[:SOURce]:CURRent:LIMit[:POSitive][:IMMediate][:AMPLitude]", "dc_current_limit", "A",
                       CURRENT_SUFFIXES),
    )

    def __init__(self, adapter, name="Keysight N6700", modules="N6733B", **kwargs):
        module_map = self._module_map(modules)  # refuse a bad configuration before opening anything
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 5000)
        super().__init__(adapter, name, **kwargs)
        #: Module model installed at each channel; sets each channel's validator ranges.
        self.modules = module_map
        for ch, model in module_map.items():
            self.channels[ch]._set_ranges(MODULES[model])

    @staticmethod
    def _module_map(modules) -> dict[int, str]:
        if isinstance(modules, str):
            mapping = {ch: modules for ch in CHANNEL_IDS}
        elif isinstance(modules, Mapping):
            mapping = {int(ch): str(model) for ch, model in modules.items()}
            mapping = {**{ch: "N6733B" for ch in CHANNEL_IDS}, **mapping}
        else:
            listed = list(modules)
            if not 1 <= len(listed) <= len(CHANNEL_IDS):
                raise ValueError(f"modules: give 1..{len(CHANNEL_IDS)} models, got {len(listed)}")
            mapping = {ch: str(m) for ch, m in zip(CHANNEL_IDS, listed)}
            mapping.update({ch: listed[-1] for ch in CHANNEL_IDS[len(listed):]})
        for ch, model in mapping.items():
            if ch not in CHANNEL_IDS:
                raise ValueError(f"modules: channel {ch} does not exist (1..{len(CHANNEL_IDS)})")
            if model.upper() not in MODULES:
                raise ValueError(f"modules: unknown module {model!r}; known: {', '.join(MODULES)}")
            mapping[ch] = model.upper()
        return mapping

    channel_count = Instrument.measurement(
        "SYST:CHAN?",
        """Get the number of output channels installed in the mainframe (int).""",
        cast=int,
    )

    # -- several channels in one command ------------------------------------------------------

    def _check_channels(self, channels: Iterable[int]) -> list[int]:
        chans = sorted(set(int(c) for c in channels))
        for c in chans:
            if c not in self.channels:
                raise ValueOutOfRange(f"channel {c} does not exist; channels are {list(self.channels)}")
        if not chans:
            raise ValueError("no channels given")
        return chans

    def _set_grouped(self, header: str, settings: Mapping[int, float], prop: str) -> str:
        """Validate every value, then send one program message with one command per value."""
        if not settings:
            raise ValueError("no channels given")
        self._check_channels(settings)
        # %g, as the channel properties send it
        texts = {ch: f"{in_range(float(settings[ch]), self.channels[ch].limits[prop]):g}"
                 for ch in sorted(settings)}
        message = grouped_message(header, texts)
        self.write(message)
        self.check_errors()
        return message

    def set_voltages(self, voltages: Mapping[int, float]) -> None:
        """Set several channels' voltage setpoints (V) in one program message.

        The N6700 applies one value to every channel of a channel list, so channels sharing a value
        go in one ``VOLT v,(@list)`` command; distinct values are joined by ``;`` in the same
        message (e.g. ``VOLT 1.5,(@1:3);VOLT 2,(@4)``). All values are checked before sending.
        """
        self._set_grouped("VOLT", voltages, "voltage")

    def set_current_limits(self, limits: Mapping[int, float]) -> None:
        """Set several channels' current limits (A) in one program message (see set_voltages)."""
        self._set_grouped("CURR", limits, "current_limit")

    def set_outputs(self, enabled: bool, channels: Sequence[int] | None = None) -> None:
        """Set the output state of several channels (default all) with one OUTP command."""
        if not isinstance(enabled, bool):
            raise ValueOutOfRange(f"enabled must be True or False, got {enabled!r}")
        chans = self._check_channels(self.channels if channels is None else channels)
        self.write(f"OUTP {int(enabled)},{channel_list(chans)}")
        self.check_errors()

    def _measure(self, header: str, channels: Sequence[int] | None) -> dict[int, float]:
        chans = self._check_channels(self.channels if channels is None else channels)
        values = self.values(f"{header} {channel_list(chans)}")
        if len(values) != len(chans):
            raise ValueError(f"{header} answered {len(values)} values for {len(chans)} channels")
        return {ch: float(v) for ch, v in zip(chans, values)}

    def measure_voltages(self, channels: Sequence[int] | None = None) -> dict[int, float]:
        """Measure the output voltage of several channels (default all) in one query, in V."""
        return self._measure("MEAS:VOLT?", channels)

    def measure_currents(self, channels: Sequence[int] | None = None) -> dict[int, float]:
        """Measure the output current of several channels (default all) in one query, in A."""
        return self._measure("MEAS:CURR?", channels)

    def shutdown(self) -> None:
        """Turn every output off (the safe state)."""
        self.set_outputs(False)
        super().shutdown()
