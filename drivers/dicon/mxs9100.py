"""DiCon MXS-9100 rackmount optical switch (MEMS 1xN switch modules behind one SCPI interface).

Command reference: *MXS-9100 Optical Switch Rackmount Operation Manual*, DiCon Fiberoptics,
document 91592 Rev. A2 (June 21, 2019), chapter "Remote Commands":

* conventions (p. 17): lower-case letters optional (``ROUTE2:OPEN:STATE?`` = ``ROUT2:OPEN:STAT?``);
  commands do not reply unless noted; **commands and replies end with a carriage return**
  (ASCII 13); several commands may be joined with ``;``; the part of a header up to its last
  colon is remembered for the next command;
* ``ROUTe<n>:SCAN <m>`` connects input channel (switch module) ``n`` to output ``m``;
  ``ROUTe<n>:SCAN?`` returns ``m``; ``ROUTe<n>:SCAN:NEXT`` steps to the next output;
  ``ROUTe<n>:OPEN`` parks the module (no optical continuity) and ``ROUTe<n>:OPEN:STATe?`` reports
  it (p. 17 example);
* ``STATus?`` -> ``READY``/``BUSY``/... (p. 22), sent as ``:STAT?``: after ``ROUT<n>:OPEN:STAT?``
  the remembered path would turn a bare ``STAT?`` into ``ROUT<n>:OPEN:STAT?`` (p. 17: a leading
  colon avoids the ambiguity); ``SYSTem:ERRor?`` -> code and description, queue
  of 8 entries, full queue drops new errors (p. 22); IEEE 488.2 ``*IDN?`` -> ``DiCon Fiberoptics
  Inc, MG4, <serial>, <revision>``, ``*OPC?``, ``*RST`` (= ``*RCL 0``: every input parked),
  ``*RCL``/``*SAV``, ``*STB?``, ``*TST?``, ``*WAI`` (pp. 23-25).

Every setting is followed by a ``SYST:ERR?`` poll (``check_set_errors=True``); a rejected route
raises :class:`~drivers.errors.InstrumentError` (``-222`` for an output outside the module,
``-114`` for a module that does not exist).

Role: :class:`labctl.instruments.OpticalSwitch` on the instrument object: ``route`` (output
1..``port_count`` of the selected module; 0 when parked) and ``port_count``. The module (``n``)
defaults to 1 (one 1xN module); pass ``module=`` to address another one, or use
``switch.modules[n]`` after ``add_module(n)``.
"""

from __future__ import annotations

from pymeasure.instruments import Instrument

from drivers.base import LabChannel, LabInstrument, in_integer_range
from drivers.errors import ValueOutOfRange
from drivers.limits import CHILD, RAW, READ, SET

__all__ = ["DiConMXS9100", "DiConSwitchModule", "MODULE_STATUS"]

#: ``STATus?`` replies (manual p. 22, table 1).
MODULE_STATUS = ("UNINITIALIZED", "INITINPROGRESS", "READY", "BUSY", "DISCONNECTED", "DEFECTIVE",
                 "UNCONFIGURED")


class DiConSwitchModule(LabChannel):
    """One 1xN switch module (input channel ``n`` of ``ROUTe<n>``)."""

    # A passive switch: it routes light, it cannot add any.
    safety_members = {"route": SET, "is_open": READ, "port_count": READ, "next": SET, "open": SET}

    route = Instrument.control(
        "ROUT{ch}:SCAN?",
        "ROUT{ch}:SCAN %d",
        """Control the output the common port is connected to (int, 1..port_count; reads 0 when
        the module is parked).""",
        validator=in_integer_range,
        values=(1, 8),
        cast=int,
        dynamic=True,
        check_set_errors=True,
    )

    is_open = Instrument.measurement(
        "ROUT{ch}:OPEN:STAT?",
        """Get whether the module is parked (open, no optical continuity) (bool).""",
        cast=int,
        get_process=lambda v: bool(v),
    )

    def __init__(self, parent, id, port_count: int = 8, **kwargs):
        super().__init__(parent, id, **kwargs)
        self.port_count = port_count

    @property
    def port_count(self) -> int:
        """Get the number of switched outputs of this module (int)."""
        return self._port_count

    @port_count.setter
    def port_count(self, count: int) -> None:
        if isinstance(count, bool) or int(count) != count or count < 1:
            raise ValueOutOfRange(f"port_count must be a positive integer, got {count!r}")
        self._port_count = int(count)
        self.route_values = (1, self._port_count)

    def next(self) -> None:
        """Step to the next output (``ROUT<n>:SCAN:NEXT``)."""
        self.write(f"ROUT{self.id}:SCAN:NEXT")
        self.check_set_errors()

    def open(self) -> None:
        """Park the module: the common port goes to no output (``ROUT<n>:OPEN``)."""
        self.write(f"ROUT{self.id}:OPEN")
        self.check_set_errors()


class DiConMXS9100(LabInstrument):
    """DiCon MXS-9100 optical switch, satisfying the ``OpticalSwitch`` role.

    .. code-block:: python

        switch = DiConMXS9100("TCPIP0::switch.lab::inst0::INSTR", port_count=8)
        switch.route = 3          # ROUT1:SCAN 3
        switch.wait_for_switch()  # *OPC? returns once the mirror has settled
    """

    safety_members = {
        "route": SET, "port_count": READ, "park": SET, "wait_for_switch": READ, "status": READ,
        "module": CHILD, "modules": CHILD, "add_module": RAW,
        **{f"module_{n}": CHILD for n in range(1, 33)},
    }

    status = Instrument.measurement(
        ":STAT?",
        """Get the module status (str: READY, BUSY, UNINITIALIZED, INITINPROGRESS, DISCONNECTED,
        DEFECTIVE or UNCONFIGURED).""",
        cast=str,
    )

    def __init__(self, adapter, name="DiCon MXS-9100 optical switch", module: int = 1,
                 port_count: int = 8, **kwargs):
        kwargs.setdefault("write_termination", "\r")
        kwargs.setdefault("read_termination", "\r")
        kwargs.setdefault("timeout", 2000)
        super().__init__(adapter, name, **kwargs)
        if isinstance(module, bool) or int(module) != module or module < 1:
            raise ValueOutOfRange(f"module must be a positive integer, got {module!r}")
        self.modules = {}
        self._module = int(module)
        self.add_module(self._module, port_count)

    def add_module(self, module: int, port_count: int = 8) -> DiConSwitchModule:
        """Add (without any communication) and return the channel of switch module ``module``."""
        channel = self.add_child(DiConSwitchModule, int(module), collection="channels",
                                 prefix="module_", port_count=port_count)
        self.modules[int(module)] = channel
        return channel

    @property
    def module(self) -> DiConSwitchModule:
        """Get the switch module the role members address (:class:`DiConSwitchModule`)."""
        return self.modules[self._module]

    # -- OpticalSwitch role --------------------------------------------------------------------------

    @property
    def route(self) -> int:
        """Control the output (1..port_count) the common port connects to; 0 when parked."""
        return self.module.route

    @route.setter
    def route(self, port: int) -> None:
        self.module.route = port

    @property
    def port_count(self) -> int:
        """Get the number of switched outputs of the selected module (int)."""
        return self.module.port_count

    def wait_for_switch(self) -> None:
        """Block until pending switching is complete (``*OPC?`` answers ``1``)."""
        self.ask("*OPC?")

    def park(self) -> None:
        """Park the selected module: no output receives light (``ROUT<n>:OPEN``)."""
        self.module.open()
