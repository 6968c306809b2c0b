"""embedforge-serve (the Rust HTTP service) against sentence-transformers on the same model folders.

/embed must equal ``SentenceTransformer(folder).encode(texts)`` (and with ``normalize``,
``normalize_embeddings=True``) to 1e-5; /search must give the hits of ``util.semantic_search``
(embedforge's and sentence-transformers') with the same ids in the same order; /similarity must be
``util.cos_sim``. The binary is built with cargo (a no-op when ``cargo test -p embedforge-serve
--release`` already built it); ``EMBEDFORGE_SERVE_BIN`` names a prebuilt one instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, random_sentences, shared_path, static_weights, word_level_tokenizer

st = pytest.importorskip("sentence_transformers")

#: Texts for /embed: empty and blank ones, unknown words, punctuation and non-ASCII.
EMBED_TEXTS = [
    "",
    "   ",
    "the car and the river",
    "Zebras walk at night!",
    "Caf\u00e9 by the water.",
    *random_sentences(20, seed=5),
]

#: Seconds a server gets to start or to stop.
PROCESS_TIMEOUT = 60


def distinct_bags(sentences: list[str]) -> list[str]:
    """``sentences`` without those whose words (as a multiset) repeat an earlier one.

    Mean pooling ignores word order, so two such sentences embed identically and tie in every
    ranking; ties may come out in either order, and the test compares orders exactly.
    """
    seen: set[tuple[str, ...]] = set()
    kept = []
    for sentence in sentences:
        bag = tuple(sorted(sentence.lower().replace(".", " ").split()))
        if bag not in seen:
            seen.add(bag)
            kept.append(sentence)
    return kept


CORPUS = distinct_bags(random_sentences(400, seed=11, min_words=3))
QUERIES = random_sentences(12, seed=12)


@pytest.fixture(scope="module")
def serve_binary() -> Path:
    """The release binary: $EMBEDFORGE_SERVE_BIN, else built by cargo (skips without cargo)."""
    if "EMBEDFORGE_SERVE_BIN" in os.environ:
        return Path(os.environ["EMBEDFORGE_SERVE_BIN"])
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.skip("cargo is not on PATH, so the embedforge-serve binary cannot be built")
    result = subprocess.run(
        [cargo, "build", "--release", "-p", "embedforge-serve", "--message-format=json-render-diagnostics"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"cargo build -p embedforge-serve failed:\n{result.stderr[-4000:]}")
    for line in result.stdout.splitlines():
        message = json.loads(line)
        is_binary = message.get("reason") == "compiler-artifact" and message["target"]["name"] == "embedforge-serve"
        if is_binary and message.get("executable"):
            return Path(message["executable"])
    pytest.fail(f"cargo build did not report the embedforge-serve executable:\n{result.stdout[-4000:]}")


@pytest.fixture(scope="module")
def embedforge_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A StaticEmbedding + Normalize model saved by embedforge."""
    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.modules import Normalize, StaticEmbedding

    folder = tmp_path_factory.mktemp("embedforge-static")
    weights = static_weights(seed=3, dim=16)
    model = SentenceTransformer(
        modules=[StaticEmbedding(word_level_tokenizer(), embedding_weights=weights), Normalize()]
    )
    model.save(str(folder))
    return folder


@pytest.fixture(scope="module")
def st_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A StaticEmbedding model (no Normalize, so /embed's ``normalize`` matters) saved by sentence-transformers."""
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic

    folder = tmp_path_factory.mktemp("st-static")
    weights = static_weights(seed=4, dim=16)
    model = st.SentenceTransformer(modules=[StStatic(word_level_tokenizer(), embedding_weights=weights)], device="cpu")
    model.save(str(folder))
    return folder


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CORPUS, one document per line."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("".join(f"{line}\n" for line in CORPUS), encoding="utf-8")
    return path


class Server:
    """A running embedforge-serve process and its address."""

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        """POST ``body`` as JSON; the status and the decoded JSON answer (errors included)."""
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)


