"""The unchanged WT310E driver against the simulated WT310E wired (bench file) to a laser and a power meter.

What the meter reads is the World's: P is the summed draw of the instruments it measures, the integral
is the World's energy of those instruments over the same stretch of simulated clock, checked against a
hand computation for a laser switched on and off. Bad SCPI gets the manual's positive error codes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import labctl

from drivers.errors import InstrumentError
from drivers.keysight.n7714a import KeysightN7714A
from drivers.yokogawa.wt310e import YokogawaWT310E
from labctl.instruments import PowerAnalyzer
from sim_backends.bench import BenchFileError
from sim_backends.highlevel import LabSimVisaLibrary
from sim_backends.world import WiringError, World

pytestmark = pytest.mark.skipif(not hasattr(World, "energy_j"),
                                reason="the World does not integrate electrical draws yet (draws_w/energy_j)")

BENCH = Path(__file__).parent / "benches" / "wt310e_bench.yaml"
WT = "USB0::0x0B21::0x0025::C2XA00001::INSTR"
LASER = "TCPIP0::laser.labsim::inst0::INSTR"
MEASURED = ("laser", "opm")
# The laser's draw parameters as the bench file sets them.
LASER_IDLE_W, WALL_PLUG, TEC_W = 30.0, 0.1, 1.0
# The meter answers WH with 6 significant digits and P with 5.
WH_REL, P_REL = 1e-5, 1e-4


def config(**wt_fields):
    """The test bench as data, with fields of the meter's entry replaced."""
    cfg = yaml.safe_load(BENCH.read_text())
    cfg["instruments"]["wt"].update(wt_fields)
    return cfg


@pytest.fixture
def lib():
    return LabSimVisaLibrary.from_config(config(), seed=1)


@pytest.fixture
def wt(lib, open_sim):
    return open_sim(YokogawaWT310E, lib, WT)


@pytest.fixture
def laser(lib, open_sim):
    return open_sim(KeysightN7714A, lib, LASER)


def measured_draw_w(world):
    draws = world.draws_w()
    return sum(draws[n] for n in MEASURED)


def codes(wt, message):
    """Send one raw message and return the error codes it left, read with :STATus:ERRor?."""
    wt.write(message)
    try:
        wt.check_errors()
    except InstrumentError as exc:
        return exc.codes
    return []


# -- identity and role -----------------------------------------------------------------------------


def test_identity_and_role(wt):
    maker, model, serial, firmware = wt.id.split(",")
    assert (maker, model) == ("YOKOGAWA", "WT310E") and serial and firmware
    assert isinstance(wt, PowerAnalyzer)


def test_the_meter_draws_its_own_idle_power_and_is_on_the_worlds_books(lib):
    assert lib.world.draws_w()["wt"] == 50.0


# -- what it measures ------------------------------------------------------------------------------


def test_power_is_the_summed_draw_of_the_measured_instruments_only(lib, wt, laser):
    world = lib.world
    dark = wt.measure_power()
    assert dark == pytest.approx(measured_draw_w(world), rel=P_REL)
    assert dark != pytest.approx(measured_draw_w(world) + world.draws_w()["dc"], rel=P_REL)
    laser.ch_1.power = 10e-3
    laser.ch_1.output_enabled = True
    lit = wt.measure_power()
    assert lit == pytest.approx(measured_draw_w(world), rel=P_REL)
    assert lit - dark == pytest.approx(10e-3 / WALL_PLUG + TEC_W, rel=1e-3)


def test_integrated_energy_equals_the_worlds_energy_over_the_same_interval(lib, wt, laser):
    world = lib.world
    world.time += 3.0  # energy drawn before the start is not counted
    wt.reset_integration()
    e0, t0 = world.energy_j(MEASURED), world.time
    wt.start_integration()
    world.time += 20.0
    laser.ch_2.power = 5e-3
    laser.ch_2.output_enabled = True
    world.time += 40.0
    laser.ch_2.output_enabled = False
    world.time += 7.5
    wt.stop_integration()
    e1, t1 = world.energy_j(MEASURED), world.time
    world.time += 100.0  # held after the stop
    assert wt.integration_state == "stopped"
    assert wt.integrated_energy() == pytest.approx(e1 - e0, rel=WH_REL)
    assert wt.integration_time() == int(t1 - t0)
    assert e1 - e0 > 0


