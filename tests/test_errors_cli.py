"""Bad input: one exception family with specific errors, and exit code 1 from the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from makemedia import av_clip, cut, unknown_codec_mkv
from pipeline.config import DecodeSettings
from pipeline.decode import StreamingDecoder
from pipeline.errors import (
    AvfuseError,
    EmptyMediaError,
    InvalidMediaError,
    MediaNotFoundError,
    NotAFileError,
    TruncatedMediaError,
    UnsupportedMediaError,
)
from pipeline.media import probe


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, type]]:
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video, just text with a video extension\n" * 20)
    (d / "folder.mp4").mkdir()
    good = av_clip(d / "good.mp4", duration=4.0)
    cut(good, d / "no_index.mp4", 0.5)  # moov written last: cut before it
    fast = av_clip(d / "faststart.mp4", duration=6.0, options={"movflags": "faststart"})
    cut(fast, d / "truncated.mp4", 0.5)
    unknown_codec_mkv(d / "unknown_codec.mkv", d)
    return {
        "missing": (d / "does_not_exist.mp4", MediaNotFoundError),
        "directory": (d / "folder.mp4", NotAFileError),
        "empty": (d / "empty.mp4", EmptyMediaError),
        "text": (d / "text.mp4", InvalidMediaError),
        "no_index": (d / "no_index.mp4", TruncatedMediaError),
        "truncated": (d / "truncated.mp4", TruncatedMediaError),
        "unknown_codec": (d / "unknown_codec.mkv", UnsupportedMediaError),
    }


CASES = ["missing", "directory", "empty", "text", "no_index", "truncated", "unknown_codec"]


def decode_strict(path: Path) -> None:
    with StreamingDecoder(path, DecodeSettings(frame_size=16)) as dec:
        for _ in dec.segments():
            pass
        dec.report.raise_if_truncated()


@pytest.mark.parametrize("case", CASES)
def test_bad_input_raises_specific_error_naming_the_file(bad_files, case: str) -> None:
    path, error = bad_files[case]
    with pytest.raises(error) as info:
        decode_strict(path)
    assert isinstance(info.value, AvfuseError)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("case", CASES)
def test_cli_prints_one_line_and_exits_1(bad_files, case: str) -> None:
    path, error = bad_files[case]
    proc = run_cli("probe", "--check", path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert error.reason.split(";")[0] in lines[0]


def test_probe_json_reports_streams(clip_mp4: Path) -> None:
    proc = run_cli("probe", "--json", "--check", clip_mp4)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["has_audio"] and data["has_video"] and not data["truncated"]
    assert data["n_segments"] == 3 and data["decoded_segments"] == 3
    video, audio = data["streams"]
    assert (video["codec"], video["width"], video["height"], video["fps"]) == ("h264", 64, 48, 10.0)
    assert (audio["codec"], audio["sample_rate"], audio["channels"]) == ("aac", 44100, 2)


def test_probe_table(clip_mp4: Path) -> None:
    proc = run_cli("probe", clip_mp4)
    assert proc.returncode == 0, proc.stderr
    assert "h264" in proc.stdout and "aac" in proc.stdout and "3 segments" in proc.stdout


def test_probe_api_matches_cli_for_missing_modalities(bad_files) -> None:
    info = probe(bad_files["truncated"][0])  # opening a faststart file cut in half works
    assert info.has_video and info.has_audio
