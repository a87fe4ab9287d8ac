"""The private local Ray of a run without ``--address``: start it on loopback, stop it, and
make sure none of its worker processes outlive the run."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path


class _HandledBlockErrors(logging.Filter):
    """Drops Ray Data's report (with traceback) of a decode call lost to a dying worker: the job
    decodes that video again and records the outcome itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("An exception was raised from a task of operator")


def quiet_ray_logs() -> None:
    """Our progress bar and summary replace Ray Data's; Ray's token-auth notice is in the README."""
    import warnings

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    state = logging.getLogger("ray.data._internal.execution.streaming_executor_state")
    if not any(isinstance(f, _HandledBlockErrors) for f in state.filters):
        state.addFilter(_HandledBlockErrors())
    # the model stage of a second pass whose only video failed to decode gets no input
    warnings.filterwarnings("ignore", message=r"The minimum number of concurrent actors for 'MapBatches")


LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's single-machine mode, loopback addresses


def start_ray(address: str | None) -> bool:
    """Join ``address``, or start a private local Ray on 127.0.0.1 (returns True if started here)."""
    if not address:
        # Ray turns a 127.0.0.1 node address into the machine's outward address unless its
        # single-machine mode is on (read when ray is first imported): a private Ray should
        # advertise loopback only
        os.environ.setdefault(LOOPBACK_ENV, "0")
    import ray

    if ray.is_initialized():
        return False
    quiet_ray_logs()
    common = dict(logging_level="WARNING", log_to_driver=False, configure_logging=True)
    if address:
        ray.init(address=address, **common)
        return False
    with _HeldSigint() as sigint:
        ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", **common)
    if sigint.received:
        stop_local_ray()
        raise KeyboardInterrupt
    return True


class _HeldSigint:
    """Holds Ctrl-C (SIGINT) until the block ends, where ``received`` says whether it came.

    Interrupting ``ray.init`` half way leaves Ray's dashboard and runtime-env agents running,
    orphaned, for a minute or more; held until Ray is up, the interrupt stops it completely.
    """

    def __enter__(self) -> _HeldSigint:
        self.received = False
        self.installed = threading.current_thread() is threading.main_thread()  # handlers live there only
        if self.installed:
            self.previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum: int, frame: object) -> None:
        self.received = True

    def __exit__(self, *exc: object) -> None:
        if self.installed:  # ``previous`` may be None (a handler not set from Python): SIG_DFL then
            signal.signal(signal.SIGINT, signal.SIG_DFL if self.previous is None else self.previous)


TIMELINE_ENV = "AVFUSE_RAY_TIMELINE"


def write_timeline_if_asked() -> None:
    """Save Ray's task timeline (Chrome trace JSON) to ``$AVFUSE_RAY_TIMELINE`` when that is set:
    which actor started when and how long its constructor and calls took (benchmarks/pipeline.py)."""
    path = os.environ.get(TIMELINE_ENV)
    if not path:
        return
    import ray

    if ray.is_initialized():
        logging.getLogger("ray._private.state").setLevel(logging.ERROR)  # "will read from the dashboard"
        ray.timeline(filename=path)


def _local_raylet_pids() -> set[int]:
    """PIDs of the raylet(s) of the Ray this process started (private Ray API; empty if it moves)."""
    try:
        import ray

        node = ray._private.worker._global_node
        return {info.process.pid for info in node.all_processes.get("raylet", [])}
    except Exception:  # noqa: BLE001
        return set()


def _workers_of(raylet_pids: set[int]) -> list[int]:
    """Worker processes whose raylet is one of ``raylet_pids`` (Ray sets RAY_RAYLET_PID in them)."""
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    wanted = {f"RAY_RAYLET_PID={pid}".encode() for pid in raylet_pids}
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted.intersection(env):
            found.append(int(entry.name))
    return found


def stop_local_ray(grace_s: float = 10.0) -> None:
    """Shut down the Ray this run started, and make sure none of its workers outlive it.

    Workers of a finished Ray Data job can take minutes to notice that their raylet is gone
    (seen with the model actor on a busy 2-core machine); after ``grace_s`` they are killed.
    """
    import ray

    raylets = _local_raylet_pids()
    ray.shutdown()
    if not raylets:
        return
    deadline = time.monotonic() + grace_s
    while _workers_of(raylets) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in _workers_of(raylets):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
