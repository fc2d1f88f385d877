"""Typed interfaces for the roles an optical computing bench needs.

An experiment asks the bench for a role (``bench.role("laser")``) and programs against these
Protocols, never against a vendor class. Every quantity is in SI units: m, W, V, A, s, Hz, Sa/s.
dBm and nm appear only at the edges (bench files, reports) and are converted once, in
:mod:`labctl.units`.

Multi-port instruments (a 4-port laser source, a 4-head power meter, a 4-channel AWG or scope, a
multi-output DC source) expose one role object per port: the driver's channel. Instrument-wide
settings (AWG sample rate, scope timebase) live on the instrument object, which is returned for roles
bound to a whole instrument.
"""

from __future__ import annotations

import inspect
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

ROLE_NAMES = (
    "tunable_laser",
    "optical_power_meter",
    "awg",
    "oscilloscope",
    "bias_controller",
    "dc_source",
    "optical_switch",
    "optical_core",
    "power_analyzer",
)


@runtime_checkable
class TunableLaser(Protocol):
    """One tunable laser output."""

    wavelength: float  #: Control the emission wavelength setpoint, in m.
    power: float  #: Control the optical output power setpoint, in W.
    power_range: tuple[float, float]  #: Get the (lowest, highest) settable output power, in W.
    output_enabled: bool  #: Control whether light is emitted.

    def shutdown(self) -> None:
        """Turn the output off (the safe state)."""


@runtime_checkable
class OpticalPowerMeter(Protocol):
    """One optical power sensor (head or port)."""

    wavelength: float  #: Control the calibration wavelength, in m.
    averaging_time: float  #: Control the averaging time per reading, in s.

    def read_power(self) -> float:
        """Trigger one measurement and return the optical power, in W."""


@runtime_checkable
class AWGChannel(Protocol):
    """One output channel of an arbitrary waveform generator."""

    amplitude: float  #: Control the output swing, in V peak-to-peak.
    offset: float  #: Control the DC offset, in V.
    output_enabled: bool  #: Control whether the output relay is closed.

    def upload_waveform(self, samples: np.ndarray) -> None:
        """Upload one waveform of normalised samples in [-1, 1] (full-scale = amplitude/2)."""

    def shutdown(self) -> None:
        """Open the output relay (the safe state)."""


@runtime_checkable
class ArbitraryWaveformGenerator(Protocol):
    """Instrument-wide controls of an AWG."""

    sample_rate: float  #: Control the DAC sample rate, in Sa/s.
    segment_granularity: int  #: Get the step of valid waveform lengths, in samples.
    min_segment_samples: int  #: Get the shortest valid waveform length, in samples.

    def run(self) -> None:
        """Start playing the uploaded waveforms on all enabled channels."""

    def stop(self) -> None:
        """Stop playing."""

    def shutdown(self) -> None:
        """Stop and open every output relay."""


