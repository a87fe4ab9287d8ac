"""How a job uses the cluster: decode workers, model actors and batch size from its CPUs and GPUs."""

from __future__ import annotations

import pytest

from jobs.run import plan_resources
from jobs.spec import JobSpec
from jobs.submit import run_command
from pipeline.errors import JobError


def spec(**kw: object) -> JobSpec:
    return JobSpec(inputs=["videos"], out="out", **kw)


def test_cpu_only_shares_the_cores_and_batches_16_windows() -> None:
    plan = plan_resources(spec(), {"CPU": 2.0})
    assert (plan.device, plan.decode_workers, plan.actors, plan.actor_gpus) == ("cpu", 2, 1, 0.0)
    assert plan.torch_threads == 2 and plan.batch_size == 16


def test_a_gpu_gets_one_actor_the_other_cores_decode_and_64_windows() -> None:
    plan = plan_resources(spec(), {"CPU": 16.0, "GPU": 1.0})
    assert (plan.device, plan.actors, plan.actor_gpus, plan.actor_cpus) == ("cuda", 1, 1.0, 1.0)
    assert plan.decode_workers == 15 and plan.decode_cpus == 1.0 and plan.batch_size == 64
    two = plan_resources(spec(), {"CPU": 32.0, "GPU": 2.0})
    assert (two.actors, two.decode_workers) == (2, 30)


def test_explicit_settings_win() -> None:
    plan = plan_resources(spec(batch_size=8, decode_workers=4, device="cpu"), {"CPU": 16.0, "GPU": 1.0})
    assert (plan.device, plan.batch_size, plan.decode_workers) == ("cpu", 8, 4)
    assert plan_resources(spec(batch_size=256), {"CPU": 8.0, "GPU": 1.0}).batch_size == 256


def test_cuda_without_a_gpu_is_refused() -> None:
    with pytest.raises(JobError, match="no GPU"):
        plan_resources(spec(device="cuda"), {"CPU": 4.0})


def test_negative_batch_size_is_refused_and_zero_means_the_device_default() -> None:
    assert any("--batch-size" in p for p in spec(batch_size=-1).problems())
    assert not spec(batch_size=0).problems()
    assert "--batch-size" not in run_command(spec())  # the cluster picks by its own device
    assert "--batch-size 32" in run_command(spec(batch_size=32))
