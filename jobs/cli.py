"""The ``avfuse`` entry point: single-clip commands from ``pipeline`` plus batch jobs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli import _progress, register
from pipeline.errors import AvfuseError

app = typer.Typer(
    name="avfuse",
    help="Audio-visual event detection for video: which events happen, when, and whether sound or sight drove them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register(app)
console = Console()
EXIT_SOME_FAILED = 3  # the job finished but some of its videos failed, in this run or an earlier one


def _spec(inputs: list[str], out: Path | str, model: Path | None, address: str | None, decode_workers: int,
          batch_size: int, device: str, embeddings: bool, overwrite: bool, commit_every: int):  # noqa: ANN202
    from jobs.spec import JobSpec

    return JobSpec(
        inputs=tuple(inputs), out=str(out), model=None if model is None else str(model), address=address,
        decode_workers=decode_workers, batch_size=batch_size, device=device, embeddings=embeddings,
        overwrite=overwrite, commit_every=commit_every,
    )


Inputs = Annotated[list[str], typer.Argument(
    help="Folders (recursive), globs, list files of paths/URIs, files, s3:// or gs:// URIs.")]
Out = Annotated[str, typer.Option(help="Output folder (or s3:// / gs:// URI) for the Parquet tables.")]
ModelOpt = Annotated[Path | None, typer.Option(help="Model file; default: the bundled model.")]
Workers = Annotated[int, typer.Option(help="Decode processes (Ray actors); 0: derived from the cluster's CPUs and GPUs.")]
Batch = Annotated[int, typer.Option(help="Analysis windows per model call; 0: 16 on CPU, 64 on a GPU.")]
Device = Annotated[str, typer.Option(help="auto (GPU when the cluster has one), cpu or cuda.")]
Emb = Annotated[bool, typer.Option("--embeddings", help="Also write per-segment fused embeddings.")]
Over = Annotated[bool, typer.Option("--overwrite", help="Delete what OUT holds and start over.")]
Every = Annotated[int, typer.Option(help="Videos per committed unit of work.")]


@app.command("run")
def run_cmd(
    inputs: Inputs,
    out: Out,
    model: ModelOpt = None,
    address: Annotated[str | None, typer.Option(
        help="Ray cluster to join (ray://..., HOST:PORT or auto); default: a private local Ray.")] = None,
    decode_workers: Workers = 0,
    batch_size: Batch = 0,
    device: Device = "auto",
    embeddings: Emb = False,
    overwrite: Over = False,
    commit_every: Every = 16,
) -> None:
    """Detect events in every video of INPUTS with Ray, writing Parquet tables to OUT (resumable)."""
    from jobs.run import run_job

    spec = _spec(inputs, out, model, address, decode_workers, batch_size, device, embeddings, overwrite, commit_every)
    started = {}
    try:
        with _progress() as progress:

            def start(summary) -> None:  # noqa: ANN001 - RunSummary
                progress.console.print(
                    f"job {summary.job_id}: {summary.total} videos, {summary.already_done} already committed, "
                    f"{summary.scheduled} to do"
                )
                started.update(summary=summary, task=progress.add_task("videos", total=summary.scheduled))

            summary = run_job(spec, on_start=start, on_video=lambda vid, status: progress.advance(started["task"]))
    except KeyboardInterrupt:
        # typer would exit 130 without a word; run_job has committed every finished video
        s = started.get("summary")
        done = "no video committed by this run" if s is None else (
            f"{s.already_done + s.ok + s.failed} of {s.total} videos committed")
        typer.echo(f"interrupted: {done} in {spec.out}; run the same command again to resume", err=True)
        raise typer.Exit(130) from None
    table = Table(title=f"avfuse run -> {summary.out} (job {summary.job_id})")
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        ("videos in inputs", summary.total),
        ("already committed before this run", summary.already_done if not summary.already_failed
         else f"{summary.already_done} ({summary.already_failed} failed)"),
        ("processed now: ok", summary.ok),
        ("processed now: failed", summary.failed),
        ("segments", summary.segments),
        ("events", summary.events),
        ("video seconds", f"{summary.video_seconds:.1f}"),
        ("wall seconds", f"{summary.wall_seconds:.1f}"),
        ("video-seconds per wall-second", f"{summary.throughput:.2f}"),
    ]
    if summary.plan:
        p = summary.plan
        rows.append(("decode workers / model actors", f"{p.decode_workers} / {p.actors} on {p.device}"))
    for k, v in rows:
        table.add_row(k, str(v))
    console.print(table)
    for vid, err in summary.failures[:20]:
        console.print(f"[red]failed[/red] {vid}: {err}")
    if len(summary.failures) > 20:
        console.print(f"... and {len(summary.failures) - 20} more failures (see the videos table)")
    if summary.already_failed:
        console.print(f"{summary.already_failed} video(s) failed in an earlier run of this job (see the videos table; "
                      "--overwrite starts over)")
    if summary.failed or summary.already_failed:  # the job's outcome, however many runs it took
        raise typer.Exit(EXIT_SOME_FAILED)


@app.command("submit")
def submit_cmd(
    inputs: Inputs,
    out: Out,
    address: Annotated[str, typer.Option(help="The cluster's job server, http://HOST:8265.", envvar="RAY_ADDRESS")],
    model: ModelOpt = None,
    decode_workers: Workers = 0,
    batch_size: Batch = 0,
    device: Device = "auto",
    embeddings: Emb = False,
    overwrite: Over = False,
    commit_every: Every = 16,
    token: Annotated[str | None, typer.Option(help="Ray auth token (default: $RAY_AUTH_TOKEN or ~/.ray/auth_token).")] = None,
) -> None:
    """Submit the same run to a Ray cluster's job server (Ray Jobs); prints the job id."""
    from jobs.submit import submit
    from pipeline.config import validate

    spec = _spec(inputs, out, model, None, decode_workers, batch_size, device, embeddings, overwrite, commit_every)
    validate(spec)
    job_id = submit(spec, address, token)
    typer.echo(job_id)