@runtime_checkable
class Oscilloscope(Protocol):
    """A digitising oscilloscope: one acquisition captures several channels at once."""

    sample_rate: float  #: Get the acquisition sample rate, in Sa/s.
    record_length: int  #: Control the number of points per channel per acquisition.

    def set_vertical(self, channel: int, range_v: float, offset_v: float = 0.0) -> None:
        """Set a channel's full-scale vertical range and centre offset, in V."""

    def set_edge_trigger(self, source: int | str, level_v: float, rising: bool = True) -> None:
        """Trigger on an edge of channel ``source`` (1..n) or ``"AUX"``, at ``level_v`` volts."""

    def capture(self, channels: Sequence[int]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Acquire once and return ``(time_s, {channel: volts})``."""


@runtime_checkable
class BiasController(Protocol):
    """A Mach-Zehnder modulator bias controller."""

    bias_voltage: float  #: Control the bias voltage held in manual mode, in V.

    def measure_bias_voltage(self) -> float:
        """Measure the bias voltage applied to the modulator, in V."""

    def read_output_power(self) -> float:
        """Measure the modulator output power at the controller's tap, in W."""

    def lock_quadrature(self, positive: bool = True) -> None:
        """Lock the bias at quadrature, on the rising (``positive``) or falling slope of the transfer."""

    @property
    def attenuator(self) -> "VariableAttenuator | None":
        """Get the variable optical attenuator built into the controller, or None when it has none."""

    def shutdown(self) -> None:
        """Put the bias output in its safe state."""


@runtime_checkable
class VariableAttenuator(Protocol):
    """A variable optical attenuator in the light path (e.g. the one inside a bias controller)."""

    attenuation_range_db: tuple[float, float]  #: Get the attenuation it can hold, in dB.

    def hold_attenuation(self, attenuation_db: float) -> None:
        """Hold ``attenuation_db`` (dB, within :attr:`attenuation_range_db`) in the light path."""

    def release(self) -> None:
        """Stop attenuating (minimum loss)."""


@runtime_checkable
class DCSourceChannel(Protocol):
    """One output of a multichannel DC source (e.g. a microring heater drive)."""

    voltage: float  #: Control the output voltage setpoint, in V.
    current_limit: float  #: Control the current limit, in A.
    output_enabled: bool  #: Control whether the output is on.
    voltage_range: tuple[float, float]  #: Get the settable voltage range of this output (its module's), in V.

    def measure_voltage(self) -> float:
        """Measure the output voltage, in V."""

    def measure_current(self) -> float:
        """Measure the output current, in A."""

    def shutdown(self) -> None:
        """Turn the output off (the safe state)."""


@runtime_checkable
class OpticalSwitch(Protocol):
    """A 1xN fibre switch: the common port goes to one numbered output."""

    route: int  #: Control the output port (1..port_count) the common port connects to.
    port_count: int  #: Get the number of switched ports.


@runtime_checkable
class OpticalCoreController(Protocol):
    """The controller of a weight-stationary optical tensor core (docs/occ_protocol.md).

    A program is T tiles: tile i holds heater volts ``(n_outputs, n_inputs)`` (the weights) and S slots
    of int16 input codes ``(S, n_inputs)``; the result is int16 ADC codes ``(T, S, n_outputs)``.
    """

    n_inputs: int  #: Get the number of inputs N_in (fast DACs, bias DACs); fixed by the hardware.
    n_outputs: int  #: Get the number of outputs N_out (ADCs); fixed by the hardware.
    symbol_rate: float  #: Control the symbol (DAC and ADC sample) rate, in Hz.
    dac_amplitude: float  #: Control the fast-DAC full scale, in V peak-to-peak.
    adc_range: float  #: Control the ADC full-scale span, in V.
    adc_offset: float  #: Control the ADC centre voltage, in V.
    heater_limit: float  #: Control the largest heater voltage a table may hold, in V.
    slots_per_tile: int  #: Control S, the symbol slots per tile.
    settle_time: float  #: Control the heater settling time before each tile, in s.
    input_advance: float  #: Control how long before their slots the inputs are launched, in s.
    output_enabled: bool  #: Control whether the DAC, bias and heater outputs are on.

    def set_bias(self, channel: int, volts: float) -> None:
        """Set one input modulator's bias voltage (channel 1..n_inputs), in V."""

    def get_bias(self, channel: int) -> float:
        """Return one input modulator's bias voltage setting, in V."""

    def set_biases(self, volts: Sequence[float]) -> None:
        """Set every bias voltage at once (``volts[k]`` to channel k + 1), in V."""

    def load_program(self, heater_volts: np.ndarray, input_codes: np.ndarray) -> None:
        """Validate, then load heater volts ``(T, n_outputs, n_inputs)`` and int16 codes ``(T, S, n_inputs)``."""

    def run(self, timeout_s: float = 60.0) -> None:
        """Run the loaded program and wait until it is done (at most ``timeout_s``)."""

    def fetch(self) -> np.ndarray:
        """Return the last run's int16 ADC codes ``(T, S, n_outputs)``."""

    def execute(self, heater_volts: np.ndarray, input_codes: np.ndarray, timeout_s: float = 60.0) -> np.ndarray:
        """Load, run and fetch one program; return its int16 ADC codes ``(T, S, n_outputs)``."""

    def to_volts(self, codes: np.ndarray) -> np.ndarray:
        """Convert ADC codes to volts at the present ADC span and centre (float array, same shape)."""

    def rail_powers(self) -> dict[str, float]:
        """Return the power of each rail of the controller's board now, ``{rail: W}``, as the board's own
        monitors measure it: where the board's draw goes."""

    def board_power(self) -> float:
        """Return the board's input power now, in W: what the controller draws from its supply, a core's
        measured draw where no mains power analyzer feeds it."""

    def shutdown(self) -> None:
        """Turn every output off (the safe state)."""


@runtime_checkable
class PowerAnalyzer(Protocol):
    """An electrical power meter on the mains feed of some instruments: reads their draw and integrates it.

    Why a role: the energy a run consumed on the bench is measured here, so the figure is an instrument
    reading on the bench clock, not a model. A meter is not a source: it has no safety limits.
    """

    integration_state: str  #: Get the integration state ('reset', 'ready', 'running', 'stopped', 'error', 'timeup').
    energy_command: str  #: Get the command(s) the integrated energy and time are read with (a figure's provenance).
    integration_time_resolution: float  #: Get the resolution of :meth:`integration_time`, in s.

    def measure_power(self) -> float:
        """Return the active power drawn now, in W (a NaN, overrange or negative reading raises)."""

    def start_integration(self) -> None:
        """Start (or resume after a stop) integrating active power over time."""

    def stop_integration(self) -> None:
        """Stop integrating; the energy and time so far are held."""

    def reset_integration(self) -> None:
        """Zero the integrated energy and time (integration must be stopped)."""

    def integrated_energy(self) -> float:
        """Return the energy integrated so far, in J."""

    def integration_time(self) -> float:
        """Return the time integrated so far, in s."""


ROLE_PROTOCOLS: dict[str, type] = {
    "tunable_laser": TunableLaser,
    "optical_power_meter": OpticalPowerMeter,
    "awg": AWGChannel,
    "oscilloscope": Oscilloscope,
    "bias_controller": BiasController,
    "dc_source": DCSourceChannel,
    "optical_switch": OpticalSwitch,
    "optical_core": OpticalCoreController,
    "power_analyzer": PowerAnalyzer,
}


def protocol_members(protocol: type) -> set[str]:
    """Attribute and method names a role Protocol requires."""
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("_")}
    return names
