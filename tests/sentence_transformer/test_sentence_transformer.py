"""SentenceTransformer behaviour, checked against independent references (transformers + numpy)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from conftest import random_sentences, shared_path
from embedforge import SentenceTransformer
from embedforge.exceptions import EmbedforgeError, InvalidArgumentError, ModelFormatError, ModelNotFoundError
from embedforge.sentence_transformer.modules import Dense, Normalize, Pooling, StaticEmbedding, Transformer

TRICKY = ["", "   ", "hello world", "Der Hund läuft schnell.", "猫が好きです", "emoji 🎉🚀 end", "word " * 300]


@pytest.fixture(scope="module")
def bert_model(tiny_bert_dir: Path) -> SentenceTransformer:
    return SentenceTransformer(str(tiny_bert_dir))


def reference_mean_embeddings(folder: Path, texts: list[str], max_length: int) -> np.ndarray:
    """Independent reference: transformers tokenizer + BertModel + masked mean written out in numpy."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    rows = []
    for text in texts:
        encoded = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**encoded).last_hidden_state[0].numpy()
        rows.append(hidden.mean(axis=0))
    return np.stack(rows)


def test_plain_transformer_folder_gets_mean_pooling(bert_model: SentenceTransformer, tiny_bert_dir: Path) -> None:
    assert [type(module) for module in bert_model] == [Transformer, Pooling]
    assert bert_model.max_seq_length == 64  # capped by max_position_embeddings
    texts = random_sentences(20) + TRICKY
    ours = bert_model.encode(texts, batch_size=4)
    assert ours.shape == (len(texts), 32) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference_mean_embeddings(tiny_bert_dir, texts, 64), atol=1e-5)


def test_batch_size_and_order_do_not_change_results(bert_model: SentenceTransformer) -> None:
    texts = random_sentences(30, seed=1)
    one = bert_model.encode(texts, batch_size=1)
    many = bert_model.encode(texts, batch_size=16)
    np.testing.assert_allclose(one, many, atol=1e-5)
    np.testing.assert_allclose(bert_model.encode(texts[::-1], batch_size=7), many[::-1], atol=1e-5)


def test_transformer_batches_group_texts_by_token_count(bert_model: SentenceTransformer, tiny_bert_dir: Path) -> None:
    from transformers import AutoTokenizer

    # Character length and token count disagree here: long words split into many word pieces.
    odd_words = ["a b c d e f g h", "zzzzqqqqxxxx", "antidisestablishmentarianism x"]
    texts = [*random_sentences(40, seed=2), *odd_words, *TRICKY]
    reference = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    counts = [len(reference(text, truncation=True, max_length=64)["input_ids"]) for text in texts]
    transformer = bert_model[0]
    assert transformer.text_token_counts(texts).tolist() == counts
    prompt_counts = [len(reference("query: " + t, truncation=True, max_length=64)["input_ids"]) for t in texts]
    assert transformer.text_token_counts(texts, "query: ").tolist() == prompt_counts

    widths: list[tuple[int, int]] = []
    handle = bert_model.register_forward_pre_hook(
        lambda module, args: widths.append(tuple(args[0]["attention_mask"].shape))  # type: ignore[arg-type]
    )
    try:
        embeddings = bert_model.encode(texts, batch_size=8)
    finally:
        handle.remove()
    # Each batch is padded to its longest text; sorted by token count, that is the least padding possible.
    descending = sorted(counts, reverse=True)
    assert widths == [(len(descending[i : i + 8]), descending[i]) for i in range(0, len(texts), 8)]
    np.testing.assert_allclose(embeddings, reference_mean_embeddings(tiny_bert_dir, texts, 64), atol=1e-5)


def test_output_types(bert_model: SentenceTransformer) -> None:
    texts = ["first text", "second text here"]
    as_numpy = bert_model.encode(texts)
    tensor = bert_model.encode(texts, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (2, 32)
    listed = bert_model.encode(texts, convert_to_numpy=False)
    assert isinstance(listed, list) and all(isinstance(row, torch.Tensor) for row in listed)
    single = bert_model.encode("first text")
    assert single.shape == (32,)
    np.testing.assert_allclose(single, as_numpy[0], atol=1e-6)
    normalized = bert_model.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, rtol=1e-5)
    truncated = bert_model.encode(texts, truncate_dim=8)
    np.testing.assert_allclose(truncated, as_numpy[:, :8], atol=1e-6)
    tokens = bert_model.encode(texts, output_value="token_embeddings")
    assert [row.shape[1] for row in tokens] == [32, 32] and tokens[0].shape[0] < tokens[1].shape[0] + 1
    everything = bert_model.encode(texts, output_value=None)
    assert set(everything[0]) >= {"input_ids", "attention_mask", "token_embeddings", "sentence_embedding"}


def test_quantized_precisions_match_quantize_embeddings(bert_model: SentenceTransformer) -> None:
    from embedforge.util import quantize_embeddings

    texts = random_sentences(10, seed=2)
    floats = bert_model.encode(texts)
    for precision in ("int8", "uint8", "binary", "ubinary"):
        np.testing.assert_array_equal(
            bert_model.encode(texts, precision=precision), quantize_embeddings(floats, precision=precision)
        )