def test_hand_computed_energy_of_a_laser_switched_on_then_off(lib, wt, laser):
    """31.1 W while lit at 10 mW (30 W idle + 10 mW / 0.1 + 1 W TEC), 30 W dark, plus the PM100's draw."""
    world = lib.world
    opm_w = world.draws_w()["opm"]
    wt.start_integration()
    t_start = world.time
    laser.ch_1.power = 10e-3
    laser.ch_1.output_enabled = True
    t_on = world.time
    world.time += 100.0
    laser.ch_1.output_enabled = False
    t_off = world.time
    world.time += 50.0
    wt.stop_integration()
    t_stop = world.time
    lit_w = LASER_IDLE_W + 10e-3 / WALL_PLUG + TEC_W
    expected = (LASER_IDLE_W * (t_on - t_start) + lit_w * (t_off - t_on) + LASER_IDLE_W * (t_stop - t_off)
                + opm_w * (t_stop - t_start))
    assert lit_w == pytest.approx(31.1)
    assert wt.integrated_energy() == pytest.approx(expected, rel=WH_REL)
    assert wt.integration_time() == int(t_stop - t_start)


def test_stop_holds_and_start_resumes(lib, wt):
    world = lib.world
    p = measured_draw_w(world)
    wt.start_integration()
    world.time += 10.0
    wt.stop_integration()
    world.time += 30.0
    held = wt.integrated_energy()
    assert held == pytest.approx(10.0 * p, rel=WH_REL)
    wt.start_integration()
    world.time += 5.0
    assert wt.integrated_energy() == pytest.approx(15.0 * p, rel=WH_REL)
    assert wt.integration_time() == 15.0
    wt.stop_integration()
    wt.reset_integration()
    assert wt.integration_state == "reset"
    assert wt.integrated_energy() == 0.0 and wt.integration_time() == 0.0


def test_timer_cannot_change_while_integrating_and_time_up_needs_a_reset(lib, wt):
    wt.integration_timer = 10
    wt.start_integration()
    with pytest.raises(InstrumentError) as err:
        wt.integration_timer = 20
    assert err.value.codes == [221]
    lib.world.time += 15.0
    assert wt.integration_state == "timeup"
    with pytest.raises(InstrumentError) as err:
        wt.start_integration()
    assert err.value.codes == [221]
    wt.reset_integration()
    wt.start_integration()
    assert wt.integration_state == "running"


def test_normal_mode_timer_stops_the_integration_at_time_up(lib, wt):
    world = lib.world
    p = measured_draw_w(world)
    wt.integration_mode = "normal"
    wt.integration_timer = 60
    assert wt.integration_timer == 60.0
    wt.start_integration()
    world.time += 100.0
    assert wt.integration_state == "timeup"
    assert wt.integration_time() == 60.0
    assert wt.integrated_energy() == pytest.approx(60.0 * p, rel=WH_REL)


# -- refused states and bad SCPI: the manual's codes -------------------------------------------------


def test_start_while_running_and_reset_while_running_are_setting_conflicts(wt):
    wt.start_integration()
    with pytest.raises(InstrumentError) as err:
        wt.start_integration()
    assert err.value.codes == [221]
    with pytest.raises(InstrumentError) as err:
        wt.reset_integration()
    assert err.value.codes == [221]
    wt.stop_integration()
    with pytest.raises(InstrumentError) as err:
        wt.stop_integration()
    assert err.value.codes == [221]


