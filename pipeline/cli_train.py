"""``avfuse train`` and ``avfuse eval``: argument parsing and progress; the work is in
``pipeline.train`` and ``pipeline.evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli import _progress, console


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
