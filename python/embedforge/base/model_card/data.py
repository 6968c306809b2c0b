"""What the model card knows: user-given facts plus what training, evaluation and saving record."""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from copy import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from embedforge.base.model_card import dataset_stats, media, sections, video
from embedforge.base.model_card.markdown import join_names
from embedforge.base.model_card.metadata import card_metadata, metadata_yaml
from embedforge.exceptions import InvalidArgumentError

logger = logging.getLogger(__name__)

#: Every card cites the Sentence-BERT paper: the model folder format and the training recipe come from it.
SBERT_CITATION = """
@inproceedings{reimers-2019-sentence-bert,
    title = "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing",
    month = "11",
    year = "2019",
    publisher = "Association for Computational Linguistics",
    url = "https://arxiv.org/abs/1908.10084",
}
"""

#: Texts for the usage snippet when no dataset gave better ones.
DEFAULT_USAGE_EXAMPLES = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
]
#: Query first, then documents: the snippet of a retrieval model.
DEFAULT_IR_USAGE_EXAMPLES = [
    "Which planet is known as the Red Planet?",
    "Venus is often called Earth's twin because of its similar size and proximity.",
    "Mars, known for its reddish appearance, is often referred to as the Red Planet.",
    "Saturn, famous for its rings, is sometimes mistaken for the Red Planet.",
]
#: Rows looked at when picking widget examples (short rows make readable examples).
WIDGET_CANDIDATE_ROWS = 1000
#: Number of widget examples.
WIDGET_EXAMPLES = 5
#: Media usage examples taken from the data for a model that takes more than text.
MULTIMODAL_EXAMPLES = 3
#: Rows searched for distinct media usage examples.
MULTIMODAL_CANDIDATE_ROWS = 100
#: Prompt names that mark a model as a query/document (retrieval) model.
IR_PROMPT_NAMES = ("query", "document", "passage", "corpus")
#: Column names that mark a training set as retrieval data.
IR_COLUMN_NAMES = {"query", "question"}
#: A Hugging Face Hub id: ``owner/name`` (the only base_model form the YAML header may carry).
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def get_losses(loss: Any) -> list[Any]:
    """The loss modules in use: each given loss, plus the losses they wrap (``.loss``, regularisers)."""
    losses = list(loss.values()) if isinstance(loss, dict) else [loss]
    index = 0
    while index < len(losses):
        for attribute in ("loss", "document_regularizer", "query_regularizer"):
            inner = getattr(losses[index], attribute, None)
            if inner is not None and all(inner is not known for known in losses):
                losses.append(inner)
        index += 1
    return losses


