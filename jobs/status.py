"""``avfuse status``: progress of a job from its committed output, and from the cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from jobs.submit import job_client
from pipeline.errors import JobError
from pipeline.sink import OutputDir


@dataclass
class OutputStatus:
    out: str
    job_id: str | None
    state: str
    total: int | None
    committed: int
    ok: int
    failed: int
    segments: int
    events: int
    video_seconds: float
    runs: int
    updated_at: str | None
    failures: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def output_status(out: str) -> OutputStatus:
    """Counts read from the committed tables (the truth), plus the job file's state."""
    output = OutputDir(out)
    job = output.read_job()
    if job is None:
        raise JobError(f"{out}: no avfuse job output here (no _job.json)")
    ok = failed = segments = events = 0
    seconds = 0.0
    failures: list[tuple[str, str]] = []
    committed = set()
    for f in output.committed_files("videos"):
        with output.fs.open_input_file(f.path) as fh:
            t = pq.read_table(fh, columns=["video_id", "status", "error", "n_segments", "n_events", "decoded_s"])
        for row in t.to_pylist():
            committed.add(row["video_id"])
            if row["status"] == "ok":
                ok += 1
            else:
                failed += 1
                failures.append((row["video_id"], row["error"] or ""))
            segments += row["n_segments"] or 0
            events += row["n_events"] or 0
            seconds += row["decoded_s"] or 0.0
    return OutputStatus(
        out=out, job_id=job.get("job_id"), state=job.get("state", "unknown"),
        total=job.get("counts", {}).get("videos_total"), committed=len(committed), ok=ok, failed=failed,
        segments=segments, events=events, video_seconds=seconds, runs=len(job.get("runs", [])),
        updated_at=job.get("updated_at"), failures=failures,
    )


def cluster_status(job_id: str, address: str, token: str | None = None, log_lines: int = 20) -> dict[str, Any]:
    """State of a submitted job from the Ray job server, with the tail of its logs."""
    client = job_client(address, token)
    try:
        info = client.get_job_info(job_id)
        logs = client.get_job_logs(job_id)
    except Exception as exc:
        raise JobError(f"job {job_id} at {address}: {exc}") from exc
    return {
        "job_id": job_id,
        "status": str(info.status.value if hasattr(info.status, "value") else info.status),
        "message": info.message,
        "entrypoint": info.entrypoint,
        "out": (info.metadata or {}).get("avfuse_out"),
        "log_tail": logs.splitlines()[-log_lines:],
    }
