"""How drivers write numbers and channel lists into SCPI commands, shared by every driver that needs it.

Kept apart from any one vendor module so that a driver for one instrument never imports another's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: printf format of a number in a command: 10 significant digits carry every setting's resolution
#: (1.234567891e9 Hz, 0.1 pm at 1550 nm given in nm) without float noise digits.
SCPI_NUMBER = "%.10g"


def format_number(value: float) -> str:
    """``value`` as it goes into a command, in the :data:`SCPI_NUMBER` format."""
    return SCPI_NUMBER % value


def channel_list(channels: Iterable[int]) -> str:
    """Format channels as a SCPI channel list, using ``a:b`` for runs of three or more.

    ``[1, 2, 3, 4]`` -> ``(@1:4)``, ``[1, 3]`` -> ``(@1,3)``, ``[1, 2, 4]`` -> ``(@1,2,4)``.
    """
    chans = sorted(set(int(c) for c in channels))
    if not chans:
        raise ValueError("a channel list needs at least one channel")
    parts: list[str] = []
    start = prev = chans[0]
    for c in chans[1:] + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        if prev - start >= 2:
            parts.append(f"{start}:{prev}")
        else:
            parts.extend(str(x) for x in range(start, prev + 1))
        if c is not None:
            start = prev = c
    return "(@" + ",".join(parts) + ")"


def grouped_message(header: str, texts: Mapping[int, str]) -> str:
    """One program message setting each channel to its value: ``texts`` maps channel -> formatted value.

    Why: an instrument applies one value to every channel of a channel list, so channels sharing a
    value share one ``header value,(@list)`` command; distinct values are joined by ``;``
    (``VOLT 1.5,(@1:3);VOLT 2,(@4)``), in order of their first channel.
    """
    groups: dict[str, list[int]] = {}
    for channel in sorted(texts):
        groups.setdefault(texts[channel], []).append(channel)
    return ";".join(f"{header} {text},{channel_list(chs)}" for text, chs in groups.items())
