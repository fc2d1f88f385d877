"""The shared driver helpers: unit conversions (also labctl's), validators, SCPI numbers and channel lists."""

import math

import numpy as np
import pytest

import labctl.units
from drivers.base import in_integer_range
from drivers.errors import ValueOutOfRange
from drivers.keysight.n7714a import KeysightN7714ALaser
from drivers.laser import TunableLaserSI
from drivers.santec.tsl570 import SantecTSL570
from drivers.scpi import channel_list, format_number, grouped_message
from drivers.units import dbm_to_w, from_si, to_si, w_to_dbm


def test_dbm_watt_helpers_are_inverse():
    for dbm in (-10.0, 0.0, 6.0, 13.5):
        assert w_to_dbm(dbm_to_w(dbm)) == pytest.approx(dbm)
    assert dbm_to_w(0.0) == pytest.approx(1e-3)
    assert math.isclose(w_to_dbm(10e-3), 10.0)
    assert w_to_dbm(0.0) == -math.inf


def test_scalars_give_floats_and_arrays_give_arrays():
    assert type(dbm_to_w(3)) is float
    watts = dbm_to_w(np.array([0.0, 10.0]))
    assert isinstance(watts, np.ndarray)
    np.testing.assert_allclose(watts, [1e-3, 1e-2])


def test_labctl_converts_with_the_drivers_code():
    assert labctl.units.dbm_to_w is dbm_to_w
    assert labctl.units.w_to_dbm is w_to_dbm
    assert labctl.units.to_si is to_si


@pytest.mark.parametrize("value, unit, si", [(3.0, "dBm", 1.9952623149688795e-3), (2.5, "mW", 2.5e-3),
                                             (4.0, "W", 4.0), (250.0, "mV", 0.25), (1.5, "uA", 1.5e-6)])
def test_to_si_and_back(value, unit, si):
    assert to_si(value, unit) == pytest.approx(si, rel=1e-12)
    assert from_si(si, unit) == pytest.approx(value, rel=1e-12)


def test_an_unknown_unit_is_refused():
    with pytest.raises(KeyError):
        to_si(1.0, "furlong")


def test_both_laser_drivers_take_the_shared_si_adapter():
    assert issubclass(KeysightN7714ALaser, TunableLaserSI)
    assert issubclass(SantecTSL570, TunableLaserSI)
    # the adapter's SI members win over the pymeasure TSL570's device-unit ones of the same name
    assert SantecTSL570.power is TunableLaserSI.power
    assert SantecTSL570.frequency is TunableLaserSI.frequency


@pytest.mark.parametrize("value, text", [(1.5, "1.5"), (1.234567891e9, "1234567891"), (-0.1, "-0.1"),
                                         (1550.1234e-9, "1.5501234e-06"), (0.0, "0")])
def test_numbers_keep_ten_significant_digits(value, text):
    assert format_number(value) == text


def test_channel_list_runs():
    assert channel_list([4, 1, 2, 3]) == "(@1:4)"
    assert channel_list([1, 3]) == "(@1,3)"
    assert channel_list([1, 2, 4]) == "(@1,2,4)"
    with pytest.raises(ValueError):
        channel_list([])


def test_grouped_message_shares_a_channel_list_per_value_in_channel_order():
    texts = {4: "2", 1: "1.5", 2: "1.5", 3: "1.5", 5: "1.5"}
    assert grouped_message("VOLT", texts) == "VOLT 1.5,(@1:3,5);VOLT 2,(@4)"


def test_lengths_and_frequencies_convert_by_exact_powers_of_ten():
    assert from_si(1550.1234e-9, "nm") == 1550.1234e-9 * 1e9
    assert to_si(1550.1234, "nm") == 1550.1234 * 1e-9
    assert to_si(193.1, "THz") == pytest.approx(193.1e12, rel=1e-15)
    assert from_si(2e-3, "mW") == 2e-3 * 1e3


@pytest.mark.parametrize("value", [0, 7, 3.0, np.int64(5), np.float32(2.0)])
def test_integer_validator_accepts_whole_numbers_as_int(value):
    accepted = in_integer_range(value, (0, 10))
    assert accepted == value and type(accepted) is int


@pytest.mark.parametrize("value", [2.5, True, "3", None, math.nan, math.inf, 11, -1])
def test_integer_validator_refuses_fractions_bools_non_numbers_and_out_of_range(value):
    with pytest.raises(ValueOutOfRange):
        in_integer_range(value, (0, 10))
