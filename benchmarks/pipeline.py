"""Whole-pipeline throughput: ``avfuse run`` against its own stages and a plain loop, in one run.

    python benchmarks/pipeline.py [--clips 40] [--seconds 30] [--device cpu|cuda] [--visual resnet18]

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
import json
import shutil
import subprocess
import sys
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=".cache/bench_pipeline")
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--visual", default="small_cnn")
    ap.add_argument("--decode-workers", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--skip", default="", help="comma-separated stages to skip: a,b,c,d")
    args = ap.parse_args()
    import torch

    from pipeline.config import DecodeSettings  # noqa: F401
    from pipeline.decode import StreamingDecoder
    from pipeline.detect import analyse, batched
    from pipeline.inference import Predictor, stack_windows
    from pipeline.model import load_checkpoint
    from pipeline.windows import iter_windows
    from sample_media.generate import generate

    work = Path(args.workdir)
    clips_dir = work / f"clips_{args.clips}x{args.seconds}s"
    if not (clips_dir / "annotations_ave.txt").exists():
        generate(clips_dir, args.clips, seed=7, duration=args.seconds, workers=cpu_count())
    paths = sorted(str(p) for p in clips_dir.glob("*.mp4"))
    model_path = make_model(work / f"untrained_{args.visual}.pt", args.visual, args.device)
    model = load_checkpoint(model_path)
    settings = model.decode_settings
    cores = cpu_count()
    results: dict[str, float] = {}
    skip = set(args.skip.split(","))

    if "c" not in skip:  # decode alone, one process per core, one decoder thread each
        one = replace(settings, threads=1)
        t = time.perf_counter()
        with ProcessPoolExecutor(max_workers=cores) as pool:
            decoded = sum(pool.map(_decode_one, [(p, one) for p in paths]))
        results["c"] = decoded / (time.perf_counter() - t)

    if "d" not in skip:  # model alone on windows decoded beforehand
        torch.set_num_threads(cores)
        predictor = Predictor(model, device=args.device)
        batches = []
        for p in paths[: max(4, len(paths) // 4)]:
            with StreamingDecoder(p, settings) as dec:
                for chunk in batched(iter_windows(dec.segments(), model.window), args.batch_size):
                    batches.append(stack_windows(chunk, model.window.segments, settings))
        predictor(batches[0])  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        seconds = 0.0
        for b in batches:
            predictor(b)
            seconds += float(sum(b.ends[i, b.lengths[i] - 1] - b.starts[i, 0] for i in range(len(b))))
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        results["d"] = seconds / (time.perf_counter() - t)

    if "b" not in skip:  # a plain loop in one process
        torch.set_num_threads(cores)
        predictor = Predictor(model, device=args.device)
        t = time.perf_counter()
        done = sum(float(analyse(p, model, predictor, batch_windows=args.batch_size).report.decoded_s) for p in paths)
        results["b"] = done / (time.perf_counter() - t)

    if "a" not in skip:  # avfuse run, default settings, in a fresh process (Ray start-up included)
        out = work / "run_out"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, "-m", "jobs.cli", "run", str(clips_dir), "--out", str(out), "--model",
               str(model_path), "--device", args.device, "--batch-size", str(args.batch_size)]
        if args.decode_workers:
            cmd += ["--decode-workers", str(args.decode_workers)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            raise SystemExit("avfuse run failed")
        job = json.loads((out / "_job.json").read_text())
        run = job["runs"][-1]
        results["a"] = run["video_seconds"] / wall
        startup = wall - run["wall_s"] + run["first_video_s"]  # process start + Ray + first video + shutdown
        per_video = run["video_seconds"] / max(1, run["ok"])
        results["a'"] = (run["video_seconds"] - per_video) / max(1e-9, wall - startup)
        print(f"avfuse run: {wall:.1f} s wall: {run['ray_start_s']:.1f} s starting Ray, first video done "
              f"{run['first_video_s']:.1f} s into the job, {wall - run['wall_s']:.1f} s of interpreter start, "
              f"imports and Ray shutdown outside the job's own clock ({run['wall_s']:.1f} s)")

    c, d = results.get("c"), results.get("d")
    gpu = args.device.startswith("cuda")
    bound = None if c is None or d is None else (min(c, d) if gpu else 1 / (1 / c + 1 / d))
    names = {"a": "avfuse run (Ray, defaults)", "a'": "avfuse run after its first video",
             "b": "sequential loop, one process",
             "c": f"decode alone ({cores} processes)", "d": f"model alone ({args.device})"}
    rows = [[f"({k}) {names[k]}", f"{v:.2f}", "-" if bound is None else f"{v / bound:.2f}"]
            for k, v in sorted(results.items())]
    if bound is not None:
        rows.append(["bound " + ("min(c, d)" if gpu else "1 / (1/c + 1/d)"), f"{bound:.2f}", "1.00"])
    print(f"\n{args.clips} clips x {args.seconds} s, visual encoder {args.visual} "
          f"({settings.frame_size}px, {float(settings.fps):g} fps), {cores} CPU cores, device {args.device}\n")
    print_table(["pipeline", "video-s per wall-s", "vs bound"], rows)
    if "a" in results and "b" in results:
        print(f"\n(a) / (b) = {results['a'] / results['b']:.2f}")


if __name__ == "__main__":
    main()
