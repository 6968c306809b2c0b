"""Transformer's modality routing, processor options, query expansion and chat templates.

Tiny models are built from configs (a CLIP with a WordPiece tokenizer, a 2-layer BERT); where
sentence-transformers is installed it is the oracle for the same folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tests.conftest import write_tiny_bert, write_wordpiece_tokenizer

from embedforge import SentenceTransformer
from embedforge.base.modules import Transformer

CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }} [SEP] {% endfor %}end of turn"


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised CLIP (hidden 32, 16x16 images) with a CLIPProcessor, saved as a transformers folder."""
    from transformers import BertTokenizerFast, CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    folder = tmp_path_factory.mktemp("tiny-clip")
    write_wordpiece_tokenizer(folder)
    tokenizer = BertTokenizerFast.from_pretrained(str(folder))
    image_processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(folder))
    text = {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    text |= {"num_attention_heads": 4, "max_position_embeddings": 64, "pad_token_id": 0, "eos_token_id": 3}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    vision |= {"image_size": 16, "patch_size": 8}
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert-modalities"))


def images(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)) for _ in range(count)]


def test_clip_routes_text_and_images_to_their_feature_methods(clip_dir: Path) -> None:
    transformer = Transformer(str(clip_dir))
    assert transformer.modality_config == {
        "text": {"method": "get_text_features", "method_output_name": "pooler_output"},
        "image": {"method": "get_image_features", "method_output_name": "pooler_output"},
    }
    assert transformer.module_output_name == "sentence_embedding"
    assert transformer.get_embedding_dimension() == 24

    batch = images(3)
    features = transformer.preprocess(batch)
    assert features["modality"] == "image"
    with torch.no_grad():
        ours = transformer(features)["sentence_embedding"]
        pixels = transformer.processor(images=batch, return_tensors="pt")["pixel_values"]
        direct = transformer.model.get_image_features(pixel_values=pixels).pooler_output
    torch.testing.assert_close(ours, direct)

    with pytest.raises(ValueError, match="cannot encode in a single batch"):
        transformer.preprocess(["a cat", batch[0]])


def test_clip_matches_sentence_transformers(clip_dir: Path, tmp_path: Path) -> None:
    reference = pytest.importorskip("sentence_transformers")
    from sentence_transformers.base.modules import Transformer as ReferenceTransformer

    ours = SentenceTransformer(modules=[Transformer(str(clip_dir))])
    theirs = reference.SentenceTransformer(modules=[ReferenceTransformer(str(clip_dir))])
    assert ours[0].modality_config == theirs[0].modality_config
    inputs = [*images(2), "a cat", "the dog runs"]
    expected = np.concatenate([theirs.encode(inputs[:2]), theirs.encode(inputs[2:])])
    np.testing.assert_allclose(np.concatenate([ours.encode(inputs[:2]), ours.encode(inputs[2:])]), expected, atol=1e-5)

    # A folder saved by embedforge loads in sentence-transformers with the same embeddings.
    ours.save(str(tmp_path / "saved"))
    reloaded = reference.SentenceTransformer(str(tmp_path / "saved"))
    np.testing.assert_allclose(reloaded.encode(inputs[:2]), expected[:2], atol=1e-5)


def test_rust_tokenisation_matches_the_tokenizer(bert_dir: Path) -> None:
    transformer = Transformer(str(bert_dir), max_seq_length=12)
    texts = ["the cat sat on the mat", "a dog", "running quickly and happily through the park today"]
    pairs = [("a query", "the matching document text"), ("x", "y")]
    for batch, kwargs in ((texts, {}), (pairs, {}), (texts, {"task": "query", "max_length": 5})):
        features = transformer.preprocess(batch, **kwargs)
        reference = transformer.tokenizer(
            [item if isinstance(item, str) else item[0] for item in batch],
            None if isinstance(batch[0], str) else [item[1] for item in batch],
            padding=True,
            truncation="longest_first",
            max_length=kwargs.get("max_length", 12),
            return_tensors="pt",
        )
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            torch.testing.assert_close(features[key], reference[key])


def test_processing_kwargs_per_module_and_per_call(bert_dir: Path) -> None:
    long_text = ["the cat sat on the mat and the dog ran around the park"]
    transformer = Transformer(str(bert_dir), processing_kwargs={"text": {"max_length": 5, "truncation": True}})
    assert transformer.preprocess(long_text)["input_ids"].shape[1] == 5
    assert transformer.preprocess(long_text, processing_kwargs={"text": {"max_length": 7}})["input_ids"].shape[1] == 7
    assert transformer.processing_kwargs == {"text": {"max_length": 5, "truncation": True}}
    numpy_features = transformer.preprocess(long_text, processing_kwargs={"common": {"return_tensors": "np"}})
    assert isinstance(numpy_features["input_ids"], np.ndarray)


def test_document_length_applies_to_documents_only(bert_dir: Path) -> None:
    transformer = Transformer(str(bert_dir), document_length=4)
    text = ["the cat sat on the mat and the dog ran"]
    assert transformer.preprocess(text, task="document")["input_ids"].shape[1] == 4
    assert transformer.preprocess(text, task="query")["input_ids"].shape[1] > 4


