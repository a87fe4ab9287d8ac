"""Committed Parquet writes and the done-ID scan that makes resume a set difference.

Layout under the output root::

    OUT/videos/part-<unit>.parquet      one row per video: the commit record
    OUT/clips/part-<unit>.parquet       rows of the same videos, one file per table
    OUT/segments/..., OUT/events/..., OUT/embeddings/...   (embeddings opt-in)
    OUT/_job.json                       spec, model, labels, counts, state

A unit (a batch of finished videos) is written table by table, ``videos`` last; each
file is written to a hidden temporary name and renamed into place (on object stores a
single PUT plays that role). So a video listed in ``videos`` has all its rows in every
other table, and a part file never holds half a video. At start-up, part files of units
whose ``videos`` file never landed (the writer was killed) are removed before any work,
so a resumed job writes every video's rows exactly once.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.errors import JobError
from pipeline.media import is_uri
from pipeline.tables import TABLES, empty_tables

JOB_FILE = "_job.json"


def open_output(out: str) -> tuple[pafs.FileSystem, str, bool]:
    """(filesystem, root path within it, whether renames are atomic there)."""
    if is_uri(out):
        fs, root = pafs.FileSystem.from_uri(out)
        return fs, root.rstrip("/"), isinstance(fs, pafs.LocalFileSystem)
    return pafs.LocalFileSystem(), os.path.abspath(out), True


class OutputDir:
    """An output root as readers see it: its layout, committed parts, and the job file.

    Needs no labels or model, so status, reports and the resume check open it cheaply.
    """

    def __init__(self, out: str) -> None:
        self.out = out
        self.fs, self.root, self.atomic_rename = open_output(out)

    def _path(self, *parts: str) -> str:
        return str(PurePosixPath(self.root, *parts))

    def _list(self, table: str) -> list[pafs.FileInfo]:
        sel = pafs.FileSelector(self._path(table), allow_not_found=True)
        return [f for f in self.fs.get_file_info(sel) if f.type == pafs.FileType.File]

    @staticmethod
    def _unit(name: str) -> str | None:
        if name.startswith("part-") and name.endswith(".parquet"):
            return name[len("part-") : -len(".parquet")]
        return None

    def committed_files(self, table: str) -> list[pafs.FileInfo]:
        """The part files of ``table`` (committed ones only once ``prepare`` has run)."""
        return [f for f in self._list(table) if self._unit(f.base_name) is not None]

    def prepare(self) -> int:
        """Create the folders; remove our temporaries and orphaned parts. Returns files removed.

        Only files named as this module names them are removed: OUT may be a folder that
        already holds other things (an ``events/`` folder of the user's own, say).
        """
        if self.fs.get_file_info(self.root).type == pafs.FileType.File:
            raise JobError(f"--out {self.out}: is a file; give a folder (or a URI prefix) for the tables")
        try:
            for table in TABLES:
                self.fs.create_dir(self._path(table), recursive=True)
        except (OSError, pa.ArrowException) as exc:
            raise JobError(f"--out {self.out}: cannot create the output folders ({exc})") from exc
        removed = 0
        committed = {self._unit(f.base_name) for f in self._list("videos")}
        for table in TABLES:
            for f in self._list(table):
                unit = self._unit(f.base_name)
                temporary = unit is None and self._ours(f.base_name)
                if temporary or (table != "videos" and unit is not None and unit not in committed):
                    self.fs.delete_file(f.path)
                    removed += 1
        return removed

    def committed_status(self) -> dict[str, str]:
        """video_id -> status (``ok`` / ``failed``) of every committed video (the ``videos`` table only)."""
        status: dict[str, str] = {}
        for f in self.committed_files("videos"):
            with self.fs.open_input_file(f.path) as fh:
                t = pq.read_table(fh, columns=["video_id", "status"])
            status.update(zip(t.column("video_id").to_pylist(), t.column("status").to_pylist()))
        return status

    # ---- the job file ---------------------------------------------------------------
    def read_job(self) -> dict[str, Any] | None:
        path = self._path(JOB_FILE)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as fh:
            try:
                return json.loads(fh.read().decode())
            except json.JSONDecodeError as exc:
                raise JobError(f"{path}: the job file is corrupt ({exc}); use --overwrite to start over") from exc

    def write_job(self, job: dict[str, Any]) -> None:
        job["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        data = json.dumps(job, indent=2).encode()
        final = self._path(JOB_FILE)
        tmp = self._path(f".{JOB_FILE}.tmp") if self.atomic_rename else final
        with self.fs.open_output_stream(tmp) as fh:
            fh.write(data)
        if tmp != final:
            self.fs.move(tmp, final)

    def _ours(self, name: str) -> bool:
        """A part file or a part file's temporary, as ``ParquetSink`` names them."""
        return self._unit(name) is not None or (name.startswith(".part-") and name.endswith(".parquet.tmp"))

    def clear(self) -> None:
        """Delete every table's files and the job file (``--overwrite``); a table folder goes too
        when nothing else is left in it."""
        for table in TABLES:
            for f in self._list(table):
                if self._ours(f.base_name):
                    self.fs.delete_file(f.path)
            folder = self._path(table)
            left = self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
            if not left and self.fs.get_file_info(folder).type == pafs.FileType.Directory:
                self.fs.delete_dir(folder)
        if self.fs.get_file_info(self._path(JOB_FILE)).type == pafs.FileType.File:
            self.fs.delete_file(self._path(JOB_FILE))


class ParquetSink(OutputDir):
    """Writes committed units of videos, with the schema of a model's labels, under one output root."""

    def __init__(self, out: str, labels: Sequence[str], embedding_dim: int | None = None) -> None:
        super().__init__(out)
        self.labels = list(labels)
        self.embedding_dim = embedding_dim
        self.tables = [t for t in TABLES if t != "embeddings" or embedding_dim]
        self._empty = empty_tables(self.labels, embedding_dim)
        self._run = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        self._counter = 0

    def _write(self, table: pa.Table, name: str, unit: str) -> None:
        final = self._path(name, f"part-{unit}.parquet")
        target = self._path(name, f".part-{unit}.parquet.tmp") if self.atomic_rename else final
        with self.fs.open_output_stream(target) as fh:
            pq.write_table(table, fh, compression="zstd")
        if target != final:
            self.fs.move(target, final)

    def commit(self, per_video: Sequence[dict[str, pa.Table]]) -> str:
        """Write one unit: the tables of several videos, ``videos`` last. Returns the unit id."""
        if not per_video:
            raise ValueError("nothing to commit")
        self._counter += 1
        unit = f"{self._run}-{self._counter:06d}-{uuid.uuid4().hex[:8]}"
        for name in [t for t in self.tables if t != "videos"] + ["videos"]:
            parts = [v[name] for v in per_video if name in v and v[name].num_rows]
            table = pa.concat_tables(parts) if parts else self._empty[name]
            if parts:
                table = table.replace_schema_metadata(self._empty[name].schema.metadata)
            self._write(table, name, unit)
        return unit
