"""SentenceTransformer's smaller methods: batch detection, evaluate, gradient checkpointing, accessors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import embedforge_static, random_sentences, st_static, static_weights
from embedforge import SentenceTransformer
from embedforge.exceptions import InvalidArgumentError


@pytest.fixture(scope="module")
def bert_model(tiny_bert_dir: Path) -> SentenceTransformer:
    return SentenceTransformer(str(tiny_bert_dir))


def test_singular_inputs_and_batches_like_sentence_transformers() -> None:
    datasets = pytest.importorskip("datasets")
    weights = static_weights()
    ours, theirs = embedforge_static(weights), st_static(weights)
    column = datasets.Dataset.from_dict({"text": ["water light", "night"]})["text"]
    cases: list[Any] = [
        "water",
        ("water light", "night food"),  # a tuple of two texts is a batch of two, not one pair
        ["water"],
        ("water",),
        np.array(["water", "light"]),
        np.array("water"),
        column,
    ]
    for inputs in cases:
        assert ours.is_singular_input(inputs) == theirs.is_singular_input(inputs), inputs
    for inputs in [*cases[:5], column]:
        np.testing.assert_allclose(ours.encode(inputs), theirs.encode(inputs), rtol=0, atol=1e-6)


def test_evaluate_runs_the_evaluator_and_creates_the_output_folder(tmp_path: Path) -> None:
    from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    model = embedforge_static(static_weights())
    evaluator = EmbeddingSimilarityEvaluator(
        random_sentences(12, seed=1), random_sentences(12, seed=2), [i / 12 for i in range(12)], name="dev"
    )
    output = tmp_path / "eval" / "nested"
    assert model.evaluate(evaluator, output_path=str(output)) == evaluator(model)
    assert (output / "similarity_evaluation_dev_results.csv").is_file()


def test_accessors(bert_model: SentenceTransformer) -> None:
    static = embedforge_static(static_weights())
    assert bert_model.transformers_model is bert_model[0].auto_model
    assert static.transformers_model is None
    assert bert_model.dtype == torch.float32 and static.dtype == torch.float32
    assert bert_model.get_backend() == "torch"
    assert SentenceTransformer.SUPPORTED_SIMILARITY_FN_NAMES == ("cosine", "dot", "euclidean", "manhattan")
    with pytest.raises(InvalidArgumentError, match="never contacts a model hub"):
        static.push_to_hub("me/model")
    with pytest.raises(InvalidArgumentError, match="never contacts a model hub"):
        static.save_to_hub("me/model")


def test_set_pooling_include_prompt(tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_bert_dir))
    assert model[1].include_prompt is True
    model.set_pooling_include_prompt(False)
    assert model[1].include_prompt is False


def train_tiny_bert(tiny_bert_dir: Path, output_dir: Path, checkpointing: bool) -> SentenceTransformer:
    from datasets import Dataset

    from embedforge import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from embedforge.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(tiny_bert_dir))
    data = Dataset.from_dict({"anchor": random_sentences(16, seed=3), "positive": random_sentences(16, seed=4)})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        num_train_epochs=1,
        gradient_checkpointing=checkpointing,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        seed=5,
    )
    loss = MultipleNegativesRankingLoss(model)
    SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss).train()
    return model


@pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")
def test_trainer_with_gradient_checkpointing_trains_the_same_weights(tmp_path: Path, tiny_bert_dir: Path) -> None:
    """``gradient_checkpointing=True`` makes transformers.Trainer enable checkpointing on the model;
    recomputing activations (dropout included, its RNG state is replayed) changes no weight."""
    checkpointed = train_tiny_bert(tiny_bert_dir, tmp_path / "a", checkpointing=True)
    plain = train_tiny_bert(tiny_bert_dir, tmp_path / "b", checkpointing=False)
    # transformers 5.x renamed the flag; older 5.x releases only have the first name.
    flag = "is_activation_checkpointing" if hasattr(plain[0].auto_model, "is_activation_checkpointing") else None
    flag = flag or "is_gradient_checkpointing"
    assert getattr(checkpointed[0].auto_model, flag) and not getattr(plain[0].auto_model, flag)
    for (name, ours), theirs in zip(checkpointed.named_parameters(), plain.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=name)


def test_encode_query_document_and_save_pretrained_take_positional_arguments(tmp_path: Path) -> None:
    """sentence-transformers' signatures list these arguments positionally; scripts may pass them so."""
    model = embedforge_static(static_weights())
    texts = ["water light", "a night of food"]
    expected = model.encode(texts, batch_size=1, normalize_embeddings=True)
    positional = (None, None, 1, False, "sentence_embedding", "float32", True, False, None, True)
    np.testing.assert_array_equal(model.encode_query(texts, *positional), expected)
    np.testing.assert_array_equal(model.encode_document(texts, *positional), expected)
    model.save_pretrained(str(tmp_path / "model"), "my-model", False)
    assert not (tmp_path / "model" / "README.md").exists()  # create_model_card=False, given positionally
    np.testing.assert_array_equal(SentenceTransformer(str(tmp_path / "model")).encode(texts), model.encode(texts))
