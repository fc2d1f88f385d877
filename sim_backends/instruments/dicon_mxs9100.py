"""Simulated DiCon MXS-9100 optical switch: MEMS 1xN modules with loss, crosstalk and switching time.

Command set: *MXS-9100 Optical Switch Rackmount Operation Manual*, DiCon Fiberoptics, 91592
Rev. A2 (June 21, 2019), chapter "Remote Commands":

* ``ROUTe<n>:SCAN <m>`` (connect module/input ``n`` to output ``m``; ``m = 0`` parks, as ``*RST``
  = ``*RCL 0`` "output channel 0 (parked, no optical continuity)", p. 24), ``ROUTe<n>:SCAN?``,
  ``ROUTe<n>:SCAN:NEXT`` (next output, wrapping from N to 1), ``ROUTe<n>:OPEN`` (park),
  ``ROUTe<n>:OPEN:STATe?`` (1 = parked);
* ``STATus?`` (``READY``, ``BUSY`` while a mirror moves), ``SYSTem:ERRor?`` (``<code>,
  "<description>"``; queue of 8, a full queue drops new errors, p. 22), ``SYSTem:VERSion?``;
  ``*IDN?`` -> ``DiCon Fiberoptics Inc, MG4, <serial>, <revision>`` (p. 23), ``*RST``, ``*RCL``,
  ``*SAV``, ``*OPC?`` (returns once switching has completed, so it advances the clock to that
  moment), ``*STB?``, ``*TST?``, ``*WAI``, ``WEN``/``WEN?``, ``QCT?`` (pp. 24-25).
* Conventions (p. 17): commands and replies end with <CR>; several commands per line with ``;``;
  the header up to its last colon is remembered **across** lines, so ``ROUT6:SCAN 2`` then
  ``SCAN?`` works (a header that does not resolve under the remembered path is tried as absolute;
  a leading ``:`` discards the remembered path). Replies with several items separate them with a
  comma and a space.

Physics (ports: optical in ``in`` = the common port of module 1; optical outs ``out1``..``outN``):
the routed output carries the input light times the insertion loss, every other output the
crosstalk level; a parked module routes nowhere (crosstalk on every output). After a route change
at ``world.time`` = t0, for t0 <= t < t0 + switching time every output is dark (crosstalk only);
for t < t0 the previous route holds. Other modules (``modules`` > 1) are addressable but unwired.

Parameters (``sim.params``), typical figures of DiCon's MEMS 1xN switch modules (†: commonly
published datasheet values, not re-verified; PHYSICS.md table 2 "Optical switch: MEMS 1xN IL
<= 2 dB, switching 1-25 ms, isolation 50-60 dB"):

* ``ports`` 8 (outputs per module, 1..64); ``modules`` 1;
* ``insertion_loss_db`` 0.8 dB † (DiCon MEMS 1xN: <= 1.0 dB typ. class);
* ``crosstalk_db`` 55 dB † (isolation of non-selected outputs, DiCon MEMS 1xN: >= 55 dB);
* ``switching_time_s`` 10e-3 s † (DiCon MEMS 1xN: <= 10 ms class).
"""

from __future__ import annotations

import math

import numpy as np

from sim_backends.datasheets import datasheet_idle_w
from sim_backends.instrument import ESR_OPC, SimInstrument
from sim_backends.physics.validation import param
from sim_backends.scpi import Call, CommandTree, ScpiError, split_message
from sim_backends.world import OPTICAL_IN, OPTICAL_OUT

ERROR_QUEUE_SIZE = 8
REGISTERS = 10  # *SAV/*RCL registers 0..9 (0 = all parked)


