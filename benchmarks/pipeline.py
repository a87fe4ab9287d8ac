"""Whole-pipeline throughput: ``avfuse run`` against its own stages and a plain loop, in one run.

    python benchmarks/pipeline.py [--clips 40] [--seconds 30] [--device cpu|cuda] [--visual resnet18]
        [--clip-size 640x360 --clip-fps 25] [--repeat K] [--decode-workers 0,8,4] [--batch-size 16,64]
        [--trials N]

Measures video-seconds per wall-second for
  (a) ``avfuse run`` with the default settings (local Ray, decode actors + model actor),
  (b) a plain sequential loop over the same decode and model functions in one process,
  (c) decode alone, all cores (one decode process per core),
  (d) the model alone on pre-decoded windows, all cores (or the GPU),
on the same generated clips. CPU only: the stages share the cores, so the bound for (a)
is 1 / (1/c + 1/d); with a GPU they overlap and the bound is min(c, d).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import cpu_count, print_table  # noqa: E402


def _decode_one(args: tuple[str, object]) -> float:
    from pipeline.decode import StreamingDecoder

    path, settings = args
    with StreamingDecoder(path, settings) as dec:
        for _ in dec.segments():
            pass
        return float(dec.report.decoded_s)


def make_model(path: Path, visual: str, device: str) -> Path:
    """The bundled model, or (for another visual encoder) an untrained one of that shape."""
    from pipeline.detect import default_model_path
    from pipeline.model import create_model, save_checkpoint
    from sample_media.synth import LABELS

    if visual == "small_cnn" and default_model_path().is_file():
        return default_model_path()
    if not path.exists():
        save_checkpoint(create_model(LABELS, visual=visual), path)
    return path


class GpuSampler:
    """Mean GPU utilisation (NVML, sampled every 0.1 s) while a ``with`` block runs; None without NVML."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        import torch

        while not self._stop.wait(0.1):
            try:
                self.samples.append(int(torch.cuda.utilization()))
            except Exception:  # noqa: BLE001 - no NVML: report no number rather than fail the run
                return

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def timeline_summary(path: Path, launched: float) -> str:
    """When the job's actors started and first worked, in seconds after ``avfuse run`` was launched,
    and how busy they were between their first and last calls."""
    events = [e for e in json.loads(path.read_text()) if e.get("ph") == "X"]

    def per_actor(suffix: str) -> dict[str, list[tuple[float, float]]]:
        out: dict[str, list[tuple[float, float]]] = {}
        for e in events:
            if str(e.get("cat", "")).endswith(suffix):
                out.setdefault(e["tid"], []).append((e["ts"] / 1e6 - launched, (e["ts"] + e.get("dur", 0)) / 1e6 - launched))
        return out

    def flat(spans: dict[str, list[tuple[float, float]]]) -> list[tuple[float, float]]:
        return sorted(x for v in spans.values() for x in v)

    def busy(spans: dict[str, list[tuple[float, float]]]) -> float:
        active = sum(max(b for _, b in v) - min(a for a, _ in v) for v in spans.values())
        return sum(_covered(v) for v in spans.values()) / max(1e-9, active)

    inits = flat(per_actor(".__init__"))
    decode_init, model_init = flat(per_actor("(DecodeStage)).__init__")), flat(per_actor("(ModelStage)).__init__"))
    decode_calls, model_calls = per_actor("(DecodeStage)).submit"), per_actor("(ModelStage)).submit")
    if not (inits and decode_init and model_init and decode_calls and model_calls):
        return "timeline: incomplete"
    return (f"timeline (s after launch): first Ray Data actor {inits[0][0]:.1f}; decode actors' constructors "
            f"{decode_init[0][0]:.1f}-{max(e for _, e in decode_init):.1f} ({len(decode_init)}); model actor's "
            f"constructor {model_init[0][0]:.1f}-{model_init[0][1]:.1f}; first decode call "
            f"{flat(decode_calls)[0][0]:.1f}; first model call {flat(model_calls)[0][0]:.1f}; between their first "
            f"and last calls the decode actors were busy {busy(decode_calls):.0%} of the time, the model "
            f"actor(s) {busy(model_calls):.0%}")


