"""One decode pass over a file: demux, decode, sample frames, place audio, cut segments.

Kept apart from ``StreamingDecoder`` (which opens the file and owns the settings) so each
stays readable. Video times are integer ticks of the stream's time base (exact and cheap per
frame); audio positions are integer sample indices on the container timeline.
"""

from __future__ import annotations

import math
from collections import deque
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Iterator

import av
import numpy as np

from pipeline.errors import InvalidMediaError
from pipeline.media import display_rotation
from pipeline.segments import DecodeReport, Segment

if TYPE_CHECKING:
    from pipeline.decode import StreamingDecoder

# A file counts as truncated when it decodes to less than its declared duration
# minus this slack (container durations are rounded, last frames vary).
TRUNCATION_SLACK_S = Fraction(1, 2)
# Audio timestamps further than this from where the samples so far end are a gap.
AUDIO_GAP_S = Fraction(1, 50)
# A tail shorter than this after the last full segment (resampler or encoder
# padding, a few samples long) does not make a segment of its own.
TAIL_SLACK_S = Fraction(1, 50)
# Decoded audio may run past the declared duration by codec padding (an AAC
# frame is 1024 samples); up to this much is trimmed to the declared end.
PADDING_SLACK_S = Fraction(1, 10)
# Give up on a stream after this many consecutive undecodable packets.
MAX_CONSECUTIVE_ERRORS = 64


