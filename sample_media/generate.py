"""Generate synthetic audio-visual event clips with ground truth.

Each clip holds one event class ``c``: the event is the span where ``c`` is
both visible and audible (the AVE definition). Elsewhere in the same clip ``c``
is also visible-only once and audible-only once, so neither modality alone can
localise the event; distractors of other classes appear in one modality each.
Spans are whole seconds, like AVE's annotations.

Writes the clips plus ``annotations_ave.txt`` (``Category&VideoID&Quality&StartTime&EndTime``),
``annotations_dcase.tsv`` (``filename, onset, offset, event_label``), ``labels.txt``
and ``ground_truth.json`` (every appearance, for plots and checks).

    python -m sample_media.generate --out DIR --n 20 --seed 0
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from sample_media.synth import BY_LABEL, LABELS, draw
from sample_media.writer import audio_rate_for, write_media

AUDIO_RATE = 44_100  # deliberately not 16 kHz: the decoder must resample


@dataclass(frozen=True)
class Appearance:
    """``label`` shown and/or heard during whole seconds ``[start, end)``."""

    label: str
    modality: str  # "both", "visual" or "audio"
    start: int
    end: int


@dataclass(frozen=True)
class ClipPlan:
    """Everything about one synthetic clip, ground truth included."""

    clip_id: str
    file: str
    label: str
    duration: int
    event: tuple[int, int]  # [start, end) in seconds; (0, 0) when the clip has no sound
    appearances: tuple[Appearance, ...]
    has_audio: bool = True


def _place(rng: np.random.Generator, lengths: Sequence[int], duration: int) -> list[tuple[int, int]]:
    """Non-overlapping spans of the given lengths, in random order and positions."""
    order = rng.permutation(len(lengths))
    free = duration - sum(lengths)
    cuts = np.sort(rng.integers(0, free + 1, size=len(lengths)))
    gaps = np.diff(np.concatenate([[0], cuts]))
    spans: list[tuple[int, int]] = [(0, 0)] * len(lengths)
    pos = 0
    for gap, i in zip(gaps, order):
        pos += int(gap)
        spans[i] = (pos, pos + lengths[i])
        pos += lengths[i]
    return spans


def plan_clip(rng: np.random.Generator, clip_id: str, duration: int = 10,
              ext: str = ".mp4", has_audio: bool = True) -> ClipPlan:
    """Draw one clip's layout: event, same-class decoys in each modality, distractors."""
    if duration < 4:
        raise ValueError("clips need at least 4 seconds for an event and its decoys")
    label = str(rng.choice(LABELS))
    budget = duration
    le = int(rng.integers(2, min(4, budget - 2) + 1))
    lv = int(rng.integers(1, min(3, budget - le - 1) + 1))
    la = int(rng.integers(1, min(3, budget - le - lv) + 1))
    (e0, e1), (v0, v1), (a0, a1) = _place(rng, [le, lv, la], duration)
    apps = [
        Appearance(label, "both", e0, e1),
        Appearance(label, "visual", v0, v1),
        Appearance(label, "audio", a0, a1),
    ]
    others = [c for c in LABELS if c != label]
    for other in rng.choice(others, size=int(rng.integers(1, 4)), replace=False):
        length = int(rng.integers(1, 5))
        start = int(rng.integers(0, duration - length + 1))
        apps.append(Appearance(str(other), str(rng.choice(["visual", "audio"])), start, start + length))
    event = (e0, e1) if has_audio else (0, 0)
    return ClipPlan(clip_id, clip_id + ext, label, duration, event, tuple(apps), has_audio)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random two-colour gradient with a fixed grain (static, so it compresses)."""
    a, b = rng.integers(0, 140, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, width if rng.random() < 0.5 else height)
    grad = a[None, :] + (b - a)[None, :] * ramp[:, None]
    img = np.broadcast_to(grad[None, :, :], (height, width, 3)) if len(ramp) == width else (
        np.broadcast_to(grad[:, None, :], (height, width, 3))
    )
    grain = rng.normal(0.0, 6.0, size=(height, width, 1))
    return np.clip(img + grain, 0, 255).astype(np.uint8)


def render_frames(plan: ClipPlan, rng: np.random.Generator, width: int, height: int,
                  fps: int) -> Iterator[np.ndarray]:
    """The clip's frames: background plus every visible appearance, drifting slowly."""
    bg = _background(rng, height, width)
    visible = [a for a in plan.appearances if a.modality in ("both", "visual")]
    side = min(width, height)
    motion = []
    for _ in visible:
        radius = rng.uniform(0.14, 0.26) * side
        start = rng.uniform([radius, radius], [width - radius, height - radius])
        velocity = rng.uniform(-0.04, 0.04, size=2) * side  # pixels per second
        jitter = rng.integers(-20, 21, size=3)
        motion.append((radius, start, velocity, jitter))
    for i in range(plan.duration * fps):
        t = i / fps
        canvas = bg.copy()
        for app, (radius, start, velocity, jitter) in zip(visible, motion):
            if app.start <= t < app.end:
                cx, cy = start + velocity * (t - app.start)
                colour = tuple(int(c) for c in np.clip(np.array(BY_LABEL[app.label].colour) + jitter, 0, 255))
                draw(canvas, BY_LABEL[app.label], float(cx), float(cy), float(radius), colour)
        yield canvas