def test_prompts(tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), prompts={"query": "query: ", "passage": "passage: "})
    text = "the cat and the dog"
    np.testing.assert_allclose(model.encode_query(text), model.encode("query: " + text), atol=1e-6)
    # The default "document" prompt (empty) comes before "passage", as in sentence-transformers 6.2.
    np.testing.assert_allclose(model.encode_document(text), model.encode(text), atol=1e-6)
    np.testing.assert_allclose(
        model.encode_document(text, prompt_name="passage"), model.encode("passage: " + text), atol=1e-6
    )
    np.testing.assert_allclose(model.encode(text, prompt_name="query"), model.encode("query: " + text), atol=1e-6)
    np.testing.assert_allclose(model.encode(text, prompt="x "), model.encode("x " + text), atol=1e-6)
    with pytest.raises(InvalidArgumentError, match="'nope'"):
        model.encode(text, prompt_name="nope")
    with_default = SentenceTransformer(str(tiny_bert_dir), prompts={"query": "query: "}, default_prompt_name="query")
    np.testing.assert_allclose(with_default.encode(text), model.encode("query: " + text), atol=1e-6)


def test_prompt_excluded_from_pooling(tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_bert_dir))
    model[1].include_prompt = False
    features = model.preprocess(["the dog"], prompt="query: ")
    # [CLS] + the prompt's tokens, without the trailing [SEP]
    prompt_length = len(model.tokenizer("query: ")["input_ids"]) - 1
    assert features["prompt_length"] == prompt_length
    with torch.no_grad():
        output = model.forward(dict(features))
    hidden = output["token_embeddings"][0]
    np.testing.assert_allclose(
        model.encode("the dog", prompt="query: "), hidden[prompt_length:].mean(dim=0).numpy(), atol=1e-5
    )


def test_save_and_load_round_trip(tmp_path: Path, tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(
        modules=[
            Transformer(str(tiny_bert_dir), max_seq_length=20),
            Pooling(32, "mean"),
            Dense(32, 16),
            Normalize(),
        ],
        prompts={"query": "q: "},
        similarity_fn_name="dot",
    )
    target = tmp_path / "saved"
    model.save(str(target))
    names = json.loads((target / "modules.json").read_text())
    assert [entry["type"] for entry in names] == [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Dense",
        "sentence_transformers.models.Normalize",
    ]
    assert [entry["path"] for entry in names] == ["", "1_Pooling", "2_Dense", "3_Normalize"]
    # sentence-transformers 6's Transformer config: the task, the modality routing and the output name.
    assert json.loads((target / "sentence_bert_config.json").read_text()) == {
        "transformer_task": "feature-extraction",
        "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
        "module_output_name": "token_embeddings",
        "max_seq_length": 20,
        "do_lower_case": False,
    }
    assert (target / "2_Dense" / "model.safetensors").is_file() and (target / "README.md").is_file()
    loaded = SentenceTransformer(str(target))
    assert (
        loaded.prompts == {"query": "q: ", "document": ""}
        and loaded.similarity_fn_name == "dot"
        and loaded.max_seq_length == 20
    )
    texts = random_sentences(8, seed=4) + TRICKY
    np.testing.assert_allclose(loaded.encode(texts), model.encode(texts), atol=1e-6)
    # Saving over an existing folder replaces the model and keeps unrelated files.
    (target / "notes.txt").write_text("keep me")
    loaded.save(str(target))
    assert (target / "notes.txt").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".saved")], "no staging folders left behind"


def test_similarity_functions(bert_model: SentenceTransformer) -> None:
    a = bert_model.encode(["one thing", "another"], convert_to_tensor=True)
    cosine = bert_model.similarity(a, a)
    expected = (a / a.norm(dim=1, keepdim=True)) @ (a / a.norm(dim=1, keepdim=True)).T
    torch.testing.assert_close(cosine, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bert_model.similarity_pairwise(a, a), torch.ones(2), rtol=1e-5, atol=1e-5)


def test_empty_input_has_the_right_width(bert_model: SentenceTransformer) -> None:
    assert bert_model.encode([]).shape == (0, 32)
    assert bert_model.encode([], convert_to_tensor=True).shape == (0, 32)
    assert bert_model.encode([], truncate_dim=4).shape == (0, 4)


def test_bad_inputs_raise_clear_errors(bert_model: SentenceTransformer) -> None:
    with pytest.raises(InvalidArgumentError, match=r"inputs\[2\] is int"):
        bert_model.encode(["a", "b", 3])
    with pytest.raises(InvalidArgumentError, match=r"inputs\[0\] is NoneType"):
        bert_model.encode([None])
    with pytest.raises(InvalidArgumentError, match="'float16'"):
        bert_model.encode(["a"], precision="float16")
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        bert_model.encode(["a"], batch_size=0)


