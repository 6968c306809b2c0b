"""CrossEncoder: predictions, rankings and folders, against sentence-transformers' CrossEncoder."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import random_sentences
from embedforge import CrossEncoder
from embedforge.exceptions import InvalidArgumentError

PAIRS = list(zip(random_sentences(40, seed=1), random_sentences(40, seed=2, max_words=20)))


def st_cross_encoder(path: Path | str, **kwargs: Any) -> Any:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder as StCrossEncoder

    return StCrossEncoder(str(path), device="cpu", **kwargs)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"batch_size": 3},
        {"activation_fn": torch.nn.Identity()},
        {"prompt": "relevance: "},
        {"convert_to_tensor": True},
    ],
)
def test_single_label_predictions_match_sentence_transformers(scorer_dir: Path, options: dict[str, Any]) -> None:
    ours, theirs = CrossEncoder(str(scorer_dir)), st_cross_encoder(scorer_dir)
    got, expected = ours.predict(PAIRS, **options), theirs.predict(PAIRS, **options)
    assert type(got) is type(expected) and got.shape == expected.shape == (len(PAIRS),)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=0, atol=1e-6)
    assert float(np.ptp(np.asarray(got))) > 0.05  # the scores are not all alike
    single = ours.predict(PAIRS[0], **options)
    np.testing.assert_allclose(np.asarray(single), np.asarray(theirs.predict(PAIRS[0], **options)), atol=1e-6)


@pytest.mark.parametrize("apply_softmax", [False, True])
def test_multi_label_predictions_match_sentence_transformers(classifier_dir: Path, apply_softmax: bool) -> None:
    ours, theirs = CrossEncoder(str(classifier_dir)), st_cross_encoder(classifier_dir)
    assert ours.num_labels == theirs.num_labels == 3
    assert isinstance(ours.activation_fn, torch.nn.Identity)
    got = ours.predict(PAIRS, apply_softmax=apply_softmax)
    np.testing.assert_allclose(got, theirs.predict(PAIRS, apply_softmax=apply_softmax), rtol=0, atol=1e-6)
    assert got.shape == (len(PAIRS), 3)
    if apply_softmax:
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)
    listed = ours.predict(PAIRS[:4], convert_to_numpy=False)
    assert isinstance(listed, list) and len(listed) == 4 and listed[0].shape == (3,)


def test_rank_matches_sentence_transformers(scorer_dir: Path) -> None:
    ours, theirs = CrossEncoder(str(scorer_dir)), st_cross_encoder(scorer_dir)
    documents = [document for _, document in PAIRS]
    for options in ({}, {"top_k": 5, "return_documents": True}, {"batch_size": 7, "top_k": 0}):
        got = ours.rank("water and light at night", documents, **options)
        expected = theirs.rank("water and light at night", documents, **options)
        assert [hit["corpus_id"] for hit in got] == [hit["corpus_id"] for hit in expected]
        assert [hit.get("text") for hit in got] == [hit.get("text") for hit in expected]
        np.testing.assert_allclose([hit["score"] for hit in got], [hit["score"] for hit in expected], atol=1e-6)
    hits = ours.rank("water", documents)
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)


def test_folders_move_both_ways(tmp_path: Path, scorer_dir: Path) -> None:
    ours = CrossEncoder(str(scorer_dir), activation_fn=torch.nn.Identity(), max_length=24)
    ours.save(str(tmp_path / "ours"))
    saved = json.loads((tmp_path / "ours" / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert saved["model_type"] == "CrossEncoder"
    assert saved["activation_fn"] == "torch.nn.modules.linear.Identity"
    theirs = st_cross_encoder(tmp_path / "ours")
    assert isinstance(theirs.activation_fn, torch.nn.Identity) and theirs.max_seq_length == 24
    np.testing.assert_allclose(theirs.predict(PAIRS), ours.predict(PAIRS), rtol=0, atol=1e-6)

    st_cross_encoder(scorer_dir, activation_fn=torch.nn.Tanh()).save(str(tmp_path / "theirs"))
    loaded = CrossEncoder(str(tmp_path / "theirs"))
    assert isinstance(loaded.activation_fn, torch.nn.Tanh)
    np.testing.assert_allclose(loaded.predict(PAIRS), st_cross_encoder(tmp_path / "theirs").predict(PAIRS), atol=1e-6)
    # And our own folder back in embedforge.
    again = CrossEncoder(str(tmp_path / "ours"))
    np.testing.assert_array_equal(again.predict(PAIRS), ours.predict(PAIRS))


def test_plain_transformers_folder_with_the_pre_4_activation_key(tmp_path: Path, scorer_dir: Path) -> None:
    import shutil

    folder = tmp_path / "old"
    shutil.copytree(scorer_dir, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["sbert_ce_default_activation_function"] = "torch.nn.modules.linear.Identity"
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    ours, theirs = CrossEncoder(str(folder)), st_cross_encoder(folder)
    assert isinstance(ours.activation_fn, torch.nn.Identity) and isinstance(theirs.activation_fn, torch.nn.Identity)
    np.testing.assert_allclose(ours.predict(PAIRS), theirs.predict(PAIRS), rtol=0, atol=1e-6)


def test_untrusted_activation_paths_fall_back_to_the_default(
    tmp_path: Path, scorer_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    CrossEncoder(str(scorer_dir)).save(str(tmp_path / "model"))
    config_path = tmp_path / "model" / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["activation_fn"] = "os.system"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        model = CrossEncoder(str(tmp_path / "model"))
    assert isinstance(model.activation_fn, torch.nn.Sigmoid)
    assert "trust_remote_code" in caplog.text


def test_older_argument_names_and_positions(scorer_dir: Path) -> None:
    model = CrossEncoder(str(scorer_dir), 1, 16, tokenizer_args={}, automodel_args={}, classifier_dropout=0.0)
    assert model.num_labels == 1 and model.max_length == 16 and model.config.classifier_dropout == 0.0
    expected = model.predict(PAIRS[:5], activation_fn=torch.nn.Identity())
    np.testing.assert_array_equal(model.predict(sentences=PAIRS[:5], activation_fct=torch.nn.Identity()), expected)
    assert model.rank("water", ["light", "night"], apply_softmax=False, convert_to_numpy=True)
    model.max_length = 8
    assert model.max_seq_length == 8


def test_bad_input(scorer_dir: Path, classifier_dir: Path) -> None:
    model = CrossEncoder(str(scorer_dir))
    with pytest.raises(InvalidArgumentError, match=r"inputs\[1\]"):
        model.predict([("a", "b"), ("only one",)])
    with pytest.raises(InvalidArgumentError, match="batch_size=0"):
        model.predict(PAIRS, batch_size=0)
    with pytest.raises(InvalidArgumentError, match="unexpected keyword"):
        model.predict(PAIRS, colour="red")
    with pytest.raises(InvalidArgumentError, match="num_labels=3"):
        CrossEncoder(str(classifier_dir)).rank("q", ["d"])
    with pytest.raises(InvalidArgumentError, match="top_k=-1"):
        model.rank("q", ["d"], top_k=-1)
    with pytest.raises(InvalidArgumentError, match="unexpected keyword"):
        CrossEncoder(str(scorer_dir), colour="red")
    assert model.predict([]).shape == (0,)


def test_predictions_through_a_worker_pool(scorer_dir: Path) -> None:
    model = CrossEncoder(str(scorer_dir))
    expected = model.predict(PAIRS)
    # Chunks change which pairs share a padded batch, which moves scores by float rounding only.
    np.testing.assert_allclose(model.predict(PAIRS, device=["cpu"], chunk_size=9), expected, rtol=0, atol=1e-5)


def test_mine_hard_negatives_rescores_with_a_cross_encoder(scorer_dir: Path) -> None:
    """The bi-encoder's candidates rescored by our CrossEncoder, as sentence-transformers does with its own."""
    datasets = pytest.importorskip("datasets")
    from conftest import embedforge_static, load_st_util_module, st_static, static_weights
    from embedforge.util import mine_hard_negatives

    st_hard = load_st_util_module("hard_negatives")
    dataset = datasets.Dataset.from_dict({"query": [q for q, _ in PAIRS], "answer": [a for _, a in PAIRS]})
    weights = static_weights(seed=2, dim=16)
    options = {"num_negatives": 2, "max_score": 0.9, "output_format": "labeled-pair", "output_scores": True}
    ours = mine_hard_negatives(
        dataset, embedforge_static(weights), cross_encoder=CrossEncoder(str(scorer_dir)), **options
    )
    theirs = st_hard.mine_hard_negatives(
        dataset, st_static(weights), cross_encoder=st_cross_encoder(scorer_dir), verbose=False, **options
    )
    assert len(ours) > 0 and ours.column_names == theirs.column_names
    for column in ours.column_names:
        if column == "score":
            np.testing.assert_allclose(ours[column], theirs[column], rtol=0, atol=1e-6)
        else:
            assert ours[column] == theirs[column], column


