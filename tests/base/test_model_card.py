"""The model card: card data, trainer callback, README rendering, and compatibility of the saved card."""

from __future__ import annotations

import logging
import re
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from conftest import embedforge_static, random_sentences, static_weights
from embedforge import SentenceTransformer
from embedforge.base.model_card import get_losses
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.model_card import SentenceTransformerModelCardData

datasets = pytest.importorskip("datasets")


def read_card(folder: Path) -> tuple[dict[str, Any], str]:
    """The parsed YAML header and the Markdown body of a saved README.md."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, flags=re.DOTALL)
    assert match, "README.md must start with a YAML front matter block"
    return yaml.safe_load(match.group(1)), match.group(2)


def section(body: str, heading: str) -> str:
    """The text under a Markdown heading, up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = body.splitlines()
    start = lines.index(heading) + 1
    taken, fenced = [], False
    for line in lines[start:]:
        # Lines starting with "#" inside code blocks are comments, not headings.
        fenced ^= line.lstrip().startswith("```")
        if not fenced and re.match(rf"#{{1,{level}}} ", line):
            break
        taken.append(line)
    return "\n".join(taken)


def whitespace_tokens(text: str) -> int:
    """Token count of the conftest word-level tokenizer: words and punctuation runs (no special tokens)."""
    return len(re.findall(r"\w+|[^\w\s]+", text))


def simulated_run(model: SentenceTransformer, train: Any, evaluation: Any, loss: Any, evaluator: Any) -> None:
    """Drive the callback through what a 2-step training run with one evaluation fires."""
    from embedforge.base.model_card import ModelCardCallback

    callback = ModelCardCallback({"learning_rate": 5e-5, "num_train_epochs": 3, "seed": 42})
    settings = {"learning_rate": 1e-3, "num_train_epochs": 3, "seed": 42, "output_dir": "somewhere"}
    args = types.SimpleNamespace(to_dict=lambda: dict(settings), router_mapping={})
    trainer = types.SimpleNamespace(
        train_dataset=train,
        eval_dataset=evaluation,
        loss=loss,
        evaluator=evaluator,
        callback_handler=types.SimpleNamespace(callbacks=[]),
    )
    state = types.SimpleNamespace(epoch=0.5, global_step=1)
    # transformers.Trainer fires on_init_end without the trainer: it must be a no-op.
    callback.on_init_end(args, state, None, model=model)
    assert "generated_from_trainer" not in model.model_card_data.tags
    callback.on_init_end(args, state, None, model=model, trainer=trainer)
    callback.on_train_begin(args, state, None, model=model)
    callback.on_log(args, state, None, model=model, logs={"loss": 1.23456789})
    metrics = evaluator(model, epoch=0, steps=1)
    model.model_card_data.set_evaluation_metrics(evaluator, metrics, epoch=0.5, step=1)
    callback.on_evaluate(args, state, None, model=model, metrics={"eval_loss": 0.75, "eval_runtime": 0.25})
    state.epoch, state.global_step = 1.0, 2
    callback.on_log(args, state, None, model=model, logs={"loss": 0.5})
    model.model_card_data.set_best_model_step(1)


@pytest.fixture
def trained_card(tmp_path: Path) -> tuple[SentenceTransformer, dict[str, Any], str, dict[str, Any]]:
    """A static model run through the callback and saved; returns model, YAML, body and the inputs used."""
    from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    from embedforge.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = embedforge_static(static_weights())
    model.model_card_data.set_language("en")
    model.model_card_data.set_license("apache-2.0")
    sentences = random_sentences(60, seed=3)
    scores = [index / 10 for index in range(10)]
    train = datasets.Dataset.from_dict({"anchor": sentences[:20], "positive": sentences[20:40]})
    evaluation = datasets.Dataset.from_dict(
        {"sentence1": sentences[:10], "sentence2": sentences[40:50], "score": scores}
    )
    loss = MultipleNegativesRankingLoss(model, scale=30.0)
    evaluator = EmbeddingSimilarityEvaluator(sentences[:10], sentences[40:50], scores, name="sts-dev")
    simulated_run(model, train, evaluation, loss, evaluator)
    model.save(str(tmp_path / "model"))
    meta, body = read_card(tmp_path / "model")
    inputs = {"train": train, "evaluation": evaluation, "evaluator": evaluator, "loss": loss}
    return model, meta, body, inputs


