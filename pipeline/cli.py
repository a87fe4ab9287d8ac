"""Single-clip commands: ``probe``, ``sample-media`` (and, as they land, ``detect``, ``train``, ``eval``).

The CLI only parses arguments and calls library functions; ``AvfuseError``
becomes one line on stderr and exit code 1 (see ``jobs.cli.main``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from pipeline.config import DecodeSettings, validate
from pipeline.decode import DecodeReport, StreamingDecoder
from pipeline.errors import AvfuseError
from pipeline.media import MediaInfo, probe

console = Console()


def _fmt(x: float | None, unit: str = "", digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def probe_table(info: MediaInfo, segment_s: Fraction) -> Table:
    table = Table(title=f"{info.path}  ({info.container}, {info.size_bytes:,} bytes)")
    for col in ("stream", "codec", "start", "duration", "details"):
        table.add_column(col)
    for s in info.streams:
        if s.kind == "video":
            details = (
                f"{s.width}x{s.height}, {_fmt(None if s.fps is None else float(s.fps), ' fps', 2)}, "
                f"rotation {s.rotation}°, {s.frames or '?'} frames"
            )
        else:
            details = f"{s.sample_rate} Hz, {s.channels} ch"
        table.add_row(
            f"#{s.index} {s.kind}",
            s.codec,
            _fmt(None if s.start_s is None else float(s.start_s), " s"),
            _fmt(None if s.duration_s is None else float(s.duration_s), " s"),
            details,
        )
    duration = None if info.duration_s is None else float(info.duration_s)
    table.caption = (
        f"duration {_fmt(duration, ' s')}, {info.n_segments(segment_s)} segments of "
        f"{float(segment_s):g} s; audio {'yes' if info.has_audio else 'missing'}, "
        f"video {'yes' if info.has_video else 'missing'}"
    )
    return table


def probe_cmd(
    clip: Annotated[Path, typer.Argument(help="A video or audio file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    segment_s: Annotated[float, typer.Option(help="Segment length in seconds.")] = 1.0,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Decode the whole file too, and fail (exit 1) if it is truncated or undecodable.",
        ),
    ] = False,
) -> None:
    """Show what the decoder sees: streams, codecs, duration, fps, size, rotation, segments."""
    info = probe(clip)
    seg = Fraction(segment_s).limit_denominator(1000)
    report = None
    if check:
        report = check_decode(clip, seg)
    if as_json:
        data = info.to_dict()
        data["segment_s"] = float(seg)
        data["n_segments"] = info.n_segments(seg)
        if report is not None:
            data["decoded_s"] = float(report.decoded_s)
            data["decoded_segments"] = report.n_segments
            data["truncated"] = report.truncated
            data["decode_errors"] = report.decode_errors
        typer.echo(json.dumps(data, indent=2))
    else:
        console.print(probe_table(info, seg))
        if report is not None:
            console.print(
                f"decoded {float(report.decoded_s):.3f} s in {report.n_segments} segments, "
                f"{report.video_frames_decoded} video frames, {report.audio_samples} audio samples, "
                f"{report.decode_errors} decode errors"
            )
    if report is not None:
        report.raise_if_truncated()


def check_decode(clip: Path, segment_s: Fraction) -> DecodeReport:
    """Decode every segment of ``clip`` (small frames) and return the report."""
    settings = DecodeSettings(fps=Fraction(1) / segment_s, frame_size=16, segment_s=segment_s)
    with StreamingDecoder(clip, settings) as decoder:
        for _ in decoder.segments():
            pass
        return decoder.report


def sample_media_cmd(
    out: Annotated[Path, typer.Option(help="Folder to write clips and annotations into.")],
    n: Annotated[int, typer.Option(help="Number of clips.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same clips).")] = 0,
    duration: Annotated[int, typer.Option(help="Clip length in seconds.")] = 10,
    formats: Annotated[
        str, typer.Option(help="Comma-separated containers to cycle through: mp4,webm,mkv,mov.")
    ] = "mp4",
    without_audio: Annotated[
        str, typer.Option(help="Comma-separated clip indices to write without an audio track.")
    ] = "",
    workers: Annotated[int, typer.Option(help="Processes to render clips with (0: one per CPU core).")] = 0,
) -> None:
    """Generate synthetic audio-visual event clips with AVE and DCASE ground truth."""
    from sample_media.generate import generate

    exts = tuple("." + f.strip().lstrip(".") for f in formats.split(",") if f.strip())
    silent = [int(i) for i in without_audio.split(",") if i.strip()]
    from pipeline.decode import available_cpus

    plans = generate(out, n, seed, duration=duration, formats=exts, without_audio=silent,
                     workers=workers or available_cpus())
    console.print(f"wrote {len(plans)} clips and annotations to {out}")


def detect_cmd(
    clip: Annotated[Path, typer.Argument(help="A video (or audio) file.")],
    model: Annotated[
        Path | None, typer.Option(help="Model file from `avfuse train`; default: the bundled model.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the events table to this Parquet file.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threshold: Annotated[
        float | None, typer.Option(help="Segment probability a class needs to count (overrides the model's).")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Also draw the clip's timeline into this PNG file.")] = None,
    annotations: Annotated[
        Path | None, typer.Option(help="AVE or DCASE ground truth: drawn under the events in --plot.")
    ] = None,
) -> None:
    """Detect audio-visual events in one clip, in this process (no Ray)."""
    from pipeline.detect import analyse, load_model
    from pipeline.inference import Predictor

    m = load_model(model)
    if threshold is not None:
        m.events = replace(m.events, threshold=threshold)
    validate(m.events)
    if not m.trained:
        typer.secho(
            f"warning: model {m.checkpoint_path} is UNTRAINED (random weights): its events mean nothing",
            err=True, fg="yellow",
        )
    truth = clip_truth(annotations, clip) if annotations is not None else None
    result = analyse(clip, m, Predictor(m, device=device))
    if out is not None:
        write_clip_events(result, m, out)
    if plot is not None:
        from pipeline.plots import save_timeline, timeline_from_tables

        tables = clip_tables(result, m)
        save_timeline(timeline_from_tables(tables, m.labels, Path(clip).name, str(clip), truth), plot)
    if as_json:
        typer.echo(json.dumps(detect_json(result, m), indent=2))
    else:
        console.print(events_table(result, m))
    result.report.raise_if_truncated()


def clip_tables(result, model) -> dict:  # noqa: ANN001 - VideoResult, AVModel
    """The Parquet rows of one detected clip, exactly as a batch job would write them."""
    from pipeline.tables import VideoRecord, media_summary, video_tables

    rec = VideoRecord(
        job_id="detect", video_id=Path(result.source).name, path=str(result.source),
        model_id=model.model_id, processed_at=result.processed_at, elapsed_s=result.elapsed_s,
        media=media_summary(result.info, result.report), scores=result.scores,
    )
    return video_tables(rec, model.labels)


def clip_truth(annotations: Path, clip: Path) -> list[tuple[str, float, float]]:
    """The annotated events of ``clip`` (matched by file name, then by stem)."""
    from pipeline.annotations import read_annotations

    ann = read_annotations(annotations)
    for key in (Path(clip).name, Path(clip).stem):
        if key in ann.videos:
            return [(a.label, a.onset, a.offset) for a in ann.videos[key]]
    raise AvfuseError(f"{annotations}: no annotations for {Path(clip).name}")


def write_clip_events(result, model, out: Path) -> None:  # noqa: ANN001 - VideoResult, AVModel
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(clip_tables(result, model)["events"], out)


def detect_json(result, model) -> dict:  # noqa: ANN001
    sc = result.scores
    return {
        "path": str(result.source),
        "model": {"id": model.model_id, "path": model.checkpoint_path, "trained": model.trained,
                  "labels": model.labels, "fusion": model.fusion_name},
        "duration_s": None if result.info.duration_s is None else float(result.info.duration_s),
        "decoded_s": float(result.report.decoded_s),
        "truncated": result.report.truncated,
        "has_audio": result.info.has_audio,
        "has_video": result.info.has_video,
        "n_segments": len(sc.probs),
        "elapsed_s": round(result.elapsed_s, 3),
        "events": [
            {"label": e.label, "start_s": e.start_s, "end_s": e.end_s, "duration_s": e.duration_s,
             "score": round(e.score, 4), "peak_score": round(e.peak_score, 4),
             "audio_share": round(e.audio_share, 4), "visual_share": round(e.visual_share, 4)}
            for e in sc.events
        ],
    }


def events_table(result, model) -> Table:  # noqa: ANN001
    data = detect_json(result, model)
    title = (
        f"{data['path']}: {len(data['events'])} events in {data['decoded_s']:.1f} s "
        f"({data['n_segments']} segments; audio {'yes' if data['has_audio'] else 'missing'}, "
        f"video {'yes' if data['has_video'] else 'missing'})"
    )
    table = Table(title=title)
    for col in ("label", "start", "end", "duration", "score", "peak", "audio share", "visual share"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for e in data["events"]:
        table.add_row(
            e["label"], f"{e['start_s']:.2f}", f"{e['end_s']:.2f}", f"{e['duration_s']:.2f}",
            f"{e['score']:.3f}", f"{e['peak_score']:.3f}", f"{e['audio_share']:.2f}", f"{e['visual_share']:.2f}",
        )
    trained = "" if model.trained else ", UNTRAINED"
    table.caption = f"model {model.model_id} ({model.fusion_name}{trained}), {data['elapsed_s']:.2f} s"
    return table


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=Console(stderr=True), transient=False,
    )


def register(app: typer.Typer) -> None:
    """Add the single-clip commands (and training/evaluation) to ``app``."""
    from pipeline.cli_train import eval_cmd, train_cmd

    app.command("probe")(probe_cmd)
    app.command("detect")(detect_cmd)
    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
    app.command("sample-media")(sample_media_cmd)


