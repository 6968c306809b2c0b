"""embedforge.util.BM25 against BM25 written out in numpy, rank_bm25's BM25Okapi and bm25s' lucene
method; the analyzers (words, stop words, tokenizer.json), save/load, and its errors."""

from __future__ import annotations

import functools
import json
import os
import re
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from conftest import random_sentences, shared_path
from embedforge import _core
from embedforge.exceptions import (
    EmbedforgeError,
    InvalidArgumentError,
    ModelFormatError,
    ModelNotFoundError,
    NotIndexedError,
    TokenizerError,
)
from embedforge.util import BM25
from embedforge.util.bm25 import BM25 as BM25FromModule
from embedforge.util.bm25 import english_stopwords

TOL = {"rtol": 1e-5, "atol": 1e-5}

CORPUS = [
    *random_sentences(60, seed=3, min_words=1, max_words=14),
    "The the THE the.",  # one term repeated: tf saturation
    "Snake_case, numbers 42 and 4.2!",  # underscores are word characters, '.' splits
    "",  # an empty document: length 0, scores 0
    "Time time time people people world.",
]
QUERIES = ["the world", "time people people", "snake_case 42", "unknown words only", "Time! time? WORLD", ""]


def reference_module(name: str) -> ModuleType:
    """A reference implementation from the test extra (skipped when absent; a failure under CI=true, by conftest's rule)."""
    return pytest.importorskip(name)


def words(text: str) -> list[str]:
    """The default analyzer, written independently: lowercase, then runs of \\w characters."""
    return re.findall(r"\w+", text.lower())


def reference_scores(
    docs: list[list[str]], query: list[str], k1: float, b: float, method: str, epsilon: float = 0.25
) -> np.ndarray:
    """BM25 of every document for ``query`` from the textbook formulas, in float64."""
    vocab = sorted({term for doc in docs for term in doc})
    column = {term: i for i, term in enumerate(vocab)}
    tf = np.zeros((len(docs), len(vocab)))
    for d, doc in enumerate(docs):
        for term in doc:
            tf[d, column[term]] += 1
    n = len(docs)
    df = (tf > 0).sum(axis=0)
    lengths = tf.sum(axis=1)
    norm = k1 * (1 - b + b * lengths / lengths.mean())
    # tf / (tf + norm), 0 where the term is absent (with k1 = 0 that would be 0 / 0).
    saturation = np.divide(tf, tf + norm[:, None], out=np.zeros_like(tf), where=tf > 0)
    if method == "lucene":
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        weights = idf * saturation
    else:
        idf = np.log((n - df + 0.5) / (df + 0.5))
        idf = np.where(idf < 0, epsilon * idf.mean(), idf)
        weights = idf * saturation * (k1 + 1)
    scores = np.zeros(len(docs))
    for term in query:  # a repeated query term counts again
        if term in column:
            scores += weights[:, column[term]]
    return scores


def expected_ranking(scores: np.ndarray, k: int) -> np.ndarray:
    """Ids by score, best first, ties to the lower id."""
    return np.lexsort((np.arange(len(scores)), -scores))[:k]


@pytest.mark.parametrize("method", ["lucene", "okapi"])
@pytest.mark.parametrize(("k1", "b"), [(1.5, 0.75), (0.9, 0.4), (0.0, 1.0), (2.0, 0.0)])
def test_scores_match_the_formula_in_numpy(method: str, k1: float, b: float) -> None:
    bm25 = BM25(k1=k1, b=b, method=method).index(CORPUS)
    docs = [words(doc) for doc in CORPUS]
    assert bm25.tokenize(CORPUS) == docs
    for query in QUERIES:
        expected = reference_scores(docs, words(query), k1, b, method)
        scores = bm25.get_scores(query)
        assert scores.dtype == np.float32 and scores.shape == (len(CORPUS),)
        np.testing.assert_allclose(scores, expected, **TOL)

    ids, top = bm25.search(QUERIES, top_k=7)
    assert ids.dtype == np.int64 and top.dtype == np.float32 and ids.shape == top.shape == (len(QUERIES), 7)
    for row, query in enumerate(QUERIES):
        scores = bm25.get_scores(query)
        np.testing.assert_array_equal(ids[row], expected_ranking(scores, 7))
        np.testing.assert_array_equal(top[row], scores[ids[row]])


