"""Word-level and auxiliary modules (WordEmbeddings, tokenizers, WordWeights, BoW, CNN, LSTM, WeightedLayerPooling,
LayerNorm, Dropout, Router) checked against hand-computed cases and, module by module, against sentence-transformers:
same weights and inputs give the same outputs, and folders saved by either library load in the other."""

from __future__ import annotations

import gzip
import json
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from embedforge.exceptions import InvalidArgumentError, ModelFormatError, ModelNotFoundError
from embedforge.sentence_transformer.modules import (
    CNN,
    LSTM,
    Asym,
    BoW,
    Dropout,
    LayerNorm,
    Pooling,
    Router,
    WeightedLayerPooling,
    WordEmbeddings,
    WordWeights,
)
from embedforge.sentence_transformer.modules.tokenizer import ENGLISH_STOP_WORDS, PhraseTokenizer, WhitespaceTokenizer

st = pytest.importorskip("sentence_transformers")
st_modules = pytest.importorskip("sentence_transformers.sentence_transformer.modules")
st_tokenizers = pytest.importorskip("sentence_transformers.sentence_transformer.modules.tokenizer")
st_router = pytest.importorskip("sentence_transformers.base.modules.router")

ATOL = 1e-6
WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "fast", "New", "York", "city", "is", "big", "and", "bright"]
TEXTS = [
    "The cat sat on the mat.",
    "A dog ran fast, very FAST!",
    "new york city is big",
    "",
    "unknown words only here",
    "cat cat cat dog",
    "(mat) 'dog' \"city\"",
]


# -- helpers ---------------------------------------------------------------------------------------


