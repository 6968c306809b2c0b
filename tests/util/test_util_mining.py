"""paraphrase_mining, community_detection and mine_hard_negatives against sentence-transformers and by hand."""

from __future__ import annotations

import csv
import random
from typing import Any

import pytest
import torch

from conftest import load_st_util_module, shared_path
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import (
    community_detection,
    cos_sim,
    dot_score,
    manhattan_sim,
    paraphrase_mining_embeddings,
)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def assert_same_pairs(ours: list[list[Any]], theirs: list[list[Any]], tol: float = 1e-6) -> None:
    """Same pairs with the same scores; order may differ only between pairs whose scores differ by float noise."""
    assert len(ours) == len(theirs)
    assert [pytest.approx(p[0], rel=tol, abs=tol) for p in ours] == [p[0] for p in theirs]
    theirs_by_pair = {(i, j): score for score, i, j in theirs}
    assert {(i, j) for _, i, j in ours} == set(theirs_by_pair)
    for score, i, j in ours:
        assert i < j
        assert score == pytest.approx(theirs_by_pair[(i, j)], rel=tol, abs=tol)


# -- paraphrase mining -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def st_retrieval() -> Any:
    return load_st_util_module("retrieval")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"top_k": 5, "max_pairs": 100},
        {"top_k": 3, "max_pairs": 57, "query_chunk_size": 37, "corpus_chunk_size": 101},
        {"top_k": 1, "max_pairs": 10_000, "query_chunk_size": 1},
        {"top_k": 10, "max_pairs": 300, "score_function": "dot"},
        {"top_k": 4, "max_pairs": 200, "score_function": "manhattan", "corpus_chunk_size": 50},
        {"top_k": 4, "max_pairs": 150, "score_function": "custom", "corpus_chunk_size": 77},
    ],
)
def test_paraphrase_mining_embeddings_matches_sentence_transformers(st_retrieval: Any, kwargs: dict[str, Any]) -> None:
    embeddings = _randn(300, 16)
    functions = {
        "dot": (dot_score, st_retrieval.dot_score),
        "manhattan": (manhattan_sim, manhattan_sim),
        # Not one of the built-ins: runs through the torch fallback.
        "custom": ((lambda a, b: -torch.cdist(a, b)),) * 2,
    }
    ours_kwargs, theirs_kwargs = dict(kwargs), dict(kwargs)
    if "score_function" in kwargs:
        ours_kwargs["score_function"], theirs_kwargs["score_function"] = functions[kwargs["score_function"]]
    ours = paraphrase_mining_embeddings(embeddings, **ours_kwargs)
    theirs = st_retrieval.paraphrase_mining_embeddings(embeddings, **theirs_kwargs)
    assert_same_pairs(ours, theirs)


def test_paraphrase_mining_by_hand_with_ties() -> None:
    # Rows 0, 1 and 3 are the same direction (cosine 1 with each other); row 2 is orthogonal.
    embeddings = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    pairs = paraphrase_mining_embeddings(embeddings, top_k=1)
    # Each row keeps one neighbour, ties to the lower index: 0->1, 1->0 (dup), 2->0, 3->0.
    assert pairs == [[1.0, 0, 1], [1.0, 0, 3], [0.0, 0, 2]]
    # Chunking does not change which tied neighbour wins.
    for query_chunk_size, corpus_chunk_size in ((1, 1), (3, 2), (2, 3)):
        assert (
            paraphrase_mining_embeddings(
                embeddings, top_k=1, query_chunk_size=query_chunk_size, corpus_chunk_size=corpus_chunk_size
            )
            == pairs
        )
        assert (
            paraphrase_mining_embeddings(
                embeddings,
                top_k=1,
                query_chunk_size=query_chunk_size,
                corpus_chunk_size=corpus_chunk_size,
                score_function=lambda a, b: cos_sim(a, b),
            )
            == pairs
        )
    # With max_pairs=2 the heap evicts (0, 2), then (0, 1) for (1, 3); afterwards nothing scoring
    # at most the last evicted score (1.0) gets in, so (0, 1) does not come back from row 3.
    assert paraphrase_mining_embeddings(embeddings, max_pairs=2) == [[1.0, 0, 3], [1.0, 1, 3]]
    # top_k=0 or max_pairs=0 mine nothing.
    assert paraphrase_mining_embeddings(embeddings, top_k=0) == []
    assert paraphrase_mining_embeddings(embeddings, max_pairs=0) == []
    assert paraphrase_mining_embeddings(torch.zeros(0, 4)) == []