@pytest.mark.parametrize(("k1", "b"), [(1.5, 0.75), (1.2, 0.3)])
def test_okapi_matches_rank_bm25(k1: float, b: float) -> None:
    rank_bm25 = reference_module("rank_bm25")
    bm25 = BM25(k1=k1, b=b, method="okapi", stopwords="english").index(CORPUS)
    reference = rank_bm25.BM25Okapi(bm25.tokenize(CORPUS), k1=k1, b=b)
    for query in QUERIES:
        np.testing.assert_allclose(bm25.get_scores(query), reference.get_scores(bm25.tokenize(query)[0]), **TOL)


@pytest.mark.parametrize(("k1", "b"), [(1.5, 0.75), (1.2, 0.3)])
def test_lucene_matches_bm25s(k1: float, b: float) -> None:
    bm25s = reference_module("bm25s")
    # bm25s adds a placeholder term to empty documents, so none are given to it.
    corpus = [doc for doc in CORPUS if words(doc)]
    bm25 = BM25(k1=k1, b=b).index(corpus)
    reference = bm25s.BM25(k1=k1, b=b, method="lucene")
    reference.index(bm25.tokenize(corpus), show_progress=False)
    for query in QUERIES:
        tokens = bm25.tokenize(query)[0]
        if not tokens:  # bm25s cannot score a query without terms
            continue
        np.testing.assert_allclose(bm25.get_scores(query), reference.get_scores(tokens), **TOL)


def test_lucene_matches_bm25s_on_real_text() -> None:
    """MS MARCO passages and queries (non-ASCII text, long documents), every score of every query."""
    bm25s = reference_module("bm25s")
    folder = shared_path("beir", "msmarco")
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        corpus = [json.loads(line)["text"] for line, _ in zip(f, range(1500))]
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line in f]
    bm25 = BM25(stopwords="english").index(corpus)
    reference = bm25s.BM25()
    reference.index(bm25.tokenize(corpus), show_progress=False)
    ids, scores = bm25.search(queries, top_k=10)
    for row, query in enumerate(queries):
        tokens = bm25.tokenize(query)[0]
        expected = reference.get_scores(tokens) if tokens else np.zeros(len(corpus))
        np.testing.assert_allclose(bm25.get_scores(query), expected, **TOL)
        np.testing.assert_allclose(scores[row], -np.sort(-expected)[:10], **TOL)
        np.testing.assert_allclose(expected[ids[row]], scores[row], **TOL)


def test_words_are_unicode_runs_of_letters_digits_and_underscore() -> None:
    bm25 = BM25()
    text = "Café ÜBER naïve—École 東京 x_1 3.14 don't"
    assert bm25.tokenize(text) == [words(text)]
    assert bm25.tokenize([text, "ΟΔΟΣ"])[1] == ["οδος"]  # final sigma, as str.lower()
    assert BM25(lowercase=False).tokenize("Café ÜBER") == [["Café", "ÜBER"]]


def test_stop_words_count_neither_in_frequencies_nor_in_lengths() -> None:
    english = english_stopwords()
    assert {"the", "and", "of", "is"} <= set(english)
    bm25 = BM25(stopwords="english").index(CORPUS)
    assert bm25.stopwords == sorted(english)
    docs = [[w for w in words(doc) if w not in set(english)] for doc in CORPUS]
    for query in QUERIES:
        terms = [w for w in words(query) if w not in set(english)]
        np.testing.assert_allclose(bm25.get_scores(query), reference_scores(docs, terms, 1.5, 0.75, "lucene"), **TOL)
    assert bm25.get_scores("the of and").max() == 0.0

    own = BM25(stopwords=["Time", "world"]).index(CORPUS)  # lowercased like the texts
    assert own.tokenize("Time world people") == [["people"]]
    assert own.get_scores("time").max() == 0.0
    cased = BM25(lowercase=False, stopwords=("Time",))
    assert cased.tokenize("Time time") == [["time"]]
    assert BM25(stopwords="EN").stopwords == BM25(stopwords="english").stopwords


