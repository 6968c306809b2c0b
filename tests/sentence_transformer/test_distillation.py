"""Tests for model2vec-style distillation (embedforge.static.distill).

The independent references are a forward pass and numpy formulas written out here, and model2vec's own
``distill`` as an oracle where it is installed (a test-only dependency).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from embedforge.exceptions import InvalidArgumentError, ModelNotFoundError
from embedforge.static.distill import distill_static_embeddings

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
UNUSED = [f"[unused{i}]" for i in range(4)]
WORDS = ["the", "a", "cat", "dog", "runs", "fast", "hello", "world", "house", "tree", "blue", "red", "green", "new"]
# Every single character, so WordPiece can spell any new lowercase word without [UNK].
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-[]")
SUBWORDS = ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + ["##ing", "##ed", "##s", "##er"]
# [unused*] are scattered between the specials, as in bert-base-uncased, so removal must renumber.
VOCAB = list(
    dict.fromkeys(["[PAD]", *UNUSED[:2], "[UNK]", "[CLS]", "[SEP]", "[MASK]", *UNUSED[2:], *WORDS, *CHARS, *SUBWORDS])
)
HIDDEN = 32


def _write_tiny_bert(folder: Path, padding_length: int | None = None) -> Path:
    """Save a random 2-layer BERT and its fast WordPiece tokenizer (optionally padding to a fixed length)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    ids = {token: index for index, token in enumerate(VOCAB)}
    backend = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece()
    if padding_length is not None:
        backend.enable_padding(pad_id=0, pad_token="[PAD]", length=padding_length)
    tokenizer = BertTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT folder shared by the tests of this module."""
    return _write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def _distill(path: Path, **kwargs: Any) -> tuple[Any, np.ndarray]:
    """Our distillation without a progress bar, with the table as float64 numpy."""
    tokenizer, table = distill_static_embeddings(str(path), show_progress_bar=False, **kwargs)
    assert table.dtype == torch.float32
    return tokenizer, table.numpy().astype(np.float64)


def _forward_means(path: Path, input_ids: list[list[int]]) -> np.ndarray:
    """Reference: mean of the last hidden states of each sequence, one forward pass per sequence."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
    rows: dict[int, np.ndarray] = {}
    with torch.no_grad():
        # Sequences of equal length share a pad-free batch, so no attention mask is involved.
        for length in {len(ids) for ids in input_ids}:
            members = [i for i, ids in enumerate(input_ids) if len(ids) == length]
            hidden = model(input_ids=torch.tensor([input_ids[i] for i in members])).last_hidden_state
            for i, mean in zip(members, hidden.mean(dim=1).double().numpy()):
                rows[i] = mean
    return np.stack([rows[i] for i in range(len(input_ids))])


def _zipf_sif(n_rows: int, coefficient: float) -> np.ndarray:
    """Reference SIF weights with a Zipf prior: a / (a + p(rank)), p(rank) proportional to 1 / (rank + 2)."""
    prior = np.array([1.0 / (rank + 2) for rank in range(n_rows)])
    prior /= prior.sum()
    return coefficient / (coefficient + prior)


# --------------------------------------------------------------------------------- behaviour, no oracle needed


def test_vocabulary_drops_pattern_and_special_tokens_and_renumbers(tiny_bert: Path) -> None:
    tokenizer, table = _distill(tiny_bert, pca_dims=8)
    expected = [t for t in VOCAB if t not in UNUSED and t not in ("[CLS]", "[SEP]", "[MASK]")]
    vocab = tokenizer.get_vocab()
    assert sorted(vocab, key=vocab.__getitem__) == expected
    assert table.shape == (len(expected), 8)
    assert tokenizer.token_to_id("[PAD]") == 0 and tokenizer.token_to_id("[UNK]") == 1
    # The distilled tokenizer adds no [CLS]/[SEP] and never produces a removed id.
    encoding = tokenizer.encode("hello [unused1] cats")
    assert encoding.tokens[0] == "hello" and "[unused1]" not in encoding.tokens
    assert max(encoding.ids) < len(expected)


