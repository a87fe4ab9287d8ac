"""Timeline PNGs and the HTML job report, checked in headless Chromium against DuckDB's counts."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image

from browser import REPORT_PROBE, chromium, inspect_page

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_media" / "clips"


def cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


def test_detect_plot_renders_a_timeline(batch_job: dict, tmp_path: Path) -> None:
    png = tmp_path / "timeline.png"
    proc = cli("detect", SAMPLES / "clip_7_0001.webm", "--model", batch_job["model"], "--plot", png,
               "--annotations", SAMPLES / "annotations_ave.txt")
    assert proc.returncode == 0, proc.stderr
    img = np.asarray(Image.open(io.BytesIO(png.read_bytes())).convert("RGB")).astype(float)
    assert img.shape[1] >= 1000 and img.shape[0] >= 400
    assert img.std() > 20  # not blank
    # the thumbnail strip shows the clip: some rows near the top are far from white
    assert (img[: img.shape[0] // 4].mean(axis=2) < 150).mean() > 0.05


def test_long_clip_timeline_thins_out(tmp_path: Path) -> None:
    from pipeline.plots import Timeline, render_timeline
    from sample_media.generate import generate

    generate(tmp_path, 1, seed=2, duration=60, width=64, height=48, fps=4)
    clip = next(tmp_path.glob("*.mp4"))
    n = 60
    probs = np.random.default_rng(0).dirichlet(np.ones(9), size=n).astype(np.float32)
    tl = Timeline("long", str(clip), [f"c{i}" for i in range(8)], np.arange(n, dtype=float),
                  np.arange(n, dtype=float) + 1, probs,
                  [{"label": "c1", "start_s": 5.0, "end_s": 9.0, "score": 0.8, "audio_share": 0.3}])
    img = Image.open(io.BytesIO(render_timeline(tl)))
    assert img.size[0] >= 1000


def test_report_loads_in_chromium_and_matches_duckdb(batch_job: dict, tmp_path: Path) -> None:
    out = batch_job["out"]
    html = tmp_path / "report.html"
    proc = cli("report", out, "--html", html, "--top", "3")
    assert proc.returncode == 0, proc.stderr
    text = html.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    if chromium() is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium; apt-get install chromium)")
    result = inspect_page(html.as_uri(), REPORT_PROBE)
    assert result["errors"] == []
    page = result["value"]
    assert page["images"] and all(page["images"])  # every image decodes
    assert all(page["links"])  # every in-page link has its target
    sql = lambda q: duckdb.sql(q.format(o=out)).fetchall()  # noqa: E731
    ok, failed = sql("SELECT count(*) FILTER (status = 'ok'), count(*) FILTER (status = 'failed') "
                     "FROM read_parquet('{o}/videos/*.parquet')")[0]
    n_events = sql("SELECT count(*) FROM read_parquet('{o}/events/*.parquet')")[0][0]
    assert page["counts"]["videos_ok"] == str(ok) and page["counts"]["videos_failed"] == str(failed)
    assert page["counts"]["events_total"] == str(n_events)
    per_label = dict(sql("SELECT label, count(*) FROM read_parquet('{o}/events/*.parquet') GROUP BY 1"))
    assert {k: int(v) for k, v in page["labels"].items()} == per_label
    failed_ids = [r[0] for r in sql("SELECT video_id FROM read_parquet('{o}/videos/*.parquet') "
                                     "WHERE status = 'failed' ORDER BY video_id")]
    assert sorted(page["failed"]) == failed_ids
