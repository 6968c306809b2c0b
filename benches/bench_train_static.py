"""StaticEmbedding training (ST's static-embedding recipe) on CPU: embedforge vs sentence-transformers.

Run: python benches/bench_train_static.py [--steps 20] [--library both|st|ours] [--repeats 3] [--profile] [--busy 2]
The workload is sentence-transformers' "train a static embedding model" recipe: a 30522 x 1024
StaticEmbedding on the bert-base-uncased tokenizer, MatryoshkaLoss(MultipleNegativesRankingLoss) at
dims (1024, 512, 256, 128, 64, 32), batch 2048, NO_DUPLICATES batches, lr 0.2, 10 % warmup, the
Trainer's default optimizer (fused AdamW) and gradient clipping. The pairs are real text: Quora
question pairs, STSb, SICK and SNLI sentence pairs, about 31k pairs. Both libraries start from the
same initial weights and see the same batches, so their per-step losses are printed side by side.

``--profile`` runs one library under cProfile and prints where the time goes. ``--busy 2`` is the
contended variant: two busy-looping processes share the CPU with each library's run.

With ``--library both`` each library trains ``--repeats`` times (alternating), each run in a fresh
process of its own after ``--pause`` idle seconds, and the best run of each counts (the median
ratio is printed too). Run in one process, whichever library went second was measurably slowed (or
sped up) by the memory and thread state the first left behind; a run that starts right after
another heavy one is slower than one that starts on an idle machine; and a 16-step run of ours
lasts ~3 s, so one slow spell of a shared VM moves a single run's figure by 20-30 %.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

from common import busy_processes, require_shared

DIMS = [1024, 512, 256, 128, 64, 32]
WIDTH = 1024


def load_pairs() -> tuple[list[str], list[str]]:
    """(anchor, positive) texts from the shared data: Quora, STSb, SICK and SNLI pairs."""
    anchors: list[str] = []
    positives: list[str] = []
    with open(require_shared("quora-duplicates", "quora-dev.csv"), encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        for row in reader:
            if len(row) >= 4 and row[2] and row[3]:
                anchors.append(row[2])
                positives.append(row[3])
    for split in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
        with open(require_shared("stsb", split), encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(row) >= 7:
                    anchors.append(row[5])
                    positives.append(row[6])
    with open(require_shared("sick2014", "SICK_train.txt"), encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        for row in reader:
            anchors.append(row[1])
            positives.append(row[2])
    with open(require_shared("snli-sample", "snli_1.0_dev.jsonl"), encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record["gold_label"] != "-":
                anchors.append(record["sentence1"])
                positives.append(record["sentence2"])
    return anchors, positives


class StepRecorder:
    """A TrainerCallback that records the wall time at each step end and the logged losses."""

    def __init__(self) -> None:
        self.step_times: list[float] = []
        self.losses: dict[int, float] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step_times.append(time.perf_counter())

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.losses[state.global_step] = float(logs["loss"])

    def __getattr__(self, name: str) -> Any:
        # Every other TrainerCallback event is a no-op.
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def initial_weights(seed: int) -> torch.Tensor:
    """The starting embedding matrix both libraries share (nn.EmbeddingBag's N(0, 1) init)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(30522, WIDTH, generator=generator)


def run(library: str, steps: int, batch_size: int, seed: int, profile: bool) -> StepRecorder:
    """Train ``steps`` steps with ``library`` ("st" or "ours"); returns the per-step times and losses."""
    from datasets import Dataset
    from tokenizers import Tokenizer

    if library == "st":
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
            losses,
        )
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    else:
        from embedforge import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
        from embedforge.sentence_transformer import losses
        from embedforge.sentence_transformer.modules import StaticEmbedding
        from embedforge.sentence_transformer.training_args import BatchSamplers

    tokenizer = Tokenizer.from_file(str(require_shared("tokenizers", "bert-base-uncased.json")))
    static = StaticEmbedding(tokenizer, embedding_weights=initial_weights(seed))
    model = SentenceTransformer(modules=[static], device="cpu")
    anchors, positives = load_pairs()
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives})
    loss = losses.MatryoshkaLoss(model, losses.MultipleNegativesRankingLoss(model), matryoshka_dims=DIMS)
    args = SentenceTransformerTrainingArguments(
        output_dir=f"/tmp/bench_train_static_{library}",
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=2e-1,
        warmup_ratio=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=seed,
        use_cpu=True,
        disable_tqdm=True,
        dataloader_drop_last=True,
    )
    recorder = StepRecorder()
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[recorder])
    start = time.perf_counter()
    recorder.step_times.append(start)
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        trainer.train()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    else:
        trainer.train()
    return recorder


