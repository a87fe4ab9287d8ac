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


def train_cmd(
    videos: Annotated[Path, typer.Option(help="Folder of the labelled videos.")],
    annotations: Annotated[Path, typer.Option(help="AVE (Category&VideoID&...) or DCASE TSV annotation file.")],
    out: Annotated[Path, typer.Option(help="Where to write the model file.")],
    fusion: Annotated[str, typer.Option(help="hybrid, early, late, cross_attention, graph or concat.")] = "hybrid",
    modalities: Annotated[str, typer.Option(help="audio+visual, audio or visual (unimodal baselines).")] = "audio+visual",
    visual: Annotated[str, typer.Option(help="Visual encoder: small_cnn, resnet18, r2plus1d_18.")] = "small_cnn",
    audio: Annotated[str, typer.Option(help="Audio encoder: small_cnn, cnn14, cnn14_16k.")] = "small_cnn",
    visual_weights: Annotated[
        str | None, typer.Option(help="Pretrained visual weights: a torchvision name (DEFAULT) or a file.")
    ] = None,
    audio_weights: Annotated[str | None, typer.Option(help="Pretrained audio weights file (e.g. PANNs Cnn14).")] = None,
    encoders: Annotated[str, typer.Option(help="train (from scratch), finetune (0.1x lr) or freeze.")] = "train",
    epochs: Annotated[int, typer.Option()] = 30,
    batch_size: Annotated[int, typer.Option()] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-3,
    seed: Annotated[int, typer.Option()] = 0,
    val_fraction: Annotated[float, typer.Option(help="Share of clips held out to pick the best epoch.")] = 0.1,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    modality_dropout: Annotated[float, typer.Option(help="Chance a training window loses one modality.")] = 0.1,
    dropped_target: Annotated[
        str, typer.Option(help="Label of a window that lost a modality: auto (background for AVE "
                               "annotations, keep for DCASE), background, or keep.")
    ] = "auto",
    cache_dir: Annotated[Path | None, typer.Option(help="Decoded-clip cache (default .cache/avfuse/decoded).")] = None,
    fusion_option: Annotated[
        list[str] | None,
        typer.Option(help="Fusion setting KEY=VALUE (repeatable), e.g. dim=192, fusion_layers=3, "
                          "bottleneck_scope=segment."),
    ] = None,
) -> None:
    """Train a model on labelled videos (AVE or DCASE annotations)."""
    from pipeline.train import TrainSettings, train

    settings = TrainSettings(
        videos=videos, annotations=annotations, out=out, fusion=fusion, modalities=modalities, visual=visual,
        audio=audio, visual_weights=visual_weights, audio_weights=audio_weights, encoders=encoders,
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, val_fraction=val_fraction, device=device,
        modality_dropout=modality_dropout, dropped_target=dropped_target, cache_dir=cache_dir,
        fusion_config=parse_options(fusion_option or []),
    )
    with _progress() as progress:
        tasks: dict[str, int] = {}

        def stage(name: str, total: int) -> None:
            label = {"decode": "decoding clips", "train": "training"}[name]
            tasks[name] = progress.add_task(label, total=total)

        def epoch(st) -> None:  # noqa: ANN001 - EpochStats
            val = "" if st.validation is None else f", val segment acc {st.validation:.3f}"
            progress.console.print(f"epoch {st.epoch}: loss {st.loss:.4f}{val} ({st.seconds:.1f} s)")

        report = train(
            settings,
            on_stage=stage,
            on_decoded=lambda n: progress.advance(tasks["decode"], n),
            on_step=lambda n: progress.advance(tasks["train"], n),
            on_epoch=epoch,
        )
    table = Table(title=f"trained {report.model.fusion_name} on {report.n_train_clips} clips")
    table.add_column("")
    table.add_column("", justify="right")
    val = report.validation_accuracy
    for k, v in [
        ("model file", str(report.model_path)),
        ("labels", ", ".join(report.model.labels)),
        ("clips train / validation", f"{report.n_train_clips} / {report.n_val_clips}"),
        ("windows", str(report.n_windows)),
        ("best epoch", str(report.history.best_epoch)),
        ("validation segment accuracy", "-" if val is None else f"{val:.4f}"),
        ("validation event F1 (tuned events)",
         "-" if report.validation_event_f1 is None else f"{report.validation_event_f1:.4f}"),
        ("event settings", f"threshold {report.model.events.threshold}, median {report.model.events.median}, "
                           f"min {report.model.events.min_segments} seg, gap {report.model.events.max_gap}"),
        ("decode time", f"{report.decode_seconds:.1f} s"),
        ("training time", f"{report.train_seconds:.1f} s"),
    ]:
        table.add_row(k, v)
    console.print(table)


def parse_options(items: list[str]) -> dict[str, object]:
    """KEY=VALUE strings -> dict, values as int, float, bool or str; bad items raise ConfigError."""
    from pipeline.errors import ConfigError

    out: dict[str, object] = {}
    problems = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            problems.append(f"--fusion-option {item!r}: expected KEY=VALUE")
            continue
        value: object = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                pass
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        out[key.strip()] = value
    if problems:
        raise ConfigError(problems)
    return out


def eval_cmd(
    videos: Annotated[Path, typer.Option(help="Folder of the annotated videos.")],
    annotations: Annotated[Path, typer.Option(help="AVE or DCASE annotation file.")],
    model: Annotated[Path | None, typer.Option(help="Model file; default: the bundled model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    collar: Annotated[float, typer.Option(help="Event-based onset/offset collar in seconds.")] = 0.2,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Score a model on annotated videos: segment accuracy (AVE), clip accuracy/mAP, segment and event F1."""
    from pipeline.annotations import match_videos, read_annotations
    from pipeline.detect import load_model
    from pipeline.evaluate import evaluate

    m = load_model(model)
    n = len(match_videos(read_annotations(annotations), videos))
    with _progress() as progress:
        task = progress.add_task("evaluating", total=n)
        report = evaluate(m, videos, annotations, device=device, collar=collar,
                          on_video=lambda k: progress.advance(task, k))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    table = Table(title=f"{n} videos, {report.n_segments} segments, model {m.model_id} ({m.fusion_name})")
    for col in ("class", "segment F1", "event F1", "event P", "event R", "events"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for label, c in report.per_class.items():
        table.add_row(label, f"{c.segment_f1:.3f}", f"{c.event_f1:.3f}", f"{c.event_precision:.3f}",
                      f"{c.event_recall:.3f}", str(c.n_reference_events))
    table.add_row("overall (micro)", f"{report.segment_f1:.3f}", f"{report.event_f1:.3f}",
                  f"{report.event_precision:.3f}", f"{report.event_recall:.3f}", "", style="bold")
    table.caption = (
        f"segment accuracy {report.segment_accuracy:.4f} | clip accuracy {report.clip_accuracy:.4f} | "
        f"clip mAP {report.clip_map:.4f} | collar {collar} s"
    )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the single-clip commands to ``app``."""
    app.command("probe")(probe_cmd)
    app.command("detect")(detect_cmd)
    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
    app.command("sample-media")(sample_media_cmd)


