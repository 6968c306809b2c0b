"""Correlation between embedding similarities and gold similarity scores (STS-style)."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from scipy.stats import pearsonr, spearmanr

from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row, check_same_length, epoch_text
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import (
    SimilarityFunction,
)

logger = logging.getLogger(__name__)

#: Similarity names accepted, in the order sentence-transformers reports them.
_PAIRWISE = ("cosine", "manhattan", "euclidean", "dot")


class EmbeddingSimilarityEvaluator(BaseEvaluator):
    """Pearson and Spearman correlation of pairwise embedding similarity with gold ``scores``.

    The primary metric is ``spearman_<fn>`` (``spearman_max`` over several functions).
    """

    def __init__(
        self,
        sentences1: list[str],
        sentences2: list[str],
        scores: list[float],
        batch_size: int = 16,
        main_similarity: str | SimilarityFunction | None = None,
        similarity_fn_names: list[Literal["cosine", "euclidean", "manhattan", "dot"]] | None = None,
        name: str = "",
        show_progress_bar: bool = False,
        write_csv: bool = True,
        precision: Literal["float32", "int8", "uint8", "binary", "ubinary"] | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        check_same_length(sentences1=sentences1, sentences2=sentences2, scores=scores)
        self.sentences1 = sentences1
        self.sentences2 = sentences2
        self.scores = scores
        self.write_csv = write_csv
        self.precision = precision
        self.truncate_dim = truncate_dim
        self.main_similarity = SimilarityFunction(main_similarity) if main_similarity else None
        self.similarity_fn_names: list[str] = list(similarity_fn_names or [])
        if not self.similarity_fn_names and self.main_similarity is not None:
            self.similarity_fn_names = [self.main_similarity.value]
        for fn_name in self.similarity_fn_names:
            if fn_name not in _PAIRWISE:
                raise InvalidArgumentError(
                    f"similarity_fn_names contains {fn_name!r}; expected names in {list(_PAIRWISE)}"
                )
        self.name = name
        self.batch_size = batch_size
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        self.show_progress_bar = show_progress_bar
        self.csv_file = (
            "similarity_evaluation"
            + ("_" + name if name else "")
            + ("_" + precision if precision else "")
            + "_results.csv"
        )
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.similarity_fn_names)

    def _append_csv_headers(self, similarity_fn_names: list[str]) -> None:
        self.csv_headers += [
            f"{fn_name}_{metric}" for fn_name in similarity_fn_names for metric in ("pearson", "spearman")
        ]

    @classmethod
    def from_input_examples(cls, examples: list[Any], **kwargs: Any) -> EmbeddingSimilarityEvaluator:
        """Build from objects with ``texts`` (two sentences) and ``label`` (the gold score)."""
        return cls(
            [example.texts[0] for example in examples],
            [example.texts[1] for example in examples],
            [example.label for example in examples],
            **kwargs,
        )

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """``pearson_<fn>`` and ``spearman_<fn>`` per similarity function (plus ``*_max`` for several)."""
        logger.info(
            f"EmbeddingSimilarityEvaluator: Evaluating the model on the {self.name} dataset"
            f"{epoch_text(epoch, steps, self.truncate_dim)}:"
        )
        if self.precision in ("int8", "uint8"):
            # Integer quantisation calibrates on the batch, so both columns must share one encode call.
            embeddings = self.embed_inputs(model, [*self.sentences1, *self.sentences2])
            embeddings1 = embeddings[: len(self.sentences1)]
            embeddings2 = embeddings[len(self.sentences1) :]
        else:
            embeddings1 = self.embed_inputs(model, self.sentences1)
            embeddings2 = self.embed_inputs(model, self.sentences2)
        if self.precision == "binary":
            embeddings1 = embeddings1.astype(np.int16) + 128
            embeddings2 = embeddings2.astype(np.int16) + 128
        if self.precision in ("ubinary", "binary"):
            embeddings1 = np.unpackbits(embeddings1.astype(np.uint8), axis=1)
            embeddings2 = np.unpackbits(embeddings2.astype(np.uint8), axis=1)
        if self.precision in ("int8", "uint8", "ubinary", "binary"):
            embeddings1 = embeddings1.astype(np.float32)
            embeddings2 = embeddings2.astype(np.float32)

        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self._append_csv_headers(self.similarity_fn_names)

        metrics: dict[str, Any] = {}
        for fn_name in self.similarity_fn_names:
            predicted = (
                SimilarityFunction.to_similarity_pairwise_fn(fn_name)(embeddings1, embeddings2).detach().cpu().numpy()
            )
            pearson, _ = pearsonr(self.scores, predicted)
            spearman, _ = spearmanr(self.scores, predicted)
            metrics[f"pearson_{fn_name}"] = pearson
            metrics[f"spearman_{fn_name}"] = spearman
            logger.info(f"{fn_name.capitalize()}-Similarity:\tPearson: {pearson:.4f}\tSpearman: {spearman:.4f}")

        if output_path is not None and self.write_csv:
            row = [epoch, steps] + [
                metrics[f"{metric}_{fn_name}"]
                for fn_name in self.similarity_fn_names
                for metric in ("pearson", "spearman")
            ]
            append_csv_row(output_path, self.csv_file, self.csv_headers, row)

        if len(self.similarity_fn_names) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn_name}"] for fn_name in self.similarity_fn_names)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn_name}"] for fn_name in self.similarity_fn_names)
        if self.main_similarity is not None:
            self.primary_metric = f"spearman_{self.main_similarity.value}"
        elif len(self.similarity_fn_names) > 1:
            self.primary_metric = "spearman_max"
        else:
            self.primary_metric = f"spearman_{self.similarity_fn_names[0]}"
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> np.ndarray:
        """Embed with this evaluator's settings; quantised precisions embed normalised vectors."""
        return model.encode(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            precision=self.precision or "float32",
            normalize_embeddings=bool(self.precision),
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    @property
    def description(self) -> str:
        """Shown in model cards."""
        return "Semantic Similarity"

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` and ``precision`` when set."""
        return {key: getattr(self, key) for key in ("truncate_dim", "precision") if getattr(self, key) is not None}
