from __future__ import annotations

from pathlib import Path

import pytest

from makemedia import av_clip


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_mp4(media_dir: Path) -> Path:
    """3 s, 10 fps, 64x48 H.264 + stereo 44.1 kHz AAC tone from 1.0 s."""
    return av_clip(media_dir / "clip.mp4", duration=3.0, fps=10, tone_start=1.0)


@pytest.fixture(scope="session")
def batch_job(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real `avfuse run` (local Ray) over good and bad inputs, shared by the job and report tests."""
    from jobhelpers import cli, media_folder, tiny_model

    root = tmp_path_factory.mktemp("job")
    expected = media_folder(root / "inputs")
    model = tiny_model(root / "tiny.pt")
    out = root / "out"
    proc = cli("run", root / "inputs", "--out", out, "--model", model, "--embeddings", "--commit-every", "2")
    return {"root": root, "out": out, "expected": expected, "proc": proc, "model": model}
