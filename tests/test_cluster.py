"""Submit a run to a real Ray cluster's job server (a head started and stopped by this test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from jobhelpers import ROOT, cli, free_ports, kill_session, media_folder, tiny_model

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture()
def ray_head():
    ray = str(Path(sys.executable).parent / "ray")
    gcs, dash, client, agent, metrics, node, obj, env_agent, grpc_agent = free_ports(9)
    temp = tempfile.mkdtemp(prefix="avr", dir="/tmp")  # Ray's socket paths must stay short
    cmd = [ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
           "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
           f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
           f"--dashboard-agent-grpc-port={grpc_agent}", f"--metrics-export-port={metrics}",
           f"--node-manager-port={node}", f"--object-manager-port={obj}",
           f"--runtime-env-agent-port={env_agent}", "--min-worker-port=0", "--max-worker-port=0",
           f"--temp-dir={temp}", "--num-cpus=2", "--disable-usage-stats"]
    # as on a real cluster node, avfuse is installed in the environment the head runs in
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps the head on 127.0.0.1: otherwise Ray replaces a
    # loopback --node-ip-address with the machine's outward address
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    head = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            assert head.poll() is None, head.stdout.read()
            try:
                urllib.request.urlopen(f"{address}/api/version", timeout=2)
                break
            except Exception:  # noqa: BLE001 - not up yet (or 401: up, and authenticated)
                if _answers(address):
                    break
                time.sleep(1)
        else:
            pytest.fail("the Ray head did not start in 120 s")
        _assert_loopback_only(head.pid)
        yield address
    finally:
        head.terminate()  # `ray start --block` stops this head's processes on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        kill_session(head.pid)
        shutil.rmtree(temp, ignore_errors=True)


def _assert_loopback_only(sid: int) -> None:
    """The head's raylet and GCS advertise 127.0.0.1, not the machine's outward address."""
    from jobhelpers import session_pids

    args = []
    for pid in session_pids(sid):
        try:
            args.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            pass
    addresses = {a.split("=", 1)[1] for line in args for a in line.split()
                 if a.startswith(("--node-ip-address=", "--node_ip_address="))}
    assert addresses == {"127.0.0.1"}, addresses


def _answers(address: str) -> bool:
    import urllib.error

    try:
        urllib.request.urlopen(f"{address}/api/version", timeout=2)
        return True
    except urllib.error.HTTPError:
        return True  # 401/403: the server is up and wants a token
    except Exception:  # noqa: BLE001
        return False


def test_submit_status_and_output(ray_head: str, tmp_path: Path) -> None:
    expected = {k: v for k, v in media_folder(tmp_path / "in", n_good=3).items() if v == "ok"}
    shutil.rmtree(tmp_path / "in" / "bad")  # only good inputs: the cluster job should succeed
    model = tiny_model(tmp_path / "m.pt")
    out = tmp_path / "out"
    proc = cli("submit", tmp_path / "in", "--out", out, "--model", model, "--address", ray_head)
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip().splitlines()[-1]
    assert job_id
    deadline = time.time() + 420
    state = None
    while time.time() < deadline:
        st = cli("status", "--job", job_id, "--address", ray_head, "--json")
        assert st.returncode in (0, 1), st.stderr
        data = json.loads(st.stdout)
        state = data["cluster"]["status"]
        if state in ("SUCCEEDED", "FAILED", "STOPPED"):
            break
        time.sleep(2)
    assert state == "SUCCEEDED", json.dumps(data, indent=1)
    assert data["output"]["committed"] == len(expected) and data["output"]["failed"] == 0
    st = cli("status", out)
    assert st.returncode == 0 and f"{len(expected)}/{len(expected)} videos committed" in st.stdout
