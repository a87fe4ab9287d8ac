"""Opening media with clear errors, and probing what the decoder will see.

Times are exact ``Fraction`` seconds on the container's timeline; ``origin_s``
is the container's start time, which becomes t = 0 in everything avfuse writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av

from pipeline.errors import (
    EmptyMediaError,
    InvalidMediaError,
    MediaError,
    MediaNotFoundError,
    NoStreamsError,
    NotAFileError,
    TruncatedMediaError,
    UnsupportedMediaError,
)

_AV_TIME_BASE = Fraction(1, 1_000_000)


def is_uri(source: str) -> bool:
    """True for ``scheme://...`` sources opened through ``pyarrow.fs`` (s3, gs, hdfs...)."""
    scheme, sep, _ = str(source).partition("://")
    return bool(sep) and scheme not in ("", "file") and len(scheme) > 1


def _sniff_kind(head: bytes) -> str | None:
    """Name the container family from the first bytes, for better error messages."""
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "MP4/MOV"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF"):
        return "RIFF (AVI/WAV)"
    return None


def _open_bytes_source(source: str) -> tuple[Any, int, bytes]:
    """Return (path-or-file, size, first bytes) for a local path or a pyarrow.fs URI."""
    if is_uri(source):
        import pyarrow.fs as pafs

        try:
            fs, inner = pafs.FileSystem.from_uri(source)
            info = fs.get_file_info(inner)
        except Exception as exc:  # pyarrow raises several types for bad URIs/credentials
            raise MediaNotFoundError(source, f"cannot open through pyarrow.fs: {exc}") from exc
        if info.type == pafs.FileType.NotFound:
            raise MediaNotFoundError(source)
        if info.type == pafs.FileType.Directory:
            raise NotAFileError(source)
        if info.size == 0:
            raise EmptyMediaError(source)
        handle: IO[bytes] = fs.open_input_file(inner)
        head = handle.read(16)
        handle.seek(0)
        return handle, int(info.size), head
    path = Path(source)
    if not path.exists():
        raise MediaNotFoundError(source)
    if path.is_dir():
        raise NotAFileError(source)
    size = path.stat().st_size
    if size == 0:
        raise EmptyMediaError(source)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except PermissionError as exc:
        raise MediaError(source, f"permission denied: {exc}") from exc
    return os.fspath(path), size, head


def open_container(source: str | Path) -> tuple[av.container.InputContainer, int]:
    """Open ``source`` for decoding; every failure becomes a specific ``MediaError``.

    Returns the container and the file size in bytes.
    """
    source = str(source)
    target, size, head = _open_bytes_source(source)
    try:
        container = av.open(target, mode="r", metadata_errors="replace")
    except av.error.FileNotFoundError as exc:
        raise MediaNotFoundError(source) from exc
    except (av.error.IsADirectoryError, IsADirectoryError) as exc:
        raise NotAFileError(source) from exc
    except av.error.InvalidDataError as exc:
        kind = _sniff_kind(head)
        if kind is not None:
            raise TruncatedMediaError(
                source,
                f"{kind} header present but the file cannot be opened; it was most likely cut "
                "before its index was written",
            ) from exc
        raise InvalidMediaError(source, str(exc.strerror or exc)) from exc
    except av.error.FFmpegError as exc:
        raise InvalidMediaError(source, str(exc)) from exc
    if not container.streams.video and not container.streams.audio:
        container.close()
        raise NoStreamsError(source)
    return container, size


@dataclass(frozen=True)
class StreamInfo:
    """One decodable stream as the container describes it."""

    index: int
    kind: str  # "video" or "audio"
    codec: str
    time_base: Fraction
    start_s: Fraction | None  # on the container timeline, origin already subtracted
    duration_s: Fraction | None
    frames: int  # as declared by the container; 0 when unknown
    width: int = 0  # display size, after rotation
    height: int = 0
    fps: Fraction | None = None  # average frame rate
    rotation: int = 0  # degrees counter-clockwise applied for display
    sample_rate: int = 0
    channels: int = 0