def test_untrained_card_header_details_and_usage(tmp_path: Path) -> None:
    card_data = SentenceTransformerModelCardData(language="de", license="mit", model_id="me/tiny-static")
    model = SentenceTransformer(modules=list(embedforge_static(static_weights()).children()), model_card_data=card_data)
    assert model.model_card_data is card_data and card_data.model is model
    model.save(str(tmp_path / "model"))
    meta, body = read_card(tmp_path / "model")
    assert meta["language"] == ["de"] and meta["license"] == "mit"
    assert meta["library_name"] == "sentence-transformers" and meta["pipeline_tag"] == "sentence-similarity"
    assert "generated_from_trainer" not in meta["tags"] and "model-index" not in meta
    details = section(body, "### Model Description")
    assert "- **Output Dimensionality:** 8 dimensions" in details
    assert "- **Similarity Function:** Cosine Similarity" in details
    assert str(model) in section(body, "### Full Model Architecture")
    usage = section(body, "### Direct Usage (embedforge)")
    assert "from embedforge import SentenceTransformer" in usage
    assert 'SentenceTransformer("me/tiny-static")' in usage
    assert "sentence_transformers" in section(body, "### Direct Usage (Sentence Transformers)")
    # The printed similarity matrix is the cosine matrix of the snippet's texts (numpy reference).
    texts = card_data.usage_examples
    assert texts is not None and len(texts) == 3 and all(f"    {text!r}," in usage for text in texts)
    vectors = model.encode(texts)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    printed = [float(number) for number in re.findall(r"-?\d+\.\d{4}", usage.split("print(similarities)")[1])]
    np.testing.assert_allclose(np.array(printed).reshape(3, 3), unit @ unit.T, atol=6e-5)


def test_trained_card_datasets_statistics_and_loss(trained_card: Any) -> None:
    _, meta, body, inputs = trained_card
    assert {"generated_from_trainer", "dataset_size:20", "loss:MultipleNegativesRankingLoss"} <= set(meta["tags"])
    training = section(body, "### Training Dataset")
    assert "* Size: 20 training samples" in training
    assert "* Columns: <code>anchor</code> and <code>positive</code>" in training
    lengths = [whitespace_tokens(text) for text in inputs["train"]["anchor"]]
    expected = f"<li>min: {min(lengths)} tokens</li><li>mean: {round(float(np.mean(lengths)), 2)} tokens</li>"
    assert expected + f"<li>max: {max(lengths)} tokens</li>" in training
    first_row = inputs["train"][0]
    assert f"<code>{first_row['anchor']}</code>" in training and f"<code>{first_row['positive']}</code>" in training
    assert (
        "<code>embedforge.sentence_transformer.losses.multiple_negatives_ranking.MultipleNegativesRankingLoss</code>"
        in training
    )
    assert '"scale": 30.0' in training and '"similarity_fct": "cos_sim"' in training
    evaluation = section(body, "### Evaluation Dataset")
    scores = np.array(inputs["evaluation"]["score"])
    floats = f"<li>min: {round(scores.min(), 2)}</li><li>mean: {round(scores.mean(), 2)}</li>"
    assert floats + f"<li>max: {round(scores.max(), 2)}</li>" in evaluation
    assert "* Columns: <code>sentence1</code>, <code>sentence2</code> and <code>score</code>" in evaluation


