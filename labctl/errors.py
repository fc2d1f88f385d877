"""labctl's typed errors. Each says what went wrong and what to do about it.

:class:`LabctlError`, the root of every error the project raises, is defined in :mod:`drivers.errors`
(the bottom layer, which must not import labctl) and re-exported here, so driver errors are labctl
errors too.
"""

from drivers.errors import DriverError, InstrumentError, LabctlError, MalformedReply, ValueOutOfRange


class ConfigError(LabctlError, ValueError):
    """A bench file (or other config file) is missing, unreadable, or has a bad field.

    ``path`` is the file, ``line`` the 1-based line of the bad value and ``field`` its dotted location
    (each when known), so the message leads the reader straight to what to fix.
    """

    def __init__(self, path, field: str | None, message: str, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.field = field
        self.line = line
        where = self.path or "bench description"
        if line is not None:
            where += f", line {line}"
        if field:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class SafetyLimitError(LabctlError, ValueError):
    """A setting exceeds a safety limit of the bench file; it was refused before anything was sent."""


class UnknownResourceError(LabctlError, LookupError):
    """A VISA resource named in the bench does not exist; the message lists the ones that do."""


class RoleError(LabctlError, LookupError):
    """An experiment asked for an instrument or channel the bench does not have."""


__all__ = [
    "ConfigError",
    "DriverError",
    "InstrumentError",
    "LabctlError",
    "MalformedReply",
    "RoleError",
    "SafetyLimitError",
    "UnknownResourceError",
    "ValueOutOfRange",
]