# -- sentence-transformers 6 behaviours: single texts, num_labels from the modules, deprecations -----------


def test_a_single_text_is_scored_alone_as_sentence_transformers_does(scorer_dir: Path) -> None:
    ours, theirs = CrossEncoder(str(scorer_dir)), st_cross_encoder(scorer_dir)
    texts = [pair[0] for pair in PAIRS[:6]]
    np.testing.assert_allclose(ours.predict(texts[0]), theirs.predict(texts[0]), rtol=0, atol=1e-6)
    one = ours.predict(texts[0], convert_to_tensor=True)
    assert isinstance(one, torch.Tensor) and one.ndim == 0
    with pytest.raises(InvalidArgumentError, match="mixes single texts"):
        ours.predict([("a", "pair"), "a text"])


def static_cross_encoder(out_features: int, output_name: str | None = "scores") -> CrossEncoder:
    """A CrossEncoder stack without a Transformer: StaticEmbedding + Dense (the property logic alone)."""
    from conftest import static_weights, word_level_tokenizer
    from embedforge.base.modules import Dense
    from embedforge.sentence_transformer.modules import StaticEmbedding

    weights = static_weights()
    static = StaticEmbedding(word_level_tokenizer(), embedding_weights=weights)
    dense = Dense(weights.shape[1], out_features, activation_function=None, module_output_name=output_name)
    return CrossEncoder(modules=[static, dense])


