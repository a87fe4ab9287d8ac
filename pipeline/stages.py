"""Ray Data stages: a decode actor (videos -> window rows) and a model actor (rows -> scores).

Rows are dicts of numpy values, one row per analysis window, so that the model stage
can batch windows across videos:

    video_id, path           str
    window_index, first_segment, length   int
    final                    bool: the video's last window (its row carries ``media``)
    frames                   uint8 (W, F, S, S, 3)   (dropped by the model stage)
    audio                    float32 (W, N)          (dropped by the model stage)
    visual_present, audio_present   bool (W,)
    starts, ends             float64 (W,)
    error, error_type        str ("" when fine); an error row is the video's only row
    media                    str: JSON of ``tables.media_summary`` on the final row
    started_at               float: when decoding of the video started (epoch seconds)

The model stage adds probs (W, C+1), shares (W, C), clip_probs (C,) and, when asked,
embeddings (W, E).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from pipeline.config import DecodeSettings, WindowSettings
from pipeline.decode import StreamingDecoder
from pipeline.errors import AvfuseError, InvalidMediaError
from pipeline.media import probe
from pipeline.tables import media_summary
from pipeline.windows import Window, iter_windows

if TYPE_CHECKING:  # torch stays out of the decode processes
    from pipeline.inference import WindowBatch

# Decode workers import this module too: torch and the model are imported inside ModelStage
# only, so a decode process stays small (~100 MB instead of ~400 MB with torch).

PASS_THROUGH = ("video_id", "path", "window_index", "first_segment", "length", "final", "visual_present",
                "audio_present", "starts", "ends", "error", "error_type", "media", "started_at")


def settings_to_dict(s: DecodeSettings) -> dict[str, Any]:
    d = asdict(s)
    d["fps"], d["segment_s"] = str(s.fps), str(s.segment_s)
    return d


def settings_from_dict(d: dict[str, Any]) -> DecodeSettings:
    return DecodeSettings(**{**d, "fps": Fraction(d["fps"]), "segment_s": Fraction(d["segment_s"])})


def _window_row(video_id: str, path: str, index: int, win: Window, W: int, s: DecodeSettings,
                started: float, final: bool, media: str = "") -> dict[str, Any]:
    F, S, N = s.frames_per_segment, s.frame_size, s.samples_per_segment
    frames = np.zeros((W, F, S, S, 3), np.uint8)
    audio = np.zeros((W, N), np.float32)
    vp, ap = np.zeros(W, bool), np.zeros(W, bool)
    starts, ends = np.full(W, np.nan), np.full(W, np.nan)
    for w, seg in enumerate(win.segments):
        frames[w], audio[w] = seg.frames, seg.audio
        vp[w], ap[w] = seg.has_video, seg.has_audio
        starts[w], ends[w] = seg.start_s, seg.end_s
    return {
        "video_id": video_id, "path": path, "window_index": index, "first_segment": win.first,
        "length": len(win), "final": final, "frames": frames, "audio": audio, "visual_present": vp,
        "audio_present": ap, "starts": starts, "ends": ends, "error": "", "error_type": "",
        "media": media, "started_at": started,
    }


def error_row(video_id: str, path: str, exc: BaseException, W: int, s: DecodeSettings,
              started: float) -> dict[str, Any]:
    F, S, N = s.frames_per_segment, s.frame_size, s.samples_per_segment
    message = str(exc) if isinstance(exc, AvfuseError) else f"unexpected {type(exc).__name__}: {exc}"
    return {
        "video_id": video_id, "path": path, "window_index": -1, "first_segment": 0, "length": 0,
        "final": True, "frames": np.zeros((W, F, S, S, 3), np.uint8), "audio": np.zeros((W, N), np.float32),
        "visual_present": np.zeros(W, bool), "audio_present": np.zeros(W, bool),
        "starts": np.full(W, np.nan), "ends": np.full(W, np.nan), "error": message or type(exc).__name__,
        "error_type": type(exc).__name__, "media": "", "started_at": started,
    }


FAULT_ENV = "AVFUSE_FAULT_KILL_DECODER"


def _maybe_inject_crash(path: str) -> None:
    """Fault injection for the worker-crash tests: ``AVFUSE_FAULT_KILL_DECODER=NAME`` makes the
    decode process that opens a file called NAME kill itself (SIGKILL, as a crashing FFmpeg
    would); ``NAME@MARKER`` does so only while the file MARKER does not exist yet (it creates
    it), i.e. on the first attempt."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    name, _, marker = spec.partition("@")
    if os.path.basename(path) != name:
        return
    if marker:
        if os.path.exists(marker):
            return
        open(marker, "w").close()
    os.kill(os.getpid(), signal.SIGKILL)