def test_paraphrase_mining_with_duplicates_matches_up_to_tie_order(st_retrieval: Any) -> None:
    base = _randn(40, 8, seed=3)
    embeddings = torch.cat([base, base[:15], base[5:10]])  # exact duplicates: exactly tied scores
    ours = paraphrase_mining_embeddings(embeddings, top_k=100, max_pairs=10**6)
    theirs = st_retrieval.paraphrase_mining_embeddings(embeddings, top_k=100, max_pairs=10**6)
    assert_same_pairs(ours, theirs)


def test_paraphrase_mining_errors() -> None:
    embeddings = _randn(5, 4)
    for name, value in (("top_k", -1), ("max_pairs", -2), ("query_chunk_size", 0), ("corpus_chunk_size", 1.5)):
        with pytest.raises(InvalidArgumentError, match=name):
            paraphrase_mining_embeddings(embeddings, **{name: value})
    with pytest.raises(InvalidArgumentError, match="2-D"):
        paraphrase_mining_embeddings(torch.zeros(3, 2, 2))


def bert_static_models(seed: int = 0, dim: int = 32) -> tuple[Any, Any]:
    """The same random StaticEmbedding over the bert-base-uncased vocabulary, in embedforge and in sentence-transformers.

    Real text is mostly unknown to conftest's small word-level vocabulary, which makes many texts
    embed identically; the full WordPiece vocabulary keeps real texts apart.
    """
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic
    from tokenizers import Tokenizer

    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.modules import StaticEmbedding

    tokenizer_path = str(shared_path("tokenizers", "bert-base-uncased.json"))
    vocab_size = Tokenizer.from_file(tokenizer_path).get_vocab_size()
    weights = torch.randn(vocab_size, dim, generator=torch.Generator().manual_seed(seed))
    ours = SentenceTransformer(
        modules=[StaticEmbedding(Tokenizer.from_file(tokenizer_path), embedding_weights=weights.clone())]
    )
    theirs = StModel(
        modules=[StStatic(Tokenizer.from_file(tokenizer_path), embedding_weights=weights.clone())], device="cpu"
    )
    return ours, theirs