def test_missing_and_hub_style_names_fail_at_once(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        SentenceTransformer(str(tmp_path / "does" / "not" / "exist"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match=r"neither modules.json"):
        SentenceTransformer(str(tmp_path / "empty"))


def _saved_dense_model(folder: Path, tiny_bert_dir: Path) -> None:
    SentenceTransformer(modules=[Transformer(str(tiny_bert_dir)), Pooling(32), Dense(32, 8)]).save(str(folder))


def test_corrupt_or_mismatched_weights(tmp_path: Path, tiny_bert_dir: Path) -> None:
    folder = tmp_path / "model"
    _saved_dense_model(folder, tiny_bert_dir)
    config_path = folder / "2_Dense" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "out_features": 12}))
    with pytest.raises(ModelFormatError, match=r"linear.weight.*\(8, 32\).*\(12, 32\)"):
        SentenceTransformer(str(folder))
    config_path.write_text(json.dumps(config))
    (folder / "2_Dense" / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ModelFormatError, match="Cannot read weights"):
        SentenceTransformer(str(folder))
    (folder / "2_Dense" / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="No weights"):
        SentenceTransformer(str(folder))
    (folder / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "my.custom.Thing"}]')
    with pytest.raises(ModelFormatError, match=r"my.custom.Thing"):
        SentenceTransformer(str(folder))
    (folder / "modules.json").write_text("{not json")
    with pytest.raises(EmbedforgeError, match="not valid JSON"):
        SentenceTransformer(str(folder))


# -- static models ---------------------------------------------------------------------------------


@pytest.fixture()
def static_model(tiny_bert_dir: Path) -> SentenceTransformer:
    tokenizer = Tokenizer.from_file(str(tiny_bert_dir / "tokenizer.json"))
    generator = torch.Generator().manual_seed(5)
    weights = torch.randn(tokenizer.get_vocab_size(), 12, generator=generator)
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)])


def reference_static(tokenizer: Tokenizer, weights: np.ndarray, texts: list[str]) -> np.ndarray:
    rows = []
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        rows.append(weights[ids].mean(axis=0) if ids else np.zeros(weights.shape[1], dtype=np.float32))
    return np.stack(rows)


def test_static_encode_is_the_mean_of_token_rows(static_model: SentenceTransformer) -> None:
    static: StaticEmbedding = static_model[0]
    texts = random_sentences(50, seed=6) + TRICKY
    expected = reference_static(static.tokenizer, static.embedding.weight.detach().numpy(), texts)
    np.testing.assert_allclose(static_model.encode(texts), expected, atol=1e-6)
    # The Rust fast path and the torch EmbeddingBag path agree.
    with torch.no_grad():
        slow = static_model.forward(static_model.preprocess(texts))["sentence_embedding"].numpy()
    np.testing.assert_allclose(slow, expected, atol=1e-6)


def test_static_with_normalize_and_prompt(static_model: SentenceTransformer, tmp_path: Path) -> None:
    model = SentenceTransformer(modules=[static_model[0], Normalize()])
    texts = [*random_sentences(20, seed=7), ""]
    raw = static_model.encode(["q " + t for t in texts])
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    expected = np.where(norms > 0, raw / np.maximum(norms, 1e-12), 0.0)
    np.testing.assert_allclose(model.encode(texts, prompt="q "), expected, atol=1e-6)
    model.save(str(tmp_path / "static"))
    loaded = SentenceTransformer(str(tmp_path / "static"))
    np.testing.assert_allclose(loaded.encode(texts), model.encode(texts), atol=1e-7)
    assert static_model.encode([]).shape == (0, 12)


def test_model2vec_fixture_loads() -> None:
    folder = shared_path("model2vec-fixture")
    model = SentenceTransformer(str(folder))
    assert [type(module) for module in model] == [StaticEmbedding, Normalize]
    embeddings = model.encode(["hello world", "a second sentence", ""])
    assert embeddings.shape == (3, model.get_embedding_dimension())
    np.testing.assert_allclose(np.linalg.norm(embeddings[:2], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(embeddings[2], 0.0)


def test_encode_runs_the_model_through_call_so_forward_hooks_fire(tiny_bert_dir: Path) -> None:
    """encode calls the model (``model(features)``), as sentence-transformers does: hooks see every batch."""
    model = SentenceTransformer(str(tiny_bert_dir))
    seen: list[int] = []
    handle = model.register_forward_hook(lambda module, args, output: seen.append(len(output["sentence_embedding"])))
    try:
        embeddings = model.encode(["one", "two", "three"], batch_size=2)
    finally:
        handle.remove()
    assert seen == [2, 1] and embeddings.shape[0] == 3


def test_static_model_refuses_an_image_as_sentence_transformers_does() -> None:
    """An image given to a text-only static model gets sentence-transformers' modality error."""
    from PIL import Image

    from conftest import embedforge_static, st_static, static_weights

    weights = static_weights()
    image = Image.new("RGB", (4, 4))
    with pytest.raises(ValueError) as theirs:
        st_static(weights).encode([image])
    with pytest.raises(ValueError) as ours:
        embedforge_static(weights).encode([image])
    assert str(ours.value) == str(theirs.value)
