"""Fusion ablation: every fusion variant plus audio-only and visual-only, same data, one table.

    python benchmarks/fusion_ablation.py [--train 300] [--test 100] [--epochs 30] [--train-seeds 0,1,2]

Generates a fresh synthetic train/test split (sample_media's generator, disjoint seeds),
trains each configuration with ``avfuse train``'s code on the training clips (decoded
once, then cached for the others), and evaluates it on the test clips with ``avfuse
eval``'s code. Training time includes decoding for the first configuration only (the
cache serves the rest); the decode time is printed separately. With several
``--train-seeds`` every configuration is trained once per seed on the same split and the
table adds their means (single runs at this data size differ by about 0.01-0.02).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import cpu_count, print_table  # noqa: E402

CONFIGS = [
    ("hybrid", "audio+visual"), ("early", "audio+visual"), ("late", "audio+visual"),
    ("cross_attention", "audio+visual"), ("graph", "audio+visual"), ("concat", "audio+visual"),
    ("hybrid", "audio"), ("hybrid", "visual"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=".cache/ablation")
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated train/test split")
    ap.add_argument("--train-seeds", default="", help="comma-separated training seeds (default: --seed)")
    ap.add_argument("--only", default="", help="comma-separated fusion[:modalities] to run")
    args = ap.parse_args()

    from pipeline.evaluate import evaluate
    from pipeline.model import load_checkpoint
    from pipeline.train import TrainSettings, train
    from sample_media.generate import generate

    work = Path(args.workdir)
    train_dir, test_dir = work / f"train_{args.train}_s{args.seed}", work / f"test_{args.test}_s{args.seed}"
    t0 = time.perf_counter()
    for folder, n, seed in ((train_dir, args.train, 10_000 + args.seed), (test_dir, args.test, 20_000 + args.seed)):
        if not (folder / "annotations_ave.txt").exists():
            generate(folder, n, seed, workers=cpu_count())
    print(f"data: {args.train} train / {args.test} test clips in {time.perf_counter() - t0:.0f} s")
    wanted = [c for c in CONFIGS if not args.only or f"{c[0]}:{c[1]}" in args.only.split(",")
              or c[0] in args.only.split(",")]
    seeds = [int(x) for x in args.train_seeds.split(",") if x.strip()] or [args.seed]
    rows, means = [], []
    for fusion, modalities in wanted:
        runs = []
        for seed in seeds:
            out = work / f"{fusion}_{modalities.replace('+', '_')}_s{seed}.pt"
            t = time.perf_counter()
            rep = train(TrainSettings(videos=train_dir, annotations=train_dir / "annotations_ave.txt", out=out,
                                      fusion=fusion, modalities=modalities, epochs=args.epochs, seed=seed,
                                      cache_dir=work / "cache"))
            seconds = time.perf_counter() - t
            ev = evaluate(load_checkpoint(out), test_dir, test_dir / "annotations_ave.txt", device="cpu")
            runs.append((ev.segment_accuracy, ev.event_f1, ev.segment_f1, ev.clip_accuracy, seconds))
            rows.append([fusion, modalities, str(seed), f"{ev.segment_accuracy:.4f}", f"{ev.event_f1:.4f}",
                         f"{ev.segment_f1:.4f}", f"{ev.clip_accuracy:.4f}", f"{seconds:.0f}",
                         f"{rep.decode_seconds:.1f}"])
            print(" ".join(rows[-1]), flush=True)
        if len(seeds) > 1:
            m = [sum(r[i] for r in runs) / len(runs) for i in range(5)]
            means.append([fusion, modalities, f"mean of {len(runs)}", *(f"{x:.4f}" for x in m[:4]), f"{m[4]:.0f}", ""])
    print(f"\nFusion ablation: {args.train} training / {args.test} test synthetic clips, {args.epochs} epochs, "
          f"split seed {args.seed}, CPU ({cpu_count()} cores)\n")
    print_table(["fusion", "modalities", "train seed", "segment acc", "event F1", "segment F1", "clip acc",
                 "train s (incl. decode)", "decode s"], rows + means)


if __name__ == "__main__":
    main()