def test_search_shapes_ties_and_reindexing() -> None:
    bm25 = BM25().index(["b", "a b", "a b", "c", "a"])
    assert len(bm25) == 5
    ids, scores = bm25.search("a", top_k=10)  # one str is one query; k = min(top_k, documents)
    assert ids.shape == scores.shape == (1, 5)
    np.testing.assert_array_equal(ids[0], [4, 1, 2, 0, 3])  # equal scores keep the lower id first
    assert scores[0, 1] == scores[0, 2] > 0 and scores[0, 3] == scores[0, 4] == 0
    ids, scores = bm25.search([], top_k=3)
    assert ids.shape == scores.shape == (0, 3) and ids.dtype == np.int64 and scores.dtype == np.float32
    ids, _ = bm25.search(np.array(["zzz", "c"]), top_k=2)
    np.testing.assert_array_equal(ids, [[0, 1], [3, 0]])

    assert bm25.index(["c d", "d"]) is bm25  # indexing again replaces the corpus
    assert len(bm25) == 2
    np.testing.assert_array_equal(bm25.search("c", top_k=5)[0], [[0, 1]])
    assert BM25FromModule is BM25


def test_results_do_not_depend_on_the_thread_count() -> None:
    corpus = random_sentences(3000, seed=5, max_words=20)  # several chunks per thread
    queries = random_sentences(40, seed=6)
    before = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        single = BM25().index(corpus)
        one = single.search(queries, top_k=25)
        _core.set_num_threads(3)
        many = BM25().index(corpus)
        three = many.search(queries, top_k=25)
    finally:
        _core.set_num_threads(before)
    np.testing.assert_array_equal(one[0], three[0])
    np.testing.assert_array_equal(one[1], three[1])
    np.testing.assert_array_equal(single.get_scores(queries[0]), many.get_scores(queries[0]))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    bm25 = BM25(k1=1.2, b=0.6, method="okapi", stopwords=["the", "Of"]).index(CORPUS)
    folder = tmp_path / "index"
    bm25.save(folder)
    assert sorted(os.listdir(folder)) == ["bm25.safetensors", "bm25_config.json", "vocab.json"]
    assert sorted(os.listdir(tmp_path)) == ["index"]  # no staging folder left behind
    config = json.loads((folder / "bm25_config.json").read_text())
    assert config["format"] == "embedforge-bm25" and config["format_version"] == 1
    assert (config["method"], config["k1"], config["b"], config["num_docs"]) == ("okapi", 1.2, 0.6, len(CORPUS))

    arrays = pytest.importorskip("safetensors.numpy").load_file(str(folder / "bm25.safetensors"))
    np.testing.assert_array_equal(arrays["doc_lengths"], [len(t) for t in bm25.tokenize(CORPUS)])
    vocab = json.loads((folder / "vocab.json").read_text())
    offsets = arrays["term_offsets"]
    assert len(offsets) == len(vocab) + 1 and offsets[-1] == len(arrays["doc_ids"]) == len(arrays["weights"])
    # Saved files get ordinary permissions, not the 0600 of a private temporary file.
    (tmp_path / "plain").write_text("x")
    plain_mode = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert stat.S_IMODE((folder / "bm25.safetensors").stat().st_mode) == plain_mode

    loaded = BM25.load(folder)
    assert (loaded.k1, loaded.b, loaded.method, loaded.lowercase) == (1.2, 0.6, "okapi", True)
    assert loaded.stopwords == ["Of", "the"] and loaded.tokenizer is None and len(loaded) == len(CORPUS)
    for got, expected in zip(loaded.search(QUERIES, top_k=9), bm25.search(QUERIES, top_k=9)):
        np.testing.assert_array_equal(got, expected)

    # Saving again into a folder with other files keeps them and replaces the index files.
    (folder / "notes.txt").write_text("mine")
    BM25().index(["other corpus"]).save(str(folder))
    assert (folder / "notes.txt").read_text() == "mine"
    assert len(BM25.load(folder)) == 1


