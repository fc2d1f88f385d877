"""Driver errors are labctl errors: one ``except labctl.LabctlError`` catches what a driver raises."""

import pytest

import labctl
from drivers.errors import DriverError, InstrumentError, MalformedReply, ValueOutOfRange
from labctl import errors


def test_driver_errors_share_labctls_root_class():
    assert errors.LabctlError is labctl.LabctlError
    for cls in (DriverError, InstrumentError, MalformedReply, ValueOutOfRange):
        assert issubclass(cls, labctl.LabctlError), cls


def test_a_value_a_driver_refuses_is_caught_as_a_labctl_error():
    with labctl.open_bench("characterisation") as bench:
        laser = bench.role("laser", 1)
        with pytest.raises(labctl.LabctlError) as caught:
            laser.wavelength = 2000e-9  # outside the N7714A's C band: the driver's validator refuses it
        assert isinstance(caught.value, ValueOutOfRange)
        assert laser.wavelength != pytest.approx(2000e-9)


def test_an_error_the_instrument_reports_is_caught_as_a_labctl_error():
    with labctl.open_bench("characterisation") as bench:
        with pytest.raises(labctl.LabctlError) as caught:
            bench.raw("laser").write(":SOUR1:BOGUS 1")
        assert isinstance(caught.value, InstrumentError)
        assert caught.value.codes == [-113]
