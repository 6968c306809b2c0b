"""Causal-LM rerankers: a ``*ForCausalLM`` folder scored by LogitScore ("yes" minus "no" logits at the
last position), against transformers itself and sentence-transformers' CrossEncoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import WORDS, random_sentences
from embedforge.base.modules.registry import module_class_from_type
from embedforge.cross_encoder import CrossEncoder
from embedforge.cross_encoder.modules import LogitScore, Transformer
from embedforge.exceptions import InvalidArgumentError, ModelFormatError

PAIRS = list(zip(random_sentences(12, seed=3, max_words=5), random_sentences(12, seed=4, max_words=16)))
PLAIN_TEXT = {"text": {"method": "forward", "method_output_name": "logits"}}


def write_causal_lm(
    folder: Path,
    words: list[str],
    unk_token: str | None = "<unk>",
    chat_template: str | None = None,
) -> Path:
    """A random 2-layer Llama (hidden 32) with a word-level tokenizer over ``words`` that adds a BOS
    token and separates pairs (as a plain transformers folder)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<sep>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys([*specials, ".", ",", *words]))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <sep> $B:1", special_tokens=[("<s>", 2), ("<sep>", 4)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token=unk_token,
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=128,
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(str(folder))
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        # A wide init spreads the scores apart, so comparisons are not all near zero.
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_causal_lm(tmp_path_factory.mktemp("causal-lm"), [*WORDS, "yes"])


def st_cross_encoder(path: Path | str, **kwargs: Any) -> Any:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder as StCrossEncoder

    return StCrossEncoder(str(path), device="cpu", **kwargs)


