"""Network and computing-core bench parts (EDFA, AWGR, mux, splitter, ring bank) in small worlds,
against closed forms written out here (not the modules' own functions, not earlier simulator output)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

import labctl
from sim_backends.bench import COMPONENTS, BenchFileError, build_bench
from sim_backends.physics.awgr import AWGR
from sim_backends.physics.constants import C, H
from sim_backends.physics.grids import uniform_step
from sim_backends.physics.network import (
    NETWORK_COMPONENTS,
    AWGRComponent,
    EDFAComponent,
    Mux,
    RingBank,
    Splitter,
)
from sim_backends.world import OPTICAL_OUT, Component, Lightwave, WiringError, World, total_power


class Source(Component):
    """CW carriers (wavelength, power) on one output, constant over t."""

    PORTS = {"out": OPTICAL_OUT}

    def __init__(self, *carriers):
        self.carriers = carriers

    def optical_output(self, port, t):
        return [Lightwave(lam, np.full(np.shape(t), math.sqrt(p), dtype=complex)) for lam, p in self.carriers]


def world_with(parts, links, seed=0):
    world = World(seed=seed)
    for name, part in parts.items():
        world.add(name, part)
    for link in links:
        world.connect(*link.split(" -> "))
    return world


def power_at(world, node, port, t=np.zeros(1)):
    return float(np.mean(total_power(world.nodes[node].optical_output(port, t), t)))


def compressed_gain(g0, p_in, p_sat):
    """G = G0 / (1 + G P_in / P_sat) solved for G (homogeneous gain compression)."""
    return 2 * g0 / (1 + math.sqrt(1 + 4 * g0 * p_in / p_sat))


def test_registry_names_the_bench_types():
    assert set(NETWORK_COMPONENTS) == {"edfa", "awgr", "mux", "splitter", "ring_bank"}
    for kind, cls in NETWORK_COMPONENTS.items():
        assert COMPONENTS[kind] is cls


def test_a_sample_rate_only_for_uniform_grids():
    assert 1.0 / uniform_step(np.arange(10) / 4e9) == pytest.approx(4e9)
    assert uniform_step(np.zeros(1)) is None
    assert uniform_step(np.zeros(4)) is None
    assert uniform_step(np.array([0.0, 1.0, 3.0])) is None


# -- EDFA --------------------------------------------------------------------------------------------


#: Limits of the sources these benches may hold (the laser at its N7714A maximum; heater drive as in awgr_core).
SAFETY = {"laser": {"max_power_dbm": 13.5}, "heaters": {"max_voltage_v": 4.0, "max_current_a": 0.05}}


def open_yaml_bench(tmp_path, instruments, components, connections, seed=3):
    config = {"name": "t", "instruments": instruments, "components": components, "connections": connections,
              "safety": {name: SAFETY[name] for name in instruments if name in SAFETY}}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return labctl.open_bench(path, seed=seed)


LASER = {"role": "tunable_laser", "driver": "keysight.N7714A", "resource": "TCPIP0::laser.labsim::inst0::INSTR",
         "channels": [1, 2, 3, 4]}
METER = {"role": "optical_power_meter", "driver": "keysight.N7744A",
         "resource": "TCPIP0::pm.labsim::inst0::INSTR", "channels": [1, 2, 3, 4]}
HEATERS = {"role": "dc_source", "driver": "keysight.N6700", "resource": "TCPIP0::dc.labsim::inst0::INSTR",
           "channels": [1, 2, 3, 4], "sim": {"params": {"current_noise_a": 1e-7}}}


def test_edfa_gain_and_ase_read_by_a_power_meter(tmp_path):
    """Meter = G P_in + ASE; ASE over the C band (4.4 THz, 16 slices), both polarisations:
    sum_k (NF G - 1) h nu_k B/M, read with weights lambda_k / lambda_set -> (NF G - 1) h nu_set B."""
    g0_db, nf_db, psat_dbm, band = 20.0, 5.0, 20.0, 4.4e12
    components = {
        "tap": {"type": "splitter", "ports": 2, "ratios": [0.01, 0.99], "excess_loss_db": 0.2},
        "amp": {"type": "edfa", "gain_db": g0_db, "noise_figure_db": nf_db, "saturation_output_dbm": psat_dbm,
                "ase_bandwidth_hz": band},
    }
    links = ["laser.out1 -> tap.in", "tap.out1 -> amp.in", "amp.out -> pm.in1"]
    with open_yaml_bench(tmp_path, {"laser": LASER, "pm": METER}, components, links) as bench:
        laser, meter = bench.role("laser", 1), bench.role("pm", 1)
        lam = 1550e-9
        laser.wavelength, meter.wavelength = lam, lam
        laser.power = 10 ** (6 / 10) * 1e-3
        g0, nf, psat = 10 ** (g0_db / 10), 10 ** (nf_db / 10), 10 ** (psat_dbm / 10) * 1e-3
        ase = lambda g: (nf * g - 1) * H * (C / lam) * band  # noqa: E731

        dark = meter.read_power()  # laser off: unsaturated ASE only
        assert dark == pytest.approx(ase(g0), rel=1e-3)

        laser.output_enabled = True
        p_in = 10 ** (6 / 10) * 1e-3 * 0.01 * 10 ** (-0.02)
        g = compressed_gain(g0, p_in, psat)
        reading = meter.read_power()
        assert reading == pytest.approx(g * p_in + ase(g), rel=1e-3)
        assert ase(g) / reading > 0.03  # the ASE term is resolved, not lost in the tolerance
        print(f"\nEDFA: G = {10 * math.log10(g):.3f} dB, meter {reading * 1e3:.4f} mW "
              f"(signal {g * p_in * 1e3:.4f} + ASE {ase(g) * 1e3:.4f} mW)")


def test_edfa_with_a_channel_filter_adds_ase_in_its_band_only(tmp_path):
    band = 100e9
    amp = EDFAComponent("amp", 15.0, 6.0, 23.0, optical_bandwidth_hz=band)
    p_in, lam = 2e-6, 1551e-9
    world = world_with({"src": Source((lam, p_in)), "amp": amp}, ["src.out -> amp.in"])
    g = compressed_gain(10 ** 1.5, p_in, 10 ** 2.3 * 1e-3)
    expected = g * p_in + (10 ** 0.6 * g - 1) * H * C / lam * band
    assert power_at(world, "amp", "out") == pytest.approx(expected, rel=1e-9)
    # no input: the filter passes nothing, so no ASE reaches the output
    dark = world_with({"src": Source(), "amp": EDFAComponent("amp", 15.0, 6.0, 23.0, optical_bandwidth_hz=band)},
                      ["src.out -> amp.in"])
    assert power_at(dark, "amp", "out") == 0.0


def test_edfa_waveform_level_ase_power_and_beat_noise():
    """Uniform grid at fs: co-polarised ASE (S_sp fs) beats with the signal, the orthogonal one does not:
    var(P) = 2 G P S_sp fs + 2 (S_sp fs)^2; mean = G P + (NF G - 1) h [nu fs + nu_c (B - fs)]."""
    fs, n, lam, p_in = 50e9, 1 << 16, 1550e-9, 1e-5
    amp = EDFAComponent("amp", 20.0, 5.0, 20.0, ase_bandwidth_hz=4.4e12, ase_center_wavelength_m=1547.3e-9)
    world = world_with({"src": Source((lam, p_in)), "amp": amp}, ["src.out -> amp.in"], seed=11)
    t = np.arange(n) / fs
    light = amp.optical_output("out", t)
    power = total_power(light, t)
    g = compressed_gain(100.0, p_in, 0.1)
    nf = 10 ** 0.5
    s_sp = (nf * g - 1) * H * C / lam / 2
    mean = g * p_in + (nf * g - 1) * H * (C / lam * fs + C / 1547.3e-9 * (4.4e12 - fs))
    assert power.mean() == pytest.approx(mean, rel=2e-3)
    expected_var = 2 * g * p_in * s_sp * fs + 2 * (s_sp * fs) ** 2
    assert power.var() == pytest.approx(expected_var, rel=0.04)
    print(f"\nEDFA waveform: var {power.var():.4g} W^2 vs closed form {expected_var:.4g} W^2")


def test_edfa_waveform_with_filter_inside_the_record_band():
    fs, n, lam, band = 200e9, 1 << 15, 1550e-9, 50e9
    amp = EDFAComponent("amp", 20.0, 5.0, 30.0, optical_bandwidth_hz=band)
    world = world_with({"src": Source((lam, 1e-7)), "amp": amp}, ["src.out -> amp.in"], seed=5)
    t = np.arange(n) / fs
    power = total_power(amp.optical_output("out", t), t)
    g = compressed_gain(100.0, 1e-7, 1.0)
    ase = (10 ** 0.5 * g - 1) * H * C / lam * band  # both polarisations in the rect band
    assert power.mean() == pytest.approx(g * 1e-7 + ase, rel=0.02)


@pytest.mark.parametrize("kwargs, name", [
    ({"noise_figure_db": 2.9}, "noise_figure_db"),
    ({"gain_db": -3.0}, "gain_db"),
    ({"ase_slices": 0}, "ase_slices"),
    ({"ase_bandwidth_hz": -1.0}, "ase_bandwidth_hz"),
    ({"optical_bandwidth_hz": 0.0}, "optical_bandwidth_hz"),
])
def test_edfa_refuses_non_physical_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        EDFAComponent("amp", **kwargs)


def test_bench_file_error_names_the_component_and_parameter():
    with pytest.raises(BenchFileError, match=r"components.amp: .*noise_figure_db"):
        build_bench({"components": {"amp": {"type": "edfa", "noise_figure_db": 2.0}}})


# -- AWGR --------------------------------------------------------------------------------------------


def awgr_world(n, sources, **params):
    """AWGR with Source components on the given inputs ({port: [(wavelength, power)]})."""
    parts = {"awgr": AWGRComponent("awgr", ports=n, **params)}
    links = []
    for p, carriers in sources.items():
        parts[f"s{p}"] = Source(*carriers)
        links.append(f"s{p}.out -> awgr.in{p}")
    return world_with(parts, links)


def test_awgr_routes_lambda_p_q_n_with_loss_and_crosstalk():
    n, il, adj, non = 8, 4.0, -26.0, -37.0
    lam0, spacing = 1550.12e-9, 100e9
    dlam = lam0 ** 2 * spacing / C
    for p, q, order in [(1, 1, 0), (1, 3, 0), (2, 8, 1), (6, 2, -1), (8, 1, 0)]:
        lam = lam0 + (p - q) * dlam + order * n * dlam
        world = awgr_world(n, {p: [(lam, 1e-3)]}, insertion_loss_db=il, adjacent_crosstalk_db=adj,
                           nonadjacent_crosstalk_db=non, center_wavelength_m=lam0, channel_spacing_hz=spacing)
        for out in range(1, n + 1):
            # the channel centred on lam (m = 0) routes to q; the neighbouring channels m = +-1 (routed
            # to q -+ 1) reach it through their Gaussian passband tails S(dlam) = 2^-(2 dlam / w)^2,
            # w = 0.5 dlam (the default 3-dB width): 2^-16
            expected = 0.0
            for m in (-1, 0, 1):
                d = min((out - (q - m)) % n, ((q - m) - out) % n)
                x_db = 0 if d == 0 else adj if d == 1 else non
                expected += 1e-3 * 10 ** (-il / 10) * 10 ** (x_db / 10) * 2.0 ** -(4 * m) ** 2
            assert power_at(world, "awgr", f"out{out}") == pytest.approx(expected, rel=1e-3), (p, q, order, out)


def test_awgr_output_collects_every_input_incoherently():
    """lambda0 on every input: output q sums IL X(|p - q|) over p = IL (1 + 2 X_adj + (N - 3) X_non)."""
    n, lam0 = 8, 1550.12e-9
    world = awgr_world(n, {p: [(lam0, 1e-3)] for p in range(1, n + 1)})
    for q in range(1, n + 1):
        light = world.nodes["awgr"].optical_output(f"out{q}", np.zeros(1))
        assert len(light) == n  # one carrier per (input, wavelength)
        expected = 1e-3 * 10 ** -0.5 * (1 + 2 * 10 ** -2.5 + (n - 3) * 10 ** -3.5)
        assert power_at(world, "awgr", f"out{q}") == pytest.approx(expected, rel=1e-3)


def test_awgr_port_outside_1_to_n_is_refused():
    world = awgr_world(4, {})
    world.add("src", Source((1550e-9, 1e-3)))
    with pytest.raises(WiringError, match="no port 'in5'"):
        world.connect("src.out", "awgr.in5")
    with pytest.raises(ValueError, match="ports"):
        AWGRComponent("a", ports=1)
    with pytest.raises(ValueError, match="insertion_loss_db"):
        AWGRComponent("a", ports=8, insertion_loss_db=-1.0)


# -- mux and splitter -------------------------------------------------------------------------------


@pytest.mark.parametrize("n, excess", [(2, 0.0), (4, 0.3), (16, 1.2)])
def test_splitter_gives_each_output_one_nth_less_excess_loss(n, excess):
    world = world_with({"src": Source((1550e-9, 2e-3), (1551e-9, 1e-3)), "sp": Splitter("sp", n, excess)},
                       ["src.out -> sp.in"])
    outputs = [power_at(world, "sp", f"out{k}") for k in range(1, n + 1)]
    assert outputs == pytest.approx([3e-3 / n * 10 ** (-excess / 10)] * n, rel=1e-12)
    assert sum(outputs) <= 3e-3 * (1 + 1e-12)  # passive: never more out than in
    if excess == 0.0:
        assert sum(outputs) == pytest.approx(3e-3, rel=1e-12)  # lossless: energy conserved


def test_splitter_ratios_and_bad_input():
    world = world_with({"src": Source((1550e-9, 1e-3)), "tap": Splitter("tap", 2, 0.0, ratios=[0.1, 0.9])},
                       ["src.out -> tap.in"])
    assert power_at(world, "tap", "out1") == pytest.approx(1e-4)
    assert power_at(world, "tap", "out2") == pytest.approx(9e-4)
    with pytest.raises(ValueError, match="ratios"):
        Splitter("s", 2, ratios=[0.5, 0.6])
    with pytest.raises(ValueError, match="excess_loss_db"):
        Splitter("s", 2, excess_loss_db=-0.1)
    with pytest.raises(ValueError, match="ports"):
        Splitter("s", 1)


def test_mux_passes_each_carrier_with_its_port_loss():
    losses = [2.0, 3.0, 4.5]
    lams = [1550.12e-9, 1550.92e-9, 1551.72e-9]
    parts = {f"s{k}": Source((lam, 1e-3)) for k, lam in enumerate(lams, start=1)}
    parts["mux"] = Mux("mux", 3, losses)
    world = world_with(parts, [f"s{k}.out -> mux.in{k}" for k in (1, 2, 3)])
    light = world.nodes["mux"].optical_output("out", np.zeros(1))
    assert [c.wavelength for c in light] == lams
    assert [float(c.power[0]) for c in light] == pytest.approx([1e-3 * 10 ** (-x / 10) for x in losses])
    with pytest.raises(ValueError, match="insertion_loss_db"):
        Mux("m", 3, [1.0, 2.0])
    with pytest.raises(ValueError, match="insertion_loss_db"):
        Mux("m", 2, -1.0)


# -- ring bank ---------------------------------------------------------------------------------------


def lorentzian_drop(laser_m, resonance_m, shift_m, q_loaded):
    fwhm = resonance_m / q_loaded
    return 1 / (1 + (2 * (laser_m - resonance_m - shift_m) / fwhm) ** 2)


def ring_bench(tmp_path, rings):
    components = {"rings": {"type": "ring_bank", **rings}}
    links = ["laser.out1 -> rings.in", "rings.drop -> pm.in1", "rings.through -> pm.in2",
             "heaters.out1 -> rings.heater1", "heaters.out2 -> rings.heater2"]
    if rings.get("n_rings", 4) < 2:
        links.remove("heaters.out2 -> rings.heater2")
    return open_yaml_bench(tmp_path, {"laser": LASER, "pm": METER, "heaters": HEATERS}, components, links)


@pytest.mark.parametrize("volts", [0.0, 0.5, 0.65, 0.707, 0.8, 1.0])
def test_ring_drop_follows_heater_power_v2_over_r_through_the_lorentzian(tmp_path, volts):
    """P = V^2/R -> shift = 0.2 nm/mW x P -> drop = Lorentzian(lambda_L - lambda_r - shift); the heater
    is a 500 ohm load, so the N6700 (constant voltage) delivers I = V/R."""
    r_ohm, res, q_l, tuning = 500.0, 1549.9e-9, 1e4, 0.2
    rings = {"n_rings": 1, "resonance_wavelengths": [res], "q_loaded": q_l, "extinction_db": None,
             "tuning_nm_per_mw": tuning, "heater_resistance_ohm": r_ohm}
    with ring_bench(tmp_path, rings) as bench:
        laser, drop, through = bench.role("laser", 1), bench.role("pm", 1), bench.role("pm", 2)
        heater = bench.role("heaters", 1)
        lam = 1550.1e-9
        laser.wavelength = drop.wavelength = through.wavelength = lam
        laser.power = p_l = 10 ** 0.6 * 1e-3
        laser.output_enabled = True
        heater.current_limit = 0.05
        heater.voltage = volts
        heater.output_enabled = True
        shift = tuning * 1e-9 / 1e-3 * volts ** 2 / r_ohm
        expected = lorentzian_drop(lam, res, shift, q_l)
        assert drop.read_power() / p_l == pytest.approx(expected, abs=2e-3)
        assert through.read_power() / p_l == pytest.approx(1 - expected, abs=2e-3)  # lossless ring
        assert heater.measure_current() == pytest.approx(volts / r_ohm, abs=2e-6)


def test_heater_current_limit_sets_the_ring_shift(tmp_path):
    """CC mode: V = I_lim R, so the heater gets I_lim^2 R, not V_set^2 / R."""
    rings = {"n_rings": 1, "resonance_wavelengths": [1549.9e-9], "q_loaded": 1e4, "extinction_db": None}
    with ring_bench(tmp_path, rings) as bench:
        laser, drop, heater = bench.role("laser", 1), bench.role("pm", 1), bench.role("heaters", 1)
        laser.wavelength = drop.wavelength = 1550.0e-9
        laser.power = 10 ** 0.6 * 1e-3
        laser.output_enabled = True
        heater.current_limit = 1e-3
        heater.voltage = 1.0  # would draw 2 mA
        heater.output_enabled = True
        assert heater.measure_voltage() == pytest.approx(0.5, abs=0.02)
        shift = 0.2e-6 * (1e-3 ** 2 * 500.0)  # 0.2 nm/mW x 0.5 mW
        expected = lorentzian_drop(1550.0e-9, 1549.9e-9, shift, 1e4)
        assert drop.read_power() / (10 ** 0.6 * 1e-3) == pytest.approx(expected, abs=2e-3)


def test_thermal_crosstalk_shifts_the_neighbouring_ring():
    """Only heater 1 on: ring 2 moves by f x 0.2 nm/mW x P (nearest-neighbour fraction f)."""
    f, res2, q_l = 0.1, 1550.0e-9, 1e4

    class DC(Component):
        PORTS = {"out": "electrical_out"}

        def electrical_output(self, port, t):
            return np.full(np.shape(t), 3.0)  # 3 V into 500 ohm = 18 mW

    bank = RingBank("rings", 2, [1545.0e-9, res2], q_loaded=q_l, extinction_db=None, crosstalk_fraction=f)
    lam = res2 + f * 0.2e-6 * 18e-3
    world = world_with({"src": Source((lam, 1e-3)), "dc": DC(), "rings": bank},
                       ["src.out -> rings.in", "dc.out -> rings.heater1"])
    assert world.load_on("dc", "out") == 500.0
    assert power_at(world, "rings", "drop") == pytest.approx(1e-3, rel=5e-3)  # ring 2 now on the laser
    # ring 1 moved by the full 3.6 nm (to 1548.6 nm), still far from the laser
    assert bank.bank.resonances([18e-3, 0.0])[0] == pytest.approx(1545.0e-9 + 3.6e-9)


def test_ring_bank_follows_a_time_varying_heater_drive():
    class Ramp(Component):
        PORTS = {"out": "electrical_out"}

        def electrical_output(self, port, t):
            return np.asarray(t) * 1e9  # 0..1 V over 1 ns

    world = world_with({"src": Source((1550.1e-9, 1e-3)), "ramp": Ramp(),
                        "rings": RingBank("rings", 1, [1549.9e-9], extinction_db=None)},
                       ["src.out -> rings.in", "ramp.out -> rings.heater1"])
    t = np.linspace(0, 1e-9, 11)
    drop = total_power(world.nodes["rings"].optical_output("drop", t), t)
    expected = [1e-3 * lorentzian_drop(1550.1e-9, 1549.9e-9, 0.2e-6 * v ** 2 / 500, 1e4) for v in t * 1e9]
    assert drop == pytest.approx(expected, abs=2e-6)


def test_ring_bank_refuses_non_physical_parameters():
    with pytest.raises(ValueError, match="heater_resistance_ohm"):
        RingBank("r", heater_resistance_ohm=0.0)
    with pytest.raises(ValueError, match="n_rings"):
        RingBank("r", n_rings=0)
    with pytest.raises(ValueError, match="q_loaded"):
        RingBank("r", q_loaded=1.0)


def test_an_awgr_model_replaced_on_a_running_bench_routes_with_its_own_loss():
    node = AWGRComponent("awgr", ports=4, insertion_loss_db=5.0)
    wavelengths = (float(node.router.center_wavelength_m),)
    before = node.amplitudes(1, wavelengths).copy()
    node.router = AWGR(4, insertion_loss_db=2.0)
    assert np.allclose(node.amplitudes(1, wavelengths) ** 2, before**2 * 10 ** 0.3, rtol=1e-9)
    with pytest.raises(ValueError, match="wired with 4"):
        node.router = AWGR(8)