@pytest.mark.parametrize("message, code", [
    (":INTEG:FOO", 113),  # Undefined header
    (":SYST:ERR?", 113),  # the WT310E reads its queue with :STATus:ERRor? only
    (":INTEG:TIM 1,2", 109),  # Missing parameter
    (":INTEG:STAR 1", 108),  # Parameter not allowed
    (":NUM:NORM:ITEM1 P,2", 222),  # one input element
    (":NUM:NORM:ITEM256 P", 114),  # Header suffix out of range
    (":INTEG:MODE SOMETIMES", 224),  # Illegal parameter value
    (":INTEG:MODE CONT", 221),  # repeating integration is not simulated
])
def test_bad_scpi_gets_the_manuals_positive_codes(wt, message, code):
    assert codes(wt, message) == [code]


def test_error_queue_reads_positive_codes_with_their_message(wt):
    wt.write(":INTEG:FOO")
    assert wt.ask(":STAT:ERR?").startswith('113,"Undefined header')
    assert wt.ask(":STAT:ERR?") == '0,"No error"'


def test_items_the_simulation_does_not_model_answer_nan(wt):
    assert wt.ask(":NUM:NORM:ITEM5 U,1;:NUM:NORM:VAL? 5").strip() == "NAN"
    assert wt.ask(":NUM:NORM:ITEM5?").strip() == "U,1"


# -- bench file ------------------------------------------------------------------------------------


def test_a_measured_name_not_on_the_bench_is_refused():
    with pytest.raises(WiringError, match="instruments.wt.measures: no bench item named 'nosuch'"):
        LabSimVisaLibrary.from_config(config(measures=["laser", "nosuch"]))


def test_a_passive_part_cannot_be_measured():
    cfg = config(measures=["laser", "span"])
    cfg["components"] = {"span": {"type": "fibre", "length_km": 1.0}}
    with pytest.raises(WiringError, match="'span' draws no electrical power"):
        LabSimVisaLibrary.from_config(cfg)


@pytest.mark.parametrize("measures, words", [
    (["wt"], "own supply"),
    (["laser", "laser"], "twice"),
    ("laser", "list of bench item names"),
    ([3], "list of bench item names"),
])
def test_bad_wiring_is_refused_naming_the_field(measures, words):
    with pytest.raises(BenchFileError, match=words) as err:
        LabSimVisaLibrary.from_config(config(measures=measures))
    assert err.value.field == "instruments.wt.measures"


def test_measures_under_sim_params_is_refused_saying_where_it_goes():
    cfg = config()
    cfg["instruments"]["wt"]["sim"]["params"]["measures"] = cfg["instruments"]["wt"].pop("measures")
    with pytest.raises(BenchFileError, match="move it up to instruments.wt.measures") as err:
        LabSimVisaLibrary.from_config(cfg)
    assert err.value.field == "instruments.wt.sim.params.measures"


def test_only_a_power_analyzer_model_takes_measures():
    cfg = config()
    cfg["instruments"]["opm"]["measures"] = ["laser"]
    with pytest.raises(BenchFileError, match="only a power analyzer") as err:
        LabSimVisaLibrary.from_config(cfg)
    assert err.value.field == "instruments.opm.measures"


# -- through labctl: the bench file's role, the safety guard and the snapshot -------------------------


def test_labctl_opens_the_meter_in_its_role_and_reads_a_laser_through_the_guard():
    with labctl.open_bench(BENCH, seed=1) as bench:
        wt, laser = bench.role("wt"), bench.role("laser", 1)
        assert isinstance(wt, PowerAnalyzer)
        dark = wt.measure_power()
        wt.reset_integration()
        wt.start_integration()
        laser.power = 10e-3
        laser.output_enabled = True
        bench.settle(10.0)
        lit = wt.measure_power()
        wt.stop_integration()
        assert lit - dark == pytest.approx(10e-3 / WALL_PLUG + TEC_W, rel=1e-3)
        assert wt.integration_time() == 10.0
        assert wt.integrated_energy() == pytest.approx(10.0 * lit, rel=WH_REL)
        snap = bench.snapshot()["instruments"]["wt"]
        assert snap["role"] == "power_analyzer" and snap["integration_timer"] == 0.0