def reference_logits(folder: Path, pairs: list[tuple[str, str]]) -> torch.Tensor:
    """The last position's next-token logits, straight from transformers on left-padded pairs (all positions
    computed, no logits_to_keep)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    batch = tokenizer([q for q, _ in pairs], [d for _, d in pairs], padding=True, return_tensors="pt")
    assert not batch["attention_mask"][:, 0].all()  # some rows are padded: the left padding is exercised
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, -1]


def token_id(folder: Path, token: str) -> int:
    vocab = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    return int(vocab[token])


def test_causal_lm_folder_loads_as_transformer_and_yes_no_logit_score(reranker_dir: Path) -> None:
    model = CrossEncoder(str(reranker_dir), device="cpu")
    transformer, score = model[0], model[1]
    assert isinstance(transformer, Transformer) and transformer.transformer_task == "text-generation"
    assert type(transformer.auto_model).__name__ == "LlamaForCausalLM"
    assert transformer.tokenizer.padding_side == "left"
    assert isinstance(score, LogitScore)
    assert (score.true_token_id, score.false_token_id) == (token_id(reranker_dir, "yes"), token_id(reranker_dir, "no"))
    assert score.module_input_name == "causal_logits"
    # A causal LM config says num_labels=2; the LogitScore gives one score.
    assert model.config.num_labels == 2 and model.num_labels == 1
    assert isinstance(model.activation_fn, torch.nn.Sigmoid)
    theirs = st_cross_encoder(reranker_dir)
    assert theirs.num_labels == 1
    assert (theirs[1].true_token_id, theirs[1].false_token_id) == (score.true_token_id, score.false_token_id)


def test_scores_are_the_yes_minus_no_logit_of_the_last_position(reranker_dir: Path) -> None:
    model = CrossEncoder(str(reranker_dir), device="cpu")
    features = model.preprocess(PAIRS)
    assert features["logits_to_keep"] == 1
    assert features["attention_mask"][:, -1].all() and not features["attention_mask"][:, 0].all()
    with torch.no_grad():
        output = model(features)
    assert output["causal_logits"].shape == (len(PAIRS), 1, model.config.vocab_size)
    assert output["scores"].shape == (len(PAIRS), 1)

    last = reference_logits(reranker_dir, PAIRS)
    yes, no = token_id(reranker_dir, "yes"), token_id(reranker_dir, "no")
    expected = (last[:, yes] - last[:, no]).numpy()
    raw = model.predict(PAIRS, activation_fn=torch.nn.Identity(), batch_size=5)
    np.testing.assert_allclose(raw, expected, rtol=0, atol=1e-5)
    assert float(np.ptp(expected)) > 0.1  # the scores differ from pair to pair
    np.testing.assert_allclose(model.predict(PAIRS), 1 / (1 + np.exp(-expected)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("options", [{}, {"batch_size": 3}, {"activation_fn": torch.nn.Identity()}, {"prompt": "q: "}])
def test_predictions_and_rankings_equal_sentence_transformers(reranker_dir: Path, options: dict[str, Any]) -> None:
    ours, theirs = CrossEncoder(str(reranker_dir), device="cpu"), st_cross_encoder(reranker_dir)
    got, expected = ours.predict(PAIRS, **options), theirs.predict(PAIRS, **options)
    assert got.shape == expected.shape == (len(PAIRS),)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    query, documents = PAIRS[0][0], [document for _, document in PAIRS]
    ranked, st_ranked = ours.rank(query, documents, top_k=5), theirs.rank(query, documents, top_k=5)
    assert [hit["corpus_id"] for hit in ranked] == [hit["corpus_id"] for hit in st_ranked]
    np.testing.assert_allclose([hit["score"] for hit in ranked], [hit["score"] for hit in st_ranked], atol=1e-5)


def test_folders_round_trip_between_the_libraries(reranker_dir: Path, tmp_path: Path) -> None:
    ours, theirs = CrossEncoder(str(reranker_dir), device="cpu"), st_cross_encoder(reranker_dir)
    expected = theirs.predict(PAIRS)

    ours.save_pretrained(str(tmp_path / "ours"))
    entries = json.loads((tmp_path / "ours" / "modules.json").read_text(encoding="utf-8"))
    assert entries[1]["type"] == "sentence_transformers.cross_encoder.modules.logit_score.LogitScore"
    saved = json.loads((tmp_path / "ours" / "sentence_bert_config.json").read_text(encoding="utf-8"))
    assert saved["transformer_task"] == "text-generation" and saved["module_output_name"] == "causal_logits"
    st_loaded = st_cross_encoder(tmp_path / "ours")
    assert st_loaded[0].transformer_task == "text-generation" and type(st_loaded[1]).__name__ == "LogitScore"
    np.testing.assert_allclose(st_loaded.predict(PAIRS), expected, rtol=0, atol=1e-5)

    theirs.save_pretrained(str(tmp_path / "theirs"))
    reloaded = CrossEncoder(str(tmp_path / "theirs"), device="cpu")
    assert [type(module) for module in reloaded] == [Transformer, LogitScore]
    assert reloaded[0].transformer_task == "text-generation"
    np.testing.assert_allclose(reloaded.predict(PAIRS), expected, rtol=0, atol=1e-5)
    # And once more through our own save: nothing is lost on the way.
    reloaded.save_pretrained(str(tmp_path / "again"))
    np.testing.assert_allclose(CrossEncoder(str(tmp_path / "again")).predict(PAIRS), expected, rtol=0, atol=1e-5)


def test_true_token_only_scores_with_its_logit(reranker_dir: Path, tmp_path: Path) -> None:
    yes = token_id(reranker_dir, "yes")
    model = CrossEncoder(
        modules=[Transformer(str(reranker_dir), transformer_task="text-generation"), LogitScore(true_token_id=yes)],
        device="cpu",
    )
    assert model.num_labels == 1
    expected = reference_logits(reranker_dir, PAIRS)[:, yes].numpy()
    np.testing.assert_allclose(model.predict(PAIRS, activation_fn=torch.nn.Identity()), expected, atol=1e-5)

    model.save_pretrained(str(tmp_path / "yes-only"))
    saved = json.loads((tmp_path / "yes-only" / "1_LogitScore" / "config.json").read_text(encoding="utf-8"))
    assert saved == {"true_token_id": yes, "false_token_id": None, "module_input_name": "causal_logits"}
    theirs = st_cross_encoder(tmp_path / "yes-only")
    assert theirs[1].false_token_id is None
    np.testing.assert_allclose(theirs.predict(PAIRS), model.predict(PAIRS), rtol=0, atol=1e-5)


def test_tokenizer_without_yes_and_no_fails_clearly(tmp_path: Path) -> None:
    without = [word for word in WORDS if word != "no"]  # neither "yes" nor "no"
    # Without an unknown token, a missing token has no id: both libraries refuse the folder.
    no_unk = write_causal_lm(tmp_path / "no-unk", without, unk_token=None)
    with pytest.raises(ModelFormatError, match=r"does not have 'yes' and/or 'no' tokens \(missing: \['yes', 'no'\]\)"):
        CrossEncoder(str(no_unk))
    with pytest.raises(ValueError, match="does not have 'yes' and/or 'no' tokens"):
        st_cross_encoder(no_unk)
    # With one, sentence-transformers would score with the unknown token's logit; embedforge refuses too.
    with_unk = write_causal_lm(tmp_path / "unk", [*without, "yes"])
    with pytest.raises(ModelFormatError, match=r"\(missing: \['no'\]\)"):
        CrossEncoder(str(with_unk))


def test_logits_to_keep_all_positions_gives_the_same_scores(reranker_dir: Path, tmp_path: Path) -> None:
    default = CrossEncoder(str(reranker_dir), device="cpu")
    transformer = Transformer(
        str(reranker_dir), transformer_task="text-generation", processing_kwargs={"text": {"logits_to_keep": 0}}
    )
    everything = CrossEncoder(modules=[transformer, LogitScore(*default[1].get_config_dict().values())], device="cpu")
    features = everything.preprocess(PAIRS[:3])
    assert features["logits_to_keep"] == 0
    with torch.no_grad():
        logits = everything(features)["causal_logits"]
    assert logits.shape[:2] == features["input_ids"].shape
    np.testing.assert_allclose(everything.predict(PAIRS), default.predict(PAIRS), rtol=0, atol=1e-6)
    # A per-call setting overrides the module's.
    assert default[0].preprocess(PAIRS[:2], processing_kwargs={"text": {"logits_to_keep": 0}})["logits_to_keep"] == 0

    everything.save_pretrained(str(tmp_path / "keep-all"))
    saved = json.loads((tmp_path / "keep-all" / "sentence_bert_config.json").read_text(encoding="utf-8"))
    assert saved["processing_kwargs"] == {"text": {"logits_to_keep": 0}}
    theirs = st_cross_encoder(tmp_path / "keep-all")
    st_features = theirs.preprocess(PAIRS[:3])
    assert st_features["logits_to_keep"] == 0
    np.testing.assert_allclose(theirs.predict(PAIRS), everything.predict(PAIRS), rtol=0, atol=1e-5)

    for bad in (-1, True, "1"):
        with pytest.raises(InvalidArgumentError, match=r"logits_to_keep'\]="):
            Transformer(
                str(reranker_dir),
                transformer_task="text-generation",
                processing_kwargs={"text": {"logits_to_keep": bad}},
            )


def test_right_padding_is_refused(reranker_dir: Path) -> None:
    model = CrossEncoder(str(reranker_dir), device="cpu")
    model.tokenizer.padding_side = "right"
    with pytest.raises(InvalidArgumentError, match="needs left-padded inputs"):
        model.predict(PAIRS[:4])
    model.tokenizer.padding_side = "left"
    assert model.predict(PAIRS[:4]).shape == (4,)


def test_chat_template_tokenizer_is_refused_unless_plain_text_is_asked_for(tmp_path: Path) -> None:
    template = "{% for m in messages %}<s> {{ m['content'] }} {% endfor %}"
    folder = write_causal_lm(tmp_path / "chat", [*WORDS, "yes"], chat_template=template)
    # sentence-transformers renders the pairs through the chat template (its "message" modality).
    assert "message" in st_cross_encoder(folder)[0].modality_config
    with pytest.raises(ModelFormatError, match="has a chat template"):
        CrossEncoder(str(folder))
    plain = Transformer(
        str(folder),
        transformer_task="text-generation",
        modality_config=PLAIN_TEXT,
        module_output_name="causal_logits",
    )
    assert plain.preprocess(PAIRS[:2])["attention_mask"][:, -1].all()


def test_module_types_resolve_to_logit_score() -> None:
    for type_ref in (
        "sentence_transformers.cross_encoder.modules.logit_score.LogitScore",
        "sentence_transformers.cross_encoder.modules.LogitScore",
        "embedforge.cross_encoder.modules.logit_score.LogitScore",
    ):
        assert module_class_from_type(type_ref) is LogitScore


def test_logit_score_checks_its_arguments_and_input() -> None:
    with pytest.raises(InvalidArgumentError, match="true_token_id=-1"):
        LogitScore(-1)
    with pytest.raises(InvalidArgumentError, match="false_token_id='no'"):
        LogitScore(3, "no")  # type: ignore[arg-type]
    score = LogitScore(5, 2)
    logits = torch.randn(2, 3, 6)
    out = score({"causal_logits": logits})["scores"]
    torch.testing.assert_close(out, (logits[:, -1, 5] - logits[:, -1, 2]).unsqueeze(1))
    with pytest.raises(InvalidArgumentError, match="true_token_id=5 is outside the model's vocabulary of 4"):
        score({"causal_logits": torch.randn(2, 1, 4)})
    with pytest.raises(InvalidArgumentError, match=r"features\['causal_logits'\]"):
        score({"scores": torch.randn(2, 1)})


def test_bce_training_steps_equal_sentence_transformers_trainer(reranker_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    pytest.importorskip("accelerate")
    from test_ce_trainer import pair_dataset, train

    dataset = pair_dataset().select(range(12))  # two steps of six pairs
    ours, our_scores = train("embedforge", reranker_dir, tmp_path, dataset, "BinaryCrossEntropyLoss", {})
    theirs, their_scores = train("sentence_transformers", reranker_dir, tmp_path, dataset, "BinaryCrossEntropyLoss", {})
    assert len(ours) == len(theirs) == 2
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(our_scores, their_scores, rtol=0, atol=1e-5)
    before = CrossEncoder(str(reranker_dir), device="cpu").predict(
        list(zip(*[dataset[c][:5] for c in ("query", "document")]))
    )
    assert not np.allclose(our_scores, before, atol=1e-4)  # the steps changed the model
