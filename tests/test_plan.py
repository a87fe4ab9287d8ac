"""How a job uses the cluster: decode workers, model actors and batch size from its CPUs and GPUs."""

from __future__ import annotations

import pytest

from jobs.run import GROUP_MAX_BYTES, plan_resources, videos_per_call
from jobs.spec import InputVideo, JobSpec
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


def _videos(n: int, size: int) -> list[InputVideo]:
    return [InputVideo(f"v{i}.mp4", f"/in/v{i}.mp4", size, 0.0) for i in range(n)]


def test_small_files_go_several_to_a_decode_call_while_every_actor_stays_fed() -> None:
    small = 200_000
    assert videos_per_call(_videos(400, small), workers=2) == 4  # capped at four
    assert videos_per_call(_videos(12, small), workers=2) == 3  # 12 videos: two calls in flight on each actor
    assert videos_per_call(_videos(6, small), workers=4) == 1  # fewer videos than queue slots
    assert videos_per_call([], workers=2) == 1
    assert plan_resources(spec(), {"CPU": 2.0}, _videos(400, small)).videos_per_call == 4
    assert plan_resources(spec(), {"CPU": 2.0}).videos_per_call == 1


def test_big_files_go_one_to_a_decode_call() -> None:
    assert videos_per_call(_videos(400, GROUP_MAX_BYTES + 1), workers=2) == 1
    mostly_big = _videos(3, 1000) + _videos(5, 2 * GROUP_MAX_BYTES)  # the median decides
    assert videos_per_call(mostly_big * 50, workers=2) == 1
