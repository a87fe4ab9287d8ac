"""The output folder: what ``prepare`` removes (only its own debris) and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobhelpers import ROOT, cli
from pipeline.errors import JobError
from pipeline.sink import OutputDir


def _part(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"video_id": ["v"], "status": ["ok"]}), path)


def test_prepare_removes_orphans_and_temporaries_but_not_other_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _part(out / "videos" / "part-u1.parquet")  # committed unit u1
    _part(out / "events" / "part-u1.parquet")
    _part(out / "events" / "part-u2.parquet")  # its videos file never landed: orphan
    (out / "segments").mkdir()
    (out / "segments" / ".part-u3.parquet.tmp").write_bytes(b"half a write")
    mine = {out / "events" / "notes.txt": "the user's", out / "events" / ".keep": "", out / "clips" / "a.csv": "x"}
    for path, text in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    assert OutputDir(str(out)).prepare() == 2
    assert not (out / "events" / "part-u2.parquet").exists()
    assert not (out / "segments" / ".part-u3.parquet.tmp").exists()
    assert (out / "events" / "part-u1.parquet").exists() and (out / "videos" / "part-u1.parquet").exists()
    assert all(path.read_text() == text for path, text in mine.items())
    assert OutputDir(str(out)).committed_status() == {"v": "ok"}


def test_out_that_is_a_file_or_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    a_file = tmp_path / "results.parquet"
    a_file.write_bytes(b"")
    with pytest.raises(JobError, match="is a file"):
        OutputDir(str(a_file)).prepare()
    with pytest.raises(JobError, match="cannot create the output folders"):
        OutputDir(str(a_file / "sub")).prepare()

    proc = cli("run", ROOT / "sample_media" / "clips" / "clip_7_0000.mp4", "--out", a_file)
    assert proc.returncode == 1 and f"error: --out {a_file}: is a file" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_overwrite_clears_the_tables_but_not_other_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _part(out / "videos" / "part-u1.parquet")
    _part(out / "events" / "part-u1.parquet")
    (out / "events" / "notes.txt").write_text("the user's")
    (out / "_job.json").write_text("{}")

    OutputDir(str(out)).clear()
    assert not (out / "videos").exists() and not (out / "_job.json").exists()
    assert sorted(p.name for p in (out / "events").iterdir()) == ["notes.txt"]
