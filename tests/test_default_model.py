"""The bundled model on the committed sample clips: it must find their annotated events."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.annotations import read_annotations
from pipeline.detect import analyse, default_model_path, load_model
from pipeline.metrics import Counts, event_based

SAMPLES = Path(__file__).resolve().parents[1] / "sample_media" / "clips"


@pytest.fixture(scope="module")
def model():
    assert default_model_path().is_file(), "the bundled model is missing from pipeline/assets"
    return load_model(None)


def test_bundled_model_is_trained_on_the_synthetic_classes(model) -> None:
    assert model.trained
    assert model.labels == ["bell", "bird", "dog", "drum", "engine", "rain", "siren", "whistle"]
    assert default_model_path().stat().st_size < 10 * 2**20
    assert model.provenance["n_clips"] >= 300


def test_bundled_model_finds_the_sample_events(model) -> None:
    ann = read_annotations(SAMPLES / "annotations_ave.txt")
    total = Counts()
    correct_segments = segments = 0
    for video, truth in ann.videos.items():
        res = analyse(next(SAMPLES.glob(f"{video}.*")), model)
        est = [(e.label, e.start_s, e.end_s) for e in res.scores.events]
        for counts in event_based([(a.label, a.onset, a.offset) for a in truth], est, model.labels).values():
            total += counts
        (a,) = truth
        for k, (s, e) in enumerate(zip(res.scores.starts, res.scores.ends)):
            inside = a.onset <= s and e <= a.offset
            best = res.scores.probs[k].argmax()
            expected = model.labels.index(a.label) if inside else len(model.labels)
            correct_segments += int(best == expected)
            segments += 1
    assert segments == 70
    assert correct_segments / segments >= 0.9
    assert total.f1 >= 0.8, (total.tp, total.fp, total.fn)


def test_no_audio_clip_has_no_audio_visual_event(model) -> None:
    res = analyse(SAMPLES / "clip_7_0007.mov", model)
    assert not res.info.has_audio
    assert all(e.audio_share == 0.0 for e in res.scores.events)