def test_no_pattern_keeps_unused_tokens(tiny_bert: Path) -> None:
    tokenizer, table = _distill(tiny_bert, pca_dims=None, token_remove_pattern=None)
    assert all(tokenizer.token_to_id(token) is not None for token in UNUSED)
    assert table.shape == (len(VOCAB) - 3, HIDDEN)


def test_rows_are_mean_pooled_forward_passes_with_zipf_sif(tiny_bert: Path) -> None:
    tokenizer, plain = _distill(tiny_bert, pca_dims=None, sif_coefficient=None)
    _, weighted = _distill(tiny_bert, pca_dims=None, sif_coefficient=1e-3)
    vocab = tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.__getitem__)
    cls, sep = VOCAB.index("[CLS]"), VOCAB.index("[SEP]")
    # Each original token is embedded alone, between [CLS] and [SEP], by its original id.
    reference = _forward_means(tiny_bert, [[cls, VOCAB.index(token), sep] for token in tokens])
    np.testing.assert_allclose(plain, reference, atol=1e-5)
    np.testing.assert_allclose(weighted, reference * _zipf_sif(len(tokens), 1e-3)[:, None], atol=1e-5)


def test_pattern_never_removes_the_wordpiece_unknown_token(tiny_bert: Path) -> None:
    # WordPiece cannot tokenize without its unknown token, so a match-all pattern leaves exactly that row.
    tokenizer, table = _distill(tiny_bert, pca_dims=None, token_remove_pattern=".*")
    assert tokenizer.get_vocab() == {"[UNK]": 0}
    assert table.shape == (1, HIDDEN)
    assert tokenizer.encode("cat").ids == [0]


def test_apply_zipf_false_disables_weighting(tiny_bert: Path) -> None:
    _, unweighted = _distill(tiny_bert, pca_dims=None, sif_coefficient=None)
    _, zipf_off = _distill(tiny_bert, pca_dims=None, apply_zipf=False)
    _, zipf_on = _distill(tiny_bert, pca_dims=None, apply_zipf=True)
    np.testing.assert_array_equal(zipf_off, unweighted)
    assert not np.allclose(zipf_on, unweighted)


def test_pca_is_an_unwhitened_projection_with_pinned_signs(tiny_bert: Path) -> None:
    _, raw = _distill(tiny_bert, pca_dims=None, sif_coefficient=None)
    _, reduced = _distill(tiny_bert, pca_dims=6, sif_coefficient=None)
    _, rotated = _distill(tiny_bert, pca_dims=1000, sif_coefficient=None)  # above the hidden size: rotate only
    centred = raw - raw.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ components[:6].T
    expected *= np.sign(expected[np.abs(expected).argmax(axis=0), np.arange(6)])
    np.testing.assert_allclose(reduced, expected, atol=1e-5)
    assert rotated.shape == raw.shape
    # A rotation keeps distances between rows.
    np.testing.assert_allclose(
        np.linalg.norm(rotated - rotated[0], axis=1), np.linalg.norm(raw - raw[0], axis=1), atol=1e-5
    )


def test_extra_vocabulary_words_and_phrases(tiny_bert: Path) -> None:
    words = ["Hello", "catdog", "New York", "catdog", "", "Zebra"]
    tokenizer, table = _distill(tiny_bert, pca_dims=None, sif_coefficient=None, vocabulary=words)
    base = len(VOCAB) - 7
    # "hello" is already known; new single words are appended in order, then the phrase as an added token.
    assert [tokenizer.id_to_token(i) for i in range(base, base + 3)] == ["catdog", "zebra", "new york"]
    assert table.shape == (base + 3, HIDDEN)
    assert tokenizer.encode("I love New York").ids[-1] == base + 2
    assert tokenizer.encode("catdog").ids == [base]
    # A new word is embedded as the original tokenizer spells it: [CLS] cat ##d ##o ##g [SEP].
    from transformers import AutoTokenizer

    original = AutoTokenizer.from_pretrained(str(tiny_bert), local_files_only=True)
    reference = _forward_means(tiny_bert, [original("catdog")["input_ids"], original("new york")["input_ids"]])
    np.testing.assert_allclose(table[[base, base + 2]], reference, atol=1e-5)


