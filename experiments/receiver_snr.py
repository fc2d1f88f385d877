"""Receiver SNR and effective bits versus received optical power.

CW light (the MZM held at quadrature by the bias controller, the AWG stopped) reaches the photodiode;
the received power is stepped with the bias controller's variable optical attenuator (``sweep="voa"``,
e.g. the Thorlabs MBX's VOA) or with the laser power (``sweep="laser"``). At every step the power
meter reads the received power (switch port ``switch_port_power_meter``; the switch's outputs have
equal loss) and the scope records the photodiode (``switch_port_scope``) on a vertical range fitted
to the signal, so the scope's own noise stays small. A capture with the laser off gives the dark
level.

Signal = mean detector voltage minus the dark level (the photocurrent range from no light to the
received power, times the load); noise = standard deviation of the record (receiver shot, thermal
and RIN noise within the receiver bandwidth, plus the scope's ENOB noise). SNR = signal^2 / noise^2,
the precision of an analog optical product read out at that power. Two effective-bits conventions
are reported (PHYSICS.md section 3, "Precision"):

* ``enob_sine_bits`` = (SNR_dB - 1.76) / 6.02, the full-scale-sine ADC convention;
* ``bits_range`` = log2(signal range / sigma) = SNR_dB / 6.02, the convention of many optical
  neural-network papers (levels distinguishable within one sigma).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from experiments.common.link import simulated_fibre_length
from labctl.runner import Experiment, ExperimentError, RunContext
from labctl.units import dbm_to_w, w_to_dbm


class Parameters(BaseModel):
    laser: str = "laser"
    laser_channel: int = Field(1, ge=1)
    wavelength_nm: float = Field(1550.0, gt=0)
    laser_power_dbm: float = Field(7.0, description="laser power (fixed in a VOA sweep)")
    sweep: str = Field("voa", pattern="^(voa|laser)$", description="voa: bias controller's VOA; laser: laser power")
    attenuations_db: list[float] = Field([1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0, 19.0],
                                         description="VOA attenuation steps (sweep=voa)")
    laser_powers_dbm: list[float] = Field([6.0, 7.0, 8.0, 9.0, 10.0], description="laser steps (sweep=laser)")
    bias: str = "bias"
    power_meter: str = "powermeter"
    power_meter_channel: int = Field(1, ge=1)
    averaging_time_s: float = Field(0.01, gt=0)
    scope: str = "scope"
    scope_channel: int = Field(1, ge=1)
    scope_sample_rate: float = Field(256e9, gt=0)
    record_length: int = Field(65536, ge=1024)
    min_range_v: float = Field(0.016, gt=0, description="smallest vertical range to use")
    switch: str | None = "switch"
    switch_port_power_meter: int = Field(1, ge=1)
    switch_port_scope: int = Field(2, ge=1)
    fibre_length_km: float | None = Field(None, ge=0, description="simulated bench only: set the span length")
    fibre: str = "edge_fibre"
    settle_s: float = Field(0.02, ge=0)


class ReceiverSNR(Experiment):
    """SNR and effective bits of the photodiode + scope readout versus received optical power."""

    name = "receiver_snr"
    Parameters = Parameters
    default_bench = "characterisation"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        if p.switch is None:
            raise ExperimentError("receiver_snr needs a switch to send the light to the power meter and the scope")
        with simulated_fibre_length(ctx.bench, p.fibre, p.fibre_length_km):
            return self._run(ctx, p)

    def _run(self, ctx: RunContext, p: Parameters) -> dict[str, Any]:
        bench, rec = ctx.bench, ctx.recorder
        rec.set_units(received_power_w="W", signal_v="V", noise_rms_v="V", snr_db="dB", enob_sine_bits="bit",
                      bits_range="bit", scope_range_v="V", step_value="dB or dBm")
        laser, bias = bench.role(p.laser, p.laser_channel), bench.role(p.bias)
        meter = bench.role(p.power_meter, p.power_meter_channel)
        scope, switch = bench.role(p.scope), bench.role(p.switch)
        voa = bias.attenuator if p.sweep == "voa" else None
        if p.sweep == "voa" and voa is None:
            raise ExperimentError(f"bias controller {p.bias!r} has no VOA; use sweep='laser'")
        if voa is not None:
            low, high = voa.attenuation_range_db
            outside = [a for a in p.attenuations_db if not low <= a <= high]
            if outside:
                raise ExperimentError(f"attenuations {outside} dB are outside what {p.bias!r}'s VOA holds "
                                      f"({low:g}..{high:g} dB)")
        steps = p.attenuations_db if p.sweep == "voa" else p.laser_powers_dbm

        laser.wavelength = p.wavelength_nm * 1e-9
        laser.power = dbm_to_w(p.laser_power_dbm if p.sweep == "voa" else steps[0])
        meter.wavelength = p.wavelength_nm * 1e-9
        meter.averaging_time = p.averaging_time_s
        scope.sample_rate = p.scope_sample_rate
        scope.record_length = p.record_length

        # dark level: laser off, most sensitive range
        laser.output_enabled = False
        switch.route = p.switch_port_scope
        bench.settle(p.settle_s)
        scope.set_vertical(p.scope_channel, p.min_range_v, 0.0)
        _, traces = scope.capture([p.scope_channel])
        dark = traces[p.scope_channel]
        dark_mean, dark_rms = float(np.mean(dark)), float(np.std(dark))

        laser.output_enabled = True
        bias.lock_quadrature(positive=True)
        bench.settle(p.settle_s)
        rows = []
        for value in ctx.progress(steps, desc="received power", unit="step"):
            if voa is not None:
                voa.hold_attenuation(float(value))
            else:
                laser.power = dbm_to_w(float(value))
            bench.settle(p.settle_s)
            switch.route = p.switch_port_power_meter
            bench.settle(p.settle_s)
            power = meter.read_power()
            switch.route = p.switch_port_scope
            bench.settle(p.settle_s)
            mean, rms, range_v = self._measure(scope, p)
            rows.append((float(value), power, mean - dark_mean, rms, range_v))
        if voa is not None:
            voa.release()
        laser.output_enabled = False

        value, power, signal, noise, ranges = (np.array(c) for c in zip(*rows))
        snr_db = 20 * np.log10(np.abs(signal) / noise)
        enob_sine = (snr_db - 1.76) / 6.02
        bits_range = np.log2(np.abs(signal) / noise)
        for name, data in (("step_value", value), ("received_power_w", power), ("signal_v", signal),
                           ("noise_rms_v", noise), ("snr_db", snr_db), ("enob_sine_bits", enob_sine),
                           ("bits_range", bits_range), ("scope_range_v", ranges)):
            rec.write(name, data)
        volts_per_watt = float(np.polyfit(power, signal, 1)[0]) if power.size >= 2 else float("nan")
        best = int(np.argmax(snr_db))
        self._plot(ctx, power, snr_db, enob_sine, bits_range)
        return {
            "max_snr_db": float(snr_db[best]),
            "max_enob_sine_bits": float(enob_sine[best]),
            "max_bits_range": float(bits_range[best]),
            "power_at_max_snr_dbm": float(w_to_dbm(power[best])),
            "dark_level_v": dark_mean,
            "dark_noise_rms_v": dark_rms,
            "volts_per_watt": volts_per_watt,
        }

    def _measure(self, scope, p: Parameters) -> tuple[float, float, float]:
        """(mean, rms noise, range used) of one record on a range fitted to the signal."""
        scope.set_vertical(p.scope_channel, 0.8, 0.0)
        _, traces = scope.capture([p.scope_channel])
        v = traces[p.scope_channel]
        mean, rms = float(np.mean(v)), float(np.std(v))
        for _ in range(2):  # zoom in twice: the first estimate of the noise carries the coarse range's
            range_v = max(16 * rms, p.min_range_v)
            scope.set_vertical(p.scope_channel, range_v, mean)
            _, traces = scope.capture([p.scope_channel])
            v = traces[p.scope_channel]
            mean, rms = float(np.mean(v)), float(np.std(v))
        return mean, rms, range_v

    def _plot(self, ctx: RunContext, power, snr_db, enob_sine, bits_range) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        dbm = w_to_dbm(power)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot(dbm, snr_db, "o-", ms=4, label="SNR = signal^2 / noise^2")
        ax.set(xlabel="received optical power (dBm)", ylabel="SNR (dB)", title="Receiver SNR and effective bits")
        ax.grid(alpha=0.3)
        right = ax.twinx()
        right.plot(dbm, enob_sine, "s--", ms=3, color="C1", label="ENOB (SNR_dB - 1.76) / 6.02")
        right.plot(dbm, bits_range, "^:", ms=3, color="C2", label="log2(range / sigma)")
        right.set_ylabel("effective bits")
        lines = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
        fig.tight_layout()
        fig.savefig(ctx.artefact("receiver_snr.png"), dpi=120)
        plt.close(fig)
