"""When the model itself fails: a batch too big for the GPU is split, any other model error
fails only the videos whose windows were in that batch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from jobhelpers import tiny_model
from makemedia import av_clip
from pipeline.inference import Predictor, WindowBatch
from pipeline.model import AVModel, load_checkpoint
from pipeline.stages import DecodeStage, ModelStage, settings_to_dict, window_batch


class FailingPredictor(Predictor):
    """The real predictor, with a fault injected where the device would fail: batches above
    ``limit`` windows raise ``error`` (``torch.OutOfMemoryError`` is what CUDA raises)."""

    def __init__(self, *args: object, limit: int, error: type[Exception] = torch.OutOfMemoryError, **kw: object) -> None:
        super().__init__(*args, **kw)
        self.limit, self.error, self.sizes = limit, error, []

    def run(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        self.sizes.append(len(batch))
        if len(batch) > self.limit:
            raise self.error("injected: CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().run(batch)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("clips")
    return [av_clip(root / f"c{i}.mp4", duration=float(d), fps=8) for i, d in enumerate((12, 7))]


def decoded_rows(model: AVModel, clips: list[Path]) -> dict[str, np.ndarray]:
    """What the decode stage hands the model stage for ``clips`` (one bad path included)."""
    parts = list(DecodeStage()(
        {"video_id": np.array([c.name for c in clips] + ["missing.mp4"], dtype=object),
         "path": np.array([str(c) for c in clips] + [str(clips[0].parent / "missing.mp4")], dtype=object)},
        settings=settings_to_dict(replace(model.decode_settings, threads=1)),
        window={"segments": model.window.segments, "hop": model.window.hop}))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def test_out_of_memory_splits_the_batch_and_later_batches_start_small(model_file: Path, clips: list[Path]) -> None:
    model = load_checkpoint(model_file)
    model.window = replace(model.window, segments=4, hop=2)  # several windows per clip
    rows = decoded_rows(model, clips)
    batch = window_batch(rows, rows["error"] == "")
    assert len(batch) >= 7
    want = Predictor(model, device="cpu")(batch)
    failing = FailingPredictor(model, device="cpu", limit=3)
    got = failing(batch)
    for k in want:
        assert got[k].shape == want[k].shape
        np.testing.assert_allclose(got[k], want[k], atol=1e-5)
    assert failing.max_windows == 2 and max(failing.sizes) == len(batch)
    failing.sizes.clear()
    failing(batch)  # the next batch is cut to the size that fitted before it is tried
    assert max(failing.sizes) == 2
    with pytest.raises(torch.OutOfMemoryError):  # one window that does not fit cannot be split
        FailingPredictor(model, device="cpu", limit=0)(batch.take(slice(0, 1)))


def test_a_model_error_fails_the_videos_of_that_batch_only(model_file: Path, clips: list[Path]) -> None:
    stage = ModelStage(model_file.read_bytes(), "tiny.pt", device="cpu")
    rows = decoded_rows(stage.model, clips)
    fine = stage(rows)
    assert set(fine["error"]) == {"", fine["error"][-1]} and fine["error_type"][-1] == "MediaNotFoundError"
    assert np.isfinite(fine["probs"][:-1]).all()
    stage.predictor = FailingPredictor(stage.model, device="cpu", limit=0, error=RuntimeError)
    failed = stage(rows)
    assert all(e.startswith("the model failed on this video's windows: RuntimeError") for e in failed["error"][:-1])
    assert list(failed["error_type"][:-1]) == ["RuntimeError"] * (len(rows["error"]) - 1)
    assert failed["error_type"][-1] == "MediaNotFoundError"  # a decode error keeps its own message
