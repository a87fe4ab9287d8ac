"""Streaming decode of real generated files: timing, audio timeline, special cases."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from makemedia import av_clip, cut, level_frames, level_of, tone
from pipeline.config import DecodeSettings, WindowSettings
from pipeline.decode import Segment, StreamingDecoder
from pipeline.errors import ConfigError, TruncatedMediaError
from pipeline.media import probe
from pipeline.windows import iter_windows, window_starts
from sample_media.writer import write_media


def decode_all(path: Path, **kw) -> tuple[list[Segment], object]:
    settings = DecodeSettings(**{"fps": Fraction(4), "frame_size": 32, **kw})
    with StreamingDecoder(path, settings) as dec:
        segs = list(dec.segments())
        return segs, dec.report


def onset(audio: np.ndarray, sr: int = 16_000, level: float = 0.1) -> float:
    return float(np.argmax(np.abs(audio) > level)) / sr


def test_known_fps_frame_count_and_timestamps(clip_mp4: Path) -> None:
    segs, report = decode_all(clip_mp4)
    assert [s.index for s in segs] == [0, 1, 2]
    assert [(s.start, s.end) for s in segs] == [(0, 1), (1, 2), (2, 3)]
    assert report.video_frames_decoded == 30
    assert report.frames_sampled == 12
    assert not report.truncated
    for seg in segs:
        assert seg.frames.shape == (4, 32, 32, 3) and seg.frames.dtype == np.uint8
        assert seg.has_video and seg.has_audio
        for i in range(4):
            target = seg.start + (Fraction(i) + Fraction(1, 2)) / 4
            source_index = int(target * 10)  # the 10 fps frame on screen at the target time
            assert seg.frame_times[i] == pytest.approx(source_index / 10, abs=1e-9)
            assert level_of(seg.frames[i]) == source_index % 11


def test_audio_is_mono_16k_float32_on_container_timeline(clip_mp4: Path) -> None:
    segs, _ = decode_all(clip_mp4)
    audio = np.concatenate([s.audio for s in segs])
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.size == 3 * 16_000
    assert onset(audio) == pytest.approx(1.0, abs=0.01)


def test_sixty_second_aac_length_and_tone_onset(media_dir: Path) -> None:
    path = write_media(
        media_dir / "long_aac.mp4",
        frames=level_frames(60, 16, 16),
        fps=1,
        audio=tone(60.0, 44_100, start=3.0),
        sample_rate=44_100,
    )
    segs, report = decode_all(path, fps=Fraction(1), frame_size=16)
    audio_samples = report.audio_samples
    assert abs(audio_samples - 60 * 16_000) <= 0.025 * 16_000  # AAC priming removed
    assert len(segs) == 60
    audio = np.concatenate([s.audio for s in segs])
    assert onset(audio) == pytest.approx(3.0, abs=0.010)


def test_audio_stream_starting_late_is_placed_on_the_container_timeline(media_dir: Path) -> None:
    # the audio stream starts 0.5 s after the video; its tone starts 2.5 s into the stream,
    # i.e. at 3.0 s in the file
    path = write_media(
        media_dir / "late_audio.mp4",
        frames=level_frames(50),
        fps=10,
        audio=tone(4.5, 44_100, start=2.5),
        sample_rate=44_100,
        audio_start_s=Fraction(1, 2),
    )
    info = probe(path)
    assert float(info.audio.start_s) == pytest.approx(0.5, abs=0.03)
    segs, _ = decode_all(path)
    audio = np.concatenate([s.audio for s in segs])
    assert onset(audio) == pytest.approx(3.0, abs=0.010)
    assert segs[0].has_audio  # the first segment has audio from 0.5 s on


def test_video_stream_starting_late_leaves_first_segment_without_video(media_dir: Path) -> None:
    path = write_media(
        media_dir / "late_video.mkv",
        frames=level_frames(20),
        fps=10,
        audio=tone(3.0, 48_000, start=0.0),
        sample_rate=48_000,
        video_start_s=Fraction(1),
    )
    segs, _ = decode_all(path)
    assert len(segs) == 3
    assert not segs[0].has_video and segs[0].frames.max() == 0
    assert np.isnan(segs[0].frame_times).all()
    assert segs[1].has_video and segs[2].has_video
    assert all(s.has_audio for s in segs)
    # 1.125 s, the first sampling time with video, shows the stream's second frame (1.1 s)
    assert segs[1].frame_times[0] == pytest.approx(1.1, abs=1e-3)
    assert level_of(segs[1].frames[0]) == 1


def test_segments_windows_and_last_partial_segment(media_dir: Path) -> None:
    path = av_clip(media_dir / "partial.mp4", duration=3.5, fps=10)
    segs, report = decode_all(path)
    assert len(segs) == 4
    last = segs[-1]
    assert last.start == 3 and float(last.end) == pytest.approx(3.5, abs=0.03)
    assert last.frames.shape[0] == 4 and last.audio.size == 16_000
    tail = int(round(float(last.end) * 16_000)) - 3 * 16_000
    assert np.abs(last.audio[tail + 10 :]).max() == 0.0  # zero past the true end
    assert np.abs(last.audio[: tail - 200]).max() > 0.1
    windows = list(iter_windows(iter(segs), WindowSettings(segments=2, hop=1)))
    assert [w.first for w in windows] == [0, 1, 2] == window_starts(4, WindowSettings(2, 1))
    assert [len(w) for w in windows] == [2, 2, 2]
    windows = list(iter_windows(iter(segs), WindowSettings(segments=3, hop=3)))
    assert [w.first for w in windows] == [0, 1] == window_starts(4, WindowSettings(3, 3))
    windows = list(iter_windows(iter(segs), WindowSettings(segments=10, hop=10)))
    assert [(w.first, len(w)) for w in windows] == [(0, 4)]


def test_file_without_audio_marks_audio_missing(media_dir: Path) -> None:
    path = write_media(media_dir / "silent.mp4", frames=level_frames(20), fps=10)
    assert not probe(path).has_audio
    segs, _ = decode_all(path)
    assert len(segs) == 2
    assert all(s.has_video and not s.has_audio for s in segs)
    assert all(s.audio.max() == 0 and s.audio.size == 16_000 for s in segs)


def test_audio_only_file_marks_video_missing(media_dir: Path) -> None:
    path = write_media(media_dir / "audio_only.m4a", audio=tone(2.0, 44_100, 0.5),
                       sample_rate=44_100, acodec="aac")
    info = probe(path)
    assert info.has_audio and not info.has_video
    segs, _ = decode_all(path)
    assert len(segs) == 2
    assert all(s.has_audio and not s.has_video for s in segs)
    assert segs[0].frames.shape == (4, 32, 32, 3) and segs[0].frames.max() == 0
    assert onset(np.concatenate([s.audio for s in segs])) == pytest.approx(0.5, abs=0.01)


def test_variable_frame_rate_samples_the_frame_on_screen(media_dir: Path) -> None:
    times = [Fraction(x, 100) for x in (0, 10, 15, 50, 55, 120, 130, 190)]
    path = write_media(
        media_dir / "vfr.mkv", frames=level_frames(len(times)), fps=10, frame_times=times
    )
    segs, report = decode_all(path)
    assert report.video_frames_decoded == len(times)
    sampled = np.concatenate([s.frame_times for s in segs])
    targets = [(j + 0.5) / 4 for j in range(len(sampled))]
    for target, got, frame in zip(targets, sampled, np.concatenate([s.frames for s in segs])):
        expected = max(i for i, t in enumerate(times) if t <= target)
        assert got == pytest.approx(float(times[expected]), abs=1e-3)
        assert level_of(frame) == expected


def test_rotation_metadata_is_applied(media_dir: Path) -> None:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:12, :12] = 255  # a white block in the stored frame's top-left corner
    path = write_media(media_dir / "rotated.mp4", frames=[img] * 10, fps=10, rotation=90,
                       pix_fmt="yuv444p")
    info = probe(path)
    assert info.video.rotation == 90
    assert (info.video.width, info.video.height) == (48, 64)
    segs, _ = decode_all(path, frame_size=32)
    frame = segs[0].frames[0].mean(axis=2)
    # rotated 90 degrees counter-clockwise for display: top-left moves to bottom-left
    assert frame[-4:, :4].mean() > 200 and frame[:4, :4].mean() < 50


def test_odd_frame_size(media_dir: Path) -> None:
    frames = [np.full((47, 63, 3), 120, np.uint8)] * 10
    path = write_media(media_dir / "odd.webm", frames=frames, fps=10, pix_fmt="yuv420p")
    info = probe(path)
    assert (info.video.width, info.video.height) == (63, 47)
    segs, _ = decode_all(path, frame_size=33)
    assert segs[0].frames.shape == (4, 33, 33, 3)
    assert abs(float(segs[0].frames.mean()) - 120) < 8


@pytest.mark.parametrize(
    "ext, vcodec, acodec",
    [(".mp4", "h264", "aac"), (".webm", "vp9", "opus"), (".mkv", "h264", "opus"), (".mov", "h264", "aac")],
)
def test_containers_and_codecs(media_dir: Path, ext: str, vcodec: str, acodec: str) -> None:
    path = av_clip(media_dir / f"codec{ext}", duration=2.0, fps=10, tone_start=0.5)
    info = probe(path)
    assert (info.video.codec, info.audio.codec) == (vcodec, acodec)
    segs, report = decode_all(path)
    assert len(segs) == 2 and not report.truncated
    assert all(s.has_video and s.has_audio for s in segs)
    assert onset(np.concatenate([s.audio for s in segs])) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_silently_truncated_file_is_reported_and_partial_result_kept(media_dir: Path, ext: str) -> None:
    options = {"movflags": "faststart"} if ext == ".mp4" else None
    full = av_clip(media_dir / f"full{ext}", duration=8.0, fps=10, options=options)
    broken = cut(full, media_dir / f"cut{ext}", 0.5)
    segs, report = decode_all(broken)
    assert report.truncated
    assert 2 <= float(report.decoded_s) <= 6
    assert float(report.declared_s) == pytest.approx(8.0, abs=0.1)
    assert len(segs) == report.n_segments >= 2
    assert all(s.has_video for s in segs[:-1])  # the audio may outlast the video by a bit
    with pytest.raises(TruncatedMediaError, match=r"decoded .* of 8\.0"):
        report.raise_if_truncated()


def test_keyframes_only_mode_samples_keyframes(media_dir: Path) -> None:
    path = av_clip(media_dir / "gop.mp4", duration=4.0, fps=10,
                   video_options={"g": "10", "keyint_min": "10", "sc_threshold": "0"})
    segs, report = decode_all(path, keyframes_only=True)
    assert report.video_frames_decoded == 4
    times = np.concatenate([s.frame_times for s in segs])
    assert len(segs) == 4 and all(s.has_video for s in segs)
    assert set(np.round(times, 3)) == {0.0, 1.0, 2.0, 3.0}


def test_settings_are_validated_all_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        DecodeSettings(fps=Fraction(3, 2), frame_size=2, sample_rate=100).problems() and (
            StreamingDecoder("whatever.mp4", DecodeSettings(fps=Fraction(3, 2), frame_size=2, sample_rate=100))
        )
    assert len(err.value.problems) == 3