def _covered(spans: list[tuple[float, float]]) -> float:
    """Length of the union of ``spans`` (so that calls overlapping in the trace count once)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def run_job_once(clips_dir: Path, out: Path, model_path: Path, device: str, batch_size: int,
                 decode_workers: int) -> tuple[float, float, dict, float | None]:
    """``avfuse run`` in a fresh process (Ray start-up included) -> (a), (a'), the run record, GPU %."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "jobs.cli", "run", str(clips_dir), "--out", str(out), "--model",
           str(model_path), "--device", device, "--batch-size", str(batch_size)]
    if decode_workers:
        cmd += ["--decode-workers", str(decode_workers)]
    gpu = GpuSampler() if device.startswith("cuda") else None
    timeline = out.with_name(out.name + "_timeline.json")
    env = {**os.environ, "AVFUSE_RAY_TIMELINE": str(timeline.resolve())}
    launched, t = time.time(), time.perf_counter()
    with gpu or contextlib.nullcontext():
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit("avfuse run failed")
    run = json.loads((out / "_job.json").read_text())["runs"][-1]
    startup = wall - run["wall_s"] + run["first_video_s"]  # process start + Ray + first video + shutdown
    per_video = run["video_seconds"] / max(1, run["ok"])
    steady = (run["video_seconds"] - per_video) / max(1e-9, wall - startup)
    plan = run.get("plan") or {}
    print(f"avfuse run ({plan.get('decode_workers', '?')} decode workers, {plan.get('actors', '?')} model "
          f"actor(s) on {plan.get('device', '?')}): {wall:.1f} s wall: {run['ray_start_s']:.1f} s starting Ray, "
          f"first video done {run['first_video_s']:.1f} s into the job, {wall - run['wall_s']:.1f} s of "
          f"interpreter start, imports and Ray shutdown outside the job's own clock ({run['wall_s']:.1f} s)"
          + ("" if gpu is None or gpu.mean is None else f"; GPU busy {gpu.mean:.0f}% on average"))
    if timeline.exists():
        print("  " + timeline_summary(timeline, launched))
    return run["video_seconds"] / wall, steady, plan, None if gpu is None else gpu.mean


def repeat_clips(clips_dir: Path, times: int) -> Path:
    """A folder holding ``times`` hard-linked copies of the clips (distinct paths, so distinct videos)."""
    out = clips_dir.with_name(f"{clips_dir.name}_x{times}")
    for k in range(times):
        folder = out / f"copy_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for clip in clips_dir.glob("*.mp4"):
            if not (folder / clip.name).exists():
                (folder / clip.name).hardlink_to(clip)
    return out