def test_trained_card_hyperparameters_metrics_logs_and_citations(trained_card: Any) -> None:
    model, meta, body, inputs = trained_card
    non_default = section(body, "#### Non-Default Hyperparameters")
    assert "- `learning_rate`: 0.001" in non_default
    assert "num_train_epochs" not in non_default and "output_dir" not in body
    assert "- `num_train_epochs`: 3" in section(body, "#### All Hyperparameters")
    # Evaluation: the primary metric is bold, values are the evaluator's own (rounded to 4 decimals).
    metrics = model.model_card_data.eval_results_dict[inputs["evaluator"]]
    spearman = round(metrics["sts-dev_spearman_cosine"], 4)
    evaluation = section(body, "## Evaluation")
    assert re.search(rf"\| \*\*spearman_cosine\*\* +\| \*\*{spearman}\*\* +\|", evaluation)
    assert "* Dataset: `sts-dev`" in evaluation
    assert meta["metrics"] == ["pearson_cosine", "spearman_cosine"]
    result = meta["model-index"][0]["results"][0]
    assert result["dataset"] == {"name": "sts dev", "type": "sts-dev"}
    assert {"type": "spearman_cosine", "value": metrics["sts-dev_spearman_cosine"], "name": "Spearman Cosine"} in (
        result["metrics"]
    )
    # Training logs: one row per step, merged training/validation loss and evaluator score, best step bold.
    logs = section(body, "### Training Logs")
    header = logs.strip().splitlines()[0]
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "Epoch",
        "Step",
        "Training Loss",
        "Validation Loss",
        "sts-dev_spearman_cosine",
    ]
    assert re.search(
        rf"\| \*\*0.5\*\* +\| \*\*1\*\* +\| \*\*1.2346\*\* +\| \*\*0.75\*\* +\| \*\*{spearman}\*\* +\|", logs
    )
    assert re.search(r"\| 1.0 +\| 2 +\| 0.5 +\| - +\| - +\|", logs)
    assert "bold row" in logs
    citations = section(body, "## Citation")
    assert "#### Sentence Transformers" in citations and "#### MultipleNegativesRankingLoss" in citations
    assert "reimers-2019-sentence-bert" in citations
    assert "- PyTorch: " in section(body, "### Framework Versions")


def test_saved_card_parses_with_huggingface_hub(trained_card: Any, tmp_path: Path) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    card = huggingface_hub.ModelCard.load(tmp_path / "model" / "README.md", ignore_metadata_errors=False)
    assert card.data.library_name == "sentence-transformers"
    assert card.data.language == ["en"] and card.data.license == "apache-2.0"
    results = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert set(results) == {"pearson_cosine", "spearman_cosine"}


