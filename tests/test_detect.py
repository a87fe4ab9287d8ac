"""`avfuse detect`: one clip in-process, events printed, Parquet written and read by DuckDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.detect import analyse
from pipeline.model import create_model, save_checkpoint
from sample_media.synth import LABELS

SAMPLES = Path(__file__).resolve().parents[1] / "sample_media" / "clips"


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(0)
    m = create_model(LABELS, visual_kwargs=dict(dim=16, width=4), audio_kwargs=dict(dim=16, width=4),
                     fusion_config=dict(dim=16, heads=2))
    return save_checkpoint(m, tmp_path_factory.mktemp("models") / "untrained.pt")


def cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_analyse_in_process(untrained: Path) -> None:
    from pipeline.model import load_checkpoint

    model = load_checkpoint(untrained)
    res = analyse(SAMPLES / "clip_7_0001.webm", model)
    sc = res.scores
    assert len(sc.probs) == 10 and sc.probs.shape[1] == len(LABELS) + 1
    assert sc.starts.tolist() == list(range(10)) and sc.ends[-1] == pytest.approx(10.0, abs=0.02)
    assert len(sc.clips) == 1 and not res.report.truncated


def test_detect_prints_events_and_writes_parquet(untrained: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    # an untrained model scores every class near 1/9: a low threshold makes events of all of them
    proc = cli("detect", SAMPLES / "clip_7_0000.mp4", "--model", untrained, "--out", out,
               "--threshold", "0.02", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "UNTRAINED" in proc.stderr and "UNTRAINED" in proc.stdout
    assert "events in 10.0 s" in proc.stdout
    rows = duckdb.sql(f"SELECT label, start_s, end_s, audio_share + visual_share AS total "
                      f"FROM read_parquet('{out}') ORDER BY label").fetchall()
    assert sorted(r[0] for r in rows) == sorted(LABELS)
    assert all(r[1] == 0.0 and r[2] == pytest.approx(10.0, abs=0.02) and r[3] == pytest.approx(1.0) for r in rows)
    types = {r[0]: r[1] for r in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{out}')").fetchall()}
    assert types["start_s"] == "DOUBLE" and types["event_index"] == "INTEGER"


def test_detect_json_on_a_file_without_audio(untrained: Path) -> None:
    proc = cli("detect", SAMPLES / "clip_7_0007.mov", "--model", untrained, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["has_audio"] is False and data["has_video"] is True and data["n_segments"] == 10
    assert all(e["audio_share"] == 0.0 for e in data["events"])


def test_detect_bad_input_exits_1(untrained: Path, tmp_path: Path) -> None:
    bad = tmp_path / "text.mp4"
    bad.write_text("not a video")
    proc = cli("detect", bad, "--model", untrained)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("error:") and str(bad) in last
    assert "Traceback" not in proc.stderr
    proc = cli("detect", SAMPLES / "clip_7_0000.mp4", "--model", tmp_path / "nope.pt")
    assert proc.returncode == 1 and "model file not found" in proc.stderr