class Results(dict):
    """``{stage: [video-s per wall-s, one per trial]}``; each value is printed when it is stored (a run
    cut short keeps them), and the table shows each stage's median."""

    def __setitem__(self, key: str, value: float) -> None:
        trials = self.get(key, [])
        print(f"  {key}: {value:.2f} video-s per wall-s" + (f" (trial {len(trials) + 1})" if trials else ""),
              flush=True)
        super().__setitem__(key, [*trials, value])

    def median(self, key: str) -> float | None:
        return statistics.median(self[key]) if key in self else None

    def spread(self, key: str) -> str:
        v = self[key]
        return "" if len(v) < 2 else f"{min(v):.0f}-{max(v):.0f} over {len(v)} trials"


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=".cache/bench_pipeline")
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--clip-size", default="160x120", help="WIDTHxHEIGHT of the generated clips")
    ap.add_argument("--clip-fps", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=1, help="run over each generated clip this many times")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--visual", default="small_cnn")
    ap.add_argument("--decode-workers", default="0",
                    help="for (a); 0: the job's default; a comma list runs (a) once per value")
    ap.add_argument("--batch-size", default="0",
                    help="windows per model call (0: the device's default); a comma list measures (d) at each, "
                         "the first is used elsewhere")
    ap.add_argument("--skip", default="", help="comma-separated stages to skip: a,b,c,d")
    ap.add_argument("--trials", type=int, default=1,
                    help="measure every stage this many times, interleaved (c, d, b, a, c, d, ...), and report "
                         "medians: on a shared machine one measurement of a stage can be off by a third")
    args = ap.parse_args()
    import torch

    from pipeline.config import default_batch_windows
    from pipeline.decode import StreamingDecoder
    from pipeline.detect import analyse, batched
    from pipeline.inference import Predictor, stack_windows
    from pipeline.model import load_checkpoint
    from pipeline.windows import iter_windows
    from sample_media.generate import generate

    width, height = (int(x) for x in args.clip_size.lower().split("x"))
    batch_sizes = [b or default_batch_windows(args.device) for b in ints(args.batch_size)]
    batch_size = batch_sizes[0]
    work = Path(args.workdir)
    size_tag = "" if (width, height, args.clip_fps) == (160, 120, 15) else f"_{width}x{height}_{args.clip_fps}fps"
    clips_dir = work / f"clips_{args.clips}x{args.seconds}s{size_tag}"
    if not (clips_dir / "annotations_ave.txt").exists():
        t = time.perf_counter()
        generate(clips_dir, args.clips, seed=7, duration=args.seconds, width=width, height=height,
                 fps=args.clip_fps, workers=cpu_count())
        print(f"generated {args.clips} clips in {time.perf_counter() - t:.1f} s")
    if args.repeat > 1:  # more video without more generating: hard links in copy_K/ folders
        clips_dir = repeat_clips(clips_dir, args.repeat)
    paths = sorted(str(p) for p in clips_dir.rglob("*.mp4"))
    model_path = make_model(work / f"untrained_{args.visual}.pt", args.visual, args.device)
    model = load_checkpoint(model_path)
    settings = model.decode_settings
    cores = cpu_count()
    gpu = args.device.startswith("cuda")
    results = Results()  # in the order measured, each printed when measured
    labels: dict[str, str] = {
        "a": "(a) avfuse run (Ray)", "a'": "(a') avfuse run after its first video",
        "b": "(b) sequential loop, one process", "c": f"(c) decode alone ({cores} processes)"}
    notes: dict[str, str] = {}
    skip = set(args.skip.split(","))

    if "d" not in skip or "b" not in skip:
        torch.set_num_threads(cores)
        predictor = Predictor(model, device=args.device)
    if "d" not in skip:  # windows decoded beforehand, batched once per batch size
        decoded_windows = []
        for p in paths[: max(4, min(20, len(paths) // 4))]:
            with StreamingDecoder(p, settings) as dec:
                decoded_windows.extend(iter_windows(dec.segments(), model.window))
        batches_by_size = {bs: [stack_windows(chunk, model.window.segments, settings)
                                for chunk in batched(iter(decoded_windows), bs)] for bs in batch_sizes}

    for _ in range(max(1, args.trials)):
        if "c" not in skip:  # decode alone, one process per core, one decoder thread each
            one = replace(settings, threads=1)
            t = time.perf_counter()
            with ProcessPoolExecutor(max_workers=cores) as pool:
                decoded = sum(pool.map(_decode_one, [(p, one) for p in paths]))
            results["c"] = decoded / (time.perf_counter() - t)

        if "d" not in skip:  # model alone on the windows decoded beforehand
            for bs, batches in batches_by_size.items():
                predictor(batches[0])  # warm-up
                if gpu:
                    torch.cuda.synchronize()
                t = time.perf_counter()
                seconds = 0.0
                while time.perf_counter() - t < 4.0:  # whole passes over the windows, at least 4 s
                    for b in batches:
                        predictor(b)
                        seconds += float(sum(b.ends[i, b.lengths[i] - 1] - b.starts[i, 0] for i in range(len(b))))
                    if gpu:
                        torch.cuda.synchronize()
                key = "d" if bs == batch_size else f"d{bs}"
                results[key] = seconds / (time.perf_counter() - t)
                labels[key] = f"(d) model alone ({args.device}, batch {bs})"

        if "b" not in skip:  # a plain loop in one process
            t = time.perf_counter()
            done = sum(float(analyse(p, model, predictor, batch_windows=batch_size).report.decoded_s) for p in paths)
            results["b"] = done / (time.perf_counter() - t)

        if "a" not in skip:  # avfuse run, in a fresh process each time
            for i, workers in enumerate(ints(args.decode_workers)):
                a, steady, plan, busy = run_job_once(clips_dir, work / "run_out", model_path, args.device,
                                                     batch_size, workers)
                key = "a" if i == 0 else f"a{i}"
                results[key], results[key + "'"] = a, steady
                labels.setdefault(key, labels["a"])
                labels.setdefault(key + "'", labels["a'"])
                notes[key] = notes[key + "'"] = f"{plan.get('decode_workers')} decode workers" + (
                    "" if busy is None else f", GPU busy {busy:.0f}%")

    c, d = results.median("c"), results.median("d")
    bound = None if c is None or d is None else (min(c, d) if gpu else 1 / (1 / c + 1 / d))
    rows = []
    for k in results:
        v = results.median(k)
        settings_note = ", ".join(x for x in (notes.get(k, ""), results.spread(k)) if x)
        rows.append([labels[k], settings_note, f"{v:.2f}", "-" if bound is None else f"{v / bound:.2f}"])
    if bound is not None:
        rows.append(["bound " + ("min(c, d)" if gpu else "1 / (1/c + 1/d)"), "", f"{bound:.2f}", "1.00"])
    videos = f"{args.clips} clips" + (f" x {args.repeat} copies = {args.clips * args.repeat} videos" if args.repeat > 1 else "")
    print(f"\n{videos} x {args.seconds} s ({width}x{height}, {args.clip_fps} fps), visual encoder "
          f"{args.visual} ({settings.frame_size}px, {float(settings.fps):g} fps), {cores} CPU cores, "
          f"device {args.device}" + (f" ({torch.cuda.get_device_name()})" if gpu else "") + "\n")
    print_table(["pipeline", "settings", "video-s per wall-s", "vs bound"], rows)
    if "a" in results and "b" in results:
        print(f"\n(a) / (b) = {results.median('a') / results.median('b'):.2f}"
              + (" (medians)" if args.trials > 1 else ""))


if __name__ == "__main__":
    main()
