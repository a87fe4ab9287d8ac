"""Timeline figures: thumbnails, spectrogram, class probabilities, events and their modality shares.

Everything comes from the Parquet rows of one video (or the same rows built in memory by
``avfuse detect``) plus the decoder, so a figure can be made later from a job's output
without the model. Long videos thin out: fewer thumbnails, pooled spectrogram columns and
probability lines.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np

MAX_THUMBS = 12
MAX_COLUMNS = 1500  # spectrogram columns
MAX_POINTS = 600  # probability line points
TOP_CLASSES = 4


@dataclass
class Timeline:
    """One video's rows, as the tables hold them."""

    video_id: str
    path: str
    labels: list[str]
    starts: np.ndarray  # (N,) segment starts, seconds
    ends: np.ndarray
    probs: np.ndarray  # (N, C+1), label order then background
    events: list[dict[str, Any]] = field(default_factory=list)  # label, start_s, end_s, score, audio_share
    truth: list[tuple[str, float, float]] | None = None

    @property
    def duration(self) -> float:
        return float(self.ends[-1]) if len(self.ends) else 0.0


def timeline_from_tables(tables: dict[str, Any], labels: Sequence[str], video_id: str, path: str,
                         truth: list[tuple[str, float, float]] | None = None) -> Timeline:
    """Build from pyarrow tables (``segments`` and ``events``) filtered to one video."""
    seg = tables["segments"].to_pydict()
    order = np.argsort(seg["segment_index"])
    probs = np.array([seg["probs"][i] for i in order], np.float32).reshape(len(order), len(labels) + 1)
    ev = tables["events"].to_pylist()
    return Timeline(video_id, path, list(labels), np.array(seg["start_s"])[order], np.array(seg["end_s"])[order],
                    probs, sorted(ev, key=lambda e: e["start_s"]), truth)


