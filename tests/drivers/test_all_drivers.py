"""Meta-tests over every registered driver, in the manner of pymeasure's own suite.

Each driver builds on a protocol adapter without sending anything, accepts ``name`` and forwards
kwargs, documents its properties with the house verbs, and its instrument or channel class carries
every member of the role Protocol it implements.
"""

import inspect

import pytest
from pymeasure.adapters import ProtocolAdapter
from pymeasure.instruments import Channel, Instrument

from drivers import DRIVERS, load_driver
from labctl.instruments import (
    ArbitraryWaveformGenerator,
    AWGChannel,
    BiasController,
    DCSourceChannel,
    OpticalCoreController,
    OpticalPowerMeter,
    OpticalSwitch,
    Oscilloscope,
    PowerAnalyzer,
    TunableLaser,
    protocol_members,
)

#: Which Protocol the instrument class and the channel class of each driver implement.
ROLE_CLASSES = {
    "keysight.N7714A": (None, TunableLaser),
    "santec.TSL570": (TunableLaser, None),
    "keysight.N7744A": (None, OpticalPowerMeter),
    "keysight.N7745A": (None, OpticalPowerMeter),
    "thorlabs.PM100": (OpticalPowerMeter, None),
    "keysight.M8195A": (ArbitraryWaveformGenerator, AWGChannel),
    "keysight.Infiniium": (Oscilloscope, None),
    "thorlabs.MBX": (BiasController, None),
    "keysight.N6700": (None, DCSourceChannel),
    "dicon.MXS9100": (OpticalSwitch, None),
    "labctl.OCC16": (OpticalCoreController, None),
    "yokogawa.WT310E": (PowerAnalyzer, None),
}
VERBS = ("Control", "Measure", "Get", "Set")


def build(name):
    return load_driver(name)(ProtocolAdapter(), name=f"test {name}")


def test_every_driver_has_a_role_mapping():
    assert set(ROLE_CLASSES) == set(DRIVERS)


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_driver_builds_without_communication_and_takes_a_name(name):
    instrument = build(name)
    assert isinstance(instrument, Instrument)
    assert instrument.name == f"test {name}"


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_driver_init_forwards_kwargs(name):
    signature = inspect.signature(load_driver(name).__init__)
    kinds = {p.kind for p in signature.parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD in kinds
    assert "name" in signature.parameters


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_role_protocol_members_exist(name):
    instrument = build(name)
    instrument_protocol, channel_protocol = ROLE_CLASSES[name]
    if instrument_protocol is not None:
        missing = [m for m in protocol_members(instrument_protocol) if not hasattr(type(instrument), m)]
        assert not missing, f"{name} lacks {missing} of {instrument_protocol.__name__}"
    if channel_protocol is not None:
        channels = list(getattr(instrument, "channels", {}).values())
        assert channels, f"{name} declares no channels"
        for channel in channels:
            missing = [m for m in protocol_members(channel_protocol) if not hasattr(type(channel), m)]
            assert not missing, f"{name} channel lacks {missing} of {channel_protocol.__name__}"


def _own_properties(cls):
    """pymeasure properties defined in labctl's own driver modules (not inherited from pymeasure)."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("drivers."):
            continue
        for attr, value in vars(klass).items():
            if isinstance(value, property) and value.fget is not None and getattr(value.fget, "__module__", "").startswith("pymeasure"):
                yield klass, attr, value


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_property_docstrings_start_with_a_house_verb(name):
    instrument = build(name)
    classes = [type(instrument)] + [type(c) for c in getattr(instrument, "channels", {}).values()]
    bad = []
    for cls in classes:
        for klass, attr, prop in _own_properties(cls):
            doc = (prop.__doc__ or "").strip()
            if not doc.startswith(VERBS):
                bad.append(f"{klass.__name__}.{attr}: {doc[:40]!r}")
    assert not bad, "docstrings must start with Control/Measure/Get/Set: " + "; ".join(bad)


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_channels_are_lab_channels_sharing_the_instrument_lock(name):
    instrument = build(name)
    for channel in getattr(instrument, "channels", {}).values():
        assert isinstance(channel, Channel)
        assert channel._resource_lock() is instrument.lock
