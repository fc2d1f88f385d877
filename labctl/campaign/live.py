"""Live campaign documents over ZeroMQ, serialised as JSON (never pickle: a subscriber must not run what
a sender chooses).

Each document is one multipart message: the topic ``labctl.campaign``, the document name (``start``,
``descriptor``, ``event``, ``stop``) and the document as UTF-8 JSON. :class:`Publisher` is a document
consumer (give it to ``run_campaign(subscribers=...)``); :func:`documents` receives them, and
:func:`watch` shows a live plot of the first numeric result of each point.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import zmq

from labctl.campaign.errors import CampaignError

TOPIC = b"labctl.campaign"
NAMES = ("start", "descriptor", "event", "stop")


class Publisher:
    """Publishes every document it is given on a ZeroMQ PUB socket bound to ``endpoint``."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None):
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 1000)
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError as exc:
            self._socket.close()
            raise CampaignError(f"cannot publish on {endpoint}: {exc}") from None
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        self._socket.send_multipart([TOPIC, name.encode(), json.dumps(doc, default=str).encode()])

    def close(self) -> None:
        self._socket.close()


def decode(frames: list[bytes]) -> tuple[str, dict[str, Any]]:
    """(name, document) of one message; a message that is not a labctl campaign document is an error."""
    if len(frames) != 3 or frames[0] != TOPIC:
        raise CampaignError(f"not a labctl campaign document ({len(frames)} frames)")
    name = frames[1].decode("utf-8", "replace")
    if name not in NAMES:
        raise CampaignError(f"unknown document name {name!r}; expected one of {', '.join(NAMES)}")
    try:
        doc = json.loads(frames[2])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CampaignError(f"{name} document is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CampaignError(f"{name} document is not a JSON object")
    return name, doc


def documents(endpoint: str, *, count: int | None = None, timeout_s: float | None = None,
              context: zmq.Context | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Documents published at ``endpoint``, as they come (``count`` of them, or until a ``stop``); a
    silence longer than ``timeout_s`` ends the stream with a :class:`CampaignError`."""
    context = context or zmq.Context.instance()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SUBSCRIBE, TOPIC)
    socket.connect(endpoint)
    received = 0
    try:
        while count is None or received < count:
            if timeout_s is not None and not socket.poll(timeout_s * 1000):
                raise CampaignError(f"no campaign document from {endpoint} within {timeout_s:g} s")
            yield decode(socket.recv_multipart())
            received += 1
    finally:
        socket.close()


def point_of(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The point record carried by an event document (None for other events)."""
    text = doc.get("data", {}).get("point_record")
    return json.loads(text) if isinstance(text, str) else None


def watch(endpoint: str, *, count: int | None = None, plot: bool = True,
          echo: Callable[[str], None] = print) -> list[tuple[str, dict[str, Any]]]:
    """Follow a published campaign until its stop document (or ``count`` documents): print each point,
    and with ``plot`` draw its first numeric result against the point number as points arrive."""
    seen: list[tuple[str, dict[str, Any]]] = []
    figure = None
    xs: list[int] = []
    ys: list[float] = []
    label = None
    for name, doc in documents(endpoint, count=count):
        seen.append((name, doc))
        if name == "start":
            echo(f"campaign {doc.get('campaign')} ({doc.get('experiment')}, {doc.get('points_total')} points)")
        elif name == "event" and (record := point_of(doc)) is not None:
            echo(f"point {record['index']} {record['values']}: {record['status']}")
            numbers = {k: v for k, v in sorted(record["results"].items())
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if plot and numbers:
                import matplotlib.pyplot as plt

                label = label or next(iter(numbers))
                xs.append(record["index"])
                ys.append(numbers.get(label, float("nan")))
                if figure is None:
                    figure, ax = plt.subplots()
                    ax.set(xlabel="point", ylabel=label)
                    (line,) = ax.plot(xs, ys, "o-")
                line.set_data(xs, ys)
                ax.relim()
                ax.autoscale_view()
                plt.pause(0.01)
        elif name == "stop":
            echo(f"campaign ended: {doc.get('exit_status')} {doc.get('reason') or ''}".rstrip())
            break
    return seen


__all__ = ["Publisher", "decode", "documents", "point_of", "watch"]