@functools.cache
def reference_tokenizer(path: Path) -> Any:
    """The tokenizer loaded by the reference tokenizers library, without truncation."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    return tokenizer


def tokenizer_ids(path: Path, text: str) -> list[int]:
    """Token ids from the reference tokenizers library: no special tokens, no truncation."""
    return reference_tokenizer(path).encode(text, add_special_tokens=False).ids


def test_tokenizer_json_terms_are_token_ids(tmp_path: Path) -> None:
    path = shared_path("tokenizers", "bert-base-uncased.json")
    corpus = [*CORPUS[:30], "Tokenization splits unaffable words into word pieces."]
    bm25 = BM25(tokenizer=path, stopwords=["the"]).index(corpus)
    assert bm25.tokenizer == str(path)
    the = tokenizer_ids(path, "the")[0]
    docs = [[i for i in tokenizer_ids(path, doc.lower()) if i != the] for doc in corpus]
    assert bm25.tokenize(corpus[-1]) == [
        ["token", "##ization", "splits", "una", "##ffa", "##ble", "words", "into", "word", "pieces", "."]
    ]
    for query in ["unaffable tokenization", "The time of the world", "people, people!"]:
        terms = [i for i in tokenizer_ids(path, query.lower()) if i != the]
        np.testing.assert_allclose(
            bm25.get_scores(query),
            reference_scores(docs, terms, 1.5, 0.75, "lucene"),
            **TOL,  # type: ignore[arg-type]
        )

    bm25.save(tmp_path / "index")
    assert (tmp_path / "index" / "tokenizer.json").is_file()
    loaded = BM25.load(tmp_path / "index")
    assert loaded.tokenizer == str(tmp_path / "index" / "tokenizer.json")
    np.testing.assert_array_equal(loaded.get_scores("word pieces"), bm25.get_scores("word pieces"))
    # A folder holding a tokenizer.json works as well as the file.
    assert BM25(tokenizer=tmp_path / "index").tokenize("Unaffable") == [["una", "##ffa", "##ble"]]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"k1": -0.5}, "k1"),
        ({"k1": float("nan")}, "k1"),
        ({"k1": "1.5"}, "k1"),
        ({"k1": True}, "k1"),
        ({"b": 1.5}, "b"),
        ({"b": -0.1}, "b"),
        ({"method": "bm25+"}, "method"),
        ({"method": "Lucene"}, "method"),
        ({"lowercase": "yes"}, "lowercase"),
        ({"stopwords": "french"}, "stopwords"),
        ({"stopwords": 5}, "stopwords"),
        ({"stopwords": ["ok", 3]}, "stopwords[1]"),
        ({"tokenizer": 5}, "tokenizer"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(f"`{name}`")):
        BM25(**kwargs)  # type: ignore[arg-type]


def test_bad_input_errors(tmp_path: Path) -> None:
    bm25 = BM25()
    for call in (lambda: bm25.search("x"), lambda: bm25.get_scores("x"), lambda: bm25.save(tmp_path / "i")):
        with pytest.raises(NotIndexedError, match=r"call BM25\.index\(corpus\) first") as info:
            call()
        assert isinstance(info.value, EmbedforgeError) and isinstance(info.value, RuntimeError)
    assert len(bm25) == 0

    for corpus, name in [("one text", "corpus"), ([], "corpus"), (["ok", 3], "corpus[1]"), (5, "corpus")]:
        with pytest.raises(InvalidArgumentError, match=re.escape(f"`{name}`")):
            bm25.index(corpus)  # type: ignore[arg-type]
    bm25.index(["a b", "c"])
    for top_k in (0, -1, True, 1.5):
        with pytest.raises(InvalidArgumentError, match="`top_k`"):
            bm25.search("a", top_k=top_k)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=re.escape("`queries[1]`")):
        bm25.search(["a", None])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="`query`"):
        bm25.get_scores(["a"])  # type: ignore[arg-type]

    with pytest.raises(ModelNotFoundError):
        BM25(tokenizer=tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(TokenizerError):
        BM25(tokenizer=tmp_path / "broken.json")

    with pytest.raises(ModelNotFoundError):
        BM25.load(tmp_path / "absent")
    bm25.save(tmp_path / "index")
    (tmp_path / "index" / "vocab.json").write_text('["only one word"]')
    with pytest.raises(ModelFormatError, match=r"vocab\.json"):
        BM25.load(tmp_path / "index")
    (tmp_path / "a file").write_text("x")
    with pytest.raises(InvalidArgumentError, match="`path`"):
        bm25.save(tmp_path / "a file")
