"""Write small video files with PyAV: frames, audio and the oddities tests need."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

# container extension -> (video codec, audio codec, audio rate the codec wants or None)
CODECS: dict[str, tuple[str, str]] = {
    ".mp4": ("libx264", "aac"),
    ".mov": ("libx264", "aac"),
    ".mkv": ("libx264", "libopus"),
    ".webm": ("libvpx-vp9", "libopus"),
}
OPUS_RATE = 48_000


def audio_rate_for(path: str | Path, wanted: int) -> int:
    """Opus only encodes at 48 kHz; other codecs take ``wanted``."""
    return OPUS_RATE if CODECS.get(Path(path).suffix.lower(), ("", ""))[1] == "libopus" else wanted


def write_media(
    path: str | Path,
    *,
    frames: Iterable[np.ndarray] | None = None,
    fps: Fraction | int = 15,
    audio: np.ndarray | None = None,
    sample_rate: int = 44_100,
    vcodec: str | None = None,
    acodec: str | None = None,
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    frame_times: Iterable[Fraction] | None = None,
    audio_start_s: Fraction = Fraction(0),
    video_start_s: Fraction = Fraction(0),
    audio_bit_rate: int | None = None,
    options: dict[str, str] | None = None,
    video_options: dict[str, str] | None = None,
) -> Path:
    """Encode ``frames`` (uint8 (H, W, 3) RGB each) and ``audio`` (float32 (channels, n)).

    Packets of both streams are muxed in time order (interleaved, as real files are).
    ``frame_times`` (seconds) makes a variable-frame-rate stream; ``*_start_s``
    shift a stream on the container timeline; ``rotation`` sets the display matrix.
    """
    path = Path(path)
    default_v, default_a = CODECS.get(path.suffix.lower(), ("libx264", "aac"))
    vcodec, acodec = vcodec or default_v, acodec or default_a
    frames_list = None if frames is None else iter(frames)
    times = None if frame_times is None else iter(frame_times)
    fps = Fraction(fps)
    with av.open(str(path), "w", options=options or {}) as container:
        vstream = astream = None
        first = None
        if frames_list is not None:
            first = next(frames_list)
            vstream = container.add_stream(vcodec, rate=fps, options=video_options or {})
            vstream.height, vstream.width = first.shape[:2]
            vstream.pix_fmt = pix_fmt
            if times is not None:
                vstream.codec_context.time_base = Fraction(1, 1000)
                vstream.time_base = Fraction(1, 1000)
            if rotation:
                vstream.set_display_rotation(rotation)
        if audio is not None:
            channels = audio.shape[0]
            astream = container.add_stream(
                acodec, rate=sample_rate, layout="mono" if channels == 1 else "stereo"
            )
            if audio_bit_rate:
                astream.bit_rate = audio_bit_rate
        audio_frame = 1024 if astream is None or not astream.codec_context.frame_size else (
            astream.codec_context.frame_size
        )
        audio_pos = 0
        audio_offset = int(round(audio_start_s * sample_rate))

        def mux_audio_until(t: Fraction | None) -> None:
            nonlocal audio_pos
            if astream is None:
                return
            stop = audio.shape[1] if t is None else min(audio.shape[1], int(t * sample_rate))
            while audio_pos < stop:
                chunk = np.ascontiguousarray(audio[:, audio_pos : audio_pos + audio_frame], np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=astream.layout.name)
                frame.sample_rate = sample_rate
                frame.pts = audio_offset + audio_pos
                frame.time_base = Fraction(1, sample_rate)
                container.mux(astream.encode(frame))
                audio_pos += chunk.shape[1]

        if vstream is not None:
            index = 0
            frame_iter = [first] if first is not None else []
            for img in itertools.chain(frame_iter, frames_list):
                t = next(times) if times is not None else Fraction(index) / fps
                t = t + video_start_s
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                if times is not None:
                    frame.pts = int(round(t * 1000))
                    frame.time_base = Fraction(1, 1000)
                else:
                    frame.pts = int(round(t * fps))
                    frame.time_base = 1 / fps
                mux_audio_until(t)
                container.mux(vstream.encode(frame))
                index += 1
            container.mux(vstream.encode(None))
        mux_audio_until(None)
        if astream is not None:
            container.mux(astream.encode(None))
    return path