def decode_windows(row: dict[str, Any], *, settings: dict[str, Any], window: dict[str, int]) -> Iterator[dict[str, Any]]:
    """One input video -> its windows, or one error row.

    Per-file failures never escape: they become the video's error row, so one bad file
    cannot abort the dataset. (A crash of the process itself is Ray's to retry.)
    """
    _maybe_inject_crash(str(row["path"]))
    s = settings_from_dict(settings)
    ws = WindowSettings(**window)
    video_id, path = str(row["video_id"]), str(row["path"])
    started = time.time()
    try:
        info = probe(path)
        held: tuple[int, Window] | None = None
        with StreamingDecoder(path, s) as dec:
            for i, win in enumerate(iter_windows(dec.segments(), ws)):
                if held is not None:
                    yield _window_row(video_id, path, held[0], held[1], ws.segments, s, started, False)
                held = (i, win)
            report = dec.report
        if held is None:
            raise InvalidMediaError(path, "no segment could be decoded")
        media = json.dumps(media_summary(info, report))
        yield _window_row(video_id, path, held[0], held[1], ws.segments, s, started, True, media)
    except Exception as exc:  # noqa: BLE001 - every per-file failure becomes a failed row
        yield error_row(video_id, path, exc, ws.segments, s, started)


def _stack(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        out[key] = np.array(values, dtype=object) if isinstance(values[0], str) else np.stack(values)
    return out


class DecodeStage:
    """``map_batches`` actor (generator): videos -> batches of up to ``chunk`` window rows.

    An actor, not a task per video: a Ray task costs about as much scheduling as a short clip
    takes to decode (~0.1 s on 2 cores), and a long-lived decode process takes the next video
    without one. Yielding column batches instead of single rows saves Ray Data a row-to-block
    conversion per window (measured ~1.3x pipeline throughput on 2 cores).
    """

    def __call__(self, batch: dict[str, np.ndarray], *, settings: dict[str, Any], window: dict[str, int],
                 chunk: int = 4) -> Iterator[dict[str, np.ndarray]]:
        for video_id, path in zip(batch["video_id"], batch["path"]):
            rows: list[dict[str, Any]] = []
            for row in decode_windows({"video_id": video_id, "path": path}, settings=settings, window=window):
                rows.append(row)
                if len(rows) == chunk:
                    yield _stack(rows)
                    rows = []
            if rows:
                yield _stack(rows)


def window_batch(rows: dict[str, np.ndarray], keep: np.ndarray) -> WindowBatch:
    """The model's input from the decode stage's window rows (those where ``keep`` is True)."""
    from pipeline.inference import WindowBatch

    return WindowBatch(
        frames=rows["frames"][keep], audio=rows["audio"][keep],
        visual_present=rows["visual_present"][keep], audio_present=rows["audio_present"][keep],
        first_segment=rows["first_segment"][keep], lengths=rows["length"][keep],
        starts=rows["starts"][keep], ends=rows["ends"][keep],
    )


class ModelStage:
    """``map_batches`` actor: the model, loaded once per actor, scoring batches of windows."""

    def __init__(self, model: bytes | list, model_name: str, device: str = "auto", embeddings: bool = False,
                 threads: int = 0) -> None:
        """``model``: the checkpoint's bytes, or ``[ObjectRef]`` of them (a nested reference keeps
        the megabytes out of the actor's constructor arguments)."""
        import torch

        from pipeline.inference import Predictor
        from pipeline.model import load_checkpoint_bytes

        if threads:
            torch.set_num_threads(threads)
        if isinstance(model, list):
            import ray

            model = ray.get(model[0])
        self.model = load_checkpoint_bytes(model, model_name)
        self.predictor = Predictor(self.model, device=device, embeddings=embeddings)
        self.embeddings = embeddings

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["video_id"])
        W = batch["starts"].shape[1]
        C = self.model.num_classes
        out = {k: batch[k] for k in PASS_THROUGH}
        out["probs"] = np.zeros((n, W, C + 1), np.float32)
        out["shares"] = np.zeros((n, W, C), np.float32)
        out["clip_probs"] = np.zeros((n, C), np.float32)
        if self.embeddings:
            out["embeddings"] = np.zeros((n, W, self.model.fusion.cfg.dim), np.float32)
        ok = np.asarray(batch["error"]) == ""
        if ok.any():
            try:
                pred = self.predictor(window_batch(batch, ok))
            except Exception as exc:  # noqa: BLE001 - these windows' videos fail with the model's error; the job goes on
                out["error"] = np.where(ok, f"the model failed on this video's windows: {type(exc).__name__}: {exc}",
                                        out["error"]).astype(object)
                out["error_type"] = np.where(ok, type(exc).__name__, out["error_type"]).astype(object)
                return out
            for k, v in pred.items():
                if k == "embeddings" and v.shape[-1] != out[k].shape[-1]:
                    out[k] = np.zeros((n, W, v.shape[-1]), np.float32)
                out[k][ok] = v
        return out
