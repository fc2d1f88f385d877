"""Typed errors raised by drivers. labctl re-exports them; drivers never import labctl."""


class DriverError(Exception):
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


class ValueOutOfRange(DriverError, ValueError):
    """A value was refused by the driver before it was sent (outside the model's range)."""