def write_glove(path: Path, words: list[str], dim: int = 6, seed: int = 0, header: bool = False) -> np.ndarray:
    """A GloVe-style text file (optionally gzipped, optionally with a word2vec header); returns the vectors."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(words), dim)).round(5)
    lines = [f"{len(words)} {dim}"] if header else []
    for word, vector in zip(words, vectors, strict=True):
        lines.append(word + " " + " ".join(f"{value:.5f}" for value in vector))
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf8")
    return vectors


def assert_features_equal(ours: dict[str, Any], theirs: dict[str, Any], keys: list[str]) -> None:
    for key in keys:
        assert key in ours, key
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=ATOL, msg=key)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def normalised_tokenizer_config(path: Path) -> dict[str, Any]:
    """A tokenizer config with stop words as a set: their saved order is unspecified in both libraries."""
    config = read_json(path)
    config["stop_words"] = set(config["stop_words"])
    return config


def token_batch(seed: int = 0, batch: int = 3, length: int = 5, dim: int = 4) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([length, 2, 1][:batch])
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    return {
        "token_embeddings": torch.randn(batch, length, dim, generator=generator),
        "attention_mask": mask,
        "sentence_lengths": lengths,
        "input_ids": torch.randint(0, 5, (batch, length), generator=generator) * mask,
    }


def clone_features(features: dict[str, Any]) -> dict[str, Any]:
    return {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in features.items()}


def st_load(cls: type, folder: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls.load(str(folder))


@pytest.fixture
def glove(tmp_path: Path) -> Path:
    path = tmp_path / "glove.txt"
    write_glove(path, [*WORDS, "new_york", "fast!"])
    return path


# -- tokenizers ------------------------------------------------------------------------------------


def test_stop_words_match_sentence_transformers() -> None:
    assert list(st_tokenizers.ENGLISH_STOP_WORDS) == ENGLISH_STOP_WORDS


def test_whitespace_tokenizer_hand_case() -> None:
    tokenizer = WhitespaceTokenizer(["Cat", "cat", "dog", "mat"], stop_words=["the"])
    # "The" is not a stop word as is, nor in the vocab; lower-cased it is a stop word. "(mat)" strips to "mat".
    assert tokenizer.tokenize("The Cat sat on (mat) DOG the") == [0, 3, 2]
    assert WhitespaceTokenizer(["cat"], stop_words=[], do_lower_case=True).tokenize("CAT Cat") == [0, 0]


@pytest.mark.parametrize("do_lower_case", [False, True])
def test_whitespace_tokenizer_matches_and_round_trips(tmp_path: Path, do_lower_case: bool) -> None:
    vocab = [*WORDS, "Cat", "fast!", "york"]
    ours = WhitespaceTokenizer(vocab, do_lower_case=do_lower_case)
    theirs = st_tokenizers.WhitespaceTokenizer(vocab, do_lower_case=do_lower_case)
    for text in TEXTS:
        assert ours.tokenize(text) == theirs.tokenize(text), text

    ours.save(str(tmp_path))
    loaded_theirs = st_tokenizers.WhitespaceTokenizer.load(str(tmp_path))
    assert loaded_theirs.vocab == vocab and loaded_theirs.stop_words == ours.stop_words
    assert loaded_theirs.do_lower_case == do_lower_case

    other = tmp_path / "theirs"
    other.mkdir()
    theirs.save(str(other))
    loaded_ours = WhitespaceTokenizer.load(str(other))
    assert loaded_ours.vocab == vocab and loaded_ours.stop_words == theirs.stop_words
    assert normalised_tokenizer_config(other / "whitespacetokenizer_config.json") == normalised_tokenizer_config(
        tmp_path / "whitespacetokenizer_config.json"
    )


def test_phrase_tokenizer_matches_and_round_trips(tmp_path: Path) -> None:
    pytest.importorskip("nltk")
    vocab = ["PADDING", "New_York", "new_york_city", "los_angeles", "is", "big", "York", "city", "bad__phrase", "it"]
    ours = PhraseTokenizer(vocab, stop_words=["is"])
    theirs = st_tokenizers.PhraseTokenizer(vocab, stop_words=["is"])
    assert ours.ngram_lookup == theirs.ngram_lookup and ours.ngram_lengths == theirs.ngram_lengths
    texts = ["New York City is big.", "new york is big", "Los Angeles isn't New York", "York, city!", ""]
    for text in texts:
        assert ours.tokenize(text) == theirs.tokenize(text), text
    # Longest phrase first: "new york city" (lower-cased match) beats "New York".
    assert ours.tokenize("New York City") == [2]

    ours.save(str(tmp_path))
    loaded = st_tokenizers.PhraseTokenizer.load(str(tmp_path))
    assert (loaded.vocab, loaded.ngram_separator, loaded.max_ngram_length) == (vocab, "_", 5)
    back = PhraseTokenizer.load(str(tmp_path))
    assert [back.tokenize(text) for text in texts] == [theirs.tokenize(text) for text in texts]


def test_tokenizer_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="vocab"):
        WhitespaceTokenizer("cat dog")
    with pytest.raises(InvalidArgumentError, match="stop_words"):
        WhitespaceTokenizer(["cat"], stop_words="the")


# -- WordEmbeddings --------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["plain", "gz", "word2vec"])
def test_word_embeddings_from_text_file_matches(tmp_path: Path, variant: str) -> None:
    path = tmp_path / ("vectors.txt.gz" if variant == "gz" else "vectors.txt")
    vectors = write_glove(path, WORDS, header=variant == "word2vec")
    ours = WordEmbeddings.from_text_file(str(path))
    theirs = st_modules.WordEmbeddings.from_text_file(str(path))

    assert ours.tokenizer.vocab == ["PADDING_TOKEN", *WORDS] == theirs.tokenizer.vocab
    expected = np.vstack([np.zeros(vectors.shape[1]), vectors]).astype(np.float32)
    np.testing.assert_allclose(ours.emb_layer.weight.detach().numpy(), expected, atol=ATOL)
    torch.testing.assert_close(ours.emb_layer.weight, theirs.emb_layer.weight, rtol=0, atol=0)
    assert ours.get_embedding_dimension() == theirs.get_embedding_dimension() == 6
    assert not ours.emb_layer.weight.requires_grad

    our_features = ours.preprocess(TEXTS, prompt="the city: ")
    their_features = theirs.preprocess(TEXTS, prompt="the city: ")
    assert_features_equal(our_features, their_features, ["input_ids", "attention_mask", "sentence_lengths"])
    assert_features_equal(ours(our_features), theirs(their_features), ["token_embeddings"])


def test_word_embeddings_max_vocab_size_and_skipped_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "vectors.txt"
    write_glove(path, WORDS)
    with path.open("a", encoding="utf8") as f:
        f.write("broken 1.0 2.0\n")  # wrong width: skipped, as in sentence-transformers, but reported
    ours = WordEmbeddings.from_text_file(str(path))
    theirs = st_modules.WordEmbeddings.from_text_file(str(path))
    assert ours.tokenizer.vocab == theirs.tokenizer.vocab and "broken" not in ours.tokenizer.vocab
    assert "Skipped 1 line" in caplog.text

    small = WordEmbeddings.from_text_file(str(path), max_vocab_size=3, update_embeddings=True)
    small_theirs = st_modules.WordEmbeddings.from_text_file(str(path), max_vocab_size=3, update_embeddings=True)
    assert small.tokenizer.vocab == small_theirs.tokenizer.vocab == ["PADDING_TOKEN", "the", "cat", "sat"]
    assert small.emb_layer.weight.requires_grad


def test_word_embeddings_max_seq_length_truncates(glove: Path) -> None:
    module = WordEmbeddings.from_text_file(str(glove))
    module.max_seq_length = 2
    features = module.preprocess(["cat sat mat dog", "cat"])
    assert features["input_ids"].tolist() == [[2, 3], [2, 0]]
    assert features["sentence_lengths"].tolist() == [2, 1]
    with pytest.raises(InvalidArgumentError, match="max_seq_length"):
        module.max_seq_length = 0


def test_word_embeddings_folder_round_trips(tmp_path: Path, glove: Path) -> None:
    ours = WordEmbeddings.from_text_file(str(glove))
    ours.max_seq_length = 7
    ours_dir = tmp_path / "ours"
    ours_dir.mkdir()
    ours.save(str(ours_dir))
    assert read_json(ours_dir / "wordembedding_config.json") == {
        "tokenizer_class": "sentence_transformers.models.tokenizer.WhitespaceTokenizer.WhitespaceTokenizer",
        "update_embeddings": False,
        "max_seq_length": 7,
    }
    theirs = st_load(st_modules.WordEmbeddings, ours_dir)
    assert theirs.max_seq_length == 7 and theirs.tokenizer.vocab == ours.tokenizer.vocab
    torch.testing.assert_close(theirs.emb_layer.weight, ours.emb_layer.weight, rtol=0, atol=0)
    long_texts = [*TEXTS, "the cat sat on the mat with the dog and the cat and the dog ran"]
    assert_features_equal(
        ours(ours.preprocess(long_texts)), theirs(theirs.preprocess(long_texts)), ["token_embeddings"]
    )

    their_dir = tmp_path / "theirs"
    their_dir.mkdir()
    theirs.save(str(their_dir))
    back = WordEmbeddings.load(str(their_dir))
    assert back.max_seq_length == 7 and back.tokenizer.vocab == ours.tokenizer.vocab
    torch.testing.assert_close(back.emb_layer.weight, ours.emb_layer.weight, rtol=0, atol=0)


def test_word_embeddings_phrase_tokenizer_round_trips(tmp_path: Path, glove: Path) -> None:
    pytest.importorskip("nltk")
    ours = WordEmbeddings.from_text_file(str(glove), tokenizer=PhraseTokenizer())
    ours.save(str(tmp_path))
    assert (tmp_path / "phrasetokenizer_config.json").is_file()
    theirs = st_load(st_modules.WordEmbeddings, tmp_path)
    assert type(theirs.tokenizer).__name__ == "PhraseTokenizer"
    assert_features_equal(ours.preprocess(TEXTS), theirs.preprocess(TEXTS), ["input_ids", "attention_mask"])
    assert ours.preprocess(["New York is big"])["input_ids"].tolist()[0][0] == ours.tokenizer.word2idx["new_york"]


def test_word_embeddings_errors(tmp_path: Path, glove: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        WordEmbeddings.from_text_file("glove.6B.300d.txt.gz")
    (tmp_path / "empty.txt").write_text("", encoding="utf8")
    with pytest.raises(ModelFormatError, match="no word vectors"):
        WordEmbeddings.from_text_file(str(tmp_path / "empty.txt"))
    with pytest.raises(InvalidArgumentError, match="tokenizer"):
        WordEmbeddings(tokenizer="whitespace", embedding_weights=np.zeros((2, 3)))
    with pytest.raises(InvalidArgumentError, match="embedding_weights"):
        WordEmbeddings(WhitespaceTokenizer(), embedding_weights=np.zeros(3))
    with pytest.raises(InvalidArgumentError, match=r"3 entries.*\(2, 3\)"):
        WordEmbeddings(WhitespaceTokenizer(["a", "b", "c"]), embedding_weights=np.zeros((2, 3)))

    folder = tmp_path / "model"
    folder.mkdir()
    WordEmbeddings.from_text_file(str(glove)).save(str(folder))
    # A vocabulary longer than the saved matrix: the config no longer matches the weights.
    config = read_json(folder / "whitespacetokenizer_config.json")
    config["vocab"] += ["extra1", "extra2"]
    (folder / "whitespacetokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"20 entries.*emb_layer\.weight.*\(18, 6\)"):
        WordEmbeddings.load(str(folder))

    config["vocab"] = config["vocab"][:-2]
    (folder / "whitespacetokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    from safetensors.torch import save_file

    save_file({"emb_layer.weight": torch.zeros(18, 6), "extra": torch.zeros(1)}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=r"exactly the tensor 'emb_layer.weight'"):
        WordEmbeddings.load(str(folder))

    wordembedding_config = read_json(folder / "wordembedding_config.json")
    wordembedding_config["tokenizer_class"] = "evil_package.Tokenizer"
    (folder / "wordembedding_config.json").write_text(json.dumps(wordembedding_config), encoding="utf-8")
    with pytest.raises(ModelFormatError, match="trust_remote_code"):
        WordEmbeddings.load(str(folder))


# -- WordWeights and BoW ---------------------------------------------------------------------------


def test_word_weights_hand_computed() -> None:
    module = WordWeights(["pad", "Cat", "dog", "rare"], {"cat": 2.0, "dog": 0.5}, unknown_word_weight=3.0)
    # "Cat" falls back to the lower-cased weight, "rare" and "pad" to the unknown weight.
    assert module.emb_layer.weight.squeeze(1).tolist() == [3.0, 2.0, 0.5, 3.0]
    features = {
        "input_ids": torch.tensor([[1, 2, 3], [2, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1], [1, 0, 0]]),
        "token_embeddings": torch.tensor([[[1.0, 1.0], [2.0, 0.0], [0.0, 1.0]], [[4.0, 2.0], [9.0, 9.0], [9.0, 9.0]]]),
    }
    out = module(features)
    expected = torch.tensor([[[2.0, 2.0], [1.0, 0.0], [0.0, 3.0]], [[2.0, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(out["token_embeddings"], expected)
    torch.testing.assert_close(out["token_weights_sum"], torch.tensor([5.5, 0.5]))


def test_word_weights_matches_and_round_trips(tmp_path: Path) -> None:
    vocab = ["PADDING_TOKEN", *WORDS]
    weights = {word.lower(): float(index % 4) + 0.25 for index, word in enumerate(WORDS[::2])}
    ours = WordWeights(vocab, weights, unknown_word_weight=0.7)
    theirs = st_modules.WordWeights(vocab, weights, unknown_word_weight=0.7)
    torch.testing.assert_close(ours.state_dict()["emb_layer.weight"], theirs.state_dict()["emb_layer.weight"])
    features = token_batch(dim=3)
    features["input_ids"] = torch.randint(0, len(vocab), features["input_ids"].shape) * features["attention_mask"]
    assert_features_equal(
        ours(clone_features(features)), theirs(clone_features(features)), ["token_embeddings", "token_weights_sum"]
    )

    ours.save(str(tmp_path))
    assert read_json(tmp_path / "config.json") == {"vocab": vocab, "word_weights": weights, "unknown_word_weight": 0.7}
    loaded = st_load(st_modules.WordWeights, tmp_path)
    torch.testing.assert_close(loaded.emb_layer.weight, ours.emb_layer.weight)
    back = WordWeights.load(str(tmp_path))
    torch.testing.assert_close(back.emb_layer.weight, ours.emb_layer.weight)

    # The saved weight column must agree with the vocabulary in the config.
    config = read_json(tmp_path / "config.json")
    config["vocab"] = vocab[:-1]
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"emb_layer\.weight.*\(16, 1\).*\(15, 1\)"):
        WordWeights.load(str(tmp_path))


@pytest.mark.parametrize("cumulative", [True, False])
def test_bow_hand_computed_and_matches(tmp_path: Path, cumulative: bool) -> None:
    vocab = ["cat", "dog", "Mat", "cat"]  # repeated words keep their first column
    ours = BoW(vocab, {"cat": 2.0, "mat": 0.5}, unknown_word_weight=1.5, cumulative_term_frequency=cumulative)
    theirs = st_modules.BoW(vocab, {"cat": 2.0, "mat": 0.5}, 1.5, cumulative)
    assert ours.get_embedding_dimension() == theirs.get_embedding_dimension() == 3
    texts = ["cat cat dog", "Mat, mat. cat!", "", "nothing known"]
    out = ours(ours.preprocess(texts))["sentence_embedding"]
    expected = [[4.0, 1.5, 0.0], [2.0, 0.0, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    if not cumulative:
        expected[0] = [2.0, 1.5, 0.0]
    assert out.tolist() == expected
    torch.testing.assert_close(out, theirs.preprocess(texts)["sentence_embedding"], rtol=0, atol=0)
    assert ours.preprocess(["dog"], prompt="cat ")["sentence_embedding"].tolist() == [[2.0, 1.5, 0.0]]

    ours.save(str(tmp_path))
    assert not (tmp_path / "model.safetensors").exists()
    loaded = st_load(st_modules.BoW, tmp_path)
    torch.testing.assert_close(loaded.preprocess(texts)["sentence_embedding"], out, rtol=0, atol=0)
    assert BoW.load(str(tmp_path)).get_config_dict() == theirs.get_config_dict()


# -- token-level layers ----------------------------------------------------------------------------


def _copy_and_compare(
    ours: torch.nn.Module, theirs: torch.nn.Module, features: dict[str, Any], keys: list[str]
) -> None:
    theirs.load_state_dict(ours.state_dict())
    ours.eval()
    theirs.eval()
    assert_features_equal(ours(clone_features(features)), theirs(clone_features(features)), keys)


def _cross_round_trip(
    tmp_path: Path, ours: Any, their_cls: type, our_cls: type, features: dict[str, Any], keys: list[str]
) -> None:
    """embedforge saves -> sentence-transformers loads (same config, weights, outputs), and the other way."""
    ours_dir, their_dir = tmp_path / "ours", tmp_path / "theirs"
    ours_dir.mkdir(parents=True)
    their_dir.mkdir(parents=True)
    ours.save(str(ours_dir))
    theirs = st_load(their_cls, ours_dir)
    assert theirs.get_config_dict() == ours.get_config_dict()
    for key, value in ours.state_dict().items():
        torch.testing.assert_close(theirs.state_dict()[key], value, rtol=0, atol=0, msg=key)
    _copy_and_compare(ours, theirs, features, keys)

    theirs.save(str(their_dir))
    back = our_cls.load(str(their_dir))
    assert back.get_config_dict() == ours.get_config_dict()
    _copy_and_compare(back, theirs, features, keys)
    for name in sorted(p.name for p in ours_dir.iterdir()):
        if name.endswith(".json"):
            assert read_json(ours_dir / name) == read_json(their_dir / name), name


def test_cnn_matches_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ours = CNN(4, out_channels=3, kernel_sizes=[1, 3, 5])
    theirs = st_modules.CNN(4, out_channels=3, kernel_sizes=[1, 3, 5])
    features = token_batch(dim=4)
    _copy_and_compare(ours, theirs, features, ["token_embeddings"])
    assert ours(clone_features(features))["token_embeddings"].shape == (3, 5, 9) and ours.get_embedding_dimension() == 9
    _cross_round_trip(tmp_path, ours, st_modules.CNN, CNN, features, ["token_embeddings"])


def test_cnn_old_argument_name_and_errors(tmp_path: Path) -> None:
    with pytest.warns(FutureWarning, match="in_word_embedding_dimension"):
        module = CNN(in_word_embedding_dimension=4, out_channels=2, kernel_sizes=[3])
    assert module.in_embedding_dimension == 4
    with pytest.raises(InvalidArgumentError, match="stride_sizes"):
        CNN(4, kernel_sizes=[1, 3], stride_sizes=[1])
    with pytest.raises(InvalidArgumentError, match="out_channels"):
        CNN(4, out_channels=0)
    with pytest.raises(InvalidArgumentError, match="different lengths"):
        CNN(4, out_channels=2, kernel_sizes=[2, 3])(token_batch(dim=4))

    module.save(str(tmp_path))
    config = read_json(tmp_path / "cnn_config.json")
    # Old sentence-transformers configs used in_word_embedding_dimension.
    config["in_word_embedding_dimension"] = config.pop("in_embedding_dimension")
    config["out_channels"] = 5
    (tmp_path / "cnn_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"convs\.0\.weight.*\(2, 4, 3\).*\(5, 4, 3\)"):
        CNN.load(str(tmp_path))


def test_lstm_matches_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(1)
    ours = LSTM(4, hidden_dim=3, num_layers=2, bidirectional=True)
    theirs = st_modules.LSTM(4, hidden_dim=3, num_layers=2, bidirectional=True)
    features = token_batch(dim=4)
    _copy_and_compare(ours, theirs, features, ["token_embeddings"])
    assert ours.get_embedding_dimension() == 6
    _cross_round_trip(tmp_path, ours, st_modules.LSTM, LSTM, features, ["token_embeddings"])

    config = read_json(tmp_path / "ours" / "lstm_config.json")
    config["hidden_dim"] = 5
    (tmp_path / "ours" / "lstm_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"encoder\.weight_ih_l0.*\(12, 4\).*\(20, 4\)"):
        LSTM.load(str(tmp_path / "ours"))


def test_weighted_layer_pooling_hand_computed() -> None:
    module = WeightedLayerPooling(2, num_hidden_layers=3, layer_start=1, layer_weights=torch.tensor([1.0, 2.0, 5.0]))
    assert isinstance(module.layer_weights, torch.nn.Parameter)
    layers = [torch.full((1, 2, 2), float(value)) for value in (100.0, 1.0, 2.0, 4.0)]
    out = module({"all_layer_embeddings": layers, "token_embeddings": layers[-1]})
    # Layer 0 (the embeddings) is skipped: (1*1 + 2*2 + 5*4) / (1 + 2 + 5) = 25 / 8.
    torch.testing.assert_close(out["token_embeddings"], torch.full((1, 2, 2), 25 / 8))
    with pytest.raises(InvalidArgumentError, match="4 hidden states"):
        module({"all_layer_embeddings": layers[:3]})
    with pytest.raises(InvalidArgumentError, match=r"layer_weights must have shape \(3,\)"):
        WeightedLayerPooling(2, num_hidden_layers=3, layer_start=1, layer_weights=[1.0, 2.0])


def test_weighted_layer_pooling_matches_and_round_trips(tmp_path: Path) -> None:
    ours = WeightedLayerPooling(4, num_hidden_layers=3, layer_start=1)
    with torch.no_grad():
        ours.layer_weights.copy_(torch.tensor([0.5, 2.0, 1.5]))
    theirs = st_modules.WeightedLayerPooling(4, num_hidden_layers=3, layer_start=1)
    generator = torch.Generator().manual_seed(3)
    features = {"all_layer_embeddings": [torch.randn(2, 5, 4, generator=generator) for _ in range(4)]}
    _copy_and_compare(ours, theirs, features, ["token_embeddings"])
    _cross_round_trip(
        tmp_path, ours, st_modules.WeightedLayerPooling, WeightedLayerPooling, features, ["token_embeddings"]
    )

    config = read_json(tmp_path / "ours" / "config.json")
    config["layer_start"] = 0
    (tmp_path / "ours" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"layer_weights.*\(3,\).*\(4,\)"):
        WeightedLayerPooling.load(str(tmp_path / "ours"))


def test_layer_norm_and_dropout_match_and_round_trip(tmp_path: Path) -> None:
    ours = LayerNorm(4)
    with torch.no_grad():
        ours.norm.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
        ours.norm.bias.copy_(torch.tensor([0.0, 0.1, 0.2, 0.3]))
    features = {"sentence_embedding": torch.randn(3, 4, generator=torch.Generator().manual_seed(4))}
    _copy_and_compare(ours, st_modules.LayerNorm(4), features, ["sentence_embedding"])
    _cross_round_trip(tmp_path / "ln", ours, st_modules.LayerNorm, LayerNorm, features, ["sentence_embedding"])

    dropout = Dropout(0.3).eval()
    out = dropout(clone_features(features))["sentence_embedding"]
    torch.testing.assert_close(out, features["sentence_embedding"])  # identity in eval mode
    (tmp_path / "dropout").mkdir()
    dropout.save(str(tmp_path / "dropout"))
    assert read_json(tmp_path / "dropout" / "config.json") == {"dropout": 0.3}
    assert st_load(st_modules.Dropout, tmp_path / "dropout").dropout == 0.3
    assert Dropout.load(str(tmp_path / "dropout")).dropout_layer.p == 0.3
    with pytest.raises(InvalidArgumentError, match="dropout"):
        Dropout(1.5)

    (tmp_path / "ln" / "ours" / "config.json").write_text(json.dumps({"dimension": 5}), encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"norm\.weight.*\(4,\).*\(5,\)"):
        LayerNorm.load(str(tmp_path / "ln" / "ours"))


# -- Router ----------------------------------------------------------------------------------------


def _pair_of_word_models(tmp_path: Path) -> tuple[WordEmbeddings, WordEmbeddings]:
    query_file, doc_file = tmp_path / "q.txt", tmp_path / "d.txt"
    write_glove(query_file, WORDS, dim=6, seed=1)
    write_glove(doc_file, WORDS[::-1], dim=6, seed=2)
    return WordEmbeddings.from_text_file(str(query_file)), WordEmbeddings.from_text_file(str(doc_file))


def _run(module: Any, texts: list[str], **kwargs: Any) -> dict[str, Any]:
    return module(module.preprocess(texts, **kwargs), **kwargs)


def test_router_routes_by_task(tmp_path: Path) -> None:
    query, document = _pair_of_word_models(tmp_path)
    router = Router.for_query_document([query, Pooling(6)], [document, Pooling(6, "max")])
    assert router.default_route == "document" and router.get_embedding_dimension() == 6
    assert router.tokenizer is query.tokenizer and router.max_seq_length == 1000000
    texts = TEXTS[:3]
    expected_query = Pooling(6)(query(query.preprocess(texts)))["sentence_embedding"]
    expected_doc = Pooling(6, "max")(document(document.preprocess(texts)))["sentence_embedding"]
    torch.testing.assert_close(_run(router, texts, task="query")["sentence_embedding"], expected_query)
    torch.testing.assert_close(_run(router, texts, task="document")["sentence_embedding"], expected_doc)
    # No task: the default route. The task stored by preprocess steers forward when none is passed again.
    torch.testing.assert_close(router(router.preprocess(texts))["sentence_embedding"], expected_doc)
    features = router.preprocess(texts, task="query")
    assert features["task"] == "query" and features["modality"] == "text"
    torch.testing.assert_close(router(features)["sentence_embedding"], expected_query)
    # Old Asym inputs: one {task: text} dict per input.
    torch.testing.assert_close(
        router(router.preprocess([{"query": text} for text in texts]))["sentence_embedding"], expected_query
    )
    router.max_seq_length = 2
    assert query.max_seq_length == document.max_seq_length == 2
    assert Asym is Router

    with pytest.raises(InvalidArgumentError, match="No route found for task type 'passage'"):
        router.preprocess(texts, task="passage")
    with pytest.raises(InvalidArgumentError, match="Default route 'x' not found in route keys"):
        Router({"a": [query]}, default_route="x")
    with pytest.raises(InvalidArgumentError, match="sub_modules"):
        Router({})
    with pytest.raises(InvalidArgumentError, match="route_mappings"):
        Router({"a": [query]}, route_mappings={("query", None): "b"})
    strict = Router({"a": [query], "b": [document]}, allow_empty_key=False)
    with pytest.raises(InvalidArgumentError, match="Could not determine route for task=None"):
        strict.eval().preprocess(texts)


def test_router_matches_and_round_trips(tmp_path: Path) -> None:
    query, document = _pair_of_word_models(tmp_path)
    ours = Router(
        {"q": [query, Pooling(6)], "d": [document, Pooling(6)]},
        route_mappings={("query", None): "q", (None, "text"): "d"},
    )
    texts = TEXTS
    ours_dir = tmp_path / "router"
    ours_dir.mkdir()
    ours.save(str(ours_dir))
    layout = read_json(ours_dir / "router_config.json")
    assert layout["structure"] == {
        "q": ["q_0_WordEmbeddings", "q_1_Pooling"],
        "d": ["d_0_WordEmbeddings", "d_1_Pooling"],
    }
    assert layout["types"]["q_0_WordEmbeddings"] == "sentence_transformers.models.WordEmbeddings"
    assert layout["parameters"]["route_mappings"] == {"('query', None)": "q", "(None, 'text')": "d"}

    theirs = st_load(st_router.Router, ours_dir)
    assert theirs.route_mappings == ours.route_mappings and theirs.default_route == ours.default_route == "q"
    for task in ("query", "document", None):
        assert_features_equal(_run(ours, texts, task=task), _run(theirs, texts, task=task), ["sentence_embedding"])

    their_dir = tmp_path / "theirs"
    their_dir.mkdir()
    theirs.save(str(their_dir))
    back = Router.load(str(their_dir))
    assert back.route_mappings == ours.route_mappings
    for task in ("query", "document"):
        assert_features_equal(_run(back, texts, task=task), _run(theirs, texts, task=task), ["sentence_embedding"])


def test_router_shared_module_saved_once_and_bad_layouts(tmp_path: Path) -> None:
    query, _ = _pair_of_word_models(tmp_path)
    pooling = Pooling(6)
    router = Router.for_query_document([query, pooling], [query, pooling])
    folder = tmp_path / "shared"
    folder.mkdir()
    router.save(str(folder))
    layout = read_json(folder / "router_config.json")
    assert layout["structure"]["document"] == ["query_0_WordEmbeddings", "query_1_Pooling"]
    back = Router.load(str(folder))
    assert back.sub_modules["query"][0] is back.sub_modules["document"][0]

    layout["types"]["../escape"] = "sentence_transformers.models.Pooling"
    (folder / "router_config.json").write_text(json.dumps(layout), encoding="utf-8")
    with pytest.raises(ModelFormatError, match="outside"):
        Router.load(str(folder))
    layout["types"].pop("../escape")
    layout["types"]["query_1_Pooling"] = "somewhere.Else"
    (folder / "router_config.json").write_text(json.dumps(layout), encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"somewhere.Else"):
        Router.load(str(folder))


# -- whole models through SentenceTransformer ------------------------------------------------------


def _forward(model: Any, texts: list[str], **kwargs: Any) -> np.ndarray:
    """Embeddings through preprocess + forward, which does not need the native module."""
    model.eval()
    with torch.no_grad():
        return model.forward(model.preprocess(texts, **kwargs), **kwargs)["sentence_embedding"].numpy()


def _random_texts(count: int, seed: int) -> list[str]:
    generator = random.Random(seed)
    words = [*WORDS, "Cat,", "unknown", "THE", "dog!"]
    return [" ".join(generator.choice(words) for _ in range(generator.randint(0, 12))) for _ in range(count)]


def test_word_embedding_model_moves_between_libraries(tmp_path: Path, glove: Path) -> None:
    from embedforge import SentenceTransformer

    words = WordEmbeddings.from_text_file(str(glove))
    weights = {word: 1.0 + index / 10 for index, word in enumerate(words.tokenizer.vocab)}
    ours = SentenceTransformer(
        modules=[words, WordWeights(words.tokenizer.vocab, weights), Pooling(6), LayerNorm(6)], device="cpu"
    )
    folder = tmp_path / "model"
    ours.save(str(folder))
    modules = read_json(folder / "modules.json")
    assert [entry["path"] for entry in modules] == ["", "1_WordWeights", "2_Pooling", "3_LayerNorm"]
    assert (folder / "wordembedding_config.json").is_file()

    texts = _random_texts(40, seed=5)
    theirs = st.SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(theirs.encode(texts, batch_size=8), _forward(ours, texts), atol=ATOL)
    back_dir = tmp_path / "back"
    theirs.save(str(back_dir))
    back = SentenceTransformer(str(back_dir), device="cpu")
    np.testing.assert_allclose(_forward(back, texts), theirs.encode(texts), atol=ATOL)


def test_word_embedding_model_encode_agrees(tmp_path: Path, glove: Path) -> None:
    pytest.importorskip("embedforge._core")
    from embedforge import SentenceTransformer

    words = WordEmbeddings.from_text_file(str(glove))
    ours = SentenceTransformer(modules=[words, Pooling(6), LayerNorm(6)], device="cpu")
    ours.save(str(tmp_path / "model"))
    theirs = st.SentenceTransformer(str(tmp_path / "model"), device="cpu")
    texts = _random_texts(40, seed=6)
    np.testing.assert_allclose(ours.encode(texts, batch_size=8), theirs.encode(texts, batch_size=8), atol=ATOL)
    np.testing.assert_allclose(
        ours.encode(texts, prompt="the cat: ", normalize_embeddings=True),
        theirs.encode(texts, prompt="the cat: ", normalize_embeddings=True),
        atol=ATOL,
    )


def test_router_model_moves_between_libraries(tmp_path: Path) -> None:
    from embedforge import SentenceTransformer

    query, document = _pair_of_word_models(tmp_path)
    router = Router.for_query_document([query, Pooling(6)], [document, Pooling(6, "max")])
    ours = SentenceTransformer(modules=[router, LayerNorm(6)], device="cpu")
    folder = tmp_path / "model"
    ours.save(str(folder))
    assert (folder / "router_config.json").is_file()
    assert read_json(folder / "modules.json")[0]["type"] == "sentence_transformers.models.Router"

    texts = _random_texts(30, seed=9)
    theirs = st.SentenceTransformer(str(folder), device="cpu")
    our_query, our_doc = _forward(ours, texts, task="query"), _forward(ours, texts, task="document")
    assert not np.allclose(our_query, our_doc)
    np.testing.assert_allclose(theirs.encode_query(texts), our_query, atol=ATOL)
    np.testing.assert_allclose(theirs.encode_document(texts), our_doc, atol=ATOL)

    back_dir = tmp_path / "back"
    theirs.save(str(back_dir))
    back = SentenceTransformer(str(back_dir), device="cpu")
    assert isinstance(back[0], Router)
    np.testing.assert_allclose(_forward(back, texts, task="query"), our_query, atol=ATOL)
    np.testing.assert_allclose(_forward(back, texts, task="document"), our_doc, atol=ATOL)
    np.testing.assert_allclose(_forward(back, texts), our_doc, atol=ATOL)  # default route


def test_router_model_encode_query_and_document(tmp_path: Path) -> None:
    pytest.importorskip("embedforge._core")
    from embedforge import SentenceTransformer

    query, document = _pair_of_word_models(tmp_path)
    router = Router.for_query_document([query, Pooling(6)], [document, Pooling(6, "max")])
    ours = SentenceTransformer(modules=[router], device="cpu")
    ours.save(str(tmp_path / "model"))
    theirs = st.SentenceTransformer(str(tmp_path / "model"), device="cpu")
    texts = _random_texts(30, seed=10)
    np.testing.assert_allclose(ours.encode_query(texts), theirs.encode_query(texts), atol=ATOL)
    np.testing.assert_allclose(ours.encode_document(texts), theirs.encode_document(texts), atol=ATOL)
    np.testing.assert_allclose(ours.encode(texts, task="query"), theirs.encode_query(texts), atol=ATOL)
    np.testing.assert_allclose(ours.encode(texts), theirs.encode(texts), atol=ATOL)


def test_router_with_transformer_routes_moves_between_libraries(tmp_path: Path, tiny_bert_dir: Path) -> None:
    pytest.importorskip("embedforge._core")  # Transformer tokenises in Rust
    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.modules import Transformer

    query, _ = _pair_of_word_models(tmp_path)
    transformer = Transformer(str(tiny_bert_dir), max_seq_length=32)
    router = Router.for_query_document([query, Pooling(6), LayerNorm(6)], [transformer, Pooling(32, "cls")])
    ours = SentenceTransformer(modules=[router], device="cpu")
    ours.save(str(tmp_path / "model"))
    theirs = st.SentenceTransformer(str(tmp_path / "model"), device="cpu")
    texts = _random_texts(12, seed=12)
    np.testing.assert_allclose(theirs.encode_query(texts), _forward(ours, texts, task="query"), atol=ATOL)
    np.testing.assert_allclose(theirs.encode_document(texts), _forward(ours, texts, task="document"), atol=1e-5)
    assert router.max_seq_length == 1000000  # the largest of the routes' limits, as in sentence-transformers


def test_old_asym_folder_loads(tmp_path: Path) -> None:
    """sentence-transformers 2.x saved Asym layouts in config.json, with module types under the old names."""
    query, document = _pair_of_word_models(tmp_path)
    folder = tmp_path / "asym"
    for module_id, module in (("query_0_WordEmbeddings", query), ("doc_0_WordEmbeddings", document)):
        (folder / module_id).mkdir(parents=True)
        module.save(str(folder / module_id))
    layout = {
        "types": {
            "query_0_WordEmbeddings": "sentence_transformers.models.WordEmbeddings",
            "doc_0_WordEmbeddings": "sentence_transformers.models.WordEmbeddings",
        },
        "structure": {"query": ["query_0_WordEmbeddings"], "doc": ["doc_0_WordEmbeddings"]},
        "parameters": {"allow_empty_key": False},
    }
    (folder / "config.json").write_text(json.dumps(layout), encoding="utf-8")
    ours = Asym.load(str(folder))
    theirs = st_load(st_router.Asym, folder)
    assert ours.default_route is None and theirs.default_route is None
    for task in ("query", "doc"):
        assert_features_equal(_run(ours, TEXTS, task=task), _run(theirs, TEXTS, task=task), ["token_embeddings"])
