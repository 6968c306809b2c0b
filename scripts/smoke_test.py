"""Smoke test of an installed embedforge: import, old import paths, encode, save/load, two training steps.

Runs offline with any Python that has embedforge installed (``python scripts/smoke_test.py``); the
model is a tiny StaticEmbedding over a tokenizer built from the test's own sentences. Training runs
only when the ``train`` extra (datasets, accelerate) is installed, and says so when it is skipped.
Exits non-zero with a message on the first failed check.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedforge import SentenceTransformer

SENTENCES = [
    "the cat sits on the mat",
    "a dog runs in the park",
    "the weather is sunny today",
    "rust makes the hot loops fast",
    "a static model reads whole texts",
    "embeddings map sentences to vectors",
    "the trainer takes two small steps",
    "tokenizers split text into pieces",
]
DIM = 16


def check(condition: bool, message: str) -> None:
    """Fail the smoke test with ``message`` (not an assert: ``python -O`` must not skip the checks)."""
    if not condition:
        raise SystemExit(f"smoke test FAILED: {message}")


def check_old_import_paths() -> None:
    """The pre-6.0 paths users' scripts import still give the new classes (a DeprecationWarning is fine)."""
    from embedforge.sentence_transformer.losses import MultipleNegativesRankingLoss as NewLoss
    from embedforge.sentence_transformer.modules import StaticEmbedding as NewStatic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from embedforge.losses import MultipleNegativesRankingLoss
        from embedforge.models import StaticEmbedding

    check(StaticEmbedding is NewStatic, "embedforge.models.StaticEmbedding is not the 6.x class")
    check(
        MultipleNegativesRankingLoss is NewLoss, "embedforge.losses.MultipleNegativesRankingLoss is not the 6.x class"
    )


def build_model() -> SentenceTransformer:
    """A SentenceTransformer with one randomly initialised StaticEmbedding module."""
    import torch

    from embedforge import SentenceTransformer
    from embedforge.cli.demo_tokenizer import build_wordpiece_tokenizer
    from embedforge.sentence_transformer.modules import StaticEmbedding

    torch.manual_seed(0)
    static = StaticEmbedding(build_wordpiece_tokenizer(SENTENCES), embedding_dim=DIM)
    return SentenceTransformer(modules=[static], device="cpu")


def check_encode_and_reload(model: SentenceTransformer, folder: Path) -> None:
    """Shapes of ``encode`` for a list and a single text, and the same embeddings after save + load."""
    import numpy as np

    from embedforge import SentenceTransformer

    pair = model.encode(SENTENCES[:2])
    check(
        isinstance(pair, np.ndarray) and pair.shape == (2, DIM),
        f"encode of 2 texts gave {getattr(pair, 'shape', pair)}",
    )
    check(bool(np.isfinite(pair).all()), "encode returned non-finite values")
    single = model.encode(SENTENCES[0])
    check(single.shape == (DIM,), f"encode of one text gave shape {single.shape}")
    check(np.allclose(single, pair[0], atol=1e-6), "one text and the same text in a batch embed differently")

    model.save(str(folder))
    reloaded = SentenceTransformer(str(folder), device="cpu")
    check(np.allclose(reloaded.encode(SENTENCES[:2]), pair, atol=1e-6), "the reloaded model embeds differently")


def check_training(model: SentenceTransformer, folder: Path) -> str:
    """Two SentenceTransformerTrainer steps with MultipleNegativesRankingLoss must change the weights."""
    missing = [name for name in ("datasets", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        return f"skipped (not installed: {', '.join(missing)}; install embedforge[train])"
    from datasets import Dataset

    from embedforge import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from embedforge.sentence_transformer.losses import MultipleNegativesRankingLoss

    data = Dataset.from_dict({"anchor": SENTENCES, "positive": SENTENCES[1:] + SENTENCES[:1]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(folder),
        per_device_train_batch_size=4,
        max_steps=2,
        learning_rate=0.05,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    before = model[0].embedding.weight.detach().clone()
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
    )
    result = trainer.train()
    check(result.global_step == 2, f"training ran {result.global_step} steps, expected 2")
    after = model[0].embedding.weight.detach()
    check(not bool((before == after).all()), "two training steps left the embedding weights unchanged")
    return f"2 steps, training loss {result.training_loss:.4f}"


def main() -> None:
    """Run every check and print one line per stage."""
    import embedforge

    print(f"python {platform.python_version()} ({sys.executable})")
    print(f"embedforge {embedforge.__version__} from {Path(embedforge.__file__).parent}")
    check_old_import_paths()
    print("old import paths: ok")
    model = build_model()
    with tempfile.TemporaryDirectory(prefix="embedforge-smoke-") as tmp:
        check_encode_and_reload(model, Path(tmp) / "model")
        print(f"encode + save/load: ok ({DIM}-dimensional embeddings)")
        print(f"training: {check_training(model, Path(tmp) / 'train')}")
    print("smoke test passed")


if __name__ == "__main__":
    main()
