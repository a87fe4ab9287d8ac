"""Batch jobs on a real local Ray: mixed good and bad inputs, tables read by DuckDB and Polars."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from jobhelpers import cli, tiny_model

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture()
def job(batch_job: dict) -> dict:
    return batch_job


def q(out: Path, table: str, sql: str) -> list[tuple]:
    return duckdb.sql(sql.replace("FROM T", f"FROM read_parquet('{out}/{table}/*.parquet')")).fetchall()


def test_exit_code_and_summary_count_the_failures(job: dict) -> None:
    proc = job["proc"]
    assert proc.returncode == 3, proc.stdout + proc.stderr  # finished, some videos failed
    assert "processed now: failed" in proc.stdout and "failed bad/text.mp4" in proc.stdout.replace("\n", " ")


def test_one_videos_row_per_input_with_the_right_status(job: dict) -> None:
    rows = q(job["out"], "videos", "SELECT video_id, status, error, error_type FROM T ORDER BY video_id")
    assert {r[0]: r[1] for r in rows} == job["expected"]
    errors = {r[0]: (r[2], r[3]) for r in rows}
    assert errors["bad/empty.mp4"][1] == "EmptyMediaError" and "empty (0 bytes)" in errors["bad/empty.mp4"][0]
    assert errors["bad/text.mp4"][1] == "InvalidMediaError"
    assert errors["bad/truncated.mp4"][1] == "TruncatedMediaError" and "decoded" in errors["bad/truncated.mp4"][0]
    assert all(r[2] is None for r in rows if r[1] == "ok")


def test_good_videos_have_their_rows_and_events(job: dict) -> None:
    out = job["out"]
    segs = dict(q(out, "segments", "SELECT video_id, count(*) FROM T GROUP BY video_id"))
    good = [v for v, s in job["expected"].items() if s == "ok"]
    assert all(segs[v] == 4 for v in good)
    assert 1 <= segs["bad/truncated.mp4"] <= 4  # what was decoded is kept, the row says it failed
    assert "bad/empty.mp4" not in segs and "bad/text.mp4" not in segs
    events = dict(q(out, "events", "SELECT video_id, count(*) FROM T GROUP BY video_id"))
    assert all(events.get(v, 0) > 0 for v in good)
    n = q(out, "videos", "SELECT sum(n_events) FROM T")[0][0]
    assert n == sum(events.values())
    silent = [v for v in good if "0002" in v][0]
    assert q(out, "videos", f"SELECT has_audio FROM T WHERE video_id = '{silent}'")[0][0] is False
    shares = q(out, "events", f"SELECT max(audio_share) FROM T WHERE video_id = '{silent}'")[0][0]
    assert shares == 0.0
    clips = q(out, "clips", "SELECT count(*), min(len(top_k)) FROM T")[0]
    assert clips[0] >= len(good) and clips[1] == 3
    dup = q(out, "segments", "SELECT count(*) FROM (SELECT video_id, segment_index, count(*) c FROM T GROUP BY ALL HAVING c > 1)")
    assert dup[0][0] == 0


def test_documented_types_in_duckdb_and_polars(job: dict) -> None:
    out = job["out"]
    types = {t: dict(q(out, t, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM T)"))
             for t in ("videos", "clips", "segments", "events", "embeddings")}
    assert types["videos"]["duration_s"] == "DOUBLE" and types["videos"]["has_audio"] == "BOOLEAN"
    assert types["videos"]["processed_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["segments"]["probs"] == "FLOAT[]" and types["segments"]["segment_index"] == "INTEGER"
    assert types["clips"]["top_k"] == "STRUCT(\"label\" VARCHAR, score DOUBLE)[]"
    assert types["events"]["start_s"] == "DOUBLE" and types["events"]["label"] == "VARCHAR"
    # Parquet has no fixed-size list: DuckDB sees FLOAT[], Arrow readers get the width back
    assert types["embeddings"]["embedding"] == "FLOAT[]"
    import pyarrow.dataset as pads

    emb = pads.dataset(out / "embeddings", format="parquet").schema.field("embedding").type
    import pyarrow as pa

    assert pa.types.is_fixed_size_list(emb) and emb.list_size == 16 and emb.value_type == pa.float32()
    for t in types:
        assert types[t]["job_id"] == "VARCHAR" and types[t]["video_id"] == "VARCHAR"
    ev = pl.read_parquet(f"{out}/events/*.parquet")
    assert ev.schema["start_s"] == pl.Float64 and ev.schema["event_index"] == pl.Int32
    seg = pl.read_parquet(f"{out}/segments/*.parquet")
    assert seg.schema["probs"] == pl.List(pl.Float32)
    assert len(seg["probs"][0]) == 9  # 8 labels + background


def test_metadata_and_job_file(job: dict) -> None:
    import pyarrow.parquet as pq

    out = job["out"]
    part = sorted((out / "events").glob("part-*.parquet"))[0]
    meta = pq.read_schema(part).metadata
    assert meta[b"avfuse.schema_version"] == b"1" and json.loads(meta[b"avfuse.labels"])[0] == "bell"
    jobfile = json.loads((out / "_job.json").read_text())
    assert jobfile["state"] == "done" and jobfile["counts"]["videos_total"] == len(job["expected"])
    assert jobfile["model"]["sha256"] and jobfile["labels"][0] == "bell"
    plan = jobfile["runs"][-1]["plan"]  # how this run used the machine
    assert plan["device"] == "cpu" and plan["batch_size"] == 16 and plan["decode_workers"] >= 1
    assert not list(out.rglob(".*.tmp"))


def test_same_out_different_model_is_refused(job: dict, tmp_path: Path) -> None:
    other = tiny_model(tmp_path / "other.pt")
    import torch

    data = torch.load(other, weights_only=True)
    data["provenance"]["note"] = "different"
    torch.save(data, other)
    proc = cli("run", job["root"] / "inputs", "--out", job["out"], "--model", other, "--embeddings")
    assert proc.returncode == 1 and "different model_sha256" in proc.stderr and "--overwrite" in proc.stderr


def test_rerun_with_nothing_left_is_a_no_op(job: dict) -> None:
    before = sorted(p.name for p in (job["out"] / "videos").glob("*.parquet"))
    proc = cli("run", job["root"] / "inputs", "--out", job["out"], "--model", job["model"], "--embeddings")
    assert proc.returncode == 3, proc.stderr  # nothing to do, but the job's outcome stands: some videos failed
    assert "3 video(s) failed in an earlier run of this job" in proc.stdout.replace("\n", " "), proc.stdout
    assert sorted(p.name for p in (job["out"] / "videos").glob("*.parquet")) == before
    status = cli("status", job["out"], "--json")
    data = json.loads(status.stdout)["output"]
    assert data["committed"] == len(job["expected"]) and data["failed"] == 3


def test_schema_command() -> None:
    proc = cli("schema")
    assert proc.returncode == 0 and "events/part-*.parquet" in proc.stdout and "audio_share" in proc.stdout


def test_no_ray_worker_outlives_the_run(job: dict) -> None:
    """Workers whose raylet is gone (the run's private Ray) must have been ended by the run."""
    import os

    orphans = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = dict(kv.split(b"=", 1) for kv in (entry / "environ").read_bytes().split(b"\0") if b"=" in kv)
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        raylet = env.get(b"RAY_RAYLET_PID")
        if raylet and state != "Z" and not os.path.exists(f"/proc/{int(raylet)}"):
            orphans.append(int(entry.name))
    assert orphans == []
