"""CrossEncoder training steps: embedforge vs sentence-transformers on the same MiniLM-L6 cross-encoder.

Run: python benches/bench_train_cross_encoder.py [--steps 20] [--batch-size 32] [--rounds 2]
The cross-encoder is all-MiniLM-L6-v2's encoder with a fresh one-label head, created once by
sentence-transformers with a fixed seed and saved, so both libraries start from the same folder.
Workload: BinaryCrossEntropyLoss on STSb train pairs (score / 5 as the soft label), batch 32,
dropout on, the trainer's defaults otherwise, ``max_steps`` steps. The per-step losses of both
libraries must agree (1e-4 relative) before the times count; rounds alternate between the libraries
and each library's median step time (from a callback's step begin/end, first step left out) over
all rounds is reported, next to the wall time of ``trainer.train()``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import torch

from bench_encode import minilm_folder
from bench_train_minilm import read_stsb


def train_once(
    library: str, folder: str, dataset: Any, steps: int, batch_size: int, output_dir: str
) -> tuple[float, list[float]]:
    """Train ``steps`` steps with ``library``; (wall seconds of train(), logged losses)."""
    from transformers import TrainerCallback

    if library == "embedforge":
        import embedforge as lib
        from embedforge.cross_encoder.losses import BinaryCrossEntropyLoss
    else:
        import sentence_transformers as lib
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    losses: list[float] = []
    step_seconds: list[float] = []

    class Recorder(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            step_seconds.append(time.perf_counter() - self.started)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    model = lib.CrossEncoder(folder, device="cpu")
    args = lib.CrossEncoderTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        max_steps=steps,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=42,
    )
    trainer = lib.CrossEncoderTrainer(
        model=model, args=args, train_dataset=dataset, loss=BinaryCrossEntropyLoss(model), callbacks=[Recorder()]
    )
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start, step_seconds[1:], losses


def main() -> None:
    """Build the folder, train both libraries in alternating rounds, check the losses, report the step time."""
    from datasets import Dataset
    from sentence_transformers import CrossEncoder as StCrossEncoder

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    first, second, scores = read_stsb("sts-train.csv")
    dataset = Dataset.from_dict({"sentence1": first, "sentence2": second, "label": [score / 5 for score in scores]})
    print(f"load average: {os.getloadavg()}, torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        StCrossEncoder(str(minilm_folder()), num_labels=1, device="cpu").save(folder)
        times: dict[str, list[float]] = {"embedforge": [], "sentence_transformers": []}
        walls: dict[str, list[float]] = {"embedforge": [], "sentence_transformers": []}
        losses: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for library in times:
                with tempfile.TemporaryDirectory() as output_dir:
                    wall, steps, losses[library] = train_once(
                        library, folder, dataset, args.steps, args.batch_size, output_dir
                    )
                times[library] += steps
                walls[library].append(wall)
                print(f"{library}: train() {wall:.2f} s, median step {statistics.median(steps):.3f} s", flush=True)
    np.testing.assert_allclose(losses["embedforge"], losses["sentence_transformers"], rtol=1e-4)
    print(f"per-step losses equal (1e-4 relative) over {args.steps} steps")
    ours, theirs = statistics.median(times["embedforge"]), statistics.median(times["sentence_transformers"])
    print("| workload | embedforge | sentence-transformers | speed-up | target |")
    print("|---|---|---|---|---|")
    print(
        f"| CrossEncoder training step, MiniLM-L6, BinaryCrossEntropyLoss, batch {args.batch_size} "
        f"| {ours * 1000:.0f} ms/step | {theirs * 1000:.0f} ms/step | **{theirs / ours:.2f}x** | not slower |"
    )
    print(
        f"train() wall time, best round: {min(walls['embedforge']):.1f} s vs {min(walls['sentence_transformers']):.1f} s"
    )


if __name__ == "__main__":
    main()