def test_query_expansion_pads_queries_with_mask_tokens(bert_dir: Path) -> None:
    transformer = Transformer(str(bert_dir), query_expansion={"strategy": "min", "length": 8})
    features = transformer.preprocess(["cat", "the cat sat on the mat and the dog ran away"], task="query")
    positions = features["query_expansion_positions"]
    short_real = int(transformer.tokenizer(["cat"], return_tensors="pt")["attention_mask"].sum())
    assert positions[0].sum().item() == 8 - short_real
    assert not positions[1].any()
    assert (features["input_ids"][positions] == transformer.tokenizer.mask_token_id).all()
    assert "query_expansion_positions" not in transformer.preprocess(["cat"], task="document")

    fixed = Transformer(str(bert_dir), query_expansion={"strategy": "fixed", "length": 6, "attend": True})
    features = fixed.preprocess(["cat", "the cat sat on the mat and the dog ran away"], task="query")
    assert features["input_ids"].shape[1] == 6
    assert features["attention_mask"][0].all()
    with pytest.raises(ValueError, match="unknown keys"):
        Transformer(str(bert_dir), query_expansion={"strategy": "min", "length": 4, "size": 3})


def test_config_round_trip_and_defaults(bert_dir: Path, tmp_path: Path) -> None:
    transformer = Transformer(
        str(bert_dir), processing_kwargs={"text": {"truncation": "only_first"}}, unpad_inputs=False
    )
    transformer.modality_config[("image", "text")] = {"method": "forward", "method_output_name": "last_hidden_state"}
    transformer.save(str(tmp_path))
    saved = json.loads((tmp_path / "sentence_bert_config.json").read_text(encoding="utf-8"))
    assert saved["modality_config"]["image+text"] == {"method": "forward", "method_output_name": "last_hidden_state"}
    assert saved["unpad_inputs"] is False and "query_length" not in saved
    config = Transformer.load_config(str(tmp_path))
    assert ("image", "text") in config["modality_config"]

    del saved["modality_config"], saved["module_output_name"]
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps(saved), encoding="utf-8")
    loaded = Transformer.load(str(tmp_path))
    assert loaded.modality_config == {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
    assert loaded.processing_kwargs == {"text": {"truncation": "only_first"}}


def test_modality_config_is_checked(bert_dir: Path) -> None:
    with pytest.raises(ValueError, match="module_output_name"):
        Transformer(str(bert_dir), modality_config={"text": {"method": "forward", "method_output_name": "x"}})
    with pytest.raises(ValueError, match="'method' and 'method_output_name'"):
        Transformer(
            str(bert_dir), modality_config={"text": {"method": "forward"}}, module_output_name="token_embeddings"
        )
    with pytest.raises(ValueError, match="Unsupported transformer_task"):
        Transformer(str(bert_dir), transformer_task="summarization")


def write_chat_bert(folder: Path) -> Path:
    """A tiny BERT whose WordPiece tokenizer knows digits (the closing-token probe renders digits) and has
    a chat template that closes every conversation with fixed tokens."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["cat", "dog", "the", "mat", "end", "of", "turn", *"0123456789"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    backend = Tokenizer(models.WordPiece({piece: i for i, piece in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer = BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]")
    tokenizer.cls_token, tokenizer.mask_token = "[CLS]", "[MASK]"
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder))
    return folder


def test_chat_template_models_render_text_as_messages_and_keep_the_closing_tokens(tmp_path: Path) -> None:
    folder = write_chat_bert(tmp_path / "chat")
    transformer = Transformer(str(folder), max_seq_length=8)
    assert "message" in transformer.modality_config
    long_text = " ".join(["cat"] * 20)
    features = transformer.preprocess([long_text, "dog"])
    assert features["modality"] == "message"
    closing = transformer.tokenizer("end of turn", add_special_tokens=False)["input_ids"]
    row = features["input_ids"][0].tolist()
    assert len(row) == 8 and row[-len(closing) :] == closing

    without = transformer.preprocess([long_text], processing_kwargs={"chat_template": {"restore_suffix": False}})
    assert without["input_ids"][0].tolist()[-len(closing) :] != closing


def test_chat_template_rendering_matches_sentence_transformers(tmp_path: Path) -> None:
    reference = pytest.importorskip("sentence_transformers.base.modules")
    folder = write_chat_bert(tmp_path / "chat")
    ours = Transformer(str(folder), max_seq_length=8)
    theirs = reference.Transformer(str(folder), max_seq_length=8)
    batch: list[Any] = [" ".join(["cat"] * 20), "dog", [{"role": "user", "content": "the mat"}]]
    for inputs in (batch[:2], batch[2:]):
        expected = theirs.preprocess(inputs)
        got = ours.preprocess(inputs)
        for key in ("input_ids", "attention_mask"):
            torch.testing.assert_close(got[key], expected[key])


def test_tokenizer_edits_after_loading_reach_the_rust_copy(bert_dir: Path) -> None:
    from tokenizers.processors import TemplateProcessing

    transformer = Transformer(str(bert_dir))
    transformer.preprocess(["the cat"])  # the Rust copy now exists
    sep_id = transformer.tokenizer.sep_token_id
    transformer.tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="$0 [SEP]", special_tokens=[("[SEP]", sep_id)]
    )
    transformer.tokenizer.padding_side = "left"
    features = transformer.preprocess(["the cat", "the cat sat on the mat"])
    expected = transformer.tokenizer(["the cat", "the cat sat on the mat"], padding=True, return_tensors="pt")
    torch.testing.assert_close(features["input_ids"], expected["input_ids"])
    assert features["input_ids"][0, 0] == transformer.tokenizer.pad_token_id