def quora_sentences(pairs: int) -> list[str]:
    path = shared_path("quora-duplicates", "quora-dev.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1 : pairs + 1]
    return list(dict.fromkeys(text for row in rows for text in (row[2], row[3])))


def test_paraphrase_mining_with_models_on_quora(st_retrieval: Any) -> None:
    from embedforge.util import paraphrase_mining

    sentences = quora_sentences(120)
    ours_model, st_model = bert_static_models(seed=1)
    ours = paraphrase_mining(ours_model, sentences, top_k=5, max_pairs=400, batch_size=16)
    theirs = st_retrieval.paraphrase_mining(st_model, sentences, top_k=5, max_pairs=400, batch_size=16)
    assert len(ours) == 400
    assert_same_pairs(ours, theirs, tol=1e-5)


# -- community detection -----------------------------------------------------------------------------


def _clustered(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(20, 16, generator=generator)
    points = torch.cat([centres[i] + 0.3 * torch.randn(5 + 3 * i, 16, generator=generator) for i in range(20)])
    return points[torch.randperm(len(points), generator=generator)]


@pytest.mark.parametrize(
    ("threshold", "min_community_size", "batch_size"),
    [(0.75, 10, 1024), (0.8, 5, 64), (0.6, 20, 100), (0.9, 2, 29), (0.5, 60, 33)],
)
def test_community_detection_matches_sentence_transformers(
    st_retrieval: Any, threshold: float, min_community_size: int, batch_size: int
) -> None:
    points = _clustered()
    ours = community_detection(points, threshold, min_community_size, batch_size)
    theirs = st_retrieval.community_detection(points, threshold, min_community_size, batch_size)
    assert ours == theirs
    assert ours  # the case finds communities
    # numpy input gives the same result
    assert community_detection(points.numpy(), threshold, min_community_size, batch_size) == ours


def test_community_detection_large_community_needs_wider_fetch(st_retrieval: Any) -> None:
    # One community of 150 rows: more than the first fetch (50), so the fetch must widen.
    points = torch.cat([torch.ones(1, 8) + 0.05 * _randn(150, 8, seed=1), _randn(30, 8, seed=2)])
    ours = community_detection(points, threshold=0.9, min_community_size=3)
    theirs = st_retrieval.community_detection(points, threshold=0.9, min_community_size=3)
    assert ours == theirs
    assert len(ours[0]) >= 150


def test_community_detection_by_hand() -> None:
    # Two tight groups (rows 0-2 along x, rows 3-4 along y) and one loner; ties go to the lower index.
    points = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.01], [0.0, 1.0], [0.0, 2.0], [-1.0, -1.0]])
    assert community_detection(points, threshold=0.9, min_community_size=2) == [[0, 1, 2], [3, 4]]
    assert community_detection(points, threshold=0.9, min_community_size=3) == [[0, 1, 2]]
    assert community_detection(points, threshold=0.9, min_community_size=7) == []
    assert community_detection(torch.zeros(0, 2)) == []
    assert community_detection(torch.tensor([1.0, 0.0]), min_community_size=1) == [[0]]


def test_community_detection_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="min_community_size"):
        community_detection(_randn(4, 2), min_community_size=0)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        community_detection(_randn(4, 2), batch_size=0)


# -- mine_hard_negatives -----------------------------------------------------------------------------


class _CardData:
    base_model = "fake/model"


