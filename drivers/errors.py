"""Typed errors raised by drivers, and the project's root error.

The root error lives here, in the bottom layer, so that a driver's error is a :class:`LabctlError`
(one ``except labctl.LabctlError`` catches everything the project raises) while drivers still never
import labctl; :mod:`labctl.errors` re-exports this very class.
"""


class LabctlError(Exception):
    """Base class of every error raised by labctl and its drivers."""


class DriverError(LabctlError):
    """Base class of every error a driver raises."""


class InstrumentError(DriverError):
    """The instrument reported an error in its SYSTem:ERRor? queue after a command.

    ``command`` is the last command sent, ``errors`` the list of ``(code, message)`` read.
    """

    def __init__(self, instrument: str, command: str | None, errors: list[tuple[int, str]]):
        self.instrument = instrument
        self.command = command
        self.errors = errors
        listed = "; ".join(f"{code} {msg}" for code, msg in errors)
        super().__init__(
            f"{instrument} rejected {command!r}: {listed}. "
            "Check the command and value against the instrument's programming manual."
        )

    @property
    def codes(self) -> list[int]:
        return [code for code, _ in self.errors]


class MalformedReply(DriverError, ValueError):
    """An instrument's reply does not have the form its manual gives (garbled or cut short on the line)."""

    def __init__(self, instrument: str, query: str, reply: str):
        self.instrument = instrument
        self.query = query
        self.reply = reply
        super().__init__(f"{instrument} answered {query!r} with {reply[:80]!r}, which is not the documented "
                         "form; the connection may be noisy: check the cable and retry the measurement.")


class ValueOutOfRange(DriverError, ValueError):
    """A value was refused by the driver before it was sent (outside the model's range)."""