@pytest.mark.parametrize("out_features", [1, 3])
def test_num_labels_and_activation_come_from_a_dense_scores_module(out_features: int) -> None:
    model = static_cross_encoder(out_features)
    assert model.num_labels == out_features
    expected = torch.nn.Sigmoid if out_features == 1 else torch.nn.Identity
    assert isinstance(model.activation_fn, expected)
    assert model.config is None and model.model is None


def test_a_dense_without_scores_output_is_not_the_head() -> None:
    assert static_cross_encoder(5, output_name=None).num_labels == 1


def test_renamed_and_removed_arguments_are_logged(
    scorer_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import embedforge.cross_encoder.model as model_module

    # Each removed argument is reported once per process; start from a clean slate.
    monkeypatch.setattr(model_module, "_warned_no_op_arguments", set())
    model = CrossEncoder(str(scorer_dir))
    for name in ("convert_to_numpy", "convert_to_tensor", "apply_softmax"):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            ranks = model.rank("water", ["light", "night"], **{name: True})
            model.rank("water", ["light", "night"], **{name: True})
        assert caplog.text.count(f"`{name}` argument is deprecated and has no effect") == 1
        assert all(type(hit["score"]) is float for hit in ranks)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        model = CrossEncoder(str(scorer_dir), classifier_dropout=0.25, config_args={})
    assert "`classifier_dropout` argument is deprecated" in caplog.text
    assert "`config_args` argument was renamed and is now deprecated" in caplog.text
    assert model.config.classifier_dropout == 0.25
    with pytest.warns(DeprecationWarning, match="`default_activation_function` property was renamed"):
        assert model.default_activation_function is model.activation_fn


def test_rank_needs_one_label(classifier_dir: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"only works for models with num_labels=1.*num_labels=3"):
        CrossEncoder(str(classifier_dir)).rank("q", ["d"])


def test_processing_kwargs_reach_the_input_module(scorer_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = CrossEncoder(str(scorer_dir))
    transformer = model[0]
    seen: list[Any] = []
    original = transformer.preprocess

    def recording_preprocess(inputs: list[Any], **kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs.get("processing_kwargs"))
        return original(inputs, **kwargs)

    monkeypatch.setattr(transformer, "preprocess", recording_preprocess)
    options = {"text": {"max_length": 4, "truncation": True}}
    model.predict(PAIRS[:3], processing_kwargs=options)
    model.predict(PAIRS[:3])
    assert seen == [options, None]
