"""Translation matching: is each source sentence nearest to its own translation, and vice versa."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row, check_same_length, epoch_text
from embedforge.util import cos_sim

logger = logging.getLogger(__name__)


class TranslationEvaluator(BaseEvaluator):
    """Accuracy of nearest-neighbour (cosine) matching from sources to targets and back.

    A match counts when the retrieved sentence equals the expected one (so duplicates are not
    penalised). The primary metric is ``mean_accuracy``.
    """

    def __init__(
        self,
        source_sentences: list[str],
        target_sentences: list[str],
        show_progress_bar: bool = False,
        batch_size: int = 16,
        name: str = "",
        print_wrong_matches: bool = False,
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        check_same_length(source_sentences=source_sentences, target_sentences=target_sentences)
        self.source_sentences = source_sentences
        self.target_sentences = target_sentences
        self.name = name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.print_wrong_matches = print_wrong_matches
        self.truncate_dim = truncate_dim
        self.csv_file = "translation_evaluation" + ("_" + name if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps", "src2trg", "trg2src"]
        self.write_csv = write_csv
        self.primary_metric = "mean_accuracy"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """``src2trg_accuracy``, ``trg2src_accuracy`` and their ``mean_accuracy``."""
        logger.info(
            f"Evaluating translation matching Accuracy of the model on the {self.name} dataset"
            f"{epoch_text(epoch, steps, self.truncate_dim)}:"
        )
        embeddings1 = torch.stack(self.embed_inputs(model, self.source_sentences))
        embeddings2 = torch.stack(self.embed_inputs(model, self.target_sentences))
        similarities = cos_sim(embeddings1, embeddings2).detach().cpu().numpy()

        correct_src2trg = 0
        for i, row in enumerate(similarities):
            best = int(np.argmax(row))
            if self.target_sentences[i] == self.target_sentences[best]:
                correct_src2trg += 1
            elif self.print_wrong_matches:
                self._print_wrong_match(i, best, row)
        correct_trg2src = 0
        for i, column in enumerate(similarities.T):
            best = int(np.argmax(column))
            if self.source_sentences[i] == self.source_sentences[best]:
                correct_trg2src += 1

        acc_src2trg = correct_src2trg / len(similarities)
        acc_trg2src = correct_trg2src / len(similarities.T)
        logger.info(f"Accuracy src2trg: {acc_src2trg * 100:.2f}")
        logger.info(f"Accuracy trg2src: {acc_trg2src * 100:.2f}")
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, acc_src2trg, acc_trg2src])
        metrics = {
            "src2trg_accuracy": acc_src2trg,
            "trg2src_accuracy": acc_trg2src,
            "mean_accuracy": (acc_src2trg + acc_trg2src) / 2,
        }
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _print_wrong_match(self, i: int, best: int, row: np.ndarray) -> None:
        print("\nIncorrect  : Source", i, "is most similar to target", best, "instead of target", i)
        print("Source     :", self.source_sentences[i])
        print("Pred Target:", self.target_sentences[best], f"(Score: {row[best]:.4f})")
        print("True Target:", self.target_sentences[i], f"(Score: {row[i]:.4f})")
        for idx, score in sorted(enumerate(row), key=lambda item: item[1], reverse=True)[:5]:
            print("\t", idx, f"(Score: {score:.4f})", self.target_sentences[idx])

    def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> list[torch.Tensor]:
        """Embed as a list of tensors, with this evaluator's batch size and truncation."""
        return model.encode(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=False,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` when set."""
        return {"truncate_dim": self.truncate_dim} if self.truncate_dim is not None else {}
