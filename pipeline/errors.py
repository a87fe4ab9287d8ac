"""One exception family for every failure a user can cause and fix.

Library code in ``pipeline`` and ``jobs`` raises these; only the CLI catches
them, prints one line and exits 1. Each message names the file (or setting)
and says what to do next.
"""

from __future__ import annotations

from pathlib import Path


class AvfuseError(Exception):
    """Base of every user-facing avfuse error."""


class ConfigError(AvfuseError):
    """Invalid settings; the message lists every problem at once."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
        else:
            joined = "; ".join(self.problems)
            super().__init__(f"{len(self.problems)} problems: {joined}")


class MediaError(AvfuseError):
    """A media file that cannot be decoded as asked."""

    reason = "cannot be decoded"

    def __init__(self, path: str | Path, detail: str = "") -> None:
        self.path = str(path)
        self.detail = detail
        message = f"{self.path}: {self.reason}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class MediaNotFoundError(MediaError):
    reason = "no such file; check the path"


class NotAFileError(MediaError):
    reason = "is a directory, not a media file; pass a file, or use `avfuse run` for folders"


class EmptyMediaError(MediaError):
    reason = "is empty (0 bytes); the file was not written or copied completely"


class InvalidMediaError(MediaError):
    reason = "is not a media file FFmpeg can read (wrong extension, or corrupt header)"


class TruncatedMediaError(MediaError):
    """The file ends before its container says it should.

    ``decoded_s`` and ``expected_s`` say how much was decoded; whatever was
    decoded before the end was kept by the caller.
    """

    reason = "is truncated"

    def __init__(
        self,
        path: str | Path,
        detail: str = "",
        decoded_s: float | None = None,
        expected_s: float | None = None,
    ) -> None:
        self.decoded_s = decoded_s
        self.expected_s = expected_s
        if decoded_s is not None and expected_s is not None:
            span = f"decoded {decoded_s:.2f} s of {expected_s:.2f} s"
            detail = f"{span}; {detail}" if detail else span
        super().__init__(path, detail)


class UnsupportedMediaError(MediaError):
    reason = "uses a codec or layout this FFmpeg build cannot decode"


class NoStreamsError(MediaError):
    reason = "has neither a video nor an audio stream"


class CheckpointError(AvfuseError):
    """A model file that cannot be loaded safely or does not fit."""


class AnnotationError(AvfuseError):
    """A malformed annotation file, unknown video or unknown label."""


class JobError(AvfuseError):
    """A batch job that cannot start or continue as asked."""
