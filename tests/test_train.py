"""Training on tiny generated data: the loss falls, and eval and detect load the checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.model import load_checkpoint
from pipeline.train import TrainSettings, train
from sample_media.generate import generate

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("train")
    generate(root / "data", 12, seed=3, duration=4, width=64, height=48, fps=8)
    losses: list[float] = []
    settings = TrainSettings(
        videos=root / "data", annotations=root / "data" / "annotations_dcase.tsv", out=root / "m.pt",
        epochs=6, batch_size=4, lr=3e-3, seed=0, val_fraction=0.25, cache_dir=root / "cache", workers=1,
        visual_kwargs=dict(dim=16, width=4, frame_size=32), audio_kwargs=dict(dim=16, width=4),
        fusion_config=dict(dim=16, heads=2), window=4, hop=4,
    )
    report = train(settings, on_epoch=lambda st: losses.append(st.loss))
    return {"root": root, "report": report, "losses": losses, "settings": settings}


def test_loss_falls_and_checkpoint_is_complete(trained: dict) -> None:
    losses = trained["losses"]
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0]
    model = load_checkpoint(trained["root"] / "m.pt")
    assert model.trained and model.labels == sorted(model.labels)
    prov = model.provenance
    assert prov["n_clips"] == 12 and prov["n_val_clips"] == 3 and prov["annotation_format"] == "dcase"
    assert len(prov["data_fingerprint"]) == 16 and prov["event_settings"]["threshold"] > 0
    assert model.window.segments == 4


def test_training_is_reproducible_with_a_seed(trained: dict, tmp_path: Path) -> None:
    import torch

    again = train(TrainSettings(**{**trained["settings"].__dict__, "out": tmp_path / "again.pt"}))
    a = load_checkpoint(trained["root"] / "m.pt").state_dict()
    b = again.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_decode_cache_is_used(trained: dict) -> None:
    cached = list((trained["root"] / "cache").glob("*.npz"))
    assert len(cached) == 12


def cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_eval_and_detect_load_the_checkpoint(trained: dict) -> None:
    root = trained["root"]
    proc = cli("eval", "--model", root / "m.pt", "--videos", root / "data", "--annotations",
               root / "data" / "annotations_ave.txt", "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for key in ("segment_accuracy", "clip_accuracy", "segment_f1", "event_f1", "clip_map"):
        assert 0.0 <= data[key] <= 1.0
    assert data["n_videos"] == 12 and data["n_segments"] == 48
    proc = cli("detect", root / "data" / "clip_3_0000.mp4", "--model", root / "m.pt", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"]["trained"] is True


def test_eval_refuses_labels_the_model_does_not_know(trained: dict, tmp_path: Path) -> None:
    ann = tmp_path / "a.txt"
    ann.write_text("unicorn&clip_3_0000&good&0&2\n")
    proc = cli("eval", "--model", trained["root"] / "m.pt", "--videos", trained["root"] / "data",
               "--annotations", ann)
    assert proc.returncode == 1 and "unicorn" in proc.stderr


def test_bad_train_settings_are_all_reported(tmp_path: Path) -> None:
    proc = cli("train", "--videos", tmp_path, "--annotations", tmp_path / "a.txt", "--out", tmp_path / "m.pt",
               "--fusion", "hybrid", "--modalities", "smell", "--encoders", "melt", "--val-fraction", "2")
    assert proc.returncode == 1
    assert "--modalities" in proc.stderr and "--encoders" in proc.stderr and "--val-fraction" in proc.stderr