def test_saved_folder_with_card_loads_in_sentence_transformers(trained_card: Any, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel

    model = trained_card[0]
    theirs = StModel(str(tmp_path / "model"), device="cpu")
    texts = random_sentences(5, seed=9)
    np.testing.assert_allclose(theirs.encode(texts), model.encode(texts), atol=1e-6)


def test_resaving_a_loaded_model_keeps_its_card_until_it_is_trained(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    model.model_card_data.model_name = "tiny-static"
    model.save(str(tmp_path / "first"))
    original = (tmp_path / "first" / "README.md").read_text(encoding="utf-8")
    loaded = SentenceTransformer(str(tmp_path / "first"))
    assert loaded.model_card_data.base_model == str(tmp_path / "first")
    loaded.save(str(tmp_path / "second"))
    assert (tmp_path / "second" / "README.md").read_text(encoding="utf-8") == original
    loaded.model_card_data.add_tags("generated_from_trainer")
    loaded.save(str(tmp_path / "third"))
    _, body = read_card(tmp_path / "third")
    # A local folder is named by its own card's title and shown with its path, never as a Hub id in the header.
    assert body.startswith("\n# SentenceTransformer based on tiny-static\n")
    assert f"- **Base model:** tiny-static (`{tmp_path / 'first'}`)" in body
    assert "base_model" not in read_card(tmp_path / "third")[0]


def test_card_failure_does_not_lose_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from embedforge.base.model_card import render

    def broken(model: Any) -> str:
        raise RuntimeError("card exploded")

    monkeypatch.setattr(render, "generate_model_card", broken)
    model = embedforge_static(static_weights())
    with caplog.at_level(logging.ERROR):
        model.save(str(tmp_path / "model"))
    assert (tmp_path / "model" / "modules.json").is_file() and not (tmp_path / "model" / "README.md").exists()
    assert "card exploded" in caplog.text


def test_dataset_dict_with_loss_per_dataset_and_label_shares(tmp_path: Path) -> None:
    from embedforge.sentence_transformer.losses import ContrastiveLoss, MultipleNegativesRankingLoss

    model = embedforge_static(static_weights())
    sentences = random_sentences(30, seed=5)
    labels = [1, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    pairs = datasets.Dataset.from_dict({"sentence1": sentences[:10], "sentence2": sentences[10:20], "label": labels})
    triplets = datasets.Dataset.from_dict(
        {"anchor": sentences[:5], "positive": sentences[10:15], "negative": sentences[20:25]}
    )
    card = model.model_card_data
    loss = {"pairs": ContrastiveLoss(model), "triplets": MultipleNegativesRankingLoss(model)}
    card.train_datasets = card.extract_dataset_metadata(
        datasets.DatasetDict(pairs=pairs, triplets=triplets), card.train_datasets, loss, "train"
    )
    assert [entry["name"] for entry in card.train_datasets] == ["pairs", "triplets"]
    assert [entry["size"] for entry in card.train_datasets] == [10, 5]
    assert card.train_datasets[0]["loss"]["fullname"].endswith("ContrastiveLoss")
    assert card.train_datasets[1]["loss"]["fullname"].endswith("MultipleNegativesRankingLoss")
    assert card.train_datasets[0]["stats"]["label"] == {
        "dtype": "int",
        "modality": "",
        "data": {0: "~70.00%", 1: "~30.00%"},
    }
    assert "dataset_size:15" in card.tags
    card.set_losses(get_losses(loss))
    assert {"loss:ContrastiveLoss", "loss:MultipleNegativesRankingLoss"} <= set(card.tags)


def test_same_evaluator_on_two_datasets_shares_one_table(tmp_path: Path) -> None:
    from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    model = embedforge_static(static_weights())
    sentences = random_sentences(20, seed=7)
    scores = [index / 10 for index in range(10)]
    for name in ("dev", "test"):
        evaluator = EmbeddingSimilarityEvaluator(sentences[:10], sentences[10:], scores, name=name)
        evaluator(model)
    model.save(str(tmp_path / "model"))
    meta, body = read_card(tmp_path / "model")
    evaluation = section(body, "## Evaluation")
    assert evaluation.count("#### Semantic Similarity") == 1
    assert "* Datasets: `dev` and `test`" in evaluation
    assert re.search(r"\| Metric +\| dev +\| test +\|", evaluation)
    assert len(meta["model-index"][0]["results"]) == 2


def test_card_data_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="language"):
        SentenceTransformerModelCardData(language=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="train_datasets"):
        SentenceTransformerModelCardData(train_datasets="snli")  # type: ignore[arg-type]
    card = SentenceTransformerModelCardData(train_datasets=[{"id": "stanfordnlp/snli"}], model_id="no-owner")
    assert card.train_datasets == [{"id": "stanfordnlp/snli", "name": "stanfordnlp/snli"}]
    assert card.datasets == ["stanfordnlp/snli"] and card.model_id is None


def test_trainer_run_fills_the_card(tmp_path: Path) -> None:
    """Two real training steps with an evaluator: the card shows what transformers' own log history saw."""
    pytest.importorskip("accelerate")
    trainer_module = pytest.importorskip("embedforge.sentence_transformer.trainer")
    from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    from embedforge.sentence_transformer.losses import MultipleNegativesRankingLoss
    from embedforge.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    model = embedforge_static(static_weights())
    sentences = random_sentences(60, seed=1)
    train = datasets.Dataset.from_dict({"anchor": sentences[:16], "positive": sentences[16:32]})
    evaluation = datasets.Dataset.from_dict({"anchor": sentences[32:40], "positive": sentences[40:48]})
    scores = [index / 10 for index in range(10)]
    evaluator = EmbeddingSimilarityEvaluator(sentences[:10], sentences[48:58], scores, name="sts-dev")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        eval_strategy="steps",
        eval_steps=1,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=7,
    )
    trainer = trainer_module.SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        loss=MultipleNegativesRankingLoss(model, scale=25.0),
        evaluator=evaluator,
    )
    trainer.train()
    model.model_card_data.set_best_model_step(2)
    model.save(str(tmp_path / "model"))
    meta, body = read_card(tmp_path / "model")

    assert {"generated_from_trainer", "dataset_size:16", "loss:MultipleNegativesRankingLoss"} <= set(meta["tags"])
    training = section(body, "### Training Dataset")
    lengths = [whitespace_tokens(text) for text in train["positive"]]
    expected = f"<li>min: {min(lengths)} tokens</li><li>mean: {round(float(np.mean(lengths)), 2)} tokens</li>"
    assert expected + f"<li>max: {max(lengths)} tokens</li>" in training
    assert '"scale": 25.0' in training
    assert "* Size: 8 evaluation samples" in section(body, "### Evaluation Dataset")
    non_default = section(body, "#### Non-Default Hyperparameters")
    assert "- `max_steps`: 2" in non_default and "- `learning_rate`: 0.01" in non_default
    assert "- `seed`: 7" in non_default and "per_device_train_batch_size" not in non_default

    history = trainer.state.log_history
    losses = {entry["step"]: entry["loss"] for entry in history if "loss" in entry}
    validation = {entry["step"]: entry["eval_loss"] for entry in history if "eval_loss" in entry}
    spearman = {
        entry["step"]: entry["eval_sts-dev_spearman_cosine"]
        for entry in history
        if "eval_sts-dev_spearman_cosine" in entry
    }
    assert set(losses) == set(validation) == set(spearman) == {1, 2}
    logs = section(body, "### Training Logs")

    def cell(value: float) -> str:
        return re.escape(str(round(value, 4)))

    assert re.search(rf"\| 0.5 +\| 1 +\| {cell(losses[1])} +\| {cell(validation[1])} +\| {cell(spearman[1])} +\|", logs)
    assert re.search(
        rf"\| \*\*1.0\*\* +\| \*\*2\*\* +\| \*\*{cell(losses[2])}\*\* +\| \*\*{cell(validation[2])}\*\* +"
        rf"\| \*\*{cell(spearman[2])}\*\* +\|",
        logs,
    )
    evaluation_section = section(body, "## Evaluation")
    assert re.search(rf"\| \*\*spearman_cosine\*\* +\| \*\*{cell(spearman[2])}\*\* +\|", evaluation_section)
    assert "### Training Time" in body


