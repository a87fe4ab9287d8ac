"""``avfuse run``: a batch job on Ray Data, driven from this process.

    inputs -> manifest minus committed videos
      -> from_items (one video per block)
      -> map_batches(DecodeStage)     CPU actor pool, 1-4 videos per call (two calls queued per actor)
      -> map_batches(ModelStage)      actor pool: the model loaded once per actor, GPU when present
      -> this driver: windows gathered per video -> events -> committed Parquet units

Frames never come back to the driver: the model stage drops them and returns scores.
Videos lost to a dying decoder go through the same pipeline once more, alone (``_execute``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from jobs.local_ray import quiet_ray_logs, start_ray, stop_local_ray, write_timeline_if_asked
from jobs.spec import InputVideo, JobSpec, discover, manifest_digest
from pipeline.config import default_batch_windows, default_model_path, validate
from pipeline.errors import CheckpointError, JobError, TruncatedMediaError
from pipeline.sink import OutputDir, ParquetSink
from pipeline.stages import DecodeStage, ModelStage, settings_to_dict  # torch-free at import
from pipeline.tables import SCHEMA_VERSION, VideoRecord, video_tables

if TYPE_CHECKING:  # torch is imported off the critical path, while Ray starts (see run_job)
    from pipeline.model import AVModel

COMMIT_SECONDS = 15.0  # commit a partial unit after this long, so progress is never held back for long


@dataclass
class Plan:
    """How the job uses the cluster."""

    decode_workers: int
    actors: int
    actor_cpus: float
    actor_gpus: float
    device: str
    torch_threads: int
    decode_cpus: float = 1.0  # logical CPUs each decode actor reserves
    batch_size: int = 16  # windows per model call
    videos_per_call: int = 1  # videos per decode call in the first pass (see ``videos_per_call``)


def plan_resources(spec: JobSpec, resources: dict[str, float], videos: Sequence[InputVideo] = ()) -> Plan:
    """Decode workers and model actors from the cluster's CPUs and GPUs; ``videos`` (the ones to
    decode) set how many go to a decode call.

    With GPUs: one actor per GPU, one CPU each, and the remaining CPUs decoding (the GPU
    stage is fed by CPU decoders). CPU only: decoding and the model compete for the same
    cores, so both get all of them (one decode actor per core, the model's torch threads on
    every core) and the OS shares them out; on 2 cores this measured 1.3-1.9x the throughput
    of splitting the cores between the stages (benchmarks/pipeline.py).
    """
    cpus = max(1, int(resources.get("CPU", 1)))
    gpus = int(resources.get("GPU", 0))
    use_gpu = spec.device.startswith("cuda") or (spec.device == "auto" and gpus > 0)
    batch = spec.batch_size or default_batch_windows("cuda" if use_gpu else "cpu")
    if use_gpu:
        if gpus < 1:
            raise JobError("--device cuda was asked for but the Ray cluster has no GPU")
        actors = gpus
        workers = spec.decode_workers or max(1, cpus - actors)
        plan = Plan(workers, actors, 1.0, 1.0, "cuda", 1, max(0.25, min(1.0, (cpus - actors) / workers)), batch)
    else:
        workers = spec.decode_workers or cpus
        actor_cpus = min(1.0, cpus / 2)
        plan = Plan(workers, 1, actor_cpus, 0.0, "cpu", cpus, max(0.1, (cpus - actor_cpus) / workers), batch)
    plan.videos_per_call = videos_per_call(videos, min(workers, len(videos)))
    return plan


IN_FLIGHT = 2  # decode calls queued per actor in the first pass
MAX_VIDEOS_PER_CALL = 4
GROUP_MAX_BYTES = 16 * 2**20  # a file this big decodes for seconds: a call of its own


def videos_per_call(videos: Sequence[InputVideo], workers: int, in_flight: int = IN_FLIGHT) -> int:
    """How many videos one first-pass decode call takes.

    Every call costs Ray Data bookkeeping in the driver and the actor, ~15 ms of CPU, as much as
    a fifth of a 10-second clip's decoding and scoring: small files go up to four to a call
    (steady state 1.2-1.4x on 400 ten-second clips, 2 cores), as long as every actor still gets
    its ``in_flight`` calls. Big files, where that cost vanishes and a call of several would
    leave a long tail on one actor, go one per call.
    """
    sizes = sorted(v.size for v in videos)
    if not sizes or sizes[len(sizes) // 2] > GROUP_MAX_BYTES:
        return 1
    return max(1, min(MAX_VIDEOS_PER_CALL, len(videos) // (max(1, workers) * in_flight)))


@dataclass
class RunSummary:
    out: str
    job_id: str
    total: int
    already_done: int
    scheduled: int
    already_failed: int = 0  # of already_done: failed in an earlier run of this job
    ok: int = 0
    failed: int = 0
    segments: int = 0
    events: int = 0
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    plan: Plan | None = None

    @property
    def throughput(self) -> float:
        return self.video_seconds / self.wall_seconds if self.wall_seconds else 0.0


def read_model(spec: JobSpec) -> tuple[bytes, str]:
    path = Path(spec.model) if spec.model else default_model_path()
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found")
    return path.read_bytes(), str(path)


class Collector:
    """Gathers model rows per video and turns complete videos into committed rows."""

    def __init__(self, model: AVModel, sink: ParquetSink, job: dict[str, Any], spec: JobSpec,
                 summary: RunSummary, on_video: Callable[[str, str], None] | None,
                 started: float | None = None) -> None:
        """``started``: ``time.perf_counter()`` when the run began (for ``first_video_s``)."""
        from pipeline.inference import VideoAccumulator

        self.accumulator = VideoAccumulator
        self.model, self.sink, self.job, self.spec, self.summary = model, sink, job, spec, summary
        self.on_video = on_video
        self.open: dict[str, dict[str, Any]] = {}
        self.buffer: list[dict] = []
        self.finished: set[str] = set()
        self.last_commit = time.monotonic()
        self.started = time.perf_counter() if started is None else started
        self.first_video_s: float | None = None

    def row(self, r: dict[str, Any]) -> None:
        vid = str(r["video_id"])
        if vid in self.finished:
            return  # a retried decode call can repeat rows of a video already done
        if r["error"]:
            self.open.pop(vid, None)  # windows that came through before the error are dropped
            self._finish(vid, str(r["path"]), float(r["started_at"]), error=str(r["error"]),
                         error_type=str(r["error_type"]))
            return
        state = self.open.setdefault(vid, {"acc": self.accumulator(self.model), "seen": set(), "expected": None,
                                           "media": None, "path": str(r["path"]),
                                           "started_at": float(r["started_at"])})
        index = int(r["window_index"])
        if index in state["seen"]:
            return
        state["seen"].add(index)
        state["acc"].add_window(int(r["first_segment"]), int(r["length"]), r["starts"], r["ends"],
                                r["visual_present"], r["audio_present"], r["probs"], r["shares"],
                                r["clip_probs"], r.get("embeddings"))
        if r["final"]:
            state["expected"] = index + 1
            state["media"] = json.loads(str(r["media"]))
        if state["expected"] is not None and len(state["seen"]) == state["expected"]:
            del self.open[vid]
            media = state["media"]
            error = error_type = None
            if media.get("truncated"):
                error = str(TruncatedMediaError(state["path"], media.get("truncation") or "",
                                                media["decoded_s"], media.get("declared_s")))
                error_type = "TruncatedMediaError"
            self._finish(vid, state["path"], state["started_at"], media=media, scores=state["acc"].finish(),
                         error=error, error_type=error_type)

    def _finish(self, vid: str, path: str, started_at: float, *, media: dict | None = None, scores: Any = None,
                error: str | None = None, error_type: str | None = None) -> None:
        rec = VideoRecord(
            job_id=self.job["job_id"], video_id=vid, path=path, model_id=self.model.model_id,
            processed_at=datetime.now(timezone.utc), elapsed_s=max(0.0, time.time() - started_at),
            error=error, error_type=error_type, media=media, scores=scores,
        )
        self.buffer.append(video_tables(rec, self.model.labels, embeddings=self.spec.embeddings))
        self.finished.add(vid)
        if self.first_video_s is None:
            self.first_video_s = time.perf_counter() - self.started
        s = self.summary
        if error:
            s.failed += 1
            s.failures.append((vid, error))
        else:
            s.ok += 1
        if scores is not None:
            s.segments += len(scores.probs)
            s.events += len(scores.events)
            s.video_seconds += float(scores.ends[-1]) if len(scores.ends) else 0.0
        if self.on_video:
            self.on_video(vid, "failed" if error else "ok")
        if len(self.buffer) >= self.spec.commit_every:
            self.commit()

    def maybe_commit(self) -> None:
        if self.buffer and time.monotonic() - self.last_commit >= COMMIT_SECONDS:
            self.commit()

    def commit(self) -> None:
        if not self.buffer:
            return
        self.sink.commit(self.buffer)
        self.buffer = []
        self.last_commit = time.monotonic()
        s = self.summary
        run = self.job["runs"][-1]
        run.update(ok=s.ok, failed=s.failed, video_seconds=round(s.video_seconds, 3))
        counts = self.job["counts"]
        counts["committed"] = s.already_done + s.ok + s.failed
        self.sink.write_job(self.job)


def _new_job(spec: JobSpec, identity: dict, model: AVModel, model_name: str, digest: str) -> dict[str, Any]:
    return {
        "job_id": uuid.uuid4().hex[:12],
        "schema_version": SCHEMA_VERSION,
        "state": "created",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "spec": spec.to_dict(),
        "identity": identity,
        "model": {"id": model.model_id, "path": model_name, "sha256": identity["model_sha256"],
                  "fusion": model.fusion_name, "trained": model.trained},
        "labels": model.labels,
        "manifest_digest": digest,
        "counts": {},
        "runs": [],
    }


def _load_model(model_bytes: bytes, model_name: str) -> AVModel:
    from pipeline.model import load_checkpoint_bytes  # imports torch

    return load_checkpoint_bytes(model_bytes, model_name)


def run_job(spec: JobSpec, *, on_start: Callable[[RunSummary], None] | None = None,
            on_video: Callable[[str, str], None] | None = None) -> RunSummary:
    """Run (or resume) the job ``spec`` describes; returns what this run did."""
    import hashlib

    validate(spec)
    t0 = time.perf_counter()
    videos = discover(spec.inputs)
    model_bytes, model_name = read_model(spec)
    identity = spec.identity(hashlib.sha256(model_bytes).hexdigest())
    started_here = False
    ray_start_s = 0.0
    with ThreadPoolExecutor(1, thread_name_prefix="avfuse-model") as loader:
        # importing torch and loading the model (1-2 s on 2 cores) overlaps Ray's start-up
        loading = loader.submit(_load_model, model_bytes, model_name)
        output = OutputDir(spec.out)
        job = output.read_job()
        if job is not None and spec.overwrite:
            output.clear()
            job = None
        if job is not None and job.get("identity") != identity:
            changed = sorted(k for k in identity if job.get("identity", {}).get(k) != identity[k])
            raise JobError(
                f"{spec.out} holds job {job.get('job_id')} made with a different {', '.join(changed)}; "
                "pass --overwrite to replace it, or choose another --out"
            )
        output.prepare()
        committed = output.committed_status()
        done = set(committed)
        todo = [v for v in videos if v.video_id not in done]
        try:
            if todo:
                t_ray = time.perf_counter()
                started_here = start_ray(spec.address)
                ray_start_s = time.perf_counter() - t_ray
            model = loading.result()
        except BaseException:
            if started_here:
                stop_local_ray()
            raise
    sink = ParquetSink(spec.out, model.labels, model.fusion.cfg.dim if spec.embeddings else None)
    job = job or _new_job(spec, identity, model, model_name, manifest_digest(videos))
    job["state"] = "running"
    job["counts"]["videos_total"] = len(videos)
    job["runs"].append({
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scheduled": len(todo), "already_committed": len(done & {v.video_id for v in videos}),
        "pid": os.getpid(), "address": spec.address or "local",
    })
    sink.write_job(job)
    summary = RunSummary(spec.out, job["job_id"], len(videos), len(videos) - len(todo), len(todo),
                         already_failed=sum(committed.get(v.video_id) == "failed" for v in videos))
    collector = Collector(model, sink, job, spec, summary, on_video, started=t0)
    if on_start:
        on_start(summary)
    try:
        if todo:
            _execute(spec, model, model_bytes, model_name, todo, collector, summary)
        collector.commit()
        job["state"] = "done"
    except BaseException:
        collector.commit()
        job["state"] = "interrupted"
        raise
    finally:
        summary.wall_seconds = time.perf_counter() - t0
        run = job["runs"][-1]
        run.update(finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   wall_s=round(summary.wall_seconds, 3), ok=summary.ok, failed=summary.failed,
                   video_seconds=round(summary.video_seconds, 3),
                   # start-up: Ray's own, and until the first video had passed the whole pipeline
                   ray_start_s=round(ray_start_s, 3),
                   first_video_s=None if collector.first_video_s is None else round(collector.first_video_s, 3),
                   plan=None if summary.plan is None else asdict(summary.plan))
        job["counts"]["committed"] = summary.already_done + summary.ok + summary.failed
        if job["state"] == "done":
            job["finished_at"] = run["finished_at"]
        sink.write_job(job)
        write_timeline_if_asked()
        if started_here:
            stop_local_ray()
    return summary


DECODE_MEMORY = 256 * 2**20


def _retries(n: int) -> dict[str, int]:
    """Ray Data retries the calls of a restarted actor forever by default: a file that kills
    FFmpeg would loop. The decode actor restarts after a crash; the call is retried ``n`` times.

    ``max_task_retries`` has no named parameter in Ray 2.60 and its ``**ray_remote_args`` path
    is deprecated (removal announced for 2.64, hence the version cap in pyproject.toml).
    """
    warnings.filterwarnings("ignore", message=r"`ray_remote_args` is deprecated")
    return {"max_task_retries": n}


def _execute(spec: JobSpec, model: AVModel, model_bytes: bytes, model_name: str, todo: list[InputVideo],
             collector: Collector, summary: RunSummary) -> None:
    """Two passes over the videos, so that speed and crash isolation do not fight.

    First pass: each decode actor holds two calls, so it starts the next video without waiting
    a scheduling round trip for it (an actor with one call in flight sat idle ~40% of the time
    between videos: 190 vs 330 video-s/s decoding through Ray Data on 2 cores); a call takes up
    to four small files (``videos_per_call``), and calls are not retried. A decoder that dies
    takes the rest of its call and its queued call down with it, so every video that did not
    come through is decoded again in a second pass, one video per call, one call per actor,
    retried ``max_retries`` times on a restarted actor: only the file that kills its decoder
    ends up failed.
    """
    import ray
    import ray.data

    quiet_ray_logs()
    ctx = ray.data.DataContext.get_current()
    ctx.max_errored_blocks = -1  # a block lost to a dead worker: its video is taken up by the second pass
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    plan = plan_resources(spec, ray.cluster_resources(), todo)
    summary.plan = plan
    model_ref = ray.put(model_bytes)

    def run_pass(videos: list[InputVideo], in_flight: int, retries: int, per_call: int) -> None:
        ds = ray.data.from_items([{"video_id": v.video_id, "path": v.path} for v in videos],
                                 override_num_blocks=len(videos))
        ds = ds.map_batches(
            DecodeStage,
            batch_size=per_call,  # videos per call; it yields each video's windows a few at a time
            batch_format="numpy",
            fn_kwargs={"settings": settings_to_dict(replace(model.decode_settings, threads=1)),
                       "window": {"segments": model.window.segments, "hop": model.window.hop}},
            # long-lived decode processes: a Ray task per video cost about as much scheduling as
            # a 30-s clip takes to decode (pipeline 1.26x faster with actors on 2 cores)
            compute=ray.data.ActorPoolStrategy(size=min(plan.decode_workers, len(videos)),
                                               max_tasks_in_flight_per_actor=in_flight),
            num_cpus=plan.decode_cpus,
            memory=DECODE_MEMORY,  # reserved per decode process (about 100 MB resident measured)
            **_retries(retries),
        )
        ds = ds.map_batches(
            ModelStage,
            fn_constructor_kwargs={"model": [model_ref], "model_name": model_name, "device": plan.device,
                                   "embeddings": spec.embeddings, "threads": plan.torch_threads},
            batch_size=plan.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan.actors),
            num_cpus=plan.actor_cpus,
            num_gpus=plan.actor_gpus,
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
            for i in range(len(batch["video_id"])):
                collector.row({k: v[i] for k, v in batch.items()})
            collector.maybe_commit()

    run_pass(todo, in_flight=IN_FLIGHT, retries=0, per_call=plan.videos_per_call)
    lost = [v for v in todo if v.video_id not in collector.finished]
    if lost:
        run_pass(lost, in_flight=1, retries=spec.max_retries, per_call=1)
    for v in todo:  # never reached the driver: its decoder died more often than retried
        if v.video_id not in collector.finished:
            partial = v.video_id in collector.open
            collector._finish(
                v.video_id, v.path, time.time(),
                error=f"{v.path}: the decode worker process died "
                      f"{'while decoding' if partial else 'on every attempt'} "
                      f"({spec.max_retries + 2} attempts, the last {spec.max_retries + 1} alone); "
                      "the file may crash FFmpeg",
                error_type="WorkerCrashedError",
            )
