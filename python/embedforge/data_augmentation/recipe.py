"""The two Augmented SBERT scenarios as one call each, with the metrics and wall time of every stage.

- :func:`augment_in_domain` (few labelled pairs): train a cross-encoder on the gold pairs,
  recombine the gold sentences into new pairs (BM25, semantic or random sampling), label them
  with the cross-encoder (silver), train the bi-encoder on gold + silver.
- :func:`augment_domain_transfer` (no labels in the target domain): train a cross-encoder on an
  annotated source, label the target pairs with it, train the bi-encoder on the labelled target.

Models are trained in place. Evaluation datasets are (text, text, label) rows; ``task``
chooses the evaluators: ``"similarity"`` (Spearman correlation with graded scores) or
``"classification"`` (average precision and friends with 0/1 labels).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from embedforge.data_augmentation.labeling import both_orders, gold_and_silver, label_pairs
from embedforge.data_augmentation.pair_sampling import sample_pairs, unique_sentences
from embedforge.data_augmentation.training import (
    TrainingSettings,
    shape_for_loss,
    train_bi_encoder,
    train_cross_encoder,
)
from embedforge.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from datasets import Dataset

    from embedforge.cross_encoder.model import CrossEncoder
    from embedforge.sentence_transformer.model import SentenceTransformer

logger = logging.getLogger(__name__)

#: The evaluation tasks the recipe knows.
TASKS = ("similarity", "classification")


@dataclass
class AugmentationReport:
    """What a scenario did: metrics per stage, seconds per step, data sizes and where the models were saved."""

    scenario: str
    #: stage ("bi-encoder before", "cross-encoder", "bi-encoder after") -> metric name -> value
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    #: step -> wall-clock seconds, in the order the steps ran
    seconds: dict[str, float] = field(default_factory=dict)
    num_gold: int = 0
    num_silver: int = 0
    #: rows the bi-encoder trained on (gold + silver, or the silver rows its loss can use)
    num_train_rows: int = 0
    cross_encoder_path: str | None = None
    bi_encoder_path: str | None = None

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Add the wall time of the ``with`` body to ``seconds[step]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - start

    def format(self) -> str:
        """The metrics as a table (one row per metric, one column per stage), then the time per step."""
        stages = list(self.metrics)
        names = list(dict.fromkeys(name for values in self.metrics.values() for name in values))
        width = max([len("metric"), *(len(name) for name in names)])
        lines = [
            f"Augmented SBERT ({self.scenario}): {self.num_gold} gold pairs, {self.num_silver} silver pairs, "
            f"bi-encoder trained on {self.num_train_rows} rows",
            "",
        ]
        lines.append("  ".join([f"{'metric':<{width}}", *(f"{stage:>18}" for stage in stages)]))
        lines.append("  ".join(["-" * width, *("-" * 18 for _ in stages)]))
        for name in names:
            cells = [
                f"{self.metrics[stage][name]:>18.4f}" if name in self.metrics[stage] else " " * 18 for stage in stages
            ]
            lines.append("  ".join([f"{name:<{width}}", *cells]))
        lines.append("")
        total = sum(self.seconds.values())
        lines.append(f"time: {total:.1f} s in all")
        lines.extend(f"  {step:<28} {seconds:8.1f} s" for step, seconds in self.seconds.items())
        return "\n".join(lines)


def augment_in_domain(
    gold: Dataset,
    cross_encoder: CrossEncoder,
    bi_encoder: SentenceTransformer,
    *,
    strategy: str = "bm25",
    top_k: int = 3,
    sampling_model: SentenceTransformer | None = None,
    num_pairs: int | None = None,
    dev: Dataset | None = None,
    test: Dataset | None = None,
    task: str = "similarity",
    train_cross_encoder_first: bool = True,
    cross_encoder_settings: TrainingSettings | None = None,
    bi_encoder_settings: TrainingSettings | None = None,
    label_batch_size: int = 32,
    output_dir: str | None = None,
    show_progress_bar: bool | None = None,
) -> AugmentationReport:
    """Scenario 1: gold pairs -> cross-encoder -> sampled silver pairs -> bi-encoder on gold + silver.

    ``gold`` is (text, text, label) rows. The cross-encoder trains on the gold pairs in both
    orders (skip with ``train_cross_encoder_first=False`` for one trained already). New pairs
    come from the gold sentences by ``strategy`` (``"bm25"``, ``"semantic"`` or ``"random"``; see
    :func:`~embedforge.data_augmentation.sample_pairs`), never repeating a gold pair; semantic
    sampling embeds with ``sampling_model``, by default the bi-encoder as it is before training.
    With ``output_dir``, the models are saved to its ``cross-encoder`` and ``bi-encoder`` folders.
    """
    _check_task(task)
    report = AugmentationReport(scenario=f"in-domain, {strategy} sampling, top_k={top_k}", num_gold=len(gold))
    _evaluate_bi_encoder(report, "bi-encoder before", bi_encoder, dev, test, task)
    if train_cross_encoder_first:
        with report.timed("train cross-encoder"):
            train_cross_encoder(cross_encoder, both_orders(gold), cross_encoder_settings, _sub(output_dir, "ce-run"))
    _evaluate_cross_encoder(report, cross_encoder, dev, test, task)

    first, second = gold.column_names[:2]
    gold_pairs = list(zip(gold[first], gold[second]))
    with report.timed(f"sample pairs ({strategy})"):
        pairs = sample_pairs(
            unique_sentences(gold_pairs),
            strategy=strategy,
            top_k=top_k,
            exclude=gold_pairs,
            model=sampling_model or bi_encoder,
            num_pairs=num_pairs,
            show_progress_bar=show_progress_bar,
        )
    with report.timed("label pairs"):
        silver = label_pairs(
            cross_encoder,
            pairs,
            batch_size=label_batch_size,
            show_progress_bar=show_progress_bar,
            columns=gold.column_names[:3],
        )
    report.num_silver = len(silver)
    logger.info("Augmented SBERT: %d silver pairs from %d gold pairs", len(silver), len(gold))

    train_set = gold_and_silver(gold, silver)
    report.num_train_rows = len(train_set)
    with report.timed("train bi-encoder"):
        train_bi_encoder(bi_encoder, train_set, bi_encoder_settings, _sub(output_dir, "bi-run"))
    _evaluate_bi_encoder(report, "bi-encoder after", bi_encoder, dev, test, task)
    _save(report, cross_encoder, bi_encoder, output_dir)
    return report


def augment_domain_transfer(
    source: Dataset,
    target_pairs: Sequence[Sequence[str]],
    cross_encoder: CrossEncoder,
    bi_encoder: SentenceTransformer,
    *,
    source_dev: Dataset | None = None,
    source_task: str = "similarity",
    target_dev: Dataset | None = None,
    target_test: Dataset | None = None,
    target_task: str = "classification",
    threshold: float = 0.5,
    train_cross_encoder_first: bool = True,
    cross_encoder_settings: TrainingSettings | None = None,
    bi_encoder_settings: TrainingSettings | None = None,
    label_batch_size: int = 32,
    output_dir: str | None = None,
    show_progress_bar: bool | None = None,
) -> AugmentationReport:
    """Scenario 2: annotated source -> cross-encoder -> labelled target pairs -> bi-encoder on the target.

    ``target_pairs`` are unlabelled (text, text) pairs of the target domain. The bi-encoder loss
    (``bi_encoder_settings.loss``) decides how the cross-encoder's scores are used: as they are
    (CosineSimilarityLoss, the default), as 0/1 labels at ``threshold`` (contrastive losses), or
    as a filter keeping the pairs at or above ``threshold`` (MultipleNegativesRankingLoss).
    """
    _check_task(source_task)
    _check_task(target_task)
    report = AugmentationReport(scenario="domain transfer", num_gold=len(source))
    _evaluate_bi_encoder(report, "bi-encoder before", bi_encoder, target_dev, target_test, target_task)
    if train_cross_encoder_first:
        with report.timed("train cross-encoder"):
            train_cross_encoder(cross_encoder, both_orders(source), cross_encoder_settings, _sub(output_dir, "ce-run"))
    _evaluate_cross_encoder(report, cross_encoder, source_dev, None, source_task, prefix="source")
    _evaluate_cross_encoder(report, cross_encoder, target_dev, target_test, target_task)
    with report.timed("label pairs"):
        silver = label_pairs(
            cross_encoder, target_pairs, batch_size=label_batch_size, show_progress_bar=show_progress_bar
        )
    report.num_silver = len(silver)
    loss_name = (bi_encoder_settings.loss if bi_encoder_settings else None) or "CosineSimilarityLoss"
    train_set = shape_for_loss(silver, loss_name, threshold)
    report.num_train_rows = len(train_set)
    with report.timed("train bi-encoder"):
        train_bi_encoder(bi_encoder, train_set, bi_encoder_settings, _sub(output_dir, "bi-run"), threshold=threshold)
    _evaluate_bi_encoder(report, "bi-encoder after", bi_encoder, target_dev, target_test, target_task)
    _save(report, cross_encoder, bi_encoder, output_dir)
    return report


def bi_encoder_evaluator(dataset: Dataset, task: str, name: str) -> Callable[[Any], dict[str, float]]:
    """The sentence-transformers evaluator of ``task`` over (text, text, label) rows."""
    from embedforge.sentence_transformer.evaluation import BinaryClassificationEvaluator, EmbeddingSimilarityEvaluator

    first, second, label = dataset.column_names[:3]
    if task == "similarity":
        return EmbeddingSimilarityEvaluator(dataset[first], dataset[second], dataset[label], name=name)
    return BinaryClassificationEvaluator(dataset[first], dataset[second], [int(x) for x in dataset[label]], name=name)


def cross_encoder_evaluator(dataset: Dataset, task: str, name: str) -> Callable[[Any], dict[str, float]]:
    """The CrossEncoder evaluator of ``task`` over (text, text, label) rows."""
    from embedforge.cross_encoder.evaluation import (
        CrossEncoderClassificationEvaluator,
        CrossEncoderCorrelationEvaluator,
    )

    first, second, label = dataset.column_names[:3]
    pairs = [[a, b] for a, b in zip(dataset[first], dataset[second])]
    if task == "similarity":
        return CrossEncoderCorrelationEvaluator(pairs, dataset[label], name=name)
    return CrossEncoderClassificationEvaluator(pairs, [int(x) for x in dataset[label]], name=name)


def _evaluate_bi_encoder(
    report: AugmentationReport,
    stage: str,
    model: SentenceTransformer,
    dev: Dataset | None,
    test: Dataset | None,
    task: str,
) -> None:
    for split, dataset in (("dev", dev), ("test", test)):
        if dataset is not None:
            with report.timed("evaluate"):
                metrics = bi_encoder_evaluator(dataset, task, split)(model)
            report.metrics.setdefault(stage, {}).update(metrics)
            logger.info("%s on %s: %s", stage, split, metrics)


def _evaluate_cross_encoder(
    report: AugmentationReport,
    model: CrossEncoder,
    dev: Dataset | None,
    test: Dataset | None,
    task: str,
    prefix: str = "",
) -> None:
    for split, dataset in (("dev", dev), ("test", test)):
        if dataset is not None:
            name = f"{prefix}-{split}" if prefix else split
            with report.timed("evaluate"):
                metrics = cross_encoder_evaluator(dataset, task, name)(model)
            report.metrics.setdefault("cross-encoder", {}).update(metrics)
            logger.info("cross-encoder on %s: %s", name, metrics)


def _save(
    report: AugmentationReport, cross_encoder: CrossEncoder, bi_encoder: SentenceTransformer, output_dir: str | None
) -> None:
    if output_dir is None:
        return
    report.cross_encoder_path = os.path.join(output_dir, "cross-encoder")
    report.bi_encoder_path = os.path.join(output_dir, "bi-encoder")
    cross_encoder.save(report.cross_encoder_path)
    bi_encoder.save(report.bi_encoder_path)


def _sub(output_dir: str | None, name: str) -> str | None:
    return os.path.join(output_dir, name) if output_dir else None


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise InvalidArgumentError(f"task={task!r}; expected one of {list(TASKS)}")