def test_dataset_statistics_match_sentence_transformers(tiny_bert_dir: Path) -> None:
    """Token lengths (through a real BERT tokenizer), value shares, ranges and list sizes as ST computes them."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss as StCoSENTLoss

    from embedforge.sentence_transformer.losses import CoSENTLoss

    sentences = random_sentences(150, seed=2)
    dataset = datasets.Dataset.from_dict(
        {
            "sentence1": sentences[:120],
            "sentence2": sentences[30:],
            "score": [index / 119 for index in range(120)],
            "label": [index % 3 for index in range(120)],
            "flag": [index % 4 == 0 for index in range(120)],
            "sizes": [[0.5] * (1 + index % 3) for index in range(120)],
        }
    )
    ours_model = SentenceTransformer(str(tiny_bert_dir))
    theirs_model = StModel(str(tiny_bert_dir), device="cpu")
    ours = ours_model.model_card_data.compute_dataset_metrics(dataset, {}, CoSENTLoss(ours_model))
    theirs = theirs_model.model_card_data.compute_dataset_metrics(dataset, {}, StCoSENTLoss(theirs_model))
    assert ours["size"] == theirs["size"] == 120
    for column in dataset.column_names:
        assert ours["stats"][column]["dtype"] == theirs["stats"][column]["dtype"], column
        assert ours["stats"][column]["data"] == theirs["stats"][column]["data"], column
    assert ours["loss"]["config_code"] == json_block(theirs["loss"]["config_code"])


def json_block(indented_block: str) -> str:
    """The JSON inside sentence-transformers' indented ```json block."""
    lines = [line[2:] for line in indented_block.splitlines()]
    return "\n".join(lines[1:-1])