class SampleBuffer:
    """Mono samples at absolute positions on the timeline, dropping consumed ones."""

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self.base = 0  # absolute index of the first sample held
        self.end = 0  # absolute index one past the last sample held

    def start_at(self, pos: int) -> None:
        self.base = self.end = pos

    def pad_to(self, pos: int) -> None:
        if pos > self.end:
            self.append(np.zeros(pos - self.end, dtype=np.float32))

    def append(self, samples: np.ndarray) -> None:
        if samples.size:
            self._chunks.append(samples)
            self.end += samples.size

    def _flat(self) -> np.ndarray:
        if len(self._chunks) != 1:
            flat = (
                np.concatenate(list(self._chunks)) if self._chunks else np.zeros(0, np.float32)
            )
            self._chunks = deque([flat])
        return self._chunks[0]

    def take(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)``, zero where nothing is held."""
        out = np.zeros(stop - start, dtype=np.float32)
        lo, hi = max(start, self.base), min(stop, self.end)
        if hi > lo:
            flat = self._flat()
            out[lo - start : hi - start] = flat[lo - self.base : hi - self.base]
        return out

    def discard_before(self, pos: int) -> None:
        if pos <= self.base:
            return
        flat = self._flat()
        cut = min(pos, self.end) - self.base
        self._chunks = deque([flat[cut:]])
        self.base += cut


class DecodePass:
    """The bookkeeping of one decode pass (kept apart so the decoder stays readable)."""

    def __init__(self, dec: StreamingDecoder) -> None:
        s = dec.settings
        self.dec = dec
        self.fps = s.fps
        self.seg = s.segment_s
        self.F = s.frames_per_segment
        self.N = s.samples_per_segment
        self.S = s.frame_size
        self.sr = s.sample_rate
        # video, kept in integer ticks of the stream's time base (exact, and cheap per frame)
        vs = dec.video_stream
        self.vtb = Fraction(vs.time_base) if vs is not None and vs.time_base else Fraction(1, 90_000)
        self.next_target = 0  # index j of the next sampling time (j + 1/2) / fps
        self.next_target_ticks = self.floor_ticks(self.target_time(0))
        self.sampled: dict[int, tuple[np.ndarray, float]] = {}
        self.prev: Any = None  # the frame on screen since prev_pts
        self.prev_pts = 0
        self.prev_array: np.ndarray | None = None
        self.video_until = -(1 << 62)  # pts of the latest frame
        self.video_end = Fraction(0)
        self.video_done = not dec.has_video
        self.packet_end = Fraction(0)
        self.frames_decoded = 0
        self.frames_sampled = 0
        self.seg_end_ticks = self.ceil_ticks(self.seg)  # segment 0's end, in ticks
        self._ticks_for_segment = 0
        # audio
        self.buffer = SampleBuffer()
        self.audio_start: int | None = None
        self.audio_done = not dec.has_audio
        self.resampler: av.AudioResampler | None = None
        self.resampler_key: tuple[Any, ...] | None = None
        self.audio_samples = 0
        self.gap_samples = int(AUDIO_GAP_S * self.sr)
        # segments
        self.next_segment = 0
        self.errors = 0
        self.detail = ""

    # ---- timing helpers -------------------------------------------------------------
    def target_time(self, j: int) -> Fraction:
        return (j + Fraction(1, 2)) / self.fps

    def _ticks(self, t: Fraction) -> Fraction:
        return (t + self.dec.origin) / self.vtb

    def floor_ticks(self, t: Fraction) -> int:
        """For integer pts p: time t < time(p)  <=>  floor_ticks(t) < p."""
        return math.floor(self._ticks(t))

    def ceil_ticks(self, t: Fraction) -> int:
        """For integer pts p: time(p) >= t  <=>  p >= ceil_ticks(t)."""
        return math.ceil(self._ticks(t))

    def pts_time(self, pts: int) -> Fraction:
        return pts * self.vtb - self.dec.origin

    def _advance_target(self) -> None:
        self.next_target += 1
        self.next_target_ticks = self.floor_ticks(self.target_time(self.next_target))

    def audio_position(self, frame: Any, stream: Any) -> int | None:
        """Output-sample index where ``frame`` starts, in integer arithmetic."""
        tb = frame.time_base or stream.time_base
        if frame.pts is None or tb is None:
            return None
        o = self.dec.origin
        num = frame.pts * tb.numerator * o.denominator - o.numerator * tb.denominator
        den = tb.denominator * o.denominator
        return (2 * num * self.sr + den) // (2 * den)  # rounded

    # ---- video ----------------------------------------------------------------------
    def _prev_rgb(self) -> np.ndarray:
        if self.prev_array is None:
            # AREA: a proper box filter for large reductions, and 2.4x cheaper than swscale's
            # default bilinear at 720p -> 112; one thread, not to fight the decoder's threads
            arr = self.prev.to_ndarray(
                width=self.S, height=self.S, format="rgb24", threads=1, interpolation="AREA"
            )
            k = self.dec.rotation // 90
            if k:
                arr = np.ascontiguousarray(np.rot90(arr, k))
            self.prev_array = arr
        return self.prev_array

    def _emit_targets_before(self, pts: int) -> None:
        """Sample the frame on screen for every target time before ``pts``."""
        while self.next_target_ticks < pts:
            if self.prev is not None and self.next_target_ticks >= self.prev_pts:
                self.sampled[self.next_target] = (self._prev_rgb(), float(self.pts_time(self.prev_pts)))
                self.frames_sampled += 1
            self._advance_target()

    def on_video_frame(self, frame: Any) -> None:
        self.frames_decoded += 1
        pts = frame.pts
        if pts is None:
            pts = self.prev_pts + self._duration_ticks(None)
        if self.prev is None:
            self.dec.rotation = display_rotation(frame)
        elif pts < self.prev_pts:
            pts = self.prev_pts  # broken timestamps: never go back in time
        self._emit_targets_before(pts)
        self.prev, self.prev_pts, self.prev_array = frame, pts, None
        self.video_until = pts

    def _duration_ticks(self, frame: Any) -> int:
        if frame is not None and frame.duration:
            return int(frame.duration)
        stream = self.dec.video_stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return max(1, round(1 / (Fraction(rate) if rate else self.fps) / self.vtb))

    def _note_video_packet(self, packet: Any) -> None:
        """Keyframes-only mode: remember where the skipped frames end."""
        if packet.pts is not None and packet.time_base is not None:
            end = Fraction(packet.pts + (packet.duration or 0)) * packet.time_base - self.dec.origin
            self.packet_end = max(self.packet_end, end)

    def finish_video(self) -> None:
        if self.prev is not None:
            end_pts = self.prev_pts + self._duration_ticks(self.prev)
            # keyframes-only: the last keyframe stands for the frames skipped after it
            end_pts = max(end_pts, self.ceil_ticks(self.packet_end))
            self._emit_targets_before(end_pts)
            self.video_end = self.pts_time(end_pts)
            self.prev = self.prev_array = None
        self.video_done = True

    # ---- audio ----------------------------------------------------------------------
    def on_audio_frame(self, frame: Any) -> None:
        pos = self.audio_position(frame, self.dec.audio_stream)
        if self.audio_start is None:
            start = 0 if pos is None else pos
            self.audio_start = start
            self.buffer.start_at(start)
        elif pos is not None and pos - self.buffer.end > self.gap_samples:
            self.buffer.pad_to(pos)  # a gap in the stream is silence
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self.resampler is None or key != self.resampler_key:
            self._drain_resampler()
            self.resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sr)
            self.resampler_key = key
        frame.pts = None  # let the resampler keep its own running time
        for out in self.resampler.resample(frame):
            self._append_audio(out)

    def _append_audio(self, out: Any) -> None:
        # packed float mono: the one plane is the samples (cheaper than to_ndarray's vstack)
        samples = np.frombuffer(out.planes[0], dtype=np.float32, count=out.samples)
        self.buffer.append(samples)
        self.audio_samples += samples.size

    def _drain_resampler(self) -> None:
        if self.resampler is not None:
            for out in self.resampler.resample(None):
                self._append_audio(out)
            self.resampler = None

    def finish_audio(self) -> None:
        self._drain_resampler()
        self.audio_done = True

    # ---- segments -------------------------------------------------------------------
    def _segment_ready(self, k: int) -> bool:
        audio_ok = self.audio_done or self.buffer.end >= (k + 1) * self.N
        if not audio_ok:
            return False
        if self.video_done:
            return True
        if k != self._ticks_for_segment:
            self.seg_end_ticks = self.ceil_ticks((k + 1) * self.seg)
            self._ticks_for_segment = k
        return self.next_target >= (k + 1) * self.F and self.video_until >= self.seg_end_ticks

    def _build(self, k: int, end: Fraction) -> Segment:
        F, S = self.F, self.S
        frames = np.zeros((F, S, S, 3), dtype=np.uint8)
        times = np.full(F, np.nan)
        have = [i for i in range(F) if k * F + i in self.sampled]
        for i in have:
            frames[i], times[i] = self.sampled.pop(k * F + i)
        if have:
            for i in range(F):  # slots before the first / after the last frame: nearest frame
                if i not in have:
                    nearest = min(have, key=lambda h: abs(h - i))
                    frames[i], times[i] = frames[nearest], times[nearest]
        lo, hi = k * self.N, (k + 1) * self.N
        audio = self.buffer.take(lo, hi)
        stop = min(hi, round(end * self.sr))
        audio[stop - lo :] = 0.0
        self.buffer.discard_before(hi)
        has_audio = (
            self.audio_start is not None
            and max(lo, self.audio_start) < min(stop, self.buffer.end)
        )
        return Segment(
            index=k,
            start=k * self.seg,
            end=end,
            frames=frames,
            frame_times=times,
            audio=audio,
            has_video=bool(have),
            has_audio=bool(has_audio),
        )

    def _ready_segments(self) -> Iterator[Segment]:
        while not (self.video_done and self.audio_done) and self._segment_ready(self.next_segment):
            k = self.next_segment
            yield self._build(k, (k + 1) * self.seg)
            self.next_segment += 1

    def decoded_end(self) -> Fraction:
        audio_end = Fraction(self.buffer.end, self.sr) if self.audio_start is not None else Fraction(0)
        end = max(self.video_end, audio_end)
        declared = self.dec.declared_s
        if declared is not None and declared < end <= declared + PADDING_SLACK_S:
            end = declared  # encoder padding past the declared end is not content
        return end

    def run(self) -> Iterator[Segment]:
        dec = self.dec
        streams = [s for s in (dec.video_stream, dec.audio_stream) if s is not None]
        consecutive = {s.index: 0 for s in streams}
        video, keyframes_only = dec.video_stream, dec.settings.keyframes_only
        on_video, on_audio = self.on_video_frame, self.on_audio_frame
        try:
            for packet in dec.container.demux(streams):
                stream = packet.stream
                if packet.size == 0 and packet.dts is None:
                    continue  # the demuxer's end-of-stream marker; flushed below
                is_video = stream is video
                if is_video and keyframes_only:
                    self._note_video_packet(packet)
                    if not packet.is_keyframe:
                        continue
                try:
                    frames = stream.decode(packet)
                except av.error.FFmpegError as exc:
                    self.errors += 1
                    consecutive[stream.index] += 1
                    self.detail = f"decode error in {stream.type} stream: {exc}"
                    if consecutive[stream.index] >= MAX_CONSECUTIVE_ERRORS:
                        break
                    continue
                if not frames:
                    continue
                consecutive[stream.index] = 0
                handle = on_video if is_video else on_audio
                for frame in frames:
                    handle(frame)
                if self._segment_ready(self.next_segment):
                    yield from self._ready_segments()
        except av.error.FFmpegError as exc:  # demuxer gave up: the rest of the file is unreadable
            self.errors += 1
            self.detail = f"container read error: {exc}"
        for stream in streams:  # flush decoders: frames held back for reordering
            try:
                for frame in stream.decode(None):
                    if stream is dec.video_stream:
                        self.on_video_frame(frame)
                    else:
                        self.on_audio_frame(frame)
            except av.error.FFmpegError as exc:
                self.errors += 1
                self.detail = self.detail or f"decode error while flushing: {exc}"
        if dec.video_stream is not None:
            self.finish_video()
        if dec.audio_stream is not None:
            self.finish_audio()
        end = self.decoded_end()
        if end <= 0:
            raise InvalidMediaError(dec.source, self.detail or "no frame or sample could be decoded")
        n = max(1, math.ceil((end - TAIL_SLACK_S) / self.seg))
        for k in range(self.next_segment, n):
            yield self._build(k, min((k + 1) * self.seg, end))
        self.next_segment = n

    def report(self) -> DecodeReport:
        end = self.decoded_end()
        declared = self.dec.declared_s
        truncated = declared is not None and end < declared - TRUNCATION_SLACK_S
        detail = self.detail
        if truncated and not detail:
            detail = "the data stops before the end the container declares"
        return DecodeReport(
            path=self.dec.source,
            declared_s=declared,
            decoded_s=end,
            n_segments=self.next_segment,
            video_frames_decoded=self.frames_decoded,
            frames_sampled=self.frames_sampled,
            audio_samples=self.audio_samples,
            decode_errors=self.errors,
            truncated=truncated,
            detail=detail,
        )
