"""The in-process single-clip path: decode -> windows -> model -> events, no Ray."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from pipeline.config import default_batch_windows, default_model_path
from pipeline.decode import DecodeReport, StreamingDecoder
from pipeline.errors import CheckpointError
from pipeline.inference import Predictor, VideoAccumulator, VideoScores, stack_windows
from pipeline.media import MediaInfo, probe
from pipeline.model import AVModel, load_checkpoint
from pipeline.windows import iter_windows

T = TypeVar("T")


def load_model(path: str | Path | None) -> AVModel:
    """Load ``path``, or the bundled default model when ``path`` is None."""
    if path is None:
        path = default_model_path()
        if not path.is_file():
            raise CheckpointError(
                f"no model given and the bundled default model is missing ({path}); pass --model FILE"
            )
    return load_checkpoint(path)


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


@dataclass
class VideoResult:
    """One analysed video: what the decoder saw and what the model said."""

    source: str
    info: MediaInfo
    report: DecodeReport
    scores: VideoScores
    elapsed_s: float
    processed_at: datetime


def analyse(source: str | Path, model: AVModel, predictor: Predictor | None = None,
            batch_windows: int | None = None) -> VideoResult:
    """Run the whole pipeline on one file in this process.

    A truncated file still returns what was decoded (``report.truncated`` says so).
    ``batch_windows``: windows per model call; default: ``default_batch_windows`` of the device.
    """
    t0 = time.perf_counter()
    processed_at = datetime.now(timezone.utc)
    predictor = predictor or Predictor(model, device="cpu")
    batch_windows = batch_windows or default_batch_windows(predictor.device.type)
    info = probe(source)
    settings = model.decode_settings
    acc = VideoAccumulator(model)
    with StreamingDecoder(source, settings) as decoder:
        for chunk in batched(iter_windows(decoder.segments(), model.window), batch_windows):
            batch = stack_windows(chunk, model.window.segments, settings)
            acc.add(batch, predictor(batch))
        report = decoder.report
    return VideoResult(str(source), info, report, acc.finish(), time.perf_counter() - t0, processed_at)