class SimDiConMXS9100(SimInstrument):
    """DiCon MXS-9100 with MEMS 1xN modules (see module docstring)."""

    MODEL = "dicon.MXS9100"
    IDN = ("DiCon Fiberoptics Inc", "MG4", "2.1.0")
    TERMINATION = b"\r"
    PORTS = {"in": OPTICAL_IN}
    #: Electrical draw (W). The MXS chassis (controller, supply) idles at ``idle_power_w``, by default
    #: this model's entry in ``sim_backends.datasheets`` (assumed); a MEMS module holding its mirror off
    #: the park position drives it with ~0.5 W (assumed).
    POWER = {"idle_power_w": (datasheet_idle_w(MODEL), 0.0, 1e4), "module_hold_power_w": (0.5, 0.0, 100.0)}
    PARAMS = frozenset({"ports", "modules", "insertion_loss_db", "crosstalk_db", "switching_time_s"}) | frozenset(POWER)

    def __init__(self, name, world, params=None, serial=""):
        params = dict(params or {})
        known = self.PARAMS
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"unknown MXS-9100 parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        ports = param(params, "ports", 8, 1, 64)
        modules = param(params, "modules", 1, 1, 32)
        if ports != int(ports) or modules != int(modules):
            raise ValueError("ports and modules must be integers")
        self.port_total = int(ports)
        self.module_total = int(modules)
        self.insertion_loss_db = param(params, "insertion_loss_db", 0.8, 0.0, 20.0)
        self.crosstalk_db = param(params, "crosstalk_db", 55.0, 0.0, 120.0)
        self.switching_time_s = param(params, "switching_time_s", 10e-3, 0.0, 10.0)
        self._registers = {r: [0] * int(modules) for r in range(REGISTERS)}
        self.write_enable = False
        self.saved_states = 0
        self._path: list[str] = []
        super().__init__(name, world, params, serial)

    def ports(self) -> dict[str, str]:
        ports = {"in": OPTICAL_IN}
        ports.update({f"out{k}": OPTICAL_OUT for k in range(1, self.port_total + 1)})
        return ports

    # -- settings ---------------------------------------------------------------------------------

    def state_power_w(self) -> float:
        """Each module routed to an output (not parked) holds its mirror."""
        return self.power_params["module_hold_power_w"] * sum(1 for route in self.routes if route)

    def reset(self) -> None:
        """*RST = *RCL 0: every module parked (at once; no mirror travel is simulated for it)."""
        self.routes = [0] * self.module_total
        self._previous = [0] * self.module_total
        self._changed_at = [-math.inf] * self.module_total

    def _switch(self, module: int, output: int) -> None:
        index = module - 1
        if output == self.routes[index]:
            return
        now = self.world.time
        # what is connected right now (possibly "moving") is the state before this change
        self._previous[index] = int(self._route_at(index, np.array([now]))[0])
        self.routes[index] = output
        self._changed_at[index] = now
        if self.write_enable:
            self.saved_states += 1

    def _busy(self, index: int) -> bool:
        return self.world.time < self._changed_at[index] + self.switching_time_s

    # -- message processing: remembered header path across lines, 8-entry error queue -----------

    def process_message(self, data: bytes) -> None:
        try:
            commands = split_message(data)
        except ScpiError as err:
            self.push_error(err)
            return
        if self.output:
            self.output.clear()
            self.push_error(ScpiError(-410))
        responses = []
        for cmd in commands:
            try:
                reply = self._run(cmd)
            except ScpiError as err:
                self.push_error(err)
                break
            if reply is not None:
                responses.append(reply if isinstance(reply, bytes) else reply.encode("ascii"))
        if responses:
            self.output += b";".join(responses) + self.TERMINATION

    def _run(self, cmd):
        header = cmd.header
        if header.startswith("*"):
            return self.execute(header, cmd.params, cmd.is_query)
        if header.startswith(":"):
            candidates = [header[1:]]
        else:
            candidates = ([":".join(self._path + [header])] if self._path else []) + [header]
        error = None
        for full in candidates:
            try:
                self.tree.resolve(full)
            except ScpiError as err:
                error = error or err
                continue
            self._path = full.split(":")[:-1]
            return self.execute(full, cmd.params, cmd.is_query)
        raise error

    def push_error(self, err: ScpiError) -> None:
        if len(self.errors) >= ERROR_QUEUE_SIZE:
            return  # manual p. 22: a full queue records no new errors
        super().push_error(err)

    def next_error(self) -> str:
        if self.errors:
            err = self.errors.popleft()
            return err.entry().replace(",", ", ", 1)
        return '0, "No error"'

    # -- command table ------------------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        tree.add("ROUTe#:SCAN", setter=self._set_scan, getter=self._get_scan)
        tree.add("ROUTe#:SCAN:NEXT", setter=self._scan_next)
        tree.add("ROUTe#:OPEN", setter=self._open)
        tree.add("ROUTe#:OPEN:STATe", getter=self._open_state)
        tree.add("STATus", getter=self._status)
        tree.add("SYSTem:VERSion", getter=lambda call: "1999.0")
        tree.add("WEN", setter=self._set_wen, getter=lambda call: "1" if self.write_enable else "0")
        tree.add("QCT", getter=lambda call: str(self.saved_states))
        tree.add("*RCL", setter=self._recall)
        tree.add("*SAV", setter=self._save)

    def execute(self, header, params, is_query):
        # *OPC / *OPC? complete only once every mirror has settled (the base class answers at once)
        word = header.upper().rstrip("?")
        if word == "*IDN" and is_query:
            Call([], params, is_query).expect(0)
            maker, model, firmware = self.IDN
            return f"{maker}, {model}, {self.serial}, {firmware}"  # manual p. 23: ", " separated
        if word == "*OPC":
            Call([], params, is_query).expect(0)
            self._settle()
            if is_query:
                return "1"
            self.esr |= ESR_OPC
            return None
        return super().execute(header, params, is_query)

    def _module(self, call: Call) -> int:
        return call.suffix(0, 1, self.module_total)

    def _set_scan(self, call: Call) -> None:
        module = self._module(call)
        call.expect(1)
        output = call.param().integer(0, self.port_total)
        self._switch(module, output)

    def _get_scan(self, call: Call) -> str:
        module = self._module(call)
        call.expect(0)
        return str(self.routes[module - 1])

    def _scan_next(self, call: Call) -> None:
        module = self._module(call)
        call.expect(0)
        self._switch(module, self.routes[module - 1] % self.port_total + 1)

    def _open(self, call: Call) -> None:
        module = self._module(call)
        call.expect(0)
        self._switch(module, 0)

    def _open_state(self, call: Call) -> str:
        module = self._module(call)
        call.expect(0)
        return "1" if self.routes[module - 1] == 0 else "0"

    def _status(self, call: Call) -> str:
        call.expect(0)
        return "BUSY" if any(self._busy(i) for i in range(self.module_total)) else "READY"

    def _set_wen(self, call: Call) -> None:
        call.expect(1)
        self.write_enable = call.param().boolean()

    def _recall(self, call: Call) -> None:
        call.expect(1)
        register = call.param().integer(0, REGISTERS - 1)
        for module, output in enumerate(self._registers[register], start=1):
            self._switch(module, output)

    def _save(self, call: Call) -> None:
        call.expect(1)
        register = call.param().integer(1, REGISTERS - 1)  # register 0 is the fixed all-parked state
        self._registers[register] = list(self.routes)

    def _settle(self) -> None:
        end = max(c + self.switching_time_s for c in self._changed_at)
        if end > self.world.time:
            self.world.advance_to(end)


    # -- physics -----------------------------------------------------------------------------------------

    def _route_at(self, index: int, t: np.ndarray) -> np.ndarray:
        """Output connected at times ``t`` (0 = parked, -1 = mirror moving)."""
        t = np.asarray(t, dtype=float)
        start = self._changed_at[index]
        route = np.full(t.shape, self.routes[index], dtype=int)
        route[t < start + self.switching_time_s] = -1
        route[t < start] = self._previous[index]
        return route

    def optical_output(self, port, t):
        light = self.world.light_into(self.name, "in", t)
        if not light:
            return []
        output = int(port[3:])
        routed = self._route_at(0, t) == output
        through = 10 ** (-self.insertion_loss_db / 10)
        leak = 10 ** (-self.crosstalk_db / 10)
        amplitude = np.sqrt(np.where(routed, through, leak))
        if np.ndim(amplitude) == 0:
            amplitude = float(amplitude)
        return [carrier.scaled(amplitude) for carrier in light]

    def state(self):
        return {"routes": list(self.routes), "ports": self.port_total, "modules": self.module_total,
                "insertion_loss_db": self.insertion_loss_db, "crosstalk_db": self.crosstalk_db,
                "switching_time_s": self.switching_time_s}