@dataclass(frozen=True)
class MediaInfo:
    """What the decoder sees in one file."""

    path: str
    container: str
    size_bytes: int
    origin_s: Fraction  # container start time; output t = 0
    duration_s: Fraction | None
    bit_rate: int
    streams: tuple[StreamInfo, ...] = field(default_factory=tuple)

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def audio(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "audio"), None)

    @property
    def has_video(self) -> bool:
        return self.video is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    def n_segments(self, segment_s: Fraction) -> int:
        """Segments the declared duration spans (the last partial one included)."""
        if not self.duration_s:
            return 0
        return -(-self.duration_s // segment_s)

    def to_dict(self) -> dict[str, Any]:
        def num(x: Fraction | None) -> float | None:
            return None if x is None else float(x)

        return {
            "path": self.path,
            "container": self.container,
            "size_bytes": self.size_bytes,
            "origin_s": float(self.origin_s),
            "duration_s": num(self.duration_s),
            "bit_rate": self.bit_rate,
            "has_video": self.has_video,
            "has_audio": self.has_audio,
            "streams": [
                {
                    "index": s.index,
                    "kind": s.kind,
                    "codec": s.codec,
                    "start_s": num(s.start_s),
                    "duration_s": num(s.duration_s),
                    "frames": s.frames,
                    **(
                        {
                            "width": s.width,
                            "height": s.height,
                            "fps": num(s.fps),
                            "rotation": s.rotation,
                        }
                        if s.kind == "video"
                        else {"sample_rate": s.sample_rate, "channels": s.channels}
                    ),
                }
                for s in self.streams
            ],
        }


def container_origin(container: av.container.InputContainer) -> Fraction:
    """The container's start time in seconds (t = 0 of everything avfuse writes)."""
    if container.start_time is not None:
        return Fraction(container.start_time) * _AV_TIME_BASE
    starts = [
        Fraction(s.start_time) * s.time_base
        for s in container.streams
        if s.start_time is not None and s.time_base is not None
    ]
    return min(starts) if starts else Fraction(0)


def container_duration(container: av.container.InputContainer, origin: Fraction) -> Fraction | None:
    """Declared duration: the container's, else the latest stream end."""
    if container.duration is not None and container.duration > 0:
        return Fraction(container.duration) * _AV_TIME_BASE
    ends = []
    for s in list(container.streams.video) + list(container.streams.audio):
        if s.duration is not None and s.time_base is not None:
            start = Fraction(s.start_time or 0) * s.time_base
            ends.append(start + Fraction(s.duration) * s.time_base - origin)
    return max(ends) if ends else None


def display_rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise display rotation of a decoded frame, snapped to 0/90/180/270."""
    try:
        angle = frame.rotation
    except Exception:  # older FFmpeg builds without display-matrix support
        return 0
    return int(round((angle or 0) / 90.0)) % 4 * 90


def _first_frame_rotation(container: av.container.InputContainer, stream: Any) -> int:
    try:
        for frame in container.decode(stream):
            return display_rotation(frame)
    except av.error.FFmpegError:
        return 0
    return 0


def probe(source: str | Path) -> MediaInfo:
    """Describe a media file: container, duration and each audio/video stream.

    Decodes the first video frame only, to read the display rotation.
    """
    source = str(source)
    container, size = open_container(source)
    try:
        origin = container_origin(container)
        duration = container_duration(container, origin)
        streams: list[StreamInfo] = []
        for s in container.streams:
            if s.type not in ("video", "audio"):
                continue
            ctx = s.codec_context
            if ctx is None:
                raise UnsupportedMediaError(source, f"stream #{s.index} ({s.type}) has no decoder")
            tb = s.time_base or Fraction(1, 1)
            start = None if s.start_time is None else Fraction(s.start_time) * tb - origin
            dur = None if s.duration is None else Fraction(s.duration) * tb
            common = dict(
                index=s.index,
                kind=s.type,
                codec=ctx.name,
                time_base=Fraction(tb),
                start_s=start,
                duration_s=dur,
                frames=int(s.frames or 0),
            )
            if s.type == "video":
                rotation = _first_frame_rotation(container, s)
                w, h = ctx.width, ctx.height
                if rotation in (90, 270):
                    w, h = h, w
                rate = s.average_rate or s.guessed_rate
                streams.append(
                    StreamInfo(
                        **common,
                        width=w,
                        height=h,
                        fps=Fraction(rate) if rate else None,
                        rotation=rotation,
                    )
                )
            else:
                streams.append(
                    StreamInfo(**common, sample_rate=ctx.sample_rate, channels=ctx.channels)
                )
        return MediaInfo(
            path=source,
            container=container.format.name,
            size_bytes=size,
            origin_s=origin,
            duration_s=duration,
            bit_rate=int(container.bit_rate or 0),
            streams=tuple(streams),
        )
    finally:
        container.close()