def test_use_subword_false_keeps_only_whole_words(tiny_bert: Path) -> None:
    tokenizer, table = _distill(tiny_bert, pca_dims=None, vocabulary=["cat", "dog", "zebra"], use_subword=False)
    vocab = tokenizer.get_vocab()
    assert sorted(vocab, key=vocab.__getitem__) == ["[PAD]", "[UNK]", "cat", "dog", "zebra"]
    assert table.shape == (5, HIDDEN)
    assert tokenizer.encode("cat runs").tokens == ["cat", "[UNK]"]
    with pytest.raises(InvalidArgumentError, match="use_subword"):
        distill_static_embeddings(str(tiny_bert), use_subword=False, show_progress_bar=False)


def test_fixed_padding_in_tokenizer_file_does_not_dilute_new_words(tiny_bert: Path, tmp_path: Path) -> None:
    # all-MiniLM-L6-v2's tokenizer.json pads to 128; a new word must still be pooled over its own tokens only.
    padded = tmp_path / "padded"
    shutil.copytree(tiny_bert, padded)
    spec = json.loads((padded / "tokenizer.json").read_text())
    spec["padding"] = {
        "strategy": {"Fixed": 16},
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "[PAD]",
    }
    (padded / "tokenizer.json").write_text(json.dumps(spec))
    _, expected = _distill(tiny_bert, pca_dims=None, vocabulary=["catdog"])
    _, got = _distill(padded, pca_dims=None, vocabulary=["catdog"])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_quantize_to_int8_and_float16(tiny_bert: Path) -> None:
    _, exact = _distill(tiny_bert, pca_dims=None)
    _, int8 = _distill(tiny_bert, pca_dims=None, quantize_to="int8")
    _, half = _distill(tiny_bert, pca_dims=None, quantize_to="float16")
    assert np.array_equal(int8, np.rint(int8)) and np.abs(int8).max() == 127
    np.testing.assert_allclose(int8 * np.abs(exact).max() / 127, exact, atol=np.abs(exact).max() / 127)
    np.testing.assert_array_equal(half, half.astype(np.float16))  # every value is a float16
    np.testing.assert_allclose(half, exact, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sif_coefficient": 1.5}, "sif_coefficient"),
        ({"quantize_to": "bfloat16"}, "quantize_to"),
        ({"pca_dims": 0}, "pca_dims"),
        ({"pca_dims": 1.5}, "pca_dims"),
        ({"token_remove_pattern": "["}, "token_remove_pattern"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments_name_the_argument(tiny_bert: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        distill_static_embeddings(str(tiny_bert), show_progress_bar=False, **kwargs)


def test_non_local_model_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not a local folder"):
        distill_static_embeddings("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ModelNotFoundError):
        distill_static_embeddings(str(tmp_path / "missing"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelNotFoundError, match="file"):
        distill_static_embeddings(str(tmp_path / "file.txt"))


# ------------------------------------------------------------------------------------ parity with model2vec


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pca_dims": None, "sif_coefficient": None},
        {"pca_dims": None},
        {"pca_dims": 8},
        {"pca_dims": 256},
        {"pca_dims": 0.9, "sif_coefficient": 1e-3},
        {"pca_dims": 8, "vocabulary": ["Hello", "catdog", "New York", "[unused1]", "zebra", "zebra", ""]},
        {"pca_dims": None, "token_remove_pattern": None},
        {"pca_dims": None, "quantize_to": "int8"},
    ],
    ids=["raw", "sif", "pca8", "pca-above-hidden", "pca-variance", "vocabulary", "no-pattern", "int8"],
)
def test_matches_model2vec_distill(tiny_bert: Path, kwargs: dict[str, Any]) -> None:
    distill = pytest.importorskip("model2vec.distill").distill
    reference = distill(str(tiny_bert), **{"quantize_to": "float32", **kwargs})
    tokenizer, table = _distill(tiny_bert, **kwargs)

    # Same tokenizer: same ids, added tokens, normalizer, truncation, everything in tokenizer.json.
    assert json.loads(tokenizer.to_str()) == json.loads(reference.tokenizer.to_str())
    expected = np.asarray(reference.embedding, dtype=np.float64)
    assert table.shape == expected.shape
    # Both pin each PCA component's sign (largest score positive), so no sign flip is needed.
    np.testing.assert_allclose(table, expected, atol=1e-4)