@dataclass
class BaseModelCardData:
    """Facts for the README.md written with every saved model.

    Set the first block yourself (as in sentence-transformers) by passing an instance as
    ``SentenceTransformer(..., model_card_data=...)``; the trainer's :class:`ModelCardCallback`
    and the evaluators fill the rest. Nothing here contacts the Hugging Face Hub: dataset and
    base-model ids are recorded as given.

    Args:
        language: language code(s) of the model, e.g. ``"en"`` or ``["en", "de"]``.
        license: license identifier, e.g. ``"apache-2.0"``.
        model_name: the card's title; defaults to "SentenceTransformer based on <base model>".
        model_id: the ``owner/name`` the model is published under (used in the usage snippet).
        train_datasets: one dict per training dataset, e.g. ``[{"name": "SNLI", "id": "stanfordnlp/snli"}]``.
        eval_datasets: same, for the evaluation datasets.
        task_name: what the model is for, in words.
        tags: tags of the YAML header.
        local_files_only: kept for compatibility: embedforge never looks anything up online.
        generate_widget_examples: pick example texts from the data and show their similarities.
    """

    language: str | list[str] | None = field(default_factory=list)
    license: str | None = None
    model_name: str | None = None
    model_id: str | None = None
    train_datasets: list[dict[str, Any]] = field(default_factory=list)
    eval_datasets: list[dict[str, Any]] = field(default_factory=list)
    task_name: str = (
        "semantic textual similarity, semantic search, paraphrase mining, classification, clustering, and more"
    )
    tags: list[str] = field(
        default_factory=lambda: ["sentence-transformers", "sentence-similarity", "feature-extraction", "dense"]
    )
    local_files_only: bool = False
    generate_widget_examples: bool = True

    # Filled by the trainer, the callback, the evaluators and the model.
    base_model: str | None = field(default=None, init=False)
    base_model_revision: str | None = field(default=None, init=False)
    non_default_hyperparameters: dict[str, Any] = field(default_factory=dict, init=False)
    all_hyperparameters: dict[str, Any] = field(default_factory=dict, init=False)
    eval_results_dict: dict[Any, dict[str, Any]] = field(default_factory=dict, init=False)
    training_logs: list[dict[str, Any]] = field(default_factory=list, init=False)
    widget: list[dict[str, Any]] = field(default_factory=list, init=False)
    usage_examples: list[Any] | None = field(default=None, init=False)
    #: The usage examples as the snippet shows them: media replaced by the paths they were saved to.
    usage_examples_display: list[Any] | None = field(default=None, init=False, repr=False)
    #: The folder the card is being written to (set while saving); media assets go to its ``assets/``.
    save_dir: str | None = field(default=None, init=False, repr=False)
    citations: dict[str, str] = field(default_factory=dict, init=False)
    best_model_step: int | None = field(default=None, init=False)
    ir_model: bool | None = field(default=None, init=False, repr=False)
    datasets: list[str] = field(default_factory=list, init=False, repr=False)
    similarities: str | None = field(default=None, init=False, repr=False)
    evaluation_duration: float = field(default=0.0, init=False, repr=False)
    pipeline_tag: str = field(default="sentence-similarity", init=False)
    # Model folders are sentence-transformers folders: the Hub should treat them as such.
    library_name: str = field(default="sentence-transformers", init=False)
    model: Any = field(default=None, init=False, repr=False)
    source_card_text: str | None = field(default=None, init=False, repr=False)
    _training_start_time: float | None = field(default=None, init=False, repr=False)
    # Content hash -> asset path already written during this save (identical media share one file).
    _asset_cache: dict[int, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.language is None:
            self.language = []
        elif isinstance(self.language, str):
            self.language = [self.language]
        if not isinstance(self.language, list) or not all(isinstance(code, str) for code in self.language):
            raise InvalidArgumentError(f"language must be a string or a list of strings, got {self.language!r}")
        if isinstance(self.tags, str):
            self.tags = [self.tags]
        self.tags = list(self.tags or [])
        self.train_datasets = self.validate_datasets(self.train_datasets, "train_datasets")
        self.eval_datasets = self.validate_datasets(self.eval_datasets, "eval_datasets")
        if self.model_id is not None and self.model_id.count("/") != 1:
            logger.warning("model_id=%r should be 'owner/name' (e.g. 'my-org/my-model'); ignoring it", self.model_id)
            self.model_id = None

    # -- datasets ----------------------------------------------------------------------------------

    def validate_datasets(self, dataset_list: Any, argument: str = "datasets") -> list[dict[str, Any]]:
        """Check a list of dataset dicts; a dict with only an ``id`` gets it as its ``name`` too."""
        if dataset_list is None:
            return []
        if not isinstance(dataset_list, list) or not all(isinstance(entry, dict) for entry in dataset_list):
            raise InvalidArgumentError(
                f"{argument} must be a list of dicts such as [{{'name': 'SNLI', 'id': 'stanfordnlp/snli'}}], "
                f"got {dataset_list!r}"
            )
        for entry in dataset_list:
            if "name" not in entry and "id" in entry:
                entry["name"] = entry["id"]
            if entry.get("id") and entry["id"] not in self.datasets:
                self.datasets.append(entry["id"])
        return dataset_list

    def infer_datasets(self, dataset: Any, dataset_name: str | None = None) -> list[dict[str, Any]]:
        """Name and split of a ``datasets`` object (one entry per part of a DatasetDict)."""
        if isinstance(dataset, dict):
            return [entry for name, part in dataset.items() for entry in self.infer_datasets(part, dataset_name=name)]
        # fit()'s wrapper names its datasets "_dataset_<n>"; that is no name worth showing.
        if dataset_name and re.fullmatch(r"_dataset_\d+", dataset_name):
            dataset_name = None
        info = getattr(dataset, "info", None)
        entry: dict[str, Any] = {"name": dataset_name or getattr(info, "dataset_name", None)}
        split = getattr(dataset, "split", None)
        if split is not None:
            entry["split"] = str(split)
        return [entry]

    def compute_dataset_metrics(
        self,
        dataset: Any,
        dataset_info: dict[str, Any],
        loss: Any,
        router_mapping: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Add size, columns, column statistics, samples and loss description to ``dataset_info``.

        The statistics and samples also come as rendered Markdown (``stats_table``,
        ``examples_table``); with a ``save_dir``, media among the samples are saved as files.
        """
        dataset_info = dataset_stats.compute_dataset_metrics(
            dataset, dataset_info, loss, model=self.model, router_mapping=router_mapping
        )
        if dataset_info.get("stats"):
            dataset_info["stats_table"] = dataset_stats.stats_table(dataset_info)
        if dataset_info.get("examples"):
            dataset_info["examples_table"], _ = self._render_examples_table(dataset_info)
        return dataset_info

    def _render_examples_table(self, dataset_info: dict[str, Any], asset_counter: int = 0) -> tuple[str, int]:
        """The samples table of a dataset, saving its media when there is a ``save_dir``.

        Returns the table and the next free asset number, to pass on to the next dataset's table.
        """
        counter = asset_counter

        def cell(value: Any) -> str:
            nonlocal counter
            if media.is_saveable_example(value) and self.save_dir:
                text, counter = self._format_and_save_example(value, counter)
                return text
            return dataset_stats.code_cell(value)

        examples = dataset_info.get("examples")
        if isinstance(examples, dict):
            # sentence-transformers keeps the samples as columns ({"column": [values]}): turn them into rows.
            columns = dataset_info.get("_example_columns") or list(examples)
            count = min((len(examples[column]) for column in columns), default=0)
            dataset_info = {"examples": [{column: examples[column][row] for column in columns} for row in range(count)]}
        if not self.save_dir:
            return dataset_stats.samples_table(dataset_info), counter
        return dataset_stats.samples_table(dataset_info, format_cell=cell), counter

    def extract_dataset_metadata(
        self,
        dataset: Any,
        dataset_metadata: list[dict[str, Any]],
        loss: Any,
        dataset_type: Literal["train", "eval"],
        router_mapping: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Describe each (sub-)dataset the trainer got, keeping user-given names and ids when they line up."""
        router_mapping = router_mapping or {}
        if dataset:
            parts = list(dataset.items()) if isinstance(dataset, dict) else [(None, dataset)]
            if dataset_metadata and len(dataset_metadata) != len(parts):
                logger.warning(
                    "model_card_data.%s_datasets lists %d datasets but the trainer got %d; "
                    "describing the trainer's datasets instead",
                    dataset_type,
                    len(dataset_metadata),
                    len(parts),
                )
                dataset_metadata = []
            if not dataset_metadata:
                dataset_metadata = self.infer_datasets(dataset)
            per_dataset_mapping = isinstance(next(iter(router_mapping.values()), None), dict)
            described = []
            for (name, part), info in zip(parts, dataset_metadata):
                part_loss = loss[name] if isinstance(loss, dict) and name in loss else loss
                mapping = router_mapping.get(name, {}) if per_dataset_mapping else router_mapping
                described.append(self.compute_dataset_metrics(part, info, part_loss, router_mapping=mapping))
            dataset_metadata = described
            if dataset_type == "train" and self.ir_model is None:
                columns = {column for _, part in parts for column in (getattr(part, "column_names", None) or [])}
                if IR_COLUMN_NAMES & columns:
                    self.ir_model = True
        if dataset_type == "train":
            total = sum(entry.get("size", 0) or 0 for entry in dataset_metadata)
            if total:
                self.add_tags(f"dataset_size:{total}")
        return self.validate_datasets(dataset_metadata, f"{dataset_type}_datasets")

    # -- training ----------------------------------------------------------------------------------

    def set_losses(self, losses: list[Any]) -> None:
        """Record the losses: a ``loss:<Name>`` tag each, and their papers among the citations."""
        papers: dict[str, list[str]] = defaultdict(list)
        papers[SBERT_CITATION].append("Sentence Transformers")
        for loss in losses:
            # A citation property may fail on a half-configured loss; the card can do without it.
            try:
                citation = loss.citation
            except Exception:  # noqa: BLE001
                citation = None
            name = type(loss).__name__
            if citation and name not in papers[citation]:
                papers[citation].append(name)
        self.citations = {join_names(names): citation for citation, names in papers.items()}
        self.add_tags([f"loss:{name}" for name in dict.fromkeys(type(loss).__name__ for loss in losses)])

    def set_best_model_step(self, step: int) -> None:
        """Mark the training step whose checkpoint was kept (bold in the training logs)."""
        self.best_model_step = step

    def set_evaluation_metrics(self, evaluator: Any, metrics: dict[str, Any], epoch: int = 0, step: int = 0) -> None:
        """Keep an evaluator's latest metrics and log its primary metric(s) at ``step``.

        A SequentialEvaluator whose parts recorded themselves adds no table of its own (it would
        repeat theirs); its parts' primary metrics still go into the training logs.
        """
        sub_evaluators = getattr(evaluator, "evaluators", None)
        if sub_evaluators is None or not all(sub in self.eval_results_dict for sub in sub_evaluators):
            self.eval_results_dict[evaluator] = copy(metrics)
        primary = getattr(evaluator, "primary_metric", None)
        if not primary:
            return
        if sub_evaluators is not None:
            names = [getattr(sub, "primary_metric", None) for sub in sub_evaluators]
        else:
            names = [primary] if isinstance(primary, str) else list(primary)
        logged = {key: value for key, value in metrics.items() if key in names}
        self.add_training_log(epoch, step, logged)

    def add_training_log(self, epoch: float | None, step: int, values: dict[str, Any]) -> None:
        """Merge ``values`` into the training-log row of ``step`` (a new row when the last is another step)."""
        if self.training_logs and self.training_logs[-1]["Step"] == step:
            self.training_logs[-1].update(values)
        else:
            self.training_logs.append({"Epoch": epoch, "Step": step, **values})

    def set_widget_examples(self, dataset: Any) -> None:
        """Pick short rows of the data as usage examples (and Hub widget entries)."""
        parts = list(dataset.values()) if isinstance(dataset, dict) else [dataset]
        parts = [part for part in parts if dataset_stats.is_sized_dataset(part) and len(part) > 0]
        if not parts:
            # Streaming datasets cannot be sampled without consuming them.
            return
        generator = random.Random(0)
        self.widget = []
        for part_index in sorted(generator.choices(range(len(parts)), k=WIDGET_EXAMPLES)):
            try:
                self._add_widget_example(parts[part_index], generator)
            except Exception as error:  # noqa: BLE001 - e.g. a set_transform failing on these rows
                logger.warning("Model card: no usage examples from a dataset whose rows cannot be read: %r", error)
        modalities = getattr(self.model, "modalities", None) or []
        if any(modality not in ("text", "message") for modality in modalities):
            self._set_multimodal_usage_examples(dataset)

    def _set_multimodal_usage_examples(self, dataset: Any) -> None:
        """Use media from the data as usage examples when the model takes more than text.

        A model listing a combined modality (a tuple such as ``("image", "text")``) whose parts all
        have a column gets dicts with one value per part; otherwise the first non-text modality the
        model and the data share gives single media, duplicates skipped. Retrieval models take the
        query from the first column and three distinct documents from the second.
        """
        parts = list(dataset.values()) if isinstance(dataset, dict) else [dataset]
        first = parts[0] if parts else None
        if first is None or not dataset_stats.is_sized_dataset(first) or len(first) == 0:
            return
        columns = [column for column in first.column_names if column != dataset_stats.DATASET_NAME_COLUMN]
        if self.ir_model and len(columns) >= 2:
            documents = _distinct_values(first, columns[1], MULTIMODAL_EXAMPLES)
            self.usage_examples = [first[0][columns[0]], *documents]
            return

        column_modalities = _column_modalities(first)
        available = set(column_modalities.values())
        model_modalities = list(getattr(self.model, "modalities", None) or [])
        combined = next(
            (
                modality
                for modality in model_modalities
                if isinstance(modality, tuple) and all(part in available for part in modality)
            ),
            None,
        )
        if combined is not None:
            # The first column of each modality in the combination.
            chosen = {part: next(c for c, m in column_modalities.items() if m == part) for part in combined}
            rows = min(MULTIMODAL_EXAMPLES, len(first))
            self.usage_examples = [{part: first[row][column] for part, column in chosen.items()} for row in range(rows)]
            return
        for modality in model_modalities:
            if isinstance(modality, str) and modality not in ("text", "message") and modality in available:
                column = next(c for c, m in column_modalities.items() if m == modality)
                self.usage_examples = _distinct_values(first, column, MULTIMODAL_EXAMPLES)
                return

    def _add_widget_example(self, dataset: Any, generator: random.Random) -> None:
        columns = [
            column for column in dataset_stats.dataset_columns(dataset) if isinstance(dataset[0][column], (str, dict))
        ]
        if not columns:
            return
        picked = generator.sample(range(len(dataset)), k=min(WIDGET_CANDIDATE_ROWS, len(dataset)))
        if hasattr(dataset, "select"):
            # One batched read (through any set_transform) instead of a thousand row reads.
            batch = dataset.select(picked)[:]
            candidates: Iterable[Sequence[Any]] = zip(*(batch[column] for column in columns))
        else:
            candidates = ([dataset[index][column] for column in columns] for index in picked)
        rows = []
        for values in candidates:
            texts = [_first_text(value) for value in values]
            if all(isinstance(text, str) and text for text in texts):
                rows.append(texts)
        if not rows:
            return
        rows.sort(key=lambda texts: sum(len(text) for text in texts))
        chosen = len(self.widget) % len(rows)
        texts = list(rows[chosen])
        # Fill up to 4 texts from other short rows, preferring their second column (a document, not a query).
        for other in rows[:chosen] + rows[chosen + 1 :]:
            if len(texts) >= 4:
                break
            candidate = other[1] if len(other) > 1 else other[0]
            if candidate not in texts:
                texts.append(candidate)
        if len(texts) < 2:
            return
        self.widget.append({"source_sentence": texts[0], "sentences": texts[1:]})
        self.usage_examples = texts[:4]

    # -- evaluation --------------------------------------------------------------------------------

    def try_to_set_ir_model_from_evaluators(self) -> None:
        """A retrieval evaluator among the recorded ones marks the model as a retrieval model."""
        for evaluator in self.eval_results_dict:
            subs = getattr(evaluator, "evaluators", None) or [evaluator]
            if any(type(sub).__name__ in ("InformationRetrievalEvaluator", "NanoBEIREvaluator") for sub in subs):
                self.ir_model = True
                return

    # -- model -------------------------------------------------------------------------------------

    def register_model(self, model: Any) -> None:
        """Attach the model; its source folder becomes the base model and its README the reusable card."""
        self.model = model
        source = getattr(model, "_source_path", None)
        if source and self.base_model is None:
            self.base_model = os.fspath(source)
            readme = os.path.join(os.fspath(source), "README.md")
            if os.path.isfile(readme):
                with open(readme, encoding="utf-8") as f:
                    self.source_card_text = f.read()
        if self.base_model is None:
            # A StaticEmbedding distilled from a named model remembers that name.
            first = next(iter(model.children()), None) if hasattr(model, "children") else None
            first_base = getattr(first, "base_model", None)
            if first_base:
                self.base_model = str(first_base)
        if self.ir_model is None:
            has_router = any(type(module).__name__ == "Router" for module in model.children())
            has_ir_prompt = any(getattr(model, "prompts", {}).get(name) for name in IR_PROMPT_NAMES)
            if has_router or has_ir_prompt:
                self.ir_model = True

    def set_model_id(self, model_id: str) -> None:
        """Set the ``owner/name`` shown in the usage snippet."""
        self.model_id = model_id

    def set_base_model(self, model_id: str, revision: str | None = None) -> bool:
        """Record the model this one was finetuned from (a Hub id or a local path; nothing is looked up)."""
        self.base_model = os.fspath(model_id)
        self.base_model_revision = revision
        return True

    def set_language(self, language: str | list[str]) -> None:
        """Set the language code(s)."""
        self.language = [language] if isinstance(language, str) else list(language)

    def set_license(self, license: str) -> None:
        """Set the license identifier."""
        self.license = license

    def add_tags(self, tags: str | list[str]) -> None:
        """Add tag(s) not present yet, keeping order."""
        for tag in [tags] if isinstance(tags, str) else tags:
            if tag not in self.tags:
                self.tags.append(tag)

    def base_model_hub_id(self) -> str | None:
        """The base model when it names a Hub repository (a local folder is a path, not an id)."""
        if not self.base_model or os.path.exists(self.base_model) or not HUB_ID.match(self.base_model):
            return None
        return self.base_model

    def base_model_name(self) -> str | None:
        """A short name for the base model: its Hub id, else its own card's title, else its folder name."""
        if not self.base_model:
            return None
        if hub_id := self.base_model_hub_id():
            return hub_id
        if self.source_card_text and (title := card_title(self.source_card_text)):
            return title
        return os.path.basename(os.path.normpath(self.base_model))

    def get_default_model_name(self) -> str:
        """ "SentenceTransformer based on <base model name>", or the class name when there is no base."""
        model_class = type(self.model).__name__ if self.model is not None else "SentenceTransformer"
        base = self.base_model_name()
        return f"{model_class} based on {base}" if base else model_class

    # -- card-time computations ----------------------------------------------------------------------

    def run_usage_snippet(self) -> None:
        """Encode the usage examples and keep the printed similarity matrix for the snippet."""
        if self.usage_examples is None:
            self.usage_examples = list(DEFAULT_IR_USAGE_EXAMPLES if self.ir_model else DEFAULT_USAGE_EXAMPLES)
        if not self.generate_widget_examples or self.model is None:
            return
        import torch

        if self.ir_model:
            queries = self.model.encode_query(self.usage_examples[:1], convert_to_tensor=True, show_progress_bar=False)
            documents = self.model.encode_document(
                self.usage_examples[1:], convert_to_tensor=True, show_progress_bar=False
            )
            similarity = self.model.similarity(queries, documents)
        else:
            self.usage_examples = self.usage_examples[:3]
            embeddings = self.model.encode(self.usage_examples, convert_to_tensor=True, show_progress_bar=False)
            similarity = self.model.similarity(embeddings, embeddings)
        with torch._tensor_str.printoptions(precision=4, sci_mode=False):
            self.similarities = "\n".join(f"# {line}" for line in str(similarity.cpu()).splitlines())

    # -- the parts of the card that depend on the model kind ------------------------------------------

    def card_facts(self) -> dict[str, Any]:
        """What the card states about the model (``architecture`` is required; the rest is the kind's)."""
        return sections.embedding_facts(self)

    def card_intro(self, facts: dict[str, Any]) -> str:
        """The card's opening paragraph."""
        return sections.embedding_intro(self, facts)

    def card_details(self, facts: dict[str, Any]) -> list[str]:
        """The lines of the "Model Description" list."""
        return sections.embedding_details(self, facts)

    def card_usage(self) -> list[str]:
        """The lines of the "Usage" section."""
        return sections.usage_section(self, "SentenceTransformer", "embed some texts", "embeddings")

    def generate_usage_snippet(self) -> str:
        """The usage code block: load the model with embedforge and compare the usage examples.

        The examples shown are :attr:`usage_examples_display` when media were saved, else
        :attr:`usage_examples`, else a few default sentences.
        """
        display = self.usage_examples_display or self.usage_examples
        # Decide on the originals: the display turns media into path strings.
        source = self.usage_examples or display or []
        if display and any(not isinstance(item, (str, list)) for item in source):
            return self._generate_non_text_snippet(display)
        if not display:
            display = list(DEFAULT_IR_USAGE_EXAMPLES if self.ir_model else DEFAULT_USAGE_EXAMPLES)
        return sections.embedding_usage_snippet(self, display)

    # -- media in the card --------------------------------------------------------------------------

    @staticmethod
    def _is_typed_media_dict(item: Any) -> bool:
        """An audio or video sample dict, as opposed to a multimodal input dict."""
        return media.is_typed_media_dict(item)

    @staticmethod
    def _hash_asset(value: Any) -> int | None:
        """A content hash of a medium (None for values that are not saved as files)."""
        return media.asset_hash(value)

    @staticmethod
    def _format_example_value(value: Any) -> str:
        """One cell of the dataset samples table (media described, long values cut, Markdown escaped)."""
        return media.format_example_value(value)

    @staticmethod
    def _video_decoder_to_dict(value: Any) -> dict[str, Any]:
        """A video decoder's clip as ``{"array": frames, "video_metadata": {...}}`` (RuntimeError if undecodable)."""
        return video.to_video_dict(value)

    @staticmethod
    def _prepare_for_inference(value: Any) -> Any:
        """A usage example as the model takes it: video decoders decoded to frames, dicts value by value."""
        if video.is_video_decoder(value):
            return video.to_video_dict(value)
        if isinstance(value, dict):
            return {key: BaseModelCardData._prepare_for_inference(item) for key, item in value.items()}
        return value

    def _save_asset(self, value: Any, assets_dir: str, idx: int, prefix: str = "") -> str | None:
        """Write a medium to ``assets_dir`` (once per content) and return its ``assets/...`` path, or None."""
        return media.save_asset(value, assets_dir, idx, self._asset_cache, prefix=prefix)

    def _save_or_describe(self, value: Any, assets_dir: str, counter: int) -> tuple[Any, int]:
        """A text stays; a medium becomes its saved path (or ``<TypeName>`` if it cannot be saved)."""
        if isinstance(value, str):
            return value, counter
        content_hash = media.asset_hash(value)
        if content_hash is not None and content_hash in self._asset_cache:
            # Already written: reuse the file and keep the numbering free of gaps.
            return self._asset_cache[content_hash], counter
        path = self._save_asset(value, assets_dir, counter)
        if path is None:
            return f"<{type(value).__name__}>", counter
        return path, counter + 1

    def save_usage_example_assets(self) -> None:
        """Save the media among the usage examples to ``<save_dir>/assets`` and set :attr:`usage_examples_display`.

        The display examples have the structure of :attr:`usage_examples` with each medium replaced
        by its relative path (``"assets/image_0.jpg"``); texts stay. Nothing happens without a
        ``save_dir``, without usage examples, or when every example is text.
        """
        if not self.save_dir or not self.usage_examples:
            return
        if all(media.is_text_example(item) for item in self.usage_examples):
            return
        assets_dir = os.path.join(self.save_dir, "assets")
        counter = 0
        display: list[Any] = []
        for item in self.usage_examples:
            if media.is_text_example(item):
                display.append(item)
            elif isinstance(item, list):
                # A pair with a medium in it, e.g. [image, "caption"].
                shown = []
                for part in item:
                    value, counter = self._save_or_describe(part, assets_dir, counter)
                    shown.append(value)
                display.append(shown)
            elif isinstance(item, dict) and not media.is_typed_media_dict(item):
                shown_dict = {}
                for key, part in item.items():
                    shown_dict[key], counter = self._save_or_describe(part, assets_dir, counter)
                display.append(shown_dict)
            else:
                value, counter = self._save_or_describe(item, assets_dir, counter)
                display.append(value)
        self.usage_examples_display = display

    def _format_and_save_example(self, value: Any, counter: int) -> tuple[str, int]:
        """A samples-table cell: a saved medium as an inline tag (when saving), anything else as code."""
        if not media.is_saveable_example(value) or not self.save_dir:
            return f"<code>{media.format_example_value(value)}</code>", counter
        content_hash = media.asset_hash(value)
        if content_hash is not None and content_hash in self._asset_cache:
            return media.example_asset_html(value, self._asset_cache[content_hash]), counter
        path = self._save_asset(value, os.path.join(self.save_dir, "assets"), counter, prefix="example_")
        if path is None:
            return f"<code>{media.format_example_value(value)}</code>", counter
        return media.example_asset_html(value, path), counter + 1

    def _asset_path_to_url(self, relative_path: str) -> str:
        """Where a saved asset is reachable once the model is on the Hub (the relative path without model_id)."""
        if self.model_id:
            return f"https://huggingface.co/{self.model_id}/resolve/main/{relative_path}"
        return relative_path

    def _format_snippet_value(self, value: Any) -> str:
        """A value as Python source for the snippet: asset paths become URLs, containers are formatted item by item."""
        if isinstance(value, str) and value.startswith("assets/"):
            return repr(self._asset_path_to_url(value))
        if isinstance(value, dict):
            return "{" + ", ".join(f"{key!r}: {self._format_snippet_value(item)}" for key, item in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self._format_snippet_value(item) for item in value) + "]"
        return repr(value)

    def _generate_non_text_snippet(self, display: list[Any]) -> str:
        """The usage snippet for media inputs (single media or multimodal dicts)."""
        return sections.media_usage_snippet(self, [self._format_snippet_value(item) for item in display])

    def training_time(self) -> dict[str, float | None]:
        """Seconds spent training (without evaluation), evaluating, and in total; None before training."""
        if self._training_start_time is None:
            return {"training": None, "evaluation": None, "total": None}
        total = time.time() - self._training_start_time
        return {
            "training": total - self.evaluation_duration,
            "evaluation": self.evaluation_duration or None,
            "total": total,
        }

    def to_dict(self) -> dict[str, Any]:
        """The card's YAML header as a dict, plus the rendered ``usage_snippet``.

        Like rendering the card, this first lets the recorded evaluators mark a retrieval model and
        runs the usage examples through the model, so the snippet is the one the card would show.
        """
        if self.ir_model is None and self.eval_results_dict:
            self.try_to_set_ir_model_from_evaluators()
        try:
            self.run_usage_snippet()
        except Exception as error:  # noqa: BLE001 - the snippet is still useful without printed scores
            logger.warning("Could not run the model card's usage snippet: %s", error)
        return {**card_metadata(self), "usage_snippet": self.generate_usage_snippet()}

    def to_yaml(self, line_break: str | None = None) -> str:
        """The YAML header text (without the ``---`` fences)."""
        return metadata_yaml(card_metadata(self))


def card_title(card_text: str) -> str | None:
    """The first level-1 heading of a README, after its YAML header and outside code blocks."""
    lines = card_text.splitlines()
    if lines and lines[0].strip() == "---":
        closing = next((index for index, line in enumerate(lines[1:], 1) if line.strip() == "---"), 0)
        lines = lines[closing + 1 :]
    fenced = False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("# "):
            return line[2:].strip() or None
    return None


def _first_text(value: Any) -> Any:
    """Router-style training passes {route: text}; its text is what a reader wants to see."""
    if isinstance(value, dict):
        return next(iter(value.values()), None)
    return value


def _column_modalities(dataset: Any) -> dict[str, str]:
    """Column -> "text" / "image" / "audio" / "video", from the dataset's declared features."""
    found: dict[str, str] = {}
    for column, feature in (getattr(dataset, "features", None) or {}).items():
        if column == dataset_stats.DATASET_NAME_COLUMN:
            continue
        kind = type(feature).__name__
        if kind == "Value" and getattr(feature, "dtype", None) in ("string", "large_string"):
            found[column] = "text"
        elif kind in ("Image", "Audio", "Video"):
            found[column] = kind.lower()
    return found


def _distinct_values(dataset: Any, column: str, wanted: int) -> list[Any]:
    """Up to ``wanted`` values of ``column`` from the first rows, skipping repeats of the same content."""
    values: list[Any] = []
    seen: set[int] = set()
    for row in range(min(MULTIMODAL_CANDIDATE_ROWS, len(dataset))):
        value = dataset[row][column]
        content = hash(value) if isinstance(value, str) else media.asset_hash(value)
        if content is not None:
            if content in seen:
                continue
            seen.add(content)
        values.append(value)
        if len(values) >= wanted:
            break
    return values
