"""The Parquet tables: versioned pyarrow schemas and the rows of one video.

Every table carries ``job_id`` and ``video_id``; times are float64 seconds from the
start of the file; timestamps are UTC microseconds. The schema version, table name and
label list also go into each file's key-value metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

SCHEMA_VERSION = "1"
BACKGROUND = "background"
TOP_K = 3
TABLES = ("videos", "clips", "segments", "events", "embeddings")

_ids = [pa.field("job_id", pa.string(), nullable=False), pa.field("video_id", pa.string(), nullable=False)]
_label_score = pa.struct([pa.field("label", pa.string()), pa.field("score", pa.float64())])


def schema(table: str, embedding_dim: int | None = None) -> pa.Schema:
    """The pyarrow schema of ``table`` (``embeddings`` needs ``embedding_dim``)."""
    f = pa.field
    if table == "videos":
        fields = [
            f("path", pa.string()), f("status", pa.string()), f("error", pa.string()),
            f("error_type", pa.string()),
            f("duration_s", pa.float64()), f("decoded_s", pa.float64()), f("truncated", pa.bool_()),
            f("container", pa.string()), f("video_codec", pa.string()), f("audio_codec", pa.string()),
            f("width", pa.int32()), f("height", pa.int32()), f("fps", pa.float64()),
            f("has_audio", pa.bool_()), f("has_video", pa.bool_()),
            f("n_segments", pa.int32()), f("n_events", pa.int32()),
            f("top_label", pa.string()), f("top_score", pa.float64()),
            f("model_id", pa.string()), f("processed_at", pa.timestamp("us", tz="UTC")),
            f("elapsed_s", pa.float64()),
        ]
    elif table == "clips":
        fields = [
            f("clip_index", pa.int32()), f("start_s", pa.float64()), f("end_s", pa.float64()),
            f("label", pa.string()), f("score", pa.float64()), f("top_k", pa.list_(_label_score)),
        ]
    elif table == "segments":
        fields = [
            f("segment_index", pa.int32()), f("start_s", pa.float64()), f("end_s", pa.float64()),
            f("label", pa.string()), f("score", pa.float64()), f("probs", pa.list_(pa.float32())),
            f("audio_share", pa.float64()), f("has_audio", pa.bool_()), f("has_video", pa.bool_()),
        ]
    elif table == "events":
        fields = [
            f("event_index", pa.int32()), f("label", pa.string()), f("start_s", pa.float64()),
            f("end_s", pa.float64()), f("duration_s", pa.float64()), f("score", pa.float64()),
            f("peak_score", pa.float64()), f("audio_share", pa.float64()), f("visual_share", pa.float64()),
        ]
    elif table == "embeddings":
        if not embedding_dim:
            raise ValueError("the embeddings schema needs the embedding width")
        fields = [
            f("segment_index", pa.int32()), f("start_s", pa.float64()), f("end_s", pa.float64()),
            f("embedding", pa.list_(pa.float32(), embedding_dim)),
        ]
    else:
        raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    return pa.schema(_ids + fields)


def with_metadata(table: pa.Table, name: str, labels: Sequence[str]) -> pa.Table:
    meta = {
        b"avfuse.schema_version": SCHEMA_VERSION.encode(),
        b"avfuse.table": name.encode(),
        b"avfuse.labels": json.dumps(list(labels)).encode(),
        b"avfuse.probs_order": json.dumps([*labels, BACKGROUND]).encode(),
    }
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})


def empty_tables(labels: Sequence[str], embedding_dim: int | None = None) -> dict[str, pa.Table]:
    names = TABLES if embedding_dim else TABLES[:-1]
    return {n: with_metadata(schema(n, embedding_dim).empty_table(), n, labels) for n in names}


def media_summary(info: Any, report: Any) -> dict[str, Any]:
    """The per-video facts the ``videos`` table holds, from a MediaInfo and a DecodeReport."""
    v, a = info.video, info.audio
    return {
        "duration_s": None if info.duration_s is None else float(info.duration_s),
        "decoded_s": float(report.decoded_s),
        "truncated": bool(report.truncated),
        "truncation": report.detail if report.truncated else None,
        "declared_s": None if report.declared_s is None else float(report.declared_s),
        "container": info.container,
        "video_codec": v.codec if v else None,
        "audio_codec": a.codec if a else None,
        "width": v.width if v else None,
        "height": v.height if v else None,
        "fps": float(v.fps) if v and v.fps else None,
        "has_audio": info.has_audio,
        "has_video": info.has_video,
    }


@dataclass
class VideoRecord:
    """What is known about one input video, whether it succeeded or failed.

    ``media`` is ``media_summary(...)`` and ``scores`` the model's ``VideoScores`` when the
    video was decoded (a truncated video has both, and an error).
    """

    job_id: str
    video_id: str
    path: str
    model_id: str
    processed_at: datetime
    elapsed_s: float
    error: str | None = None
    error_type: str | None = None
    media: dict[str, Any] | None = None
    scores: Any = None


def _table(rows: list[dict[str, Any]], name: str, labels: Sequence[str], dim: int | None = None) -> pa.Table:
    sch = schema(name, dim)
    return with_metadata(pa.Table.from_pylist(rows, schema=sch), name, labels)


_VIDEO_COLUMNS = {f.name for f in schema("videos")}


def video_tables(rec: VideoRecord, labels: Sequence[str], embeddings: bool = False) -> dict[str, pa.Table]:
    """All table rows for one video (a failed video has its ``videos`` row only)."""
    ids = {"job_id": rec.job_id, "video_id": rec.video_id}
    row: dict[str, Any] = {
        **ids, "path": rec.path, "status": "failed" if rec.error else "ok", "error": rec.error,
        "error_type": rec.error_type, "model_id": rec.model_id, "processed_at": rec.processed_at,
        "elapsed_s": rec.elapsed_s,
    }
    out: dict[str, pa.Table] = {}
    clips: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    emb_rows: list[dict[str, Any]] = []
    dim = None
    if rec.media is not None:
        row.update({k: v for k, v in rec.media.items() if k in _VIDEO_COLUMNS})
    sc = rec.scores
    if sc is not None:
        C = len(labels)
        fg = sc.probs[:, :C]
        top = np.unravel_index(int(np.argmax(fg)), fg.shape) if fg.size else None
        row.update(
            n_segments=len(sc.probs), n_events=len(sc.events),
            top_label=labels[top[1]] if top else None, top_score=float(fg[top]) if top else None,
        )
        names = [*labels, BACKGROUND]
        for c in sc.clips:
            order = np.argsort(-c.probs)[:TOP_K]
            clips.append({
                **ids, "clip_index": c.index, "start_s": c.start_s, "end_s": c.end_s,
                "label": labels[int(order[0])], "score": float(c.probs[order[0]]),
                "top_k": [{"label": labels[int(k)], "score": float(c.probs[k])} for k in order],
            })
        for k in range(len(sc.probs)):
            best = int(np.argmax(sc.probs[k]))
            share = float(sc.shares[k, best]) if best < C else None
            segments.append({
                **ids, "segment_index": k, "start_s": float(sc.starts[k]), "end_s": float(sc.ends[k]),
                "label": names[best], "score": float(sc.probs[k, best]),
                "probs": sc.probs[k].astype(np.float32).tolist(), "audio_share": share,
                "has_audio": bool(sc.has_audio[k]), "has_video": bool(sc.has_video[k]),
            })
        for i, e in enumerate(sc.events):
            events.append({
                **ids, "event_index": i, "label": e.label, "start_s": e.start_s, "end_s": e.end_s,
                "duration_s": e.duration_s, "score": e.score, "peak_score": e.peak_score,
                "audio_share": e.audio_share, "visual_share": e.visual_share,
            })
        if embeddings and sc.embeddings is not None:
            dim = int(sc.embeddings.shape[1])
            emb_rows = [
                {**ids, "segment_index": k, "start_s": float(sc.starts[k]), "end_s": float(sc.ends[k]),
                 "embedding": sc.embeddings[k].tolist()}
                for k in range(len(sc.embeddings))
            ]
    out["videos"] = _table([row], "videos", labels)
    out["clips"] = _table(clips, "clips", labels)
    out["segments"] = _table(segments, "segments", labels)
    out["events"] = _table(events, "events", labels)
    if embeddings and dim:
        out["embeddings"] = _table(emb_rows, "embeddings", labels, dim)
    return out


def describe() -> str:
    """Human-readable listing of every table's columns and types."""
    lines = [f"avfuse Parquet schema, version {SCHEMA_VERSION}"]
    for name in TABLES:
        lines.append(f"\n{name}/part-*.parquet")
        for fld in schema(name, embedding_dim=128 if name == "embeddings" else None):
            typ = str(fld.type).replace("fixed_size_list<item: float>[128]", "fixed_size_list<float32>[E]")
            lines.append(f"  {fld.name:<15} {typ}")
    return "\n".join(lines)