def thumbnails(path: str, times: Sequence[float], height: int = 72) -> list[np.ndarray | None]:
    """RGB frames on screen at ``times`` (seconds), by seeking; None where there is no video."""
    import av

    from pipeline.media import container_origin, display_rotation, open_container

    container, _ = open_container(path)
    out: list[np.ndarray | None] = []
    try:
        if not container.streams.video:
            return [None] * len(times)
        stream = container.streams.video[0]
        origin = container_origin(container)
        tb = stream.time_base
        for t in times:
            target = Fraction(t).limit_denominator(1000) + origin
            frame_img = None
            try:
                container.seek(int(target / tb), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.pts is None or frame.pts * tb >= target - tb or frame_img is None:
                        w = max(1, round(height * frame.width / max(frame.height, 1)))
                        k = display_rotation(frame) // 90
                        img = frame.to_ndarray(width=w if k % 2 == 0 else height,
                                               height=height if k % 2 == 0 else w, format="rgb24")
                        frame_img = np.rot90(img, k) if k else img
                        if frame.pts is None or frame.pts * tb >= target - tb:
                            break
            except av.error.FFmpegError:
                pass
            out.append(frame_img)
    finally:
        container.close()
    return out


def mel_image(path: str, n_segments: int, n_mels: int = 64) -> np.ndarray | None:
    """(n_mels, columns) log-mel power of the whole file, pooled to at most MAX_COLUMNS columns."""
    import torchaudio

    from pipeline.config import DecodeSettings
    from pipeline.decode import StreamingDecoder

    sr, n_fft, hop = 16_000, 512, 256
    fb = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 50.0, sr / 2, n_mels, sr, "slaney", "slaney").numpy()
    per_seg = int(np.clip(MAX_COLUMNS // max(n_segments, 1), 1, sr // hop))
    window = np.hanning(n_fft).astype(np.float32)
    cols: list[np.ndarray] = []
    settings = DecodeSettings(fps=Fraction(1), frame_size=8, sample_rate=sr, decode_video=False)
    try:
        with StreamingDecoder(path, settings) as dec:
            for seg in dec.segments():
                x = seg.audio
                starts = np.arange(0, len(x) - n_fft + 1, hop)
                frames = np.stack([x[s : s + n_fft] * window for s in starts])
                power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 @ fb  # (frames, n_mels)
                for chunk in np.array_split(power, min(per_seg, len(power))):
                    cols.append(chunk.mean(axis=0))
    except Exception:  # noqa: BLE001 - no audio stream, or undecodable: the panel says so
        return None
    if not cols:
        return None
    return 10 * np.log10(np.maximum(np.stack(cols, axis=1), 1e-10))


def _pool(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Max-pool rows of (N, K) to at most n rows; returns (indices of row starts, pooled)."""
    if len(x) <= n:
        return np.arange(len(x)), x
    edges = np.linspace(0, len(x), n + 1).astype(int)
    return edges[:-1], np.stack([x[a:b].max(axis=0) for a, b in zip(edges[:-1], edges[1:])])


def _fmt_time(seconds: float, minutes: bool) -> str:
    if minutes:
        m, s = divmod(int(round(seconds)), 60)
        return f"{m}:{s:02d}"
    return f"{seconds:g}"


def render_timeline(tl: Timeline, width_px: int = 1400, dpi: int = 100) -> bytes:
    """The timeline of one video as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter

    T = max(tl.duration, 1e-3)
    colours = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(tl.labels)}
    rows = [("frames", 1.1), ("sound (log-mel)", 1.0), ("class probability", 1.3), ("events", 0.45)]
    if tl.truth is not None:
        rows.append(("ground truth", 0.45))
    rows.append(("audio | visual share", 0.45))
    fig, axes = plt.subplots(len(rows), 1, sharex=True, figsize=(width_px / dpi, 1.25 * sum(h for _, h in rows) + 0.8),
                             dpi=dpi, gridspec_kw={"height_ratios": [h for _, h in rows], "hspace": 0.12})
    ax = dict(zip([r for r, _ in rows], axes))
    long = T >= 120
    ax["frames"].set_title(f"{tl.video_id}  ({_fmt_time(T, long)}{'' if long else ' s'}, {len(tl.events)} events)",
                           fontsize=11, loc="left")

    n_thumbs = int(np.clip(round(T / 1.0), 2, MAX_THUMBS))
    centres = (np.arange(n_thumbs) + 0.5) * T / n_thumbs
    a = ax["frames"]
    for t, img in zip(centres, thumbnails(tl.path, centres)):
        if img is not None:
            half = T / n_thumbs * 0.48
            a.imshow(img, extent=(t - half, t + half, 0, 1), aspect="auto", interpolation="bilinear")
    a.set_ylim(0, 1)
    a.set_yticks([])

    a = ax["sound (log-mel)"]
    mel = mel_image(tl.path, len(tl.starts))
    if mel is not None:
        a.imshow(mel, extent=(0, T, 0, mel.shape[0]), origin="lower", aspect="auto", cmap="magma",
                 vmin=float(np.percentile(mel, 5)), vmax=float(mel.max()))
    else:
        a.text(0.5, 0.5, "no audio", transform=a.transAxes, ha="center", va="center", color="grey")
    a.set_yticks([])

    a = ax["class probability"]
    C = len(tl.labels)
    if len(tl.probs):
        top = np.argsort(-tl.probs[:, :C].max(axis=0))[:TOP_CLASSES]
        idx, pooled = _pool(tl.probs[:, top], MAX_POINTS)
        mids = (tl.starts[idx] + tl.ends[np.minimum(idx + max(1, len(tl.starts) // MAX_POINTS) - 1, len(tl.ends) - 1)]) / 2
        for j, c in enumerate(top):
            # a step per segment: the score holds for the whole segment
            a.step(mids, pooled[:, j], where="mid", color=colours[tl.labels[c]],
                   lw=1.6 if len(mids) < 200 else 0.9, label=tl.labels[c])
        a.legend(loc="upper right", fontsize=8, ncol=min(4, len(top)), frameon=False)
    a.set_ylim(0, 1.05)
    a.set_yticks([0, 0.5, 1])

    def spans(axis: Any, items: list[tuple[str, float, float]]) -> None:
        for label, s, e in items:
            axis.add_patch(Rectangle((s, 0.1), e - s, 0.8, color=colours.get(label, "grey"), alpha=0.85))
            if (e - s) / T > 0.03:
                axis.text((s + e) / 2, 0.5, label, ha="center", va="center", fontsize=8, color="white",
                          clip_on=True)
        axis.set_ylim(0, 1)
        axis.set_yticks([])

    spans(ax["events"], [(e["label"], e["start_s"], e["end_s"]) for e in tl.events])
    if tl.truth is not None:
        spans(ax["ground truth"], tl.truth)
    a = ax["audio | visual share"]
    for e in tl.events:
        split = e["start_s"] + (e["end_s"] - e["start_s"]) * float(e["audio_share"])
        a.add_patch(Rectangle((e["start_s"], 0.1), split - e["start_s"], 0.8, color="#1f77b4"))
        a.add_patch(Rectangle((split, 0.1), e["end_s"] - split, 0.8, color="#ff7f0e"))
    a.set_ylim(0, 1)
    a.set_yticks([])
    for name, axis in ax.items():
        axis.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        axis.set_xlim(0, T)
    axes[-1].xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: _fmt_time(x, long)))
    axes[-1].set_xlabel("time (m:ss)" if long else "time (s)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def save_timeline(tl: Timeline, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_timeline(tl))
    return path
