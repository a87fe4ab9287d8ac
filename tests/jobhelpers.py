"""Shared set-up for the batch-job tests: tiny clips, bad files, a tiny model, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from makemedia import av_clip, cut
from sample_media.generate import generate

ROOT = Path(__file__).resolve().parents[1]


def tiny_model(path: Path) -> Path:
    import torch

    from pipeline.model import create_model, save_checkpoint
    from sample_media.synth import LABELS

    torch.manual_seed(0)
    m = create_model(LABELS, visual_kwargs=dict(dim=16, width=4, frame_size=32),
                     audio_kwargs=dict(dim=16, width=4), fusion_config=dict(dim=16, heads=2),
                     events={"threshold": 0.1})  # untrained: scores near 1/9, so events appear
    return save_checkpoint(m, path)


def media_folder(root: Path, n_good: int = 3) -> dict[str, str]:
    """Good clips (one without audio) and bad files; returns video_id -> expected status."""
    root.mkdir(parents=True, exist_ok=True)
    plans = generate(root / "good", n_good, seed=11, duration=4, width=64, height=48, fps=8,
                     formats=(".mp4", ".webm"), without_audio=[n_good - 1])
    expected = {f"good/{p.file}": "ok" for p in plans}
    (root / "bad").mkdir()
    (root / "bad" / "empty.mp4").write_bytes(b"")
    (root / "bad" / "text.mp4").write_text("this is not a video\n" * 10)
    full = av_clip(root / "full.tmp.mp4", duration=6.0, fps=8, options={"movflags": "faststart"})
    cut(full, root / "bad" / "truncated.mp4", 0.5)
    full.unlink()
    expected.update({"bad/empty.mp4": "failed", "bad/text.mp4": "failed", "bad/truncated.mp4": "failed"})
    for extra in root.glob("good/*.t*"):  # annotation files are not videos
        assert extra.suffix in (".txt", ".tsv")
    return expected


def cli(*args: object, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def session_pids(sid: int) -> list[int]:
    """Processes in the session ``sid`` (one this test started with start_new_session=True)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def kill_session(sid: int) -> None:
    """End every process of a session this test started (Ray's helpers outlive a killed driver)."""
    import signal
    import time

    for _ in range(50):
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def free_ports(n: int) -> list[int]:
    import socket

    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports
