"""The synthetic event generator: layout rules, annotations, and real decodable clips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DecodeSettings
from pipeline.decode import StreamingDecoder
from sample_media.generate import generate, plan_clip
from sample_media.synth import LABELS


def modality_seconds(plan, label: str, modality: str) -> set[int]:
    out: set[int] = set()
    for a in plan.appearances:
        if a.label == label and a.modality in (modality, "both"):
            out |= set(range(a.start, a.end))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_plans_follow_the_ave_definition(seed: int) -> None:
    plan = plan_clip(np.random.default_rng(seed), "c", duration=10)
    assert len(LABELS) >= 6
    event = set(range(*plan.event))
    assert 2 <= len(event) <= 4
    for label in LABELS:
        both = modality_seconds(plan, label, "visual") & modality_seconds(plan, label, "audio")
        # the event class is visible and audible exactly during the event; no other class ever
        assert both == (event if label == plan.label else set())
    visible = modality_seconds(plan, plan.label, "visual")
    audible = modality_seconds(plan, plan.label, "audio")
    assert visible - event and audible - event  # neither modality alone localises the event
    assert any(a.label != plan.label for a in plan.appearances)  # distractors


def test_generated_clips_decode_and_match_annotations(tmp_path: Path) -> None:
    plans = generate(tmp_path, 3, seed=5, duration=5, formats=(".mp4", ".webm"), without_audio=[2])
    ave = (tmp_path / "annotations_ave.txt").read_text().splitlines()
    dcase = (tmp_path / "annotations_dcase.tsv").read_text().splitlines()
    assert ave[0] == "Category&VideoID&Quality&StartTime&EndTime"
    assert dcase[0].split("\t") == ["filename", "onset", "offset", "event_label"]
    assert len(ave) == len(dcase) == 3  # the clip without audio has no audio-visual event
    for plan, a_line, d_line in zip(plans, ave[1:], dcase[1:]):
        label, vid, quality, start, end = a_line.split("&")
        assert (label, vid, int(start), int(end)) == (plan.label, plan.clip_id, *plan.event)
        fname, onset, offset, label2 = d_line.split("\t")
        assert (fname, float(onset), float(offset), label2) == (plan.file, *map(float, plan.event), plan.label)
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert [c["clip_id"] for c in truth["clips"]] == [p.clip_id for p in plans]
    for plan in plans:
        with StreamingDecoder(tmp_path / plan.file, DecodeSettings(fps=2, frame_size=32)) as dec:
            segs = list(dec.segments())
        assert len(segs) == 5 and not dec.report.truncated
        assert all(s.has_video for s in segs)
        assert all(s.has_audio == plan.has_audio for s in segs)
        if plan.has_audio:
            rms = np.array([np.sqrt(np.mean(s.audio**2)) for s in segs])
            audible = modality_seconds(plan, plan.label, "audio") | {
                k for a in plan.appearances if a.modality == "audio" for k in range(a.start, a.end)
            }
            quiet = [k for k in range(5) if k not in audible]
            loud = sorted(audible)
            if quiet:
                assert rms[loud].min() > 2 * rms[quiet].max()


def test_sample_media_cli(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "sample-media", "--out", str(tmp_path), "--n", "2",
         "--seed", "3", "--duration", "4"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["clip_3_0000.mp4", "clip_3_0001.mp4"]
    assert (tmp_path / "annotations_ave.txt").exists()
