"""Triplet accuracy: how often an anchor is closer to its positive than to its negative."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row, check_same_length, epoch_text
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import (
    SimilarityFunction,
)

logger = logging.getLogger(__name__)

#: Similarity names accepted, in the order sentence-transformers reports them.
_PAIRWISE = ("cosine", "dot", "manhattan", "euclidean")


class TripletEvaluator(BaseEvaluator):
    """Share of (anchor, positive, negative) triplets with ``sim(a, p) > sim(a, n) + margin``.

    The primary metric is ``<fn>_accuracy`` (``max_accuracy`` over several functions).
    """

    def __init__(
        self,
        anchors: Sequence[Any],
        positives: Sequence[Any],
        negatives: Sequence[Any],
        main_similarity_function: str | SimilarityFunction | None = None,
        margin: float | dict[str, float] | None = None,
        name: str = "",
        batch_size: int = 16,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        truncate_dim: int | None = None,
        similarity_fn_names: list[Literal["cosine", "dot", "euclidean", "manhattan"]] | None = None,
        main_distance_function: str | SimilarityFunction | None = "deprecated",
    ) -> None:
        super().__init__()
        check_same_length(anchors=anchors, positives=positives, negatives=negatives)
        self.anchors = anchors
        self.positives = positives
        self.negatives = negatives
        self.name = name
        self.truncate_dim = truncate_dim
        if main_distance_function != "deprecated" and main_similarity_function is None:
            main_similarity_function = main_distance_function
            logger.warning("main_distance_function is deprecated; pass main_similarity_function instead.")
        self.main_similarity_function = (
            SimilarityFunction(main_similarity_function) if main_similarity_function else None
        )
        self.similarity_fn_names: list[str] = list(similarity_fn_names or [])
        if not self.similarity_fn_names and self.main_similarity_function is not None:
            self.similarity_fn_names = [self.main_similarity_function.value]
        fn_keys = list(_PAIRWISE)
        unknown = sorted(set(self.similarity_fn_names) - set(fn_keys))
        if unknown:
            raise InvalidArgumentError(
                f"`similarity_fn_names` got unexpected names {unknown}; expected names in {fn_keys}"
            )
        if margin is None:
            self.margin: dict[str, float] = {key: 0 for key in fn_keys}
        elif isinstance(margin, (float, int)):
            self.margin = {key: margin for key in fn_keys}
        elif isinstance(margin, dict):
            unknown = sorted(set(margin) - set(fn_keys))
            if unknown:
                raise InvalidArgumentError(f"`margin` got unexpected keys {unknown}; expected keys in {fn_keys}")
            self.margin = {**{key: 0 for key in fn_keys}, **margin}
        else:
            raise InvalidArgumentError(f"margin={margin!r}; expected a float or a dict with keys in {fn_keys}")
        self.batch_size = batch_size
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        self.show_progress_bar = show_progress_bar
        self.csv_file: str = "triplet_evaluation" + ("_" + name if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self.write_csv = write_csv
        self._append_csv_headers(self.similarity_fn_names)

    def _append_csv_headers(self, similarity_fn_names: list[str]) -> None:
        self.csv_headers += [f"accuracy_{fn_name}" for fn_name in similarity_fn_names]

    @classmethod
    def from_input_examples(cls, examples: list[Any], **kwargs: Any) -> TripletEvaluator:
        """Build from objects whose ``texts`` are (anchor, positive, negative)."""
        return cls(
            [example.texts[0] for example in examples],
            [example.texts[1] for example in examples],
            [example.texts[2] for example in examples],
            **kwargs,
        )

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """``<fn>_accuracy`` per similarity function (plus ``max_accuracy`` for several)."""
        logger.info(
            f"TripletEvaluator: Evaluating the model on the {self.name} dataset"
            f"{epoch_text(epoch, steps, self.truncate_dim)}:"
        )
        anchors = self.embed_inputs(model, self.anchors, encode_fn_name="query")
        positives = self.embed_inputs(model, self.positives, encode_fn_name="document")
        negatives = self.embed_inputs(model, self.negatives, encode_fn_name="document")
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self._append_csv_headers(self.similarity_fn_names)

        metrics: dict[str, Any] = {}
        for fn_name in self.similarity_fn_names:
            pairwise = SimilarityFunction.to_similarity_pairwise_fn(fn_name)
            positive_scores = pairwise(anchors, positives)
            negative_scores = pairwise(anchors, negatives)
            accuracy = (positive_scores > negative_scores + self.margin[fn_name]).float().mean().item()
            metrics[f"{fn_name}_accuracy"] = accuracy
            logger.info(f"Accuracy {fn_name.capitalize()} Similarity:\t{accuracy:.2%}")

        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *metrics.values()])

        if len(self.similarity_fn_names) > 1:
            metrics["max_accuracy"] = max(metrics.values())
        if self.main_similarity_function is not None:
            self.primary_metric = f"{self.main_similarity_function.value}_accuracy"
        elif len(self.similarity_fn_names) > 1:
            self.primary_metric = "max_accuracy"
        else:
            self.primary_metric = f"{self.similarity_fn_names[0]}_accuracy"
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def embed_inputs(self, model: Any, sentences: Any, encode_fn_name: str | None = None, **kwargs: Any) -> np.ndarray:
        """Embed anchors as queries and positives/negatives as documents (prompts and routes apply)."""
        if encode_fn_name == "query":
            encode = model.encode_query
        elif encode_fn_name == "document":
            encode = model.encode_document
        else:
            encode = model.encode
        return encode(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """``margin`` when not all zero, and ``truncate_dim`` when set."""
        config: dict[str, Any] = {}
        if self.margin != {key: 0 for key in _PAIRWISE}:
            config["margin"] = self.margin
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config
