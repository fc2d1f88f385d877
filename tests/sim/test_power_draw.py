"""Electrical draw of the simulated instruments and its integral on the World's clock.

Every expected figure is computed here by hand from the instrument's state and its ``power_params``
(the datasheet defaults or a bench file's override): optical output / wall-plug efficiency + TEC for
lasers, V*I / efficiency for the DC source, rail x V/R for the OCC's heater DACs, converters while a
program runs. The integral over a sequence of state changes is the hand-written sum of power x time.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from sim_backends.bench import BenchFileError, build_bench, instrument_params, load_bench_file
from sim_backends.datasheets import USB2_BUS_POWER_W
from sim_backends.physics.power import (DrawError, checked_w, dc_supply_draw_w, edfa_pump_draw_w, laser_draw_w,
                                        linear_driver_draw_w, resistive_heater_w)
from sim_backends.world import ClockError, WiringError
from tests.sim.test_labctl_occ import BENCH, Core, core_config, tiles, zero_codes


def send(inst, message: str) -> str:
    inst.handle_write(message.encode())
    out = bytes(inst.output).decode().strip()
    inst.output.clear()
    return out


def no_errors(inst) -> None:
    assert send(inst, "SYST:ERR?").startswith(("0,", "+0,")), inst.name


def bench(instruments: dict, components: dict | None = None, connections: list | None = None):
    config = {"instruments": {name: {"driver": driver, "resource": f"TCPIP0::{name}.labsim::inst0::INSTR",
                                     "sim": {"params": params}}
                              for name, (driver, params) in instruments.items()},
              "components": components or {}, "connections": connections or []}
    return build_bench(config, seed=3)


# -- the models ---------------------------------------------------------------------------------------------


def test_power_models_refuse_nan_and_negative_instead_of_reading_zero():
    with pytest.raises(DrawError):
        checked_w("x", float("nan"))
    with pytest.raises(DrawError):
        checked_w("x", -1e-3)
    with pytest.raises(DrawError):
        laser_draw_w(-1e-3, 0.1, 1.0)
    with pytest.raises(DrawError):
        laser_draw_w(1e-3, 0.0, 1.0)  # no efficiency
    with pytest.raises(DrawError):
        dc_supply_draw_w([1.0, float("nan")], 0.8)
    with pytest.raises(DrawError):
        linear_driver_draw_w(13.0, 500.0, 12.0)  # an output above its rail
    assert resistive_heater_w([2.0, 3.0], [500.0, math.inf]) == pytest.approx(4.0 / 500.0)
    # EDFA: 1 mW in, 100 mW out; 99 mW added at 60 % conversion from a 30 % wall-plug pump + 2 W TEC
    assert edfa_pump_draw_w(0.1, 1e-3, 0.6, 0.3, 2.0) == pytest.approx(0.099 / 0.6 / 0.3 + 2.0)
    with pytest.raises(DrawError):
        edfa_pump_draw_w(1e-3, 0.1, 0.6, 0.3, 2.0)  # a loss is not gain
    assert linear_driver_draw_w([2.0, 3.0], [500.0, 1000.0], 12.0) == pytest.approx(12.0 * (2 / 500 + 3 / 1000))


def test_bench_files_may_set_the_draw_parameters_and_bad_values_are_refused():
    assert {"idle_power_w", "wall_plug_efficiency", "tec_power_w"} <= instrument_params("keysight.N7714A")
    assert {"idle_power_w", "efficiency"} <= instrument_params("keysight.N6700")
    assert {"dac_channel_power_w", "heater_rail_v"} <= instrument_params("labctl.OCC16")
    sim = bench({"pm": ("thorlabs.PM100", {"idle_power_w": 2.0})})
    assert sim.world.draws_w() == {"pm": 2.0}
    with pytest.raises(BenchFileError, match="idle_power_w"):
        bench({"pm": ("thorlabs.PM100", {"idle_power_w": 1.2 * USB2_BUS_POWER_W})})  # above the USB 2.0 budget
    with pytest.raises(BenchFileError, match="wall_plug_efficiency"):
        bench({"tls": ("santec.TSL570", {"wall_plug_efficiency": float("nan")})})
    with pytest.raises(BenchFileError, match="heater_rail_v"):
        bench({"occ": ("labctl.OCC16", {"heater_range_v": 20.0, "heater_rail_v": 12.0})})


# -- each instrument's draw follows its state -----------------------------------------------------------------


def test_tunable_laser_draw_follows_on_off_and_output_power():
    sim = bench({"tls": ("santec.TSL570", {"wall_plug_efficiency": 0.2, "tec_power_w": 1.5})})
    tls = sim.by_name["tls"]
    idle = tls.power_params["idle_power_w"]
    assert tls.electrical_power_w() == idle
    send(tls, ":POW:UNIT 1;:POW 10")  # 10 mW (the TSL-570's linear unit), still off
    assert tls.electrical_power_w() == idle
    send(tls, ":POW:STAT 1")
    no_errors(tls)
    assert tls.electrical_power_w() == pytest.approx(idle + 0.01 / 0.2 + 1.5)
    send(tls, ":POW 2")
    assert tls.electrical_power_w() == pytest.approx(idle + 0.002 / 0.2 + 1.5)


def test_four_port_laser_draws_per_lit_port():
    sim = bench({"las": ("keysight.N7714A", {})})
    las = sim.by_name["las"]
    p = las.power_params
    send(las, ":SOUR1:POW 10DBM;:SOUR1:POW:STAT ON;:SOUR3:POW 13DBM;:SOUR3:POW:STAT ON")
    no_errors(las)
    lit = 10 ** (10 / 10) * 1e-3 + 10 ** (13 / 10) * 1e-3
    expected = p["idle_power_w"] + lit / p["wall_plug_efficiency"] + 2 * p["tec_power_w"]
    assert las.electrical_power_w() == pytest.approx(expected)
    send(las, ":SOUR3:POW:STAT OFF")
    assert las.electrical_power_w() == pytest.approx(
        p["idle_power_w"] + 1e-2 / p["wall_plug_efficiency"] + p["tec_power_w"])


def test_dc_source_draws_its_heater_loads_v_squared_over_r_over_its_efficiency():
    sim = bench({"dc": ("keysight.N6700", {"efficiency": 0.8})},
                {"h1": {"type": "heater", "resistance_ohm": 500.0}, "h2": {"type": "heater", "resistance_ohm": 50.0}},
                ["dc.out1 -> h1.in", "dc.out2 -> h2.in"])
    dc = sim.by_name["dc"]
    idle = dc.power_params["idle_power_w"]
    send(dc, "VOLT 3,(@1);CURR 1,(@1);VOLT 5,(@2);CURR 0.05,(@2);VOLT 4,(@3);CURR 1,(@3)")
    no_errors(dc)
    assert dc.electrical_power_w() == idle  # outputs off
    send(dc, "OUTP ON,(@1:3)")
    no_errors(dc)
    # out1: CV, 3 V / 500 ohm; out2: CC at 50 mA (5 V / 50 ohm would be 100 mA): 2.5 V x 50 mA; out3 open: 0 A
    delivered = 3.0**2 / 500.0 + (0.05 * 50.0) * 0.05
    assert dc.electrical_power_w() == pytest.approx(idle + delivered / 0.8)
    send(dc, "VOLT 6,(@1)")
    assert dc.electrical_power_w() == pytest.approx(idle + (36.0 / 500.0 + 2.5 * 0.05) / 0.8)


def test_awg_scope_switch_bias_controller_and_meters_draw_by_state():
    sim = bench({"awg": ("keysight.M8195A", {}), "scope": ("keysight.Infiniium", {}),
                 "sw": ("dicon.MXS9100", {"modules": 2}), "mbx": ("thorlabs.MBX", {}),
                 "opm": ("keysight.N7744A", {"idle_power_w": 25.0})})
    awg, scope, sw, mbx, opm = (sim.by_name[n] for n in ("awg", "scope", "sw", "mbx", "opm"))
    a = awg.power_params
    assert awg.electrical_power_w() == a["idle_power_w"]
    send(awg, ":TRAC1:DEF 1,1280;:OUTP1 ON;:OUTP2 ON")
    no_errors(awg)
    assert awg.electrical_power_w() == pytest.approx(a["idle_power_w"] + 2 * a["output_power_w"])
    send(awg, ":INIT:IMM")
    no_errors(awg)
    assert awg.electrical_power_w() == pytest.approx(a["idle_power_w"] + a["running_power_w"] + 2 * a["output_power_w"])

    s = scope.power_params
    assert scope.electrical_power_w() == s["idle_power_w"] + s["acquiring_power_w"]  # *RST: running
    send(scope, ":STOP")
    assert scope.electrical_power_w() == s["idle_power_w"]

    w = sw.power_params
    assert sw.electrical_power_w() == w["idle_power_w"]  # parked
    send(sw, "ROUT1:SCAN 3;ROUT2:SCAN 5")
    assert sw.electrical_power_w() == pytest.approx(w["idle_power_w"] + 2 * w["module_hold_power_w"])

    m = mbx.power_params
    assert mbx.electrical_power_w() == m["idle_power_w"]
    send(mbx, "VOA:POWer 1")
    assert mbx.electrical_power_w() == m["idle_power_w"] + m["voa_power_w"]
    assert opm.electrical_power_w() == 25.0


# -- the World integrates -----------------------------------------------------------------------------------------


def test_energy_is_the_sum_of_power_times_time_over_a_sequence_of_state_changes():
    sim = bench({"tls": ("santec.TSL570", {"wall_plug_efficiency": 0.25, "tec_power_w": 2.0}),
                 "pm": ("thorlabs.PM100", {})})
    world, tls = sim.world, sim.by_name["tls"]
    idle, pm = tls.power_params["idle_power_w"], sim.by_name["pm"].power_params["idle_power_w"]
    assert world.energy_j() == 0.0
    world.time = 1.5  # off
    send(tls, ":POW:UNIT 1;:POW 8;:POW:STAT 1")  # mW
    world.time = 4.0  # on at 8 mW for 2.5 s
    send(tls, ":POW 4")
    world.advance(0.5)  # 4 mW for 0.5 s
    send(tls, ":POW:STAT 0")
    world.advance_to(10.0)  # off for 5.5 s
    world.advance_to(9.0)  # already later: nothing
    on8, on4 = idle + 0.008 / 0.25 + 2.0, idle + 0.004 / 0.25 + 2.0
    expected = idle * 1.5 + on8 * 2.5 + on4 * 0.5 + idle * 5.5
    assert world.time == 10.0
    assert world.energy_j(["tls"]) == pytest.approx(expected, rel=1e-12)
    assert world.energy_j("pm") == pytest.approx(pm * 10.0)
    assert world.energy_j() == pytest.approx(expected + pm * 10.0)
    assert world.draws_w() == {"tls": idle, "pm": pm}


def test_the_clock_never_goes_back_and_a_refused_step_adds_no_energy():
    sim = bench({"pm": ("thorlabs.PM100", {})})
    world = sim.world
    world.time = 2.0
    before = world.energy_j()
    for bad in (1.0, float("nan")):
        with pytest.raises(ClockError):
            world.time = bad
    with pytest.raises(ClockError):
        world.advance(-1e-9)
    assert world.time == 2.0 and world.energy_j() == before


def test_energy_of_a_passive_part_or_an_unknown_name_is_refused():
    sim = bench({"dc": ("keysight.N6700", {})}, {"h1": {"type": "heater"}}, ["dc.out1 -> h1.in"])
    with pytest.raises(WiringError, match="no electrical draw model"):
        sim.world.energy_j(["h1"])
    with pytest.raises(WiringError, match="not on the bench"):
        sim.world.energy_j(["nope"])


def test_instrument_measurements_advance_the_clock_and_their_energy_follows():
    sim = bench({"dc": ("keysight.N6700", {"measurement_time_s": 0.1, "efficiency": 0.5})},
                {"h1": {"type": "heater", "resistance_ohm": 100.0}}, ["dc.out1 -> h1.in"])
    world, dc = sim.world, sim.by_name["dc"]
    send(dc, "VOLT 2,(@1);CURR 1,(@1);OUTP ON,(@1)")
    for _ in range(3):
        send(dc, "MEAS:CURR? (@1)")
    assert world.time == pytest.approx(0.3)
    assert world.energy_j() == pytest.approx(0.3 * (dc.power_params["idle_power_w"] + 4.0 / 100.0 / 0.5))


def test_concurrent_clock_steps_from_threads_integrate_every_step_once():
    sim = bench({"pm": ("thorlabs.PM100", {"idle_power_w": 2.0})})
    world = sim.world

    def step():
        for _ in range(500):
            world.advance(1e-3)

    threads = [threading.Thread(target=step) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert world.time == pytest.approx(2.0)
    assert world.energy_j() == pytest.approx(4.0)


# -- the optical core controller -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def occ_config() -> dict:
    return core_config(load_bench_file(BENCH))


def test_occ_draws_idle_rails_held_heaters_and_converters_while_a_program_runs(occ_config):
    core = Core(occ_config)
    occ, world = core.occ, core.world
    p = occ.power_params
    ohms = np.array([[world.load_on(occ.name, f"heater{q}_{k}") for k in range(1, occ.n_in + 1)]
                     for q in range(1, occ.n_out + 1)])
    assert np.isfinite(ohms).any(), "the bench's heater outputs drive ring heaters"
    assert occ.electrical_power_w() == p["idle_power_w"]  # outputs off
    core.write_ok(":OUTP ON;:SYMB:RATE 1GHZ;:TILE:SETT 20US")
    t, s = 2, 100
    volts = tiles(t, 0.0)
    volts[0] = 1.0
    volts[1] = 2.0
    lsb = occ.heater_range_v / 2**occ.heater_dac_bits
    levels = np.round(volts / lsb) * lsb  # what the heater DACs apply
    rail = p["heater_rail_v"]
    row_w = [rail * np.sum(np.where(np.isinf(ohms), 0.0, levels[i] / ohms)) for i in range(t)]
    converters = occ.n_in * p["dac_channel_power_w"] + occ.n_out * (p["adc_channel_power_w"] + p["tia_channel_power_w"])
    start, e0 = world.time, world.energy_j([occ.name])
    core.run(volts, zero_codes(t, s))
    duration = t * (20e-6 + s / 1e9)
    assert world.time - start == pytest.approx(duration, rel=1e-9)
    running = p["idle_power_w"] + converters + np.mean(row_w)
    assert world.energy_j([occ.name]) - e0 == pytest.approx(running * duration, rel=1e-9)
    # afterwards: the heaters hold the last row
    held = p["idle_power_w"] + row_w[-1]
    assert occ.electrical_power_w() == pytest.approx(held)
    e1 = world.energy_j([occ.name])
    world.advance(0.25)
    assert world.energy_j([occ.name]) - e1 == pytest.approx(held * 0.25)
    core.write_ok(":OUTP OFF")
    assert occ.electrical_power_w() == p["idle_power_w"]


def test_parallel_cores_each_count_their_program_whoever_moves_the_clock():
    """Two controllers run programs from two threads on one world: each program's converter draw is
    counted over its own span of the clock, whether the runs overlap or one core moved the clock past
    the other's program before that one finished (heaters at 0 V, so nothing depends on the order)."""
    from tests.sim.test_labctl_occ import two_core_config

    config = two_core_config(load_bench_file(BENCH))
    sim = build_bench(config, seed=5)
    cores = [Core(config, index=i, sim=sim) for i in (0, 1)]
    world = sim.world
    t, s = 2, 256
    for core in cores:
        core.write_ok(":OUTP ON;:SYMB:RATE 1GHZ;:TILE:SETT 20US")
    start = world.time
    before = [world.energy_j([c.occ.name]) for c in cores]
    workers = [threading.Thread(target=c.run, args=(tiles(t, 0.0), zero_codes(t, s))) for c in cores]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    duration = t * (20e-6 + s / 1e9)
    elapsed = world.time - start
    assert elapsed == pytest.approx(duration, rel=1e-9) or elapsed == pytest.approx(2 * duration, rel=1e-9)
    for core, e0 in zip(cores, before):
        p = core.occ.power_params
        converters = core.occ.n_in * p["dac_channel_power_w"] + core.occ.n_out * (
            p["adc_channel_power_w"] + p["tia_channel_power_w"])
        assert world.energy_j([core.occ.name]) - e0 == pytest.approx(
            p["idle_power_w"] * elapsed + converters * duration, rel=1e-9)