def start_server(binary: Path, log_path: Path, *args: str) -> Server:
    """Starts the binary on a free port and waits for the address it logs."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary), *args, "--port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "RUST_LOG": "info"},
        )
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while time.monotonic() < deadline:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if "listening on http://" in text:
            address = text.split("listening on http://", 1)[1].split()[0]
            return Server(process, f"http://{address}")
        if process.poll() is not None:
            pytest.fail(f"embedforge-serve exited with {process.returncode}:\n{text}")
        time.sleep(0.05)
    stop(process)
    pytest.fail(f"embedforge-serve did not start within {PROCESS_TIMEOUT} s:\n{log_path.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.fixture(scope="module", params=["embedforge", "sentence-transformers"])
def served(
    request: pytest.FixtureRequest,
    serve_binary: Path,
    embedforge_folder: Path,
    st_folder: Path,
    corpus_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, Any]]:
    """A server over a folder written by either library with the text corpus, and the oracle model."""
    folder = embedforge_folder if request.param == "embedforge" else st_folder
    log = tmp_path_factory.mktemp("log") / "serve.log"
    server = start_server(serve_binary, log, "--model", str(folder), "--corpus", str(corpus_file))
    try:
        yield server, st.SentenceTransformer(str(folder), device="cpu")
    finally:
        stop(server.process)


def assert_same_hits(got: list[list[dict]], want: list[list[dict]], ids: list[Any]) -> None:
    """Same ids in the same order (``corpus_id`` mapped through ``ids``), scores to 1e-5."""
    assert len(got) == len(want)
    for got_hits, want_hits in zip(got, want):
        assert [hit["id"] for hit in got_hits] == [ids[hit["corpus_id"]] for hit in want_hits]
        np.testing.assert_allclose([hit["score"] for hit in got_hits], [hit["score"] for hit in want_hits], atol=1e-5)


@pytest.mark.parametrize("normalize", [False, True])
def test_embed_equals_encode(served: tuple[Server, Any], normalize: bool) -> None:
    server, oracle = served
    status, answer = server.post("/embed", {"inputs": EMBED_TEXTS, "normalize": normalize})
    assert status == 200, answer
    want = oracle.encode(EMBED_TEXTS, normalize_embeddings=normalize)
    np.testing.assert_allclose(np.array(answer["embeddings"], dtype=np.float32), want, atol=1e-5)


def test_embed_options_matter_for_an_unnormalized_model(st_folder: Path, served: tuple[Server, Any]) -> None:
    """The sentence-transformers folder has no Normalize module, so ``normalize`` changes the rows."""
    server, oracle = served
    plain = np.array(server.post("/embed", {"inputs": EMBED_TEXTS[2:]})[1]["embeddings"])
    unit = np.array(server.post("/embed", {"inputs": EMBED_TEXTS[2:], "normalize": True})[1]["embeddings"])
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    has_normalize = len(oracle) > 1
    assert np.allclose(np.linalg.norm(plain, axis=1), 1.0, atol=1e-5) == has_normalize


@pytest.mark.parametrize("top_k", [1, 5, 1000])
def test_search_equals_semantic_search(served: tuple[Server, Any], top_k: int) -> None:
    from embedforge.util import semantic_search

    server, oracle = served
    status, answer = server.post("/search", {"queries": QUERIES, "top_k": top_k})
    assert status == 200, answer
    queries = oracle.encode(QUERIES, convert_to_tensor=True)
    corpus = oracle.encode(CORPUS, convert_to_tensor=True)
    line_numbers = list(range(len(CORPUS)))
    theirs = st.util.semantic_search(queries, corpus, top_k=top_k)
    assert_same_hits(answer["results"], theirs, line_numbers)
    assert_same_hits(answer["results"], semantic_search(queries, corpus, top_k=top_k), line_numbers)
    # top_k beyond the corpus returns the whole corpus, as semantic_search does.
    assert all(len(hits) == min(top_k, len(CORPUS)) for hits in answer["results"])


def test_similarity_equals_cos_sim(served: tuple[Server, Any]) -> None:
    server, oracle = served
    documents = CORPUS[:30]
    status, answer = server.post("/similarity", {"queries": QUERIES, "documents": documents})
    assert status == 200, answer
    want = st.util.cos_sim(oracle.encode(QUERIES), oracle.encode(documents)).numpy()
    np.testing.assert_allclose(np.array(answer["scores"], dtype=np.float32), want, atol=1e-5)


def test_npy_corpus_with_string_ids(serve_binary: Path, st_folder: Path, tmp_path: Path) -> None:
    """A float32 matrix saved by numpy plus an ids file: hits carry the ids file's strings."""
    oracle = st.SentenceTransformer(str(st_folder), device="cpu")
    corpus = oracle.encode(CORPUS)
    assert corpus.dtype == np.float32
    np.save(tmp_path / "corpus.npy", corpus)
    ids = [f"doc-{i:04d}" for i in range(len(CORPUS))]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    server = start_server(
        serve_binary,
        tmp_path / "serve.log",
        "--model",
        str(st_folder),
        "--embeddings",
        str(tmp_path / "corpus.npy"),
        "--ids",
        str(tmp_path / "ids.txt"),
        "--max-texts",
        "4",
    )
    try:
        status, answer = server.post("/search", {"queries": QUERIES[:4], "top_k": 7})
        assert status == 200, answer
        want = st.util.semantic_search(
            oracle.encode(QUERIES[:4], convert_to_tensor=True), torch.from_numpy(corpus), top_k=7
        )
        assert_same_hits(answer["results"], want, ids)

        status, answer = server.post("/search", {"queries": QUERIES[:5]})
        assert status == 413
        assert "--max-texts" in answer["error"] and "got 5 texts" in answer["error"]
    finally:
        assert stop(server.process) == 0


def test_model2vec_folder_embeds_as_sentence_transformers(serve_binary: Path, tmp_path: Path) -> None:
    """The model2vec fixture of the shared data (2 dimensions, so only /embed: rankings would tie)."""
    folder = shared_path("model2vec-fixture")
    server = start_server(serve_binary, tmp_path / "serve.log", "--model", str(folder))
    try:
        status, answer = server.post("/embed", {"inputs": EMBED_TEXTS})
        assert status == 200, answer
        want = st.SentenceTransformer(str(folder), device="cpu").encode(EMBED_TEXTS)
        np.testing.assert_allclose(np.array(answer["embeddings"], dtype=np.float32), want, atol=1e-5)
    finally:
        assert stop(server.process) == 0


def test_sigterm_exits_zero(serve_binary: Path, embedforge_folder: Path, tmp_path: Path) -> None:
    server = start_server(serve_binary, tmp_path / "serve.log", "--model", str(embedforge_folder))
    try:
        status, _ = server.post("/embed", {"inputs": ["the car"]})
        assert status == 200
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=PROCESS_TIMEOUT) == 0
    finally:
        stop(server.process)
    assert "SIGTERM received" in (tmp_path / "serve.log").read_text(encoding="utf-8")
