"""The model on a CUDA device: bf16 autocast and pinned, non-blocking copies give the CPU's answers,
and the batch job puts its model actor on the GPU.

Skipped where torch sees no CUDA device (CI has none); on a GPU machine: ``pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest
import torch

from jobhelpers import ROOT, cli
from pipeline.detect import analyse, batched, load_model
from pipeline.inference import Predictor, WindowBatch, stack_windows
from pipeline.model import AVModel, create_model
from pipeline.windows import iter_windows

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CLIPS = ROOT / "sample_media" / "clips"


def window_batches(path: Path, model: AVModel, size: int = 8) -> list[WindowBatch]:
    from pipeline.decode import StreamingDecoder

    settings = model.decode_settings
    with StreamingDecoder(path, settings) as dec:
        return [stack_windows(chunk, model.window.segments, settings)
                for chunk in batched(iter_windows(dec.segments(), model.window), size)]


def valid(batch: WindowBatch) -> np.ndarray:
    """(B, W) mask of the segments a window really holds (the rest is padding)."""
    return np.arange(batch.starts.shape[1])[None, :] < batch.lengths[:, None]


def compare(model: AVModel, batches: list[WindowBatch]) -> dict[str, float]:
    cpu = Predictor(copy.deepcopy(model), device="cpu")
    gpu = Predictor(copy.deepcopy(model), device="cuda")
    worst = {"probs": 0.0, "shares": 0.0, "clip_probs": 0.0}
    agree = total = 0
    for b in batches:
        want, got = cpu(b), gpu(b)
        assert set(got) == set(want)
        for k in worst:
            assert got[k].dtype == np.float32 and np.isfinite(got[k]).all(), k
            m = valid(b) if k != "clip_probs" else slice(None)
            worst[k] = max(worst[k], float(np.abs(got[k][m] - want[k][m]).max()))
        m = valid(b)
        agree += int((got["probs"].argmax(-1)[m] == want["probs"].argmax(-1)[m]).sum())
        total += int(m.sum())
    return {**worst, "argmax_agreement": agree / total}


def test_bundled_model_on_cuda_gives_the_cpu_answers() -> None:
    model = load_model(None)
    batches = [b for clip in sorted(CLIPS.glob("clip_*"))[:4] for b in window_batches(clip, model)]
    diff = compare(model, batches)
    # bf16 autocast: probabilities move by a few hundredths at most, decisions hardly at all
    assert diff["probs"] < 0.05 and diff["clip_probs"] < 0.05 and diff["shares"] < 0.1, diff
    assert diff["argmax_agreement"] >= 0.97, diff


def test_detect_on_cuda_finds_the_cpu_events() -> None:
    model = load_model(None)
    for clip in sorted(CLIPS.glob("clip_*"))[:4]:
        cpu = analyse(clip, model, Predictor(copy.deepcopy(model), device="cpu")).scores.events
        gpu = analyse(clip, model, Predictor(copy.deepcopy(model), device="cuda")).scores.events
        assert [e.label for e in gpu] == [e.label for e in cpu], clip
        for a, b in zip(gpu, cpu):
            assert abs(a.start_s - b.start_s) <= 1.0 and abs(a.end_s - b.end_s) <= 1.0, (clip, a, b)


def test_resnet18_runs_in_bf16_on_cuda_and_matches_float32() -> None:
    from sample_media.synth import LABELS

    torch.manual_seed(0)
    model = create_model(LABELS, visual="resnet18")
    assert model.decode_settings.frame_size == 224
    batches = window_batches(sorted(CLIPS.glob("clip_*"))[0], model, size=4)
    seen: list[torch.dtype] = []
    gpu = Predictor(copy.deepcopy(model), device="cuda")
    hook = gpu.model.visual.backbone.layer4.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    out = gpu(batches[0])
    hook.remove()
    assert seen == [torch.bfloat16]  # the convolutions really ran under autocast
    want = Predictor(copy.deepcopy(model), device="cpu")(batches[0])
    m = valid(batches[0])
    assert np.isfinite(out["probs"]).all()
    assert np.abs(out["probs"][m] - want["probs"][m]).max() < 0.05


@pytest.mark.ray
@pytest.mark.slow
def test_batch_job_runs_the_model_actor_on_the_gpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cli("run", CLIPS, "--out", out, "--device", "cuda")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = json.loads((out / "_job.json").read_text())["runs"][-1]
    assert run["plan"]["device"] == "cuda" and run["plan"]["actor_gpus"] == 1.0
    assert run["ok"] == len(list(CLIPS.glob("clip_*")))
    events = pads.dataset(out / "events", format="parquet").to_table().to_pylist()
    model = load_model(None)
    for clip in sorted(CLIPS.glob("clip_*"))[:3]:
        want = analyse(clip, model, Predictor(copy.deepcopy(model), device="cpu")).scores.events
        got = sorted((e["start_s"], e["label"]) for e in events if e["video_id"] == clip.name)
        assert [label for _, label in got] == [e.label for e in sorted(want, key=lambda e: (e.start_s, e.label))], clip