@app.command("status")
def status_cmd(
    out: Annotated[str | None, typer.Argument(help="A job's output folder.")] = None,
    job: Annotated[str | None, typer.Option(help="A submitted job's id (with --address).")] = None,
    address: Annotated[str | None, typer.Option(help="The job server, http://HOST:8265.", envvar="RAY_ADDRESS")] = None,
    token: Annotated[str | None, typer.Option(help="Ray auth token.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="With --job: poll until the job ends.")] = False,
) -> None:
    """Progress of a job: from the committed output (OUT) and/or the cluster (--job ID --address URL)."""
    from jobs.status import cluster_status, output_status

    if out is None and job is None:
        raise AvfuseError("pass an output folder, or --job ID --address URL")
    result: dict = {}
    if job is not None:
        if not address:
            raise AvfuseError("--job needs --address http://HOST:8265 (or RAY_ADDRESS)")
        cluster = cluster_status(job, address, token)
        while wait and cluster["status"] in ("PENDING", "RUNNING"):
            time.sleep(2)
            cluster = cluster_status(job, address, token)
        result["cluster"] = cluster
        out = out or cluster.get("out")
    if out is not None:
        try:
            result["output"] = output_status(out).to_dict()
        except AvfuseError:
            if job is None:
                raise
            result["output"] = None  # submitted, nothing committed yet
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        if "cluster" in result:
            c = result["cluster"]
            console.print(f"cluster job {c['job_id']}: [bold]{c['status']}[/bold] {c['message'] or ''}")
        o = result.get("output")
        if o:
            total = "?" if o["total"] is None else o["total"]
            console.print(
                f"{o['out']}: job {o['job_id']} {o['state']}; {o['committed']}/{total} videos committed "
                f"({o['ok']} ok, {o['failed']} failed), {o['segments']} segments, {o['events']} events"
            )
            for vid, err in o["failures"][:10]:
                console.print(f"  [red]failed[/red] {vid}: {err}")
    cluster_state = result.get("cluster", {}).get("status")
    if cluster_state == "FAILED":
        raise typer.Exit(1)


@app.command("report")
def report_cmd(
    out: Annotated[str, typer.Argument(help="A job's output folder.")],
    html: Annotated[Path, typer.Option("--html", help="Where to write the page.")],
    top: Annotated[int, typer.Option(help="Timelines for this many videos, most events first.")] = 5,
) -> None:
    """Write a self-contained HTML report of a job: counts, failures, events, throughput, timelines."""
    from jobs.report import write_report

    path = write_report(out, html, top)
    console.print(f"wrote {path}")


@app.command("schema")
def schema_cmd() -> None:
    """Print the Parquet schema of every output table."""
    from pipeline.tables import describe

    typer.echo(describe())


def main() -> None:
    """Run the CLI; user errors print one line and exit 1, without a traceback."""
    try:
        app()  # standalone mode: usage errors print click's message and exit 2
    except AvfuseError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
