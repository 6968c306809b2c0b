"""Parity with sentence-transformers 6.2 (test-only oracle): same ids, same embeddings, folders both ways."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from conftest import random_sentences, shared_path
from embedforge import SentenceTransformer, _core
from embedforge.sentence_transformer.modules import Normalize, StaticEmbedding

st = pytest.importorskip("sentence_transformers")

TRICKY = [
    "",
    " ",
    "\t\n",
    "Hello, World!",
    "naïve café résumé",
    "北京是中国的首都。",
    "Привет, как дела?",
    "مرحبا بالعالم",
    "emoji: 😀🎉👍🏽 done",
    "A" * 500,
    " ".join(["longword"] * 400),
    "Mixed CASE and numb3rs 12345.678",
]


def texts_for_parity() -> list[str]:
    return TRICKY + random_sentences(80, seed=11, max_words=40)


def assert_same_tokens(ours: SentenceTransformer, theirs: st.SentenceTransformer, texts: list[str]) -> None:
    our_features = ours.preprocess(texts)
    their_features = theirs.preprocess(texts)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key in their_features:
            torch.testing.assert_close(our_features[key], their_features[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("which", ["tiny", "minilm"])
def test_transformer_models_agree(which: str, tiny_bert_dir: Path, request: pytest.FixtureRequest) -> None:
    folder = str(tiny_bert_dir if which == "tiny" else request.getfixturevalue("minilm_dir"))
    ours = SentenceTransformer(folder)
    theirs = st.SentenceTransformer(folder, device="cpu")
    assert ours.max_seq_length == theirs.max_seq_length
    texts = texts_for_parity()
    assert_same_tokens(ours, theirs, texts)
    np.testing.assert_allclose(ours.encode(texts, batch_size=16), theirs.encode(texts, batch_size=16), atol=1e-5)
    np.testing.assert_allclose(
        ours.encode(texts[:10], prompt="query: ", normalize_embeddings=True),
        theirs.encode(texts[:10], prompt="query: ", normalize_embeddings=True),
        atol=1e-5,
    )


def test_minilm_folders_move_both_ways(minilm_dir: Path, tmp_path: Path) -> None:
    texts = texts_for_parity()[:40]
    ours = SentenceTransformer(str(minilm_dir))
    reference = st.SentenceTransformer(str(minilm_dir), device="cpu").encode(texts)
    ours.save(str(tmp_path / "ours"))
    np.testing.assert_allclose(
        st.SentenceTransformer(str(tmp_path / "ours"), device="cpu").encode(texts), reference, atol=1e-5
    )
    st.SentenceTransformer(str(minilm_dir), device="cpu").save(str(tmp_path / "theirs"))
    np.testing.assert_allclose(SentenceTransformer(str(tmp_path / "theirs")).encode(texts), reference, atol=1e-5)


def test_prompts_and_similarity_survive_both_ways(tiny_bert_dir: Path, tmp_path: Path) -> None:
    ours = SentenceTransformer(str(tiny_bert_dir), prompts={"query": "query: "}, similarity_fn_name="dot")
    ours[1].include_prompt = False
    ours.save(str(tmp_path / "ours"))
    theirs = st.SentenceTransformer(str(tmp_path / "ours"), device="cpu")
    assert theirs.prompts.get("query") == "query: " and theirs.similarity_fn_name == "dot"
    texts = random_sentences(10, seed=12)
    np.testing.assert_allclose(ours.encode_query(texts), theirs.encode_query(texts), atol=1e-5)
    theirs.save(str(tmp_path / "theirs"))
    back = SentenceTransformer(str(tmp_path / "theirs"))
    assert back.prompts.get("query") == "query: " and back.similarity_fn_name == "dot"
    np.testing.assert_allclose(back.encode_query(texts), theirs.encode_query(texts), atol=1e-5)


def make_static(tokenizer_path: Path, dims: int = 16) -> tuple[Tokenizer, torch.Tensor]:
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    weights = torch.randn(tokenizer.get_vocab_size(), dims, generator=torch.Generator().manual_seed(9))
    return tokenizer, weights


def test_static_models_agree_and_move_both_ways(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.modules import Normalize as StNormalize
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic

    tokenizer, weights = make_static(tiny_bert_dir / "tokenizer.json")
    ours = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights.clone()), Normalize()])
    theirs = st.SentenceTransformer(
        modules=[StStatic(Tokenizer.from_str(tokenizer.to_str()), embedding_weights=weights.clone()), StNormalize()],
        device="cpu",
    )
    texts = texts_for_parity()
    our_features, their_features = ours.preprocess(texts), theirs.preprocess(texts)
    torch.testing.assert_close(our_features["input_ids"], their_features["input_ids"], rtol=0, atol=0)
    torch.testing.assert_close(our_features["offsets"], their_features["offsets"], rtol=0, atol=0)
    reference = theirs.encode(texts)
    np.testing.assert_allclose(ours.encode(texts), reference, atol=1e-6)

    ours.save(str(tmp_path / "ours"))
    np.testing.assert_allclose(
        st.SentenceTransformer(str(tmp_path / "ours"), device="cpu").encode(texts), reference, atol=1e-6
    )
    theirs.save(str(tmp_path / "theirs"))
    np.testing.assert_allclose(SentenceTransformer(str(tmp_path / "theirs")).encode(texts), reference, atol=1e-6)
    # The Rust library loads the folder sentence-transformers saved and embeds the same.
    np.testing.assert_allclose(_core.StaticModel.load(str(tmp_path / "theirs")).encode(texts), reference, atol=1e-6)


def test_model2vec_fixture_agrees() -> None:
    folder = str(shared_path("model2vec-fixture"))
    texts = texts_for_parity()
    reference = st.SentenceTransformer(folder, device="cpu").encode(texts)
    np.testing.assert_allclose(SentenceTransformer(folder).encode(texts), reference, atol=1e-6)
    np.testing.assert_allclose(_core.StaticModel.load(folder).encode(texts), reference, atol=1e-6)


def test_bert_base_tokenizer_ids_match_transformers() -> None:
    from transformers import PreTrainedTokenizerFast

    path = shared_path("tokenizers", "bert-base-uncased.json")
    reference = PreTrainedTokenizerFast(tokenizer_file=str(path), pad_token="[PAD]")
    ours = _core.Tokenizer.from_file(str(path))
    texts = texts_for_parity()
    for max_length in (8, 128):
        expected = reference(
            texts,
            padding=True,
            truncation="longest_first",
            max_length=max_length,
            return_tensors="np",
            return_token_type_ids=True,
        )
        got = ours.encode_padded(texts, max_length=max_length)
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{key} at max_length={max_length}")
    pairs = texts[1:]
    expected = reference(
        texts[:-1],
        pairs,
        padding=True,
        truncation="longest_first",
        max_length=32,
        return_tensors="np",
        return_token_type_ids=True,
    )
    got = ours.encode_padded(texts[:-1], pairs=pairs, max_length=32)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(got[key], expected[key], err_msg=f"pair {key}")
