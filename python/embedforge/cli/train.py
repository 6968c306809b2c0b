"""``embedforge train``: train an embedding model on local data, or, with no arguments, on a built-in demo set."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from embedforge.cli.train_config import (
    DataFileNotFoundError,
    TrainConfig,
    TrainConfigError,
    as_path_list,
    build_config,
    merge_overrides,
    parse_override,
    read_config_file,
)
from embedforge.exceptions import EmbedforgeError

#: Shown before and after the no-argument run, so nobody mistakes its scores for a benchmark.
DEMO_NOTICE = (
    "DEMO: `embedforge train` without a config trains a small StaticEmbedding model on a built-in, generated\n"
    "retrieval set (made-up queries and passages that use different words for the same things). It shows the\n"
    "whole workflow; its scores say nothing about real-world quality. Train on your own data with\n"
    "`embedforge train config.yaml` (see the README)."
)

#: Training arguments of the demo run: the static-model recipe (high learning rate, no duplicate texts in a batch).
DEMO_ARGS: dict[str, Any] = {
    "output_dir": "output/embedforge-train-demo",
    "num_train_epochs": 1,
    "per_device_train_batch_size": 128,
    "learning_rate": 0.2,
    "warmup_steps": 0.1,
    "batch_sampler": "no_duplicates",
    "save_strategy": "no",
    "logging_steps": 10,
    "report_to": "none",
    "seed": 12,
    # Pinned memory only helps with an accelerator; on CPU it only warns.
    "dataloader_pin_memory": False,
}
#: 10,000 pairs are one pass of 79 batches of 128: enough to learn the demo's synonyms in well under a minute.
DEMO_TRAIN_PAIRS = 10000
DEMO_EMBEDDING_DIM = 256
DEMO_MATRYOSHKA_DIMS = [256, 128, 64, 32]

#: Metric-name endings shown in the before/after table (all metrics are shown if none match).
TABLE_METRICS = (
    "accuracy@1",
    "recall@10",
    "mrr@10",
    "ndcg@10",
    "map@100",
    "pearson_cosine",
    "spearman_cosine",
)

#: Command-line flag -> (config section, key).
FLAG_KEYS: dict[str, tuple[str, str]] = {
    "model": ("model", "path"),
    "tokenizer": ("model", "tokenizer"),
    "embedding_dim": ("model", "embedding_dim"),
    "train": ("data", "train"),
    "eval": ("data", "eval"),
    "columns": ("data", "columns"),
    "loss": ("loss", "name"),
    "loss_kwargs": ("loss", "kwargs"),
    "matryoshka_dims": ("loss", "matryoshka_dims"),
    "queries": ("evaluator", "queries"),
    "corpus": ("evaluator", "corpus"),
    "qrels": ("evaluator", "qrels"),
    "pairs": ("evaluator", "pairs"),
    "output_dir": ("args", "output_dir"),
    "epochs": ("args", "num_train_epochs"),
    "batch_size": ("args", "per_device_train_batch_size"),
    "learning_rate": ("args", "learning_rate"),
    "max_steps": ("args", "max_steps"),
}


def add_train_command(commands: Any) -> None:
    """Register ``embedforge train``."""
    parser = commands.add_parser(
        "train",
        help="train a model from a config file or flags (no arguments: a built-in demo)",
        description="Train a sentence-embedding model on local CSV/JSON Lines/Parquet files. Without a config "
        "file or --train it runs a self-contained demo on built-in generated data.",
    )
    parser.add_argument("config", nargs="?", help="a YAML or JSON config file (flags override its values)")
    group = parser.add_argument_group("model")
    group.add_argument("--model", help="local model folder (sentence-transformers or Hugging Face transformer)")
    group.add_argument("--tokenizer", help="tokenizer.json for a new StaticEmbedding model (with --embedding-dim)")
    group.add_argument("--embedding-dim", type=int, help="width of a new StaticEmbedding model")
    group = parser.add_argument_group("data")
    group.add_argument("--train", nargs="+", help="training file(s): .csv, .tsv, .jsonl/.json or .parquet")
    group.add_argument("--eval", nargs="+", help="file(s) for the evaluation loss (with args.eval_strategy)")
    group.add_argument("--columns", nargs="+", help="input columns to use, in the loss's order")
    group = parser.add_argument_group("loss")
    group.add_argument(
        "--loss", help="a loss of embedforge.sentence_transformer.losses (default MultipleNegativesRankingLoss)"
    )
    group.add_argument("--loss-kwargs", type=json.loads, help="loss arguments as JSON, e.g. '{\"scale\": 20}'")
    group.add_argument("--matryoshka-dims", type=int, nargs="+", help="wrap the loss in MatryoshkaLoss")
    group = parser.add_argument_group("evaluation")
    group.add_argument("--queries", help="retrieval evaluation: queries file (id, text)")
    group.add_argument("--corpus", help="retrieval evaluation: corpus file (id, text[, title])")
    group.add_argument("--qrels", help="retrieval evaluation: relevance file (query-id, corpus-id[, score])")
    group.add_argument("--pairs", help="similarity evaluation: file of sentence pairs with a score column")
    group = parser.add_argument_group("training arguments")
    group.add_argument("--output-dir", help="checkpoint folder; the final model goes to OUTPUT_DIR/final")
    group.add_argument("--epochs", type=float, help="num_train_epochs")
    group.add_argument("--batch-size", type=int, help="per_device_train_batch_size")
    group.add_argument("--learning-rate", type=float, help="learning_rate")
    group.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="set any config key, e.g. --set args.warmup_steps=0.1 (repeatable; VALUE is read as YAML)",
    )
    parser.add_argument(
        "--write-demo-files",
        metavar="DIR",
        help="write the demo set as CSV/JSON Lines/TSV files with a tokenizer and a config.yaml into DIR, then stop",
    )
    parser.set_defaults(run=run_train)


def run_train(arguments: argparse.Namespace) -> int:
    """Run the demo or the configured training; configuration and data errors end with a one-line message."""
    try:
        if arguments.write_demo_files:
            from embedforge.cli.demo_files import write_demo_files

            config_path = write_demo_files(arguments.write_demo_files, DEMO_TRAIN_PAIRS)
            print(f"Wrote the demo files and {config_path}. Train on them with: embedforge train {config_path}")
            return 0
        overrides = overrides_from_arguments(arguments)
        if arguments.config is None and all(section == "args" for section, _, _ in overrides):
            run_demo_training(overrides)
        else:
            content = read_config_file(arguments.config) if arguments.config else {}
            run_configured_training(build_config(merge_overrides(content, overrides)))
    except (EmbedforgeError, FileNotFoundError) as error:
        raise SystemExit(f"embedforge train: error: {error}") from error
    return 0


def overrides_from_arguments(arguments: argparse.Namespace) -> list[tuple[str, str, Any]]:
    """The flags given on the command line as (section, key, value), ``--set`` ones last so they win."""
    overrides = []
    for flag, (section, key) in FLAG_KEYS.items():
        value = getattr(arguments, flag, None)
        if value is not None:
            overrides.append((section, key, value))
    overrides.extend(parse_override(text) for text in arguments.set)
    return overrides


def run_demo_training(overrides: list[tuple[str, str, Any]]) -> dict[str, dict[str, float]]:
    """Train a static model on the built-in demo set, with before/after retrieval scores."""
    import torch
    from datasets import Dataset
    from transformers import set_seed

    from embedforge.cli.demo_data import make_demo_data, vocabulary_texts
    from embedforge.cli.demo_tokenizer import build_wordpiece_tokenizer
    from embedforge.cli.train_config import training_argument_names
    from embedforge.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from embedforge.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
    from embedforge.sentence_transformer.model import SentenceTransformer
    from embedforge.sentence_transformer.modules import StaticEmbedding

    print(DEMO_NOTICE, flush=True)
    args = dict(DEMO_ARGS)
    for _, key, value in overrides:
        if key not in training_argument_names():
            raise TrainConfigError(f"config key 'args.{key}' is not valid; valid keys are {training_argument_names()}")
        args[key] = value
    start = time.perf_counter()
    data = make_demo_data(num_train_pairs=DEMO_TRAIN_PAIRS)
    tokenizer = build_wordpiece_tokenizer(vocabulary_texts())
    print(
        f"\nDemo data: {len(data.train_anchors)} training pairs; held out: {len(data.queries)} queries over "
        f"{len(data.corpus)} passages. Tokenizer: WordPiece, {tokenizer.get_vocab_size()} tokens, built from the "
        f"demo's words ({time.perf_counter() - start:.1f} s).",
        flush=True,
    )
    set_seed(int(args["seed"]))
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=DEMO_EMBEDDING_DIM)])
    train_dataset = Dataset.from_dict({"anchor": data.train_anchors, "positive": data.train_positives})
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), matryoshka_dims=DEMO_MATRYOSHKA_DIMS)
    evaluator = InformationRetrievalEvaluator(
        data.queries, data.corpus, data.relevant_docs, name="demo", show_progress_bar=True, batch_size=256
    )
    print(
        f"Model: StaticEmbedding, {DEMO_EMBEDDING_DIM} dims, random start. Loss: MatryoshkaLoss"
        f"(MultipleNegativesRankingLoss, dims {DEMO_MATRYOSHKA_DIMS}); batches without duplicates; "
        f"learning rate {args['learning_rate']}.",
        flush=True,
    )
    # The demo's matrices are tiny: one torch thread does them in milliseconds, while several threads
    # spin-wait for each other and run many times slower on a busy machine (15x on the 2-core test box).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        metrics = train_and_report(model, train_dataset, None, loss, evaluator, args)
    finally:
        torch.set_num_threads(threads)
    print("\n" + DEMO_NOTICE)
    return metrics


def run_configured_training(config: TrainConfig) -> dict[str, dict[str, float]]:
    """Train the configured model on the configured files, with before/after scores when an evaluator is set."""
    from transformers import set_seed

    from embedforge.cli.train_data import build_evaluator, load_table, select_columns
    from embedforge.cli.train_loss import build_loss

    train_dataset = select_columns(
        load_table(as_path_list(config.data["train"], "data.train"), "data.train"),
        config.data.get("columns"),
        "data.train",
    )
    eval_dataset = None
    if config.data.get("eval"):
        eval_dataset = select_columns(
            load_table(as_path_list(config.data["eval"], "data.eval"), "data.eval"),
            config.data.get("columns"),
            "data.eval",
        )
    print(f"Training data: {len(train_dataset)} rows, columns {train_dataset.column_names}", flush=True)
    import torch

    # Pinned memory only helps when batches go to a GPU; on CPU torch just warns about it.
    config.args.setdefault("dataloader_pin_memory", torch.cuda.is_available())
    set_seed(int(config.args.get("seed", 42)))
    model = build_model(config.model)
    loss = build_loss(model, config.loss)
    print(f"Loss: {type(loss).__name__}" + (f"({type(loss.loss).__name__})" if hasattr(loss, "loss") else ""))
    evaluator = build_evaluator(config.evaluator)
    return train_and_report(model, train_dataset, eval_dataset, loss, evaluator, config.args)


def build_model(model_config: dict[str, Any]) -> Any:
    """A SentenceTransformer from a local folder, or a new StaticEmbedding model from a tokenizer.json."""
    from embedforge.sentence_transformer.model import SentenceTransformer

    similarity = model_config.get("similarity_fn_name")
    if model_config.get("path"):
        print(f"Model: {model_config['path']}", flush=True)
        return SentenceTransformer(model_config["path"], similarity_fn_name=similarity)
    from tokenizers import Tokenizer

    from embedforge.sentence_transformer.modules import StaticEmbedding

    tokenizer_path = model_config["tokenizer"]
    if not os.path.isfile(tokenizer_path):
        raise DataFileNotFoundError(f"config key 'model.tokenizer' names {tokenizer_path!r}, but no such file exists")
    try:
        tokenizer = Tokenizer.from_file(tokenizer_path)
    except Exception as error:  # tokenizers raises a bare Exception for unreadable files
        raise TrainConfigError(f"config key 'model.tokenizer': cannot read {tokenizer_path!r}: {error}") from error
    static = StaticEmbedding(tokenizer, embedding_dim=int(model_config["embedding_dim"]))
    print(f"Model: new StaticEmbedding, {static.num_embeddings} tokens x {static.embedding_dim} dims", flush=True)
    return SentenceTransformer(modules=[static], similarity_fn_name=similarity)


def train_and_report(
    model: Any,
    train_dataset: Any,
    eval_dataset: Any,
    loss: Any,
    evaluator: Any,
    args: dict[str, Any],
) -> dict[str, dict[str, float]]:
    """Evaluate, train, evaluate again, save to ``output_dir/final`` and print a before/after table."""
    from embedforge.sentence_transformer.trainer import SentenceTransformerTrainer
    from embedforge.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    training_args = SentenceTransformerTrainingArguments(**args)
    before: dict[str, float] = {}
    if evaluator is not None:
        print("\nEvaluating the untrained model ...", flush=True)
        before = dict(evaluator(model))
    trainer = SentenceTransformerTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        loss=loss,
        evaluator=evaluator,
    )
    print("\nTraining ...", flush=True)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    after: dict[str, float] = {}
    if evaluator is not None:
        print("\nEvaluating the trained model ...", flush=True)
        after = dict(evaluator(model))
    final_dir = os.path.abspath(os.path.join(str(training_args.output_dir), "final"))
    model.save(final_dir)
    print(f"\nTrained for {trainer.state.global_step} steps in {seconds:.1f} s.")
    if evaluator is not None:
        print(format_metrics_table(before, after))
    print(f"\nSaved the trained model to {final_dir}")
    print(f"Load it with: SentenceTransformer({final_dir!r})")
    return {"before": before, "after": after}


def format_metrics_table(before: dict[str, float], after: dict[str, float]) -> str:
    """A plain-text table of the headline metrics, before and after training."""
    names = [name for name in after if name.endswith(TABLE_METRICS)] or list(after)
    width = max(len("metric"), *(len(name) for name in names))
    lines = [f"\n{'metric':<{width}}  {'before':>8}  {'after':>8}", f"{'-' * width}  {'-' * 8}  {'-' * 8}"]
    for name in names:
        old = before.get(name)
        old_text = f"{old:8.4f}" if old is not None else f"{'-':>8}"
        lines.append(f"{name:<{width}}  {old_text}  {after[name]:8.4f}")
    return "\n".join(lines)
