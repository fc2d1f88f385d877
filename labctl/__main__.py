"""``python -m labctl`` = the ``labctl`` command."""

from labctl.cli import entry

entry()
