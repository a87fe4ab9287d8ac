"""Kill the driver (SIGKILL) or press Ctrl-C during a run, run again: every video exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from jobhelpers import ROOT, cli, kill_session, media_folder, session_pids, tiny_model

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def committed(out: Path) -> list[str]:
    if not list((out / "videos").glob("part-*.parquet")):
        return []
    return [r[0] for r in duckdb.sql(f"SELECT video_id FROM read_parquet('{out}/videos/part-*.parquet')").fetchall()]


def test_sigkill_then_resume_gives_every_video_exactly_once(tmp_path: Path) -> None:
    expected = media_folder(tmp_path / "in", n_good=9)
    model = tiny_model(tmp_path / "m.pt")
    out = tmp_path / "out"
    args = ["run", tmp_path / "in", "--out", out, "--model", model, "--commit-every", "1", "--batch-size", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=ROOT,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not list((out / "videos").glob("part-*.parquet")):
            assert proc.poll() is None, "the run ended before its first commit"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kill_session(proc.pid)
    first = committed(out)
    assert 1 <= len(first) < len(expected), "kill the run between its first and last commit"
    # a unit cut short by the kill: rows in other tables without a videos file must not survive
    orphan = sorted((out / "events").glob("part-*.parquet"))[0]
    (out / "events" / "part-orphan-unit.parquet").write_bytes(orphan.read_bytes())

    proc2 = cli("run", tmp_path / "in", "--out", out, "--model", model)
    assert proc2.returncode == 3, proc2.stdout + proc2.stderr  # done; the bad files failed (in this run or before)
    assert not (out / "events" / "part-orphan-unit.parquet").exists()
    ids = committed(out)
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    job = json.loads((out / "_job.json").read_text())
    assert job["runs"][-1]["scheduled"] == len(expected) - len(first)  # decoded only the missing ones
    assert job["runs"][-1]["already_committed"] == len(first)
    sql = lambda q: duckdb.sql(q.format(o=out)).fetchall()  # noqa: E731
    assert sql("SELECT count(*) FROM (SELECT video_id, segment_index, count(*) AS c "
               "FROM read_parquet('{o}/segments/*.parquet') GROUP BY ALL HAVING c > 1)")[0][0] == 0
    per_video = dict(sql("SELECT video_id, n_events FROM read_parquet('{o}/videos/*.parquet')"))
    counted = dict(sql("SELECT video_id, count(*) FROM read_parquet('{o}/events/*.parquet') GROUP BY 1"))
    assert all(counted.get(v, 0) == n for v, n in per_video.items() if n is not None)
    clips = dict(sql("SELECT video_id, count(*) FROM read_parquet('{o}/clips/*.parquet') GROUP BY 1"))
    assert all(c == 1 for c in clips.values())  # 4-second clips: one window each, once


def _cmdlines(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
            out.append(cmd or Path(f"/proc/{pid}/stat").read_text()[:60])  # a zombie has no cmdline
        except OSError:
            pass
    return out


def _interrupt(args: list, when, log: Path) -> tuple[subprocess.Popen, str, list[str]]:  # noqa: ANN001
    """Start ``avfuse run``, press Ctrl-C (SIGINT) once ``when(proc)`` holds; returns the process,
    its stderr (through ``log``: a pipe nobody reads while waiting could fill and stall the run)
    and the processes of its session still alive a moment after it exited."""
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=ROOT,
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not when(proc):
            assert proc.poll() is None, "the run ended before it could be interrupted"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
        time.sleep(1.0)
        return proc, log.read_text(), _cmdlines(session_pids(proc.pid))
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_session(proc.pid)


def test_ctrl_c_commits_what_finished_says_how_to_resume_and_leaves_no_process(tmp_path: Path) -> None:
    expected = media_folder(tmp_path / "in", n_good=9)
    model = tiny_model(tmp_path / "m.pt")
    out = tmp_path / "out"
    args = ["run", tmp_path / "in", "--out", out, "--model", model, "--commit-every", "1", "--batch-size", "1"]

    # while Ray is starting: an interrupted ray.init would orphan Ray's agents, so it is held until Ray is up
    raylet_started = lambda proc: any("raylet" in c for c in _cmdlines(session_pids(proc.pid)))  # noqa: E731
    proc, err, left = _interrupt(args, raylet_started, tmp_path / "stderr1.txt")
    assert proc.returncode == 130, err
    assert "interrupted: no video committed by this run" in err and "run the same command again" in err, err
    assert left == [], left

    # after the first commit: what finished is committed, _job.json says so
    proc, err, left = _interrupt(args, lambda proc: bool(committed(out)), tmp_path / "stderr2.txt")
    assert proc.returncode == 130, err
    assert left == [], left
    job = json.loads((out / "_job.json").read_text())
    assert job["state"] == "interrupted"
    n = len(committed(out))
    assert 1 <= n < len(expected), "interrupt the run between its first and last commit"
    assert f"interrupted: {n} of {len(expected)} videos committed in {out}" in err, err
    assert job["counts"]["committed"] == n

    proc2 = cli("run", tmp_path / "in", "--out", out, "--model", model)
    assert proc2.returncode == 3, proc2.stdout + proc2.stderr  # done; the bad files failed (in this run or before)
    ids = committed(out)
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