class VectorModel:
    """A stand-in embedding model with fixed vectors per text, usable by both libraries.

    A prompt adds a fixed vector, so prompts change the search; ``similarity`` functions are
    passed in so the sentence-transformers run uses its own formulas.
    """

    def __init__(self, table: dict[str, torch.Tensor], similarity: Any, similarity_pairwise: Any) -> None:
        self.table = table
        self.prompt_vector = _randn(next(iter(table.values())).shape[0], seed=99)
        self._similarity = similarity
        self._similarity_pairwise = similarity_pairwise
        self.similarity_fn_name = "cosine"
        self.model_card_data = _CardData()
        self.device = torch.device("cpu")
        self.encoded: list[int] = []

    def get_embedding_dimension(self) -> int:
        return int(self.prompt_vector.shape[0])

    def _encode(self, texts: list[str], prompt: str | None = None, normalize_embeddings: bool = False, **_: Any) -> Any:
        self.encoded.append(len(texts))
        rows = torch.stack([self.table[t] + (self.prompt_vector if prompt else 0) for t in texts])
        if normalize_embeddings:
            rows = torch.nn.functional.normalize(rows, dim=1)
        return rows.numpy()

    encode_query = _encode
    encode_document = _encode

    def similarity(self, a: Any, b: Any) -> torch.Tensor:
        return self._similarity(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> torch.Tensor:
        return self._similarity_pairwise(a, b)


class FakeCrossEncoder:
    """A scorer with CrossEncoder.predict's signature: a fixed function of the two texts."""

    def __init__(self, table: dict[str, torch.Tensor]) -> None:
        self.table = table
        self.calls = 0

    def predict(
        self, pairs: list[tuple[str, str]], batch_size: int = 32, convert_to_tensor: bool = False, **_: Any
    ) -> Any:
        self.calls += 1
        left = torch.stack([self.table[a] for a, _ in pairs])
        right = torch.stack([self.table[b] for _, b in pairs])
        scores = torch.sigmoid((left * right).sum(dim=1) / 4)
        return scores if convert_to_tensor else scores.numpy()


def mining_data() -> tuple[dict[str, list[str]], list[str], dict[str, torch.Tensor]]:
    """(anchor, positive) rows with repeated anchors and shared positives, an extra corpus, and their vectors."""
    generator = torch.Generator().manual_seed(7)
    dim = 12
    anchors = [f"query {i}" for i in range(40)]
    table = {a: torch.randn(dim, generator=generator) for a in anchors}
    rows: dict[str, list[str]] = {"query": [], "answer": []}
    for i, anchor in enumerate(anchors):
        for p in range(1 + (i % 3 == 0) + (i % 7 == 0)):  # 1 to 3 positives
            positive = f"answer {i}.{p}"
            table[positive] = table[anchor] + 0.8 * torch.randn(dim, generator=generator)
            rows["query"].append(anchor)
            rows["answer"].append(positive)
    rows["query"].append(anchors[1])  # a duplicated row
    rows["answer"].append("answer 1.0")
    rows["query"].append(anchors[2])  # a positive shared with another anchor
    rows["answer"].append("answer 5.0")
    extra = [f"passage {i}" for i in range(80)]
    for text in extra:
        table[text] = torch.randn(dim, generator=generator)
    return rows, extra, table


def assert_same_dataset(ours: Any, theirs: Any, tol: float = 1e-6) -> None:
    assert ours.column_names == theirs.column_names
    assert len(ours) == len(theirs)
    for column in ours.column_names:
        a, b = ours[column], theirs[column]
        if column in ("scores", "score"):
            assert (
                a == pytest.approx(b, abs=tol)
                if column == "score"
                else all(x == pytest.approx(y, abs=tol) for x, y in zip(a, b))
            )
        else:
            assert a == b, column


HARD_NEGATIVE_CASES = [
    {},
    {"num_negatives": 5, "range_min": 3, "range_max": 30},
    {"absolute_margin": 0.1},
    {"relative_margin": 0.05, "num_negatives": 4},
    {"margin": 0.0},
    {"max_score": 0.5, "min_score": 0.05},
    {"min_score": 0.3, "range_max": 12},
    {"sampling_strategy": "random", "relative_margin": 0.1, "num_negatives": 4},
    {"sampling_strategy": "random", "range_min": 2, "range_max": 25, "num_negatives": 6},
    {"output_format": "n-tuple", "num_negatives": 4},
    {"output_format": "n-tuple", "output_scores": True, "max_score": 0.4},
    {"output_format": "n-tuple-scores"},
    {"output_format": "labeled-pair", "absolute_margin": 0.05},
    {"output_format": "labeled-pair", "output_scores": True},
    {"output_format": "labeled-list", "max_score": 0.45},
    {"output_format": "labeled-list", "output_scores": True, "num_negatives": 5},
    {"output_scores": True, "relative_margin": 0.0},
    {"as_triplets": False},
    {"include_positives": True, "num_negatives": 4},
    {"include_positives": True, "output_format": "labeled-list", "output_scores": True},
    {"corpus": "extra", "num_negatives": 4, "absolute_margin": 0.02},
    {"corpus": "extra", "query_prompt": "query: ", "corpus_prompt_name": "document"},
    {"use_faiss": True, "faiss_batch_size": 7, "relative_margin": 0.05},
    {"faiss_batch_size": 3, "num_negatives": 2},
    {"cross_encoder": True, "max_score": 0.8},
    {"cross_encoder": True, "relative_margin": 0.02, "output_format": "n-tuple", "output_scores": True},
    {"cross_encoder": True, "num_negatives": 2},  # no filter: the cross-encoder is not used
    {"range_max": 300, "num_negatives": 100, "corpus": "extra"},  # more candidates than the corpus holds
]


@pytest.mark.parametrize("options", HARD_NEGATIVE_CASES)
def test_mine_hard_negatives_matches_sentence_transformers(options: dict[str, Any]) -> None:
    st_hard = load_st_util_module("hard_negatives")
    st_similarity = load_st_util_module("similarity")
    from datasets import Dataset

    from embedforge.util import mine_hard_negatives, pairwise_cos_sim

    rows, extra, table = mining_data()
    dataset = Dataset.from_dict(rows)
    ours_kwargs, theirs_kwargs = dict(options), dict(options)
    if options.get("corpus") == "extra":
        ours_kwargs["corpus"] = theirs_kwargs["corpus"] = extra
    if options.get("cross_encoder"):
        ours_kwargs["cross_encoder"] = FakeCrossEncoder(table)
        theirs_kwargs["cross_encoder"] = FakeCrossEncoder(table)
    ours_model = VectorModel(table, cos_sim, pairwise_cos_sim)
    theirs_model = VectorModel(table, st_similarity.cos_sim, st_similarity.pairwise_cos_sim)

    random.seed(1234)
    ours = mine_hard_negatives(dataset, ours_model, verbose=False, **ours_kwargs)
    random.seed(1234)
    theirs = st_hard.mine_hard_negatives(dataset, theirs_model, verbose=False, **theirs_kwargs)
    assert len(ours) > 0
    assert_same_dataset(ours, theirs)
    if options.get("cross_encoder") and len(options) == 2 and "num_negatives" in options:
        assert ours_kwargs["cross_encoder"].calls == 0


def test_mine_hard_negatives_by_hand() -> None:
    from datasets import Dataset

    from embedforge.util import mine_hard_negatives, pairwise_cos_sim

    # Anchor "a" is closest to its positive "p", then to "n1" then "n2"; "x" is orthogonal.
    table = {
        "a": torch.tensor([1.0, 0.0]),
        "p": torch.tensor([1.0, 0.1]),
        "b": torch.tensor([0.0, 1.0]),
        "q": torch.tensor([0.1, 1.0]),
        "n1": torch.tensor([1.0, 0.3]),
        "n2": torch.tensor([1.0, 0.6]),
    }
    model = VectorModel(table, cos_sim, pairwise_cos_sim)
    dataset = Dataset.from_dict({"anchor": ["a", "b"], "positive": ["p", "q"]})
    out = mine_hard_negatives(dataset, model, corpus=["n1", "n2"], num_negatives=1, verbose=False)
    assert out.to_dict() == {"anchor": ["a", "b"], "positive": ["p", "q"], "negative": ["n1", "n2"]}
    # max_score removes n1 for "a" (cos 0.958); "b"'s best negative is p (cos 0.1).
    out = mine_hard_negatives(dataset, model, corpus=["n1", "n2"], num_negatives=1, max_score=0.9, verbose=False)
    assert out["negative"] == ["n2", "n2"]


def test_mine_hard_negatives_cache(tmp_path: Any) -> None:
    from datasets import Dataset

    from embedforge.util import mine_hard_negatives, pairwise_cos_sim

    rows, extra, table = mining_data()
    dataset = Dataset.from_dict(rows)
    model = VectorModel(table, cos_sim, pairwise_cos_sim)
    first = mine_hard_negatives(dataset, model, corpus=extra, cache_folder=str(tmp_path), verbose=False)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(name.endswith(".npy") for name in files)
    encoded = len(model.encoded)
    second = mine_hard_negatives(dataset, model, corpus=extra, cache_folder=str(tmp_path), verbose=False)
    assert len(model.encoded) == encoded  # both read from the cache
    assert first.to_dict() == second.to_dict()
    # Another prompt is another cache entry for the queries only.
    mine_hard_negatives(dataset, model, corpus=extra, cache_folder=str(tmp_path), query_prompt="q: ", verbose=False)
    assert len(list(tmp_path.iterdir())) == 3
    # sentence-transformers finds the same files (same hashes) and reads them back.
    st_hard = load_st_util_module("hard_negatives")
    theirs = st_hard.mine_hard_negatives(dataset, model, corpus=extra, cache_folder=str(tmp_path), verbose=False)
    assert len(model.encoded) == encoded + 1
    assert_same_dataset(first, theirs)


def test_mine_hard_negatives_with_static_models_on_snli() -> None:
    import json

    from datasets import Dataset

    from embedforge.util import mine_hard_negatives

    st_hard = load_st_util_module("hard_negatives")
    with open(shared_path("snli-sample", "snli_1.0_dev.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    pairs = [(r["sentence1"], r["sentence2"]) for r in records if r["gold_label"] == "entailment"][:150]
    dataset = Dataset.from_dict({"premise": [p for p, _ in pairs], "hypothesis": [h for _, h in pairs]})
    ours_model, st_model = bert_static_models(seed=3)
    for options in ({"relative_margin": 0.05, "num_negatives": 3}, {"output_format": "n-tuple", "range_min": 2}):
        ours = mine_hard_negatives(dataset, ours_model, verbose=False, **options)
        theirs = st_hard.mine_hard_negatives(dataset, st_model, verbose=False, **options)
        assert len(ours) > 0
        assert_same_dataset(ours, theirs, tol=1e-5)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        # sentence-transformers' wording, which scripts match on
        ({"num_negatives": 0}, "num_negatives must be at least 1, got num_negatives=0"),
        ({"range_min": -1}, "range_min must be non-negative, got range_min=-1"),
        ({"range_min": 5, "range_max": 5}, "range_min must be smaller than range_max, got range_min=5 and range_max=5"),
        ({"range_min": 2, "range_max": 4, "num_negatives": 3}, "Cannot mine 3 negatives per query: only 2 candidates"),
        ({"output_format": "pairs"}, "output_format"),
        ({"sampling_strategy": "best"}, "sampling_strategy"),
        ({"faiss_batch_size": 0}, "faiss_batch_size"),
        ({"anchor_column_name": "question"}, "question"),
    ],
)
def test_mine_hard_negatives_errors(options: dict[str, Any], match: str) -> None:
    from datasets import Dataset

    from embedforge.util import mine_hard_negatives, pairwise_cos_sim

    rows, _, table = mining_data()
    model = VectorModel(table, cos_sim, pairwise_cos_sim)
    with pytest.raises(InvalidArgumentError, match=match):
        mine_hard_negatives(Dataset.from_dict(rows), model, verbose=False, **options)


def test_mine_hard_negatives_rejects_empty_and_single_column() -> None:
    from datasets import Dataset

    from embedforge.util import mine_hard_negatives, pairwise_cos_sim

    _, _, table = mining_data()
    model = VectorModel(table, cos_sim, pairwise_cos_sim)
    with pytest.raises(InvalidArgumentError, match="empty"):
        mine_hard_negatives(Dataset.from_dict({"query": [], "answer": []}), model)
    with pytest.raises(InvalidArgumentError, match="at least two"):
        mine_hard_negatives(Dataset.from_dict({"query": ["query 0"]}), model)


def test_mine_hard_negatives_without_pool_support_and_numpy_scorer(caplog: pytest.LogCaptureFixture) -> None:
    from datasets import Dataset

    from embedforge.util import mine_hard_negatives, pairwise_cos_sim

    rows, _, table = mining_data()
    dataset = Dataset.from_dict(rows)
    model = VectorModel(table, cos_sim, pairwise_cos_sim)
    expected = mine_hard_negatives(dataset, model, cross_encoder=FakeCrossEncoder(table), max_score=0.8, verbose=False)

    class NumpyScorer(FakeCrossEncoder):
        def predict(self, pairs: list[tuple[str, str]], batch_size: int = 32, **_: Any) -> Any:
            return super().predict(pairs, batch_size, convert_to_tensor=True).tolist()  # a plain list

    with caplog.at_level("WARNING"):
        out = mine_hard_negatives(
            dataset, model, cross_encoder=NumpyScorer(table), max_score=0.8, use_multi_process=True, verbose=False
        )
    assert "use_multi_process" in caplog.text  # the model cannot start a pool: said, then encoded here
    assert out.to_dict() == expected.to_dict()