def test_sequential_evaluator_adds_no_duplicate_table(tmp_path: Path) -> None:
    from embedforge.sentence_transformer.evaluation import (
        EmbeddingSimilarityEvaluator,
        SequentialEvaluator,
        TripletEvaluator,
    )

    model = embedforge_static(static_weights())
    sentences = random_sentences(30, seed=11)
    similarity = EmbeddingSimilarityEvaluator(sentences[:10], sentences[10:20], [i / 10 for i in range(10)], name="sts")
    triplets = TripletEvaluator(sentences[:10], sentences[10:20], sentences[20:30], name="trip")
    sequential = SequentialEvaluator([similarity, triplets])
    metrics = sequential(model, epoch=1, steps=4)
    # What the trainer does after running its evaluator.
    model.model_card_data.set_evaluation_metrics(sequential, metrics, epoch=1, step=4)
    assert list(model.model_card_data.eval_results_dict) == [similarity, triplets]
    row = model.model_card_data.training_logs[-1]
    assert row["Step"] == 4 and set(row) == {"Epoch", "Step", similarity.primary_metric, triplets.primary_metric}
    assert row[similarity.primary_metric] == metrics[similarity.primary_metric]
    model.save(str(tmp_path / "model"))
    _, body = read_card(tmp_path / "model")
    evaluation = section(body, "## Evaluation")
    assert "#### Semantic Similarity" in evaluation and "#### Triplet" in evaluation
    assert "Sequential" not in evaluation


def test_router_model_is_a_retrieval_model_with_routed_statistics(tmp_path: Path) -> None:
    from conftest import word_level_tokenizer
    from embedforge.sentence_transformer.modules import Router, StaticEmbedding

    query = StaticEmbedding(word_level_tokenizer(), embedding_weights=static_weights(seed=1))
    document = StaticEmbedding(word_level_tokenizer(), embedding_weights=static_weights(seed=2))
    model = SentenceTransformer(modules=[Router.for_query_document([query], [document], default_route=None)])
    card = model.model_card_data
    assert card.ir_model is True
    sentences = random_sentences(12, seed=13)
    dataset = datasets.Dataset.from_dict({"question": sentences[:6], "answer": sentences[6:]})
    info = card.compute_dataset_metrics(dataset, {}, None, router_mapping={"question": "query", "answer": "document"})
    lengths = [whitespace_tokens(text) for text in sentences[:6]]
    assert info["stats"]["question"]["data"]["max"] == f"{max(lengths)} tokens"
    model.save(str(tmp_path / "model"))
    _, body = read_card(tmp_path / "model")
    usage = section(body, "### Direct Usage (embedforge)")
    assert "model.encode_query(queries)" in usage and "model.encode_document(documents)" in usage
    # One query against three documents, scored with the two routes' own embeddings.
    texts = card.usage_examples
    assert texts is not None and len(texts) == 4
    queries = model.encode_query(texts[:1])
    documents = model.encode_document(texts[1:])
    unit_q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    unit_d = documents / np.linalg.norm(documents, axis=1, keepdims=True)
    printed = [float(number) for number in re.findall(r"-?\d+\.\d{4}", usage.split("print(similarities)")[1])]
    np.testing.assert_allclose(np.array(printed).reshape(1, 3), unit_q @ unit_d.T, atol=6e-5)
