"""AWGR routing and crosstalk: sweep a tunable laser over at least one FSR into each input of an
N x N arrayed-waveguide grating router and read every output's power.

The lab procedure for characterising a cyclic AWGR (the wavelength router of an optical computing
core): a 1xM switch selects the AWGR input the probe laser enters, every output goes to a power-meter
port, and one more switch output goes straight to a meter port as the reference (the power the AWGR
inputs receive through the same switch), so the insertion loss excludes the upstream path. For each
wavelength of the sweep the laser is tuned once (slow on real lasers), the meters are set to that
wavelength, then each input is selected in turn and all outputs are read.

Derived (roles only, so it runs unchanged on a real bench):

* ``routing_table`` (inputs x wavelengths): the output port receiving the most power;
* ``peak_wavelength_m`` (inputs x outputs): the centre of the passband routing input p to output q,
  refined by a parabola through the three samples around the peak in dB (exact for a Gaussian
  passband); the cyclic AWGR law lambda(p, q, n) = lambda0 + (p - q) dlambda + n FSR can be read off it;
* ``insertion_loss_db`` (inputs x outputs): -(peak of 10 log10(P_q / P_ref)) at those passbands;
* ``crosstalk_db`` (inputs x outputs x outputs): [i, q, q'] = power at output q' relative to output q
  at the sample nearest the passband centre routed to q; adjacent = cyclic neighbours (|q' - q| = 1
  mod N), non-adjacent = the rest; the summary reports the worst (largest) and the mean of each.

Outputs are listed in AWGR port order (``outputs[k]`` is the meter port on AWGR output k + 1) and
must cover every output, so that cyclic neighbours are known.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from labctl.runner import Experiment, RunContext
from labctl.units import dbm_to_w

_DEFAULT_OUTPUTS = [f"pm_a:{k}" for k in range(1, 5)] + [f"pm_b:{k}" for k in range(1, 5)]


def _meter_port(text: str) -> tuple[str, int]:
    name, sep, channel = str(text).partition(":")
    if not sep or not name or not channel.strip().isdigit() or int(channel) < 1:
        raise ValueError(f"{text!r} is not 'instrument:channel' (e.g. 'pm_a:1')")
    return name.strip(), int(channel)


class Parameters(BaseModel):
    laser: str = Field("laser", description="tunable laser instrument (the probe)")
    laser_channel: int = Field(1, ge=1)
    laser_power_dbm: float = Field(6.0, description="probe power setting")
    wavelength_start_nm: float = Field(1546.52, gt=0, description="first wavelength of the sweep")
    wavelength_stop_nm: float = Field(1553.72, gt=0, description="last wavelength (sweep >= one FSR)")
    points: int = Field(37, ge=3, le=100001, description="wavelengths in the sweep")
    switch: str = Field("switch", description="1xM switch that selects the AWGR input")
    input_ports: list[int] = Field(default_factory=lambda: list(range(1, 9)),
                                   description="AWGR inputs to measure (port numbers 1..N)")
    switch_ports: list[int] | None = Field(None, description="switch output feeding each input (default: same numbers)")
    outputs: list[str] = Field(default_factory=lambda: list(_DEFAULT_OUTPUTS),
                               description="meter port 'instrument:channel' on each AWGR output, in port order")
    reference_switch_port: int | None = Field(9, ge=1, description="switch output wired to the reference meter (None: no reference)")
    reference_meter: str = Field("pm_c:1", description="meter port of the reference path")
    averaging_time_s: float = Field(0.01, gt=0)
    track_meter_wavelength: bool = Field(True, description="set every meter port to the laser wavelength")
    settle_s: float = Field(0.05, ge=0, description="wait after tuning the laser or moving the switch")

    @field_validator("outputs")
    @classmethod
    def _outputs(cls, value):
        if len(value) < 2:
            raise ValueError("name at least two AWGR outputs")
        for item in value:
            _meter_port(item)
        return value

    @field_validator("reference_meter")
    @classmethod
    def _reference(cls, value):
        _meter_port(value)
        return value

    @model_validator(mode="after")
    def _cross(self):
        n = len(self.outputs)
        if not self.input_ports or any(not 1 <= p <= n for p in self.input_ports):
            raise ValueError(f"input_ports must be AWGR ports in 1..{n} (one per listed output)")
        if self.switch_ports is not None and len(self.switch_ports) != len(self.input_ports):
            raise ValueError("switch_ports must have one entry per input port")
        if self.wavelength_stop_nm <= self.wavelength_start_nm:
            raise ValueError("wavelength_stop_nm must be above wavelength_start_nm")
        return self


def _local_peaks(y: np.ndarray, is_routed: np.ndarray) -> list[tuple[int, float, float]]:
    """Interior local maxima of ``y`` (dB) where ``is_routed``: (index, vertex offset in steps, vertex dB)."""
    peaks = []
    for j in range(1, y.size - 1):
        if not (is_routed[j] and y[j] >= y[j - 1] and y[j] > y[j + 1]):
            continue
        curvature = y[j - 1] - 2 * y[j] + y[j + 1]
        delta = 0.5 * (y[j - 1] - y[j + 1]) / curvature if curvature < 0 else 0.0
        delta = float(np.clip(delta, -0.5, 0.5))
        peaks.append((j, delta, float(y[j] - 0.25 * (y[j - 1] - y[j + 1]) * delta)))
    return peaks


def analyse_routing(wavelengths: np.ndarray, power_w: np.ndarray, reference_w: np.ndarray,
                    input_ports: list[int]) -> dict[str, Any]:
    """Routing table, passband centres, insertion loss and crosstalk from a sweep.

    ``power_w`` (inputs, wavelengths, outputs); ``reference_w`` (wavelengths,) is the power at the AWGR
    input. Returns arrays and summary figures (see the module docstring).
    """
    n_in, n_wl, n_out = power_w.shape
    step = (wavelengths[-1] - wavelengths[0]) / (n_wl - 1)
    tiny = 1e-30
    rel_db = 10 * np.log10(np.maximum(power_w, tiny) / np.maximum(reference_w, tiny)[None, :, None])
    routing = np.argmax(power_w, axis=2) + 1
    peak_wl = np.full((n_in, n_out), np.nan)
    il_db = np.full((n_in, n_out), np.nan)
    xt = np.full((n_in, n_out, n_out), np.nan)
    peak_rows = []  # input port, output port, wavelength, insertion loss
    orders: dict[tuple[int, int], list[float]] = {}
    for i in range(n_in):
        for q in range(n_out):
            best = None
            for j, delta, vertex in _local_peaks(rel_db[i, :, q], routing[i] == q + 1):
                lam = wavelengths[j] + delta * step
                peak_rows.append((input_ports[i], q + 1, lam, -vertex))
                orders.setdefault((i, q), []).append(lam)
                if best is None or vertex > best[2]:
                    best = (j, lam, vertex)
            if best is None:
                continue
            j, peak_wl[i, q], vertex = best
            il_db[i, q] = -vertex
            xt[i, q] = 10 * np.log10(np.maximum(power_w[i, j], tiny) / max(power_w[i, j, q], tiny))
    # cyclic distance between the routed output and every other output
    idx = np.arange(n_out)
    dist = np.abs(idx[:, None] - idx[None, :])
    dist = np.minimum(dist, n_out - dist)
    adjacent = np.broadcast_to(dist == 1, xt.shape) & np.isfinite(xt)
    nonadjacent = np.broadcast_to(dist >= 2, xt.shape) & np.isfinite(xt)
    spacing = []
    for i in range(n_in):
        lam = np.sort(peak_wl[i][np.isfinite(peak_wl[i])])
        spacing += list(np.diff(lam))
    fsr = [np.diff(sorted(v)) for v in orders.values() if len(v) > 1]

    def stat(values, fn):
        values = np.asarray(values, dtype=float)
        return float(fn(values)) if values.size else float("nan")

    def mean_db(values_db):
        """Mean of dB values taken on the linear power ratios."""
        return float(10 * np.log10(stat(10 ** (np.asarray(values_db) / 10), np.mean)))

    return {
        "routing_table": routing,
        "peak_wavelength_m": peak_wl,
        "insertion_loss_db": il_db,
        "crosstalk_db": xt,
        "peaks": np.array(peak_rows, dtype=float).reshape(-1, 4),
        "summary": {
            "channel_spacing_nm": stat(spacing, np.median) * 1e9,
            "fsr_nm": stat(np.concatenate(fsr) if fsr else [], np.median) * 1e9,
            "insertion_loss_db": stat(il_db[np.isfinite(il_db)], np.mean),
            "insertion_loss_max_db": stat(il_db[np.isfinite(il_db)], np.max),
            "insertion_loss_min_db": stat(il_db[np.isfinite(il_db)], np.min),
            "adjacent_crosstalk_db": stat(xt[adjacent], np.max),
            "adjacent_crosstalk_mean_db": mean_db(xt[adjacent]),
            "nonadjacent_crosstalk_db": stat(xt[nonadjacent], np.max),
            "nonadjacent_crosstalk_mean_db": mean_db(xt[nonadjacent]),
            "passbands_found": int(np.isfinite(peak_wl).sum()),
        },
    }


class AWGRRouting(Experiment):
    """Measure an AWGR's routing table, insertion loss and crosstalk over inputs and wavelengths."""

    name = "awgr_routing"
    Parameters = Parameters
    default_bench = "awgr_core"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        bench, rec = ctx.bench, ctx.recorder
        rec.set_units(wavelength_m="m", power_w="W", reference_power_w="W", peak_wavelength_m="m",
                      insertion_loss_db="dB", crosstalk_db="dB", routing_table="1", input_ports="1")
        laser = bench.role(p.laser, p.laser_channel)
        switch = bench.role(p.switch)
        outputs = [bench.role(*_meter_port(o)) for o in p.outputs]
        reference = bench.role(*_meter_port(p.reference_meter)) if p.reference_switch_port else None
        meters = outputs + ([reference] if reference is not None else [])
        switch_ports = p.switch_ports or p.input_ports
        wavelengths = np.linspace(p.wavelength_start_nm, p.wavelength_stop_nm, p.points) * 1e-9
        rec.write("wavelength_m", wavelengths)
        rec.write("input_ports", np.asarray(p.input_ports))

        for meter in meters:
            meter.averaging_time = p.averaging_time_s
        laser.power = dbm_to_w(p.laser_power_dbm)
        laser.wavelength = float(wavelengths[0])
        laser.output_enabled = True

        power = np.zeros((len(p.input_ports), p.points, len(outputs)))
        ref = np.full(p.points, dbm_to_w(p.laser_power_dbm))
        try:
            for j, lam in enumerate(ctx.progress(wavelengths, desc="wavelength sweep", unit="wl")):
                laser.wavelength = float(lam)
                if p.track_meter_wavelength:
                    for meter in meters:
                        meter.wavelength = float(lam)
                bench.settle(p.settle_s)
                if reference is not None:
                    switch.route = p.reference_switch_port
                    bench.settle(p.settle_s)
                    ref[j] = reference.read_power()
                    rec.append("reference_power_w", ref[j])
                for i, port in enumerate(switch_ports):
                    switch.route = port
                    bench.settle(p.settle_s)
                    power[i, j] = [meter.read_power() for meter in outputs]
                    rec.append("power_readings_w", power[i, j])
        finally:
            laser.output_enabled = False
        rec.write("power_w", power)  # (inputs, wavelengths, outputs)
        rec.write("reference_power_w", ref)

        result = analyse_routing(wavelengths, power, ref, p.input_ports)
        for key in ("routing_table", "peak_wavelength_m", "insertion_loss_db", "crosstalk_db"):
            rec.write(key, result[key])
        rec.write("peaks", result["peaks"], columns="input_port, output_port, wavelength_m, insertion_loss_db")
        self._plot(ctx, wavelengths, power, ref, p.input_ports, result)
        return dict(result["summary"])

    def _plot(self, ctx: RunContext, wavelengths, power, ref, inputs, result) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import BoundaryNorm, ListedColormap

        n_out = power.shape[2]
        nm = wavelengths * 1e9
        step = nm[1] - nm[0]
        extent = [nm[0] - step / 2, nm[-1] + step / 2, len(inputs) + 0.5, 0.5]
        colours = plt.get_cmap("tab20" if n_out > 10 else "tab10")(np.arange(n_out))
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
        ax = axes[0]
        image = ax.imshow(result["routing_table"], aspect="auto", extent=extent, interpolation="nearest",
                          cmap=ListedColormap(colours), norm=BoundaryNorm(np.arange(0.5, n_out + 1), n_out))
        ax.set_yticks(range(1, len(inputs) + 1), [str(i) for i in inputs])
        ax.set(xlabel="wavelength (nm)", ylabel="input port", title="routing: output with the most power")
        fig.colorbar(image, ax=ax, ticks=range(1, n_out + 1), label="output port")
        ax = axes[1]
        peak = result["peak_wavelength_m"] * 1e9
        image = ax.imshow(peak, aspect="auto", cmap="viridis")
        for (i, q), value in np.ndenumerate(peak):
            if np.isfinite(value) and peak.size <= 256:
                ax.text(q, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color="w")
        ax.set_xticks(range(n_out), [str(q) for q in range(1, n_out + 1)])
        ax.set_yticks(range(len(inputs)), [str(i) for i in inputs])
        ax.set(xlabel="output port", ylabel="input port", title="passband centre $\\lambda(p, q)$ (nm)")
        fig.colorbar(image, ax=ax, label="nm")
        ax = axes[2]
        image = ax.imshow(result["insertion_loss_db"], aspect="auto", cmap="magma_r")
        ax.set_xticks(range(n_out), [str(q) for q in range(1, n_out + 1)])
        ax.set_yticks(range(len(inputs)), [str(i) for i in inputs])
        ax.set(xlabel="output port", ylabel="input port", title="insertion loss (dB)")
        fig.colorbar(image, ax=ax, label="dB")
        fig.tight_layout()
        fig.savefig(ctx.artefact("awgr_routing.png"), dpi=110)
        plt.close(fig)

        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        ax = axes[0]
        with np.errstate(invalid="ignore"):
            xt = 10 * np.log10(np.nanmean(10 ** (result["crosstalk_db"] / 10), axis=0))
        xt[np.eye(n_out, dtype=bool)] = np.nan
        image = ax.imshow(xt, cmap="inferno")
        ax.set_xticks(range(n_out), [str(q) for q in range(1, n_out + 1)])
        ax.set_yticks(range(n_out), [str(q) for q in range(1, n_out + 1)])
        ax.set(xlabel="receiving output q'", ylabel="routed output q",
               title="crosstalk at the routed passband (dB, mean over inputs)")
        fig.colorbar(image, ax=ax, label="dB")
        ax = axes[1]
        for q in range(n_out):
            ax.plot(nm, 10 * np.log10(np.maximum(power[0, :, q], 1e-15) / np.maximum(ref, 1e-15)), ".-",
                    color=colours[q], ms=3, lw=0.8, label=f"out {q + 1}")
        ax.set(xlabel="wavelength (nm)", ylabel="transmission (dB)", title=f"input {inputs[0]}: all outputs")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        fig.savefig(ctx.artefact("awgr_crosstalk.png"), dpi=110)
        plt.close(fig)
