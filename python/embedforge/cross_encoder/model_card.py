"""The CrossEncoder model card: its data class (pairs as usage examples, predict/rank snippet) and writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from embedforge.base.model_card import dataset_stats, sections
from embedforge.base.model_card.data import BaseModelCardData
from embedforge.base.model_card.markdown import code_block
from embedforge.base.model_card.render import generate_model_card
from embedforge.base.model_card.render import write_model_card as write_card

#: Pairs scored in the usage snippet when the training data gave none: one query, three answers.
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("How many calories in an egg", "There are on average between 55 and 80 calories in an egg depending on its size."),
    (
        "How many calories in an egg",
        "Egg whites are very low in calories, have no fat, no cholesterol, and are loaded with protein.",
    ),
    ("How many calories in an egg", "Most of the calories in an egg come from the yellow yolk in the center."),
)
#: Rows of the training data the usage pairs come from.
USAGE_ROWS = 5


@dataclass
class CrossEncoderModelCardData(BaseModelCardData):
    """Facts for the README.md of a CrossEncoder (see :class:`BaseModelCardData` for the fields).

    ``task_name`` defaults to reranking for a one-label model and to pair classification otherwise;
    the usage examples are (text, text) pairs taken from the first rows of the training data.
    """

    task_name: str | None = None  # type: ignore[assignment]
    tags: list[str] = field(default_factory=lambda: ["sentence-transformers", "cross-encoder", "reranker"])

    usage_examples: list[list[Any]] | None = field(default=None, init=False)
    #: What the snippet shows for each usage example when it differs from the example itself (e.g. a file name).
    usage_examples_display: list[list[Any]] | None = field(default=None, init=False, repr=False)
    ir_model: bool | None = field(default=True, init=False, repr=False)
    pipeline_tag: str | None = field(default=None, init=False)  # type: ignore[assignment]

    # -- data and model ----------------------------------------------------------------------------

    def set_widget_examples(self, dataset: Any) -> None:
        """Take usage pairs from the first rows: the first two input columns, or a query and its listed documents.

        The Hub has no widget for text pairs, so no widget entries are written.
        """
        if isinstance(dataset, dict):
            dataset = next(iter(dataset.values()), None)
        if dataset is None or not dataset_stats.is_sized_dataset(dataset) or len(dataset) == 0:
            return
        first = dataset[0]
        columns = [
            name
            for name, value in first.items()
            if name not in ("dataset_name", "label")
            and (isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], str)))
        ][:2]
        if len(columns) < 2:
            return
        rows = dataset[:USAGE_ROWS]
        queries, answers = rows[columns[0]], rows[columns[1]]
        if isinstance(first[columns[1]], list):
            # A listwise row: one query with its documents.
            answers = answers[0][:USAGE_ROWS]
            queries = [queries[0]] * len(answers)
        self.usage_examples = [[query, answer] for query, answer in zip(queries, answers)]

    def register_model(self, model: Any) -> None:
        """Attach the model; the task and pipeline tag follow its number of labels."""
        super().register_model(model)
        ranking = getattr(model, "num_labels", 1) == 1
        if self.task_name is None:
            self.task_name = "text reranking and semantic search" if ranking else "text pair classification"
        if self.pipeline_tag is None:
            self.pipeline_tag = "text-ranking" if ranking else "text-classification"

    def run_usage_snippet(self) -> None:
        """Score the usage pairs with the model and keep the printed scores for the snippet."""
        if self.usage_examples is None:
            self.usage_examples = [list(pair) for pair in DEFAULT_PAIRS]
        if not self.generate_widget_examples or self.model is None:
            return
        import numpy as np

        scores = self.model.predict(self.usage_examples, convert_to_numpy=True, show_progress_bar=False)
        with np.printoptions(precision=4):
            self.similarities = "\n".join(f"# {line}" for line in str(scores).splitlines())

    # -- the card's kind-specific parts ----------------------------------------------------------------

    def card_facts(self) -> dict[str, Any]:
        """Length limit, number of output labels and architecture."""
        model = self.model
        return {
            "max_seq_length": getattr(model, "max_seq_length", None),
            "num_labels": getattr(model, "num_labels", 1),
            "architecture": str(model) if model is not None else "",
        }

    def card_intro(self, facts: dict[str, Any]) -> str:
        """The opening paragraph: what the model is, what it was trained from, what it scores."""
        text = (
            f"This is a cross-encoder in the sentence-transformers format, {sections.trained_on(self)} with embedforge."
        )
        text += " It scores pairs of texts jointly"
        return text + (f", for {self.task_name}." if self.task_name else ".")

    def card_details(self, facts: dict[str, Any]) -> list[str]:
        """The "Model Description" list of a cross-encoder."""
        head, tail = sections.common_details(self)
        num_labels = facts["num_labels"]
        return [
            "- **Model Type:** Cross Encoder",
            *head,
            f"- **Maximum Sequence Length:** {facts['max_seq_length']} tokens",
            f"- **Number of Output Labels:** {num_labels} label{'s' if num_labels != 1 else ''}",
            *tail,
        ]

    def card_usage(self) -> list[str]:
        """The "Usage" section of a cross-encoder."""
        return sections.usage_section(self, "CrossEncoder", "score some text pairs", "scores")

    def _pair_value(self, value: Any) -> str:
        """A pair element as Python source: texts quoted (saved media by URL), other objects by a short description."""
        if isinstance(value, (str, list, dict)):
            return self._format_snippet_value(value)
        return f"<{type(value).__name__}>"

    def generate_usage_snippet(self) -> str:
        """Load the model with embedforge, ``predict`` the usage pairs, and (one label, text only) ``rank`` them."""
        pairs = self.usage_examples_display or self.usage_examples or [list(pair) for pair in DEFAULT_PAIRS]
        num_labels = getattr(self.model, "num_labels", 1) if self.model is not None else 1
        model_path = self.model_id or sections.PLACEHOLDER_MODEL_PATH
        lines = ["from embedforge import CrossEncoder", ""]
        lines += [f'model = CrossEncoder("{model_path}")', "", "pairs = ["]
        lines += [f"    [{self._pair_value(first)}, {self._pair_value(second)}]," for first, second in pairs]
        shape = f"# ({len(pairs)},)" if num_labels == 1 else f"# ({len(pairs)}, {num_labels})"
        lines += ["]", "scores = model.predict(pairs)", "print(scores.shape)", shape]
        if self.similarities and self.usage_examples_display is None:
            lines += ["print(scores)", self.similarities]
        # Judge by the originals: the display turns saved media into path strings, and rank takes texts only.
        originals = self.usage_examples or pairs
        text_only = all(isinstance(value, str) for pair in originals for value in pair)
        if num_labels == 1 and text_only and pairs:
            query = pairs[0][0]
            lines += [
                "",
                "# Or rank documents by their score against one query",
                "ranks = model.rank(",
                f"    {query!r},",
                "    [",
            ]
            lines += [f"        {document!r}," for _, document in pairs]
            lines += ["    ],", ")", "# [{'corpus_id': ..., 'score': ...}, {'corpus_id': ..., 'score': ...}, ...]"]
        return code_block("\n".join(lines), "python")


if TYPE_CHECKING:
    from embedforge.base.model_card.callback import ModelCardCallback as CrossEncoderModelCardCallback


def __getattr__(name: str) -> Any:
    # The callback imports transformers' Trainer machinery, which `import embedforge` should not pay for.
    if name == "CrossEncoderModelCardCallback":
        from embedforge.base.model_card.callback import ModelCardCallback

        return ModelCardCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_model_card(
    model: Any, folder: str, model_name: str | None = None, train_datasets: list[str] | None = None
) -> None:
    """Write README.md for a CrossEncoder into ``folder`` (see :func:`embedforge.base.model_card.render.write_model_card`)."""
    write_card(model, folder, model_name, train_datasets, card_data_class=CrossEncoderModelCardData)


__all__ = [
    "CrossEncoderModelCardCallback",
    "CrossEncoderModelCardData",
    "generate_model_card",
    "write_model_card",
]
