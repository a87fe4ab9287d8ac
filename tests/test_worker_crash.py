"""A decode worker process that dies is retried; past the retries its video is recorded as failed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from jobhelpers import cli, tiny_model
from sample_media.generate import generate

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_crashing_decoder_is_retried_then_recorded_as_failed(tmp_path: Path) -> None:
    generate(tmp_path / "in", 4, seed=21, duration=4, width=64, height=48, fps=8)
    for extra in (tmp_path / "in").glob("*.t*"):
        extra.unlink()
    shutil.copy(tmp_path / "in" / "clip_21_0000.mp4", tmp_path / "in" / "crash_always.mp4")
    shutil.copy(tmp_path / "in" / "clip_21_0001.mp4", tmp_path / "in" / "crash_once.mp4")
    model = tiny_model(tmp_path / "m.pt")
    out = tmp_path / "out"
    marker = tmp_path / "crashed_once"
    # two fault-injected files: one kills its decoder every time, one only on the first attempt.
    # One decode actor: its first-pass calls hold three videos each, so the crash takes innocent
    # videos of its own call and of the queued call down with it
    proc = cli("run", tmp_path / "in", "--out", out, "--model", model, "--decode-workers", "1",
               env={"AVFUSE_FAULT_KILL_DECODER": "crash_always.mp4"})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert json.loads((out / "_job.json").read_text())["runs"][-1]["plan"]["videos_per_call"] == 3
    rows = dict(duckdb.sql(f"SELECT video_id, error_type FROM read_parquet('{out}/videos/*.parquet') "
                           "WHERE status = 'failed'").fetchall())
    assert rows == {"crash_always.mp4": "WorkerCrashedError"}
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/videos/*.parquet')").fetchall()[0][0]
    assert n == 6

    out2 = tmp_path / "out2"
    proc = cli("run", tmp_path / "in", "--out", out2, "--model", model,
               env={"AVFUSE_FAULT_KILL_DECODER": f"crash_once.mp4@{marker}"})
    assert marker.exists()  # the first attempt died ...
    assert proc.returncode == 0, proc.stdout + proc.stderr  # ... and the retry succeeded
    statuses = set(r[0] for r in duckdb.sql(f"SELECT status FROM read_parquet('{out2}/videos/*.parquet')").fetchall())
    assert statuses == {"ok"}