def render_audio(plan: ClipPlan, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """float32 (2, n) stereo: background noise plus every audible appearance, panned."""
    n = plan.duration * sample_rate
    noise = rng.standard_normal(n)
    noise = np.convolve(noise, np.ones(8) / 8, mode="same")  # darker than white noise
    mix = noise * 10 ** (rng.uniform(-50, -38) / 20) / noise.std()
    stereo = np.stack([mix, mix])
    fade = int(0.01 * sample_rate)
    for app in plan.appearances:
        if app.modality not in ("both", "audio"):
            continue
        lo, hi = app.start * sample_rate, app.end * sample_rate
        sound = BY_LABEL[app.label].sound(hi - lo, sample_rate, rng)
        # loudness is RMS level, between -26 and -14 dBFS: at least 12 dB above the noise
        sound = sound / (np.sqrt(np.mean(sound**2)) + 1e-9) * 10 ** (rng.uniform(-26, -14) / 20)
        ramp = np.minimum(1.0, np.minimum(np.arange(hi - lo), np.arange(hi - lo)[::-1]) / fade)
        pan = rng.uniform(0.2, 0.8)
        stereo[0, lo:hi] += sound * ramp * (1 - pan) * 2
        stereo[1, lo:hi] += sound * ramp * pan * 2
    return np.clip(stereo, -1.0, 1.0).astype(np.float32)


def write_clip(plan: ClipPlan, out_dir: Path, rng: np.random.Generator,
               width: int = 160, height: int = 120, fps: int = 15) -> Path:
    """Render and encode one planned clip into ``out_dir``."""
    path = out_dir / plan.file
    rate = audio_rate_for(path, AUDIO_RATE)
    audio = render_audio(plan, rng, rate) if plan.has_audio else None
    return write_media(
        path,
        frames=render_frames(plan, rng, width, height, fps),
        fps=fps,
        audio=audio,
        sample_rate=rate,
        audio_bit_rate=48_000,
        video_options={"crf": "30", "preset": "veryfast"} if path.suffix in (".mp4", ".mov", ".mkv")
        else {"crf": "40", "b": "0", "deadline": "realtime", "cpu-used": "8"},
    )


def write_annotations(plans: Sequence[ClipPlan], out_dir: Path) -> None:
    """AVE and DCASE ground truth for the clips that have an event, plus the full truth."""
    with_event = [p for p in plans if p.event[1] > p.event[0]]
    ave = ["Category&VideoID&Quality&StartTime&EndTime"]
    ave += [f"{p.label}&{p.clip_id}&good&{p.event[0]}&{p.event[1]}" for p in with_event]
    (out_dir / "annotations_ave.txt").write_text("\n".join(ave) + "\n")
    dcase = ["filename\tonset\toffset\tevent_label"]
    dcase += [f"{p.file}\t{p.event[0]:.3f}\t{p.event[1]:.3f}\t{p.label}" for p in with_event]
    (out_dir / "annotations_dcase.tsv").write_text("\n".join(dcase) + "\n")
    (out_dir / "labels.txt").write_text("\n".join(LABELS) + "\n")
    truth = {"labels": list(LABELS), "clips": [asdict(p) for p in plans]}
    (out_dir / "ground_truth.json").write_text(json.dumps(truth, indent=1) + "\n")


def _write_one(args: tuple[Path, int, int, int, str, bool, str, int, int, int]) -> ClipPlan:
    out, seed, i, duration, ext, has_audio, prefix, width, height, fps = args
    rng = np.random.default_rng([seed, i])  # one stream per clip: the same clips in any order
    plan = plan_clip(rng, f"{prefix}_{seed}_{i:04d}", duration, ext, has_audio)
    write_clip(plan, out, rng, width, height, fps)
    return plan


def generate(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    *,
    duration: int = 10,
    width: int = 160,
    height: int = 120,
    fps: int = 15,
    formats: Sequence[str] = (".mp4",),
    without_audio: Sequence[int] = (),
    prefix: str = "clip",
    workers: int = 1,
) -> list[ClipPlan]:
    """Write ``n`` clips (``formats`` cycled; indices in ``without_audio`` get no sound).

    Clip ``i`` depends only on ``seed`` and ``i``, so ``workers`` processes make the same set.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out, seed, i, duration, formats[i % len(formats)], i not in without_audio, prefix, width, height, fps)
            for i in range(n)]
    if workers > 1 and n > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            plans = list(pool.map(_write_one, jobs, chunksize=8))
    else:
        plans = [_write_one(job) for job in jobs]
    write_annotations(plans, out)
    return plans


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    generate(args.out, args.n, args.seed, workers=args.workers)


if __name__ == "__main__":
    main()