def run_in_child(library: str, options: argparse.Namespace) -> StepRecorder:
    """``run`` for ``library`` in a fresh Python process; its step times and losses."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--library",
        library,
        "--json",
        "--steps",
        str(options.steps),
        "--batch-size",
        str(options.batch_size),
        "--seed",
        str(options.seed),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    record = json.loads(output.strip().splitlines()[-1])
    recorder = StepRecorder()
    recorder.step_times = record["step_times"]
    recorder.losses = {int(step): loss for step, loss in record["losses"].items()}
    return recorder


def samples_per_second(recorder: StepRecorder, batch_size: int) -> float:
    """Throughput over the steps after the first (the first pays one-off warm-up costs)."""
    times = recorder.step_times
    steady = times[2:] if len(times) > 3 else times[1:]
    return batch_size * (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--library", choices=["both", "st", "ours"], default="both")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--pause", type=float, default=10.0, help="idle seconds before each library's run (with --library both)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each library, alternating (with --library both); the best counts",
    )
    parser.add_argument("--json", action="store_true", help="print one library's step times and losses as JSON")
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="busy-looping processes sharing the CPU during each library's run (the contended variant uses 2)",
    )
    options = parser.parse_args()
    if options.json:
        recorder = run(options.library, options.steps, options.batch_size, options.seed, options.profile)
        print(json.dumps({"step_times": recorder.step_times, "losses": recorder.losses}))
        return
    libraries = ["st", "ours"] if options.library == "both" else [options.library]
    if len(libraries) == 1:
        with busy_processes(options.busy):
            recorder = run(libraries[0], options.steps, options.batch_size, options.seed, options.profile)
        report_losses({libraries[0]: recorder}, options.steps)
        rate = samples_per_second(recorder, options.batch_size)
        print(f"{libraries[0]}: {rate:,.0f} samples/s, mean loss {mean_loss(recorder):.6f}")
        return
    runs: dict[str, list[StepRecorder]] = {library: [] for library in libraries}
    # Rounds alternate the libraries, so a slow spell of the machine hits both alike.
    for _ in range(options.repeats):
        for library in libraries:
            # Measured on this VM: a run that starts right after another heavy run is ~15-20 % slower
            # than one that starts after a few idle seconds (our steps went from ~0.2 s to ~0.25 s).
            # So every run starts from the same idle machine, not just the first one.
            time.sleep(options.pause)
            # Each library's run (setup included) shares the CPU with the same number of busy processes.
            with busy_processes(options.busy):
                runs[library].append(run_in_child(library, options))
    print(f"busy processes: {options.busy}; cores: {os.cpu_count()}; load average now: {os.getloadavg()[0]:.2f}")
    report_losses({library: recorders[0] for library, recorders in runs.items()}, options.steps)
    for library, recorders in runs.items():
        if any(r.losses != recorders[0].losses for r in recorders):
            sys.exit(f"{library}: the per-step losses differ between repeated runs")
        rates = sorted(samples_per_second(r, options.batch_size) for r in recorders)
        listed = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"{library}: best {rates[-1]:,.0f} samples/s (runs: {listed}), mean loss {mean_loss(recorders[0]):.6f}")
    best = {lib: max(samples_per_second(r, options.batch_size) for r in recorders) for lib, recorders in runs.items()}
    median = {lib: statistics.median(samples_per_second(r, options.batch_size) for r in rs) for lib, rs in runs.items()}
    print(
        f"speed-up: {best['ours'] / best['st']:.2f}x (best run of each; medians: {median['ours'] / median['st']:.2f}x)"
    )


def mean_loss(recorder: StepRecorder) -> float:
    losses = list(recorder.losses.values())
    return sum(losses) / max(len(losses), 1)


def report_losses(recorders: dict[str, StepRecorder], steps: int) -> None:
    """The per-step losses of each library, side by side."""
    print("| step | " + " | ".join(f"{library} loss" for library in recorders) + " |")
    for step in range(1, steps + 1):
        print(f"| {step} | " + " | ".join(f"{r.losses.get(step, float('nan')):.6f}" for r in recorders.values()))


if __name__ == "__main__":
    main()
