"""``avfuse submit``: hand a run to a Ray cluster's job server (Ray Jobs).

The job runs ``avfuse run ... --address auto`` on the cluster, so the cluster's nodes
need avfuse installed and must see INPUTS and OUT (a shared file system, or s3:// / gs://).

Authentication: Ray 2.59+ clusters use token authentication. The token is taken from
``--token``, else ``$RAY_AUTH_TOKEN``, else the file ``$RAY_AUTH_TOKEN_PATH``, else
``~/.ray/auth_token`` (which ``ray start`` / ``ray.init`` write on the head node), and
sent as an ``Authorization: Bearer`` header.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from jobs.spec import JobSpec, normalise_input
from pipeline.errors import JobError


def find_ray_token(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    for candidate in (os.environ.get("RAY_AUTH_TOKEN_PATH"), str(Path.home() / ".ray" / "auth_token")):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_text().strip() or None
    return None


def job_client(address: str, token: str | None = None) -> Any:
    """A ``JobSubmissionClient`` for ``address`` (http://HOST:8265), with the auth token if any."""
    from ray.job_submission import JobSubmissionClient

    if not address.startswith(("http://", "https://")):
        raise JobError(f"--address {address!r}: the job server address looks like http://HOST:8265")
    headers = {}
    tok = find_ray_token(token)
    if tok:
        headers["Authorization"] = f"Bearer {tok}"
    try:
        return JobSubmissionClient(address, headers=headers)
    except Exception as exc:  # connection refused, 401, version mismatch
        hint = "" if tok else " (no auth token found: set RAY_AUTH_TOKEN or pass --token)"
        raise JobError(f"cannot reach the Ray job server at {address}: {exc}{hint}") from exc


def run_command(spec: JobSpec) -> str:
    """The ``avfuse run`` command line the cluster will execute for ``spec``."""
    args = ["avfuse", "run", *[normalise_input(i) for i in spec.inputs], "--out",
            spec.out if "://" in spec.out else os.path.abspath(spec.out), "--address", "auto",
            "--device", spec.device, "--commit-every", str(spec.commit_every)]
    if spec.batch_size:
        args += ["--batch-size", str(spec.batch_size)]
    if spec.model:
        args += ["--model", os.path.abspath(spec.model) if "://" not in spec.model else spec.model]
    if spec.decode_workers:
        args += ["--decode-workers", str(spec.decode_workers)]
    if spec.embeddings:
        args.append("--embeddings")
    if spec.overwrite:
        args.append("--overwrite")
    return shlex.join(args)


def submit(spec: JobSpec, address: str, token: str | None = None) -> str:
    """Submit ``spec`` to the job server at ``address``; returns the submission id."""
    client = job_client(address, token)
    try:
        return client.submit_job(entrypoint=run_command(spec),
                                 metadata={"avfuse_out": str(spec.out), "avfuse": "run"})
    except Exception as exc:
        raise JobError(f"the Ray job server at {address} refused the job: {exc}") from exc
