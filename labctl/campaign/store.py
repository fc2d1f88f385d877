"""The campaign file: one HDF5 file per campaign holding every finished point's record and an index.

Each finished point rewrites the whole (small) file beside itself and moves it into place
(``os.replace`` after ``fsync``), so at any instant the file on disk is a complete campaign file: a
process killed even by SIGKILL loses at most the point in flight, never the file. Each point's own data
stays in its experiment results file (``points/``), which the record names.

Layout: attributes ``campaign_hash`` (sha256 of the campaign's canonical content), ``campaign`` (that
content), ``campaign_file``, ``code_version``, ``points_total``, ``status``; dataset ``records`` (JSON,
one record per point, the source of truth); dataset ``runs`` (JSON, the Bluesky start document of each
session that appended to it); group ``index`` with one column dataset per index column (readable with
h5py alone). :func:`load_index` opens the index as a pandas DataFrame in one line.

The store is a consumer of the campaign's event-model documents (``store(name, doc)``): the start
document is kept, each event's ``point_record`` is stored, the stop document ends the file's status.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.campaign.errors import CampaignError
from labctl.campaign.spec import Campaign
from labctl.store import write_json_dataset

#: Name of the campaign file inside the campaign's output folder.
CAMPAIGN_FILE = "campaign.h5"
#: Columns of the index that every point has (then the swept values, then its results).
BASE_COLUMNS = ("index", "key", "repeat", "seed", "status", "duration_s", "cpu_s", "results_file")


def _read(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    try:
        with h5py.File(path, "r", locking=False) as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            records = json.loads(f["records"][()])
            runs = json.loads(f["runs"][()])
    except (OSError, KeyError) as exc:
        raise CampaignError(f"{path} is not a readable campaign file (the campaign.h5 that labctl campaign run "
                            f"writes): {exc}") from None
    return attrs, {r["key"]: r for r in records}, runs


def index_rows(records: list[dict[str, Any]], swept: list[str]) -> list[dict[str, Any]]:
    """One flat row per record: the base columns, the swept values, then every result (a result whose
    name is also a swept name or a base column is prefixed ``result.``)."""
    rows = []
    for record in sorted(records, key=lambda r: r["index"]):
        row = {name: record.get(name) for name in BASE_COLUMNS}
        row.update({name: record["values"].get(name) for name in swept})
        for name, value in record.get("results", {}).items():
            row[f"result.{name}" if name in row else name] = value
        rows.append(row)
    return rows


def _column(values: list[Any]) -> np.ndarray:
    """A column as an HDF5-storable array: numbers as float64 (NaN where missing), otherwise text."""
    numeric = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)
    if numeric and any(v is not None for v in values):
        return np.array([np.nan if v is None else float(v) for v in values])
    return np.array(["" if v is None else str(v) for v in values], dtype=h5py.string_dtype())


class CampaignStore:
    """The campaign file of one campaign, created or (``resume``) reopened."""

    def __init__(self, out_dir: str | Path, campaign: Campaign, *, resume: bool = False):
        self.path = Path(out_dir) / CAMPAIGN_FILE
        self.campaign = campaign
        #: Points the campaign has now (an adaptive sweep adds some as it goes).
        self.total = len(campaign.points)
        self.records: dict[str, dict[str, Any]] = {}
        self.runs: list[dict[str, Any]] = []
        self.attrs: dict[str, Any] = {}
        if self.path.exists():
            if not resume:
                raise CampaignError(f"{self.path} exists: add --resume to finish that campaign, or give "
                                    "another --out")
            attrs, self.records, self.runs = _read(self.path)
            if attrs.get("campaign_hash") != campaign.digest:
                raise CampaignError(f"{self.path} holds another campaign (file {attrs.get('campaign_file')!r}, "
                                    f"hash {str(attrs.get('campaign_hash'))[:12]}, this one "
                                    f"{campaign.digest[:12]}); resume it with its own campaign file, or give "
                                    "another --out")
            self.attrs = attrs
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CampaignError(f"cannot create {self.path.parent}: {exc.strerror or exc}") from None
        if not os.access(self.path.parent, os.W_OK | os.X_OK):
            raise CampaignError(f"cannot write in {self.path.parent}: no permission")

    @property
    def points_dir(self) -> Path:
        return self.path.parent / "points"

    def finished(self) -> set[str]:
        """Keys of the points already measured completely (a resumed campaign skips them; failed ones
        are measured again)."""
        return {key for key, record in self.records.items() if record["status"] == "complete"}

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Consume one event-model document."""
        if name == "start":
            self.runs.append(json.loads(json.dumps(doc, default=str)))
            self.attrs["status"] = "running"
            self.write()
        elif name == "event" and "point_record" in doc["data"]:
            record = json.loads(doc["data"]["point_record"])
            self.records[record["key"]] = record
            self.write()
        elif name == "stop":
            reason, exit_status = doc.get("reason") or "", doc.get("exit_status")
            if exit_status == "success":
                self.attrs["status"] = f"stopped: {reason}" if reason else "complete"
            else:
                self.attrs["status"] = ("interrupted" if exit_status == "abort" else "failed") + \
                    (f": {reason}" if reason else "")
            self.write()

    def write(self) -> None:
        """Write the whole campaign file beside itself and move it into place (atomic, synced)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        c = self.campaign
        with h5py.File(tmp, "w", locking=False) as f:
            f.attrs["campaign_hash"] = c.digest
            f.attrs["campaign"] = c.canonical()
            f.attrs["campaign_file"] = str(c.path)
            f.attrs["experiment"] = c.spec.experiment
            f.attrs["swept"] = json.dumps(list(c.swept))
            f.attrs["points_total"] = self.total
            f.attrs["points_complete"] = len(self.finished())
            f.attrs["status"] = self.attrs.get("status", "running")
            f.attrs["updated_utc"] = datetime.now(timezone.utc).isoformat()
            records = sorted(self.records.values(), key=lambda r: r["index"])
            write_json_dataset(f, "records", records)
            write_json_dataset(f, "runs", self.runs)
            index = f.create_group("index")
            rows = index_rows(records, list(c.swept))
            columns = list(dict.fromkeys(name for row in rows for name in row))
            for name in columns:
                index.create_dataset(name, data=_column([row.get(name) for row in rows]))
            index.attrs["columns"] = json.dumps(columns)
        _fsync(tmp)
        os.replace(tmp, self.path)
        _fsync(self.path.parent)


def _fsync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Every point record of a campaign file, in point order."""
    _, records, _ = _read(Path(path))
    return sorted(records.values(), key=lambda r: r["index"])


def load_index(path: str | Path):
    """The campaign's index as a pandas DataFrame, one row per measured point:
    ``labctl.campaign.load_index("out/campaign.h5")``."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / CAMPAIGN_FILE
    attrs, records, _ = _read(path)
    rows = index_rows(list(records.values()), json.loads(attrs["swept"]))
    return pd.DataFrame(rows, columns=list(dict.fromkeys(name for row in rows for name in row)) or BASE_COLUMNS)


__all__ = ["CAMPAIGN_FILE", "CampaignStore", "index_rows", "load_index", "load_records"]
