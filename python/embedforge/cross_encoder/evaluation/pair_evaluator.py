"""The shared part of the evaluators that score a fixed list of text pairs with ``model.predict``."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from embedforge.base.evaluation.evaluator import BaseEvaluator, check_same_length, epoch_text

logger = logging.getLogger(__name__)


class PairEvaluator(BaseEvaluator):
    """Holds the pairs, their targets and the predict options; subclasses turn predictions into metrics."""

    #: Start of the CSV file name (the evaluator's current name, also for its deprecated aliases).
    csv_stem: ClassVar[str] = ""
    #: The name of the targets argument, for error messages.
    targets_name: ClassVar[str] = "labels"

    def __init__(
        self,
        sentence_pairs: list[list[str]],
        targets: list[Any],
        name: str,
        prompt_name: str | None,
        batch_size: int,
        show_progress_bar: bool | None,
        write_csv: bool,
    ) -> None:
        super().__init__()
        check_same_length(sentence_pairs=sentence_pairs, **{self.targets_name: targets})
        self.sentence_pairs = sentence_pairs
        self.name = name
        self.prompt_name = prompt_name
        self.batch_size = batch_size
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.csv_file = self.csv_stem + (f"_{name}" if name else "") + "_results.csv"

    @classmethod
    def from_input_examples(cls, examples: list[Any], **kwargs: Any) -> Any:
        """Build from InputExamples holding a text pair and a label (or gold score) each."""
        return cls([example.texts for example in examples], [example.label for example in examples], **kwargs)

    def predict(self, model: Any, epoch: int, steps: int) -> np.ndarray:
        """``model.predict`` on every pair, logging what is being evaluated."""
        logger.info(
            "%s: Evaluating the model on %s dataset%s:", type(self).__name__, self.name, epoch_text(epoch, steps)
        )
        return model.predict(
            self.sentence_pairs,
            prompt_name=self.prompt_name,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=self.show_progress_bar,
        )
