"""``embedforge train``: config checking, local data loading, evaluators, the demo set and end-to-end runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from embedforge.cli import main
from embedforge.cli.demo_data import PLACES, QUALITIES, THINGS, make_demo_data, vocabulary_texts
from embedforge.cli.demo_tokenizer import build_wordpiece_tokenizer
from embedforge.cli.train_config import (
    DataFileNotFoundError,
    TrainConfigError,
    build_config,
    merge_overrides,
    parse_override,
    read_config_file,
)
from embedforge.cli.train_data import build_evaluator, load_table, read_qrels
from embedforge.cli.train_loss import build_loss

PAIRS = [
    ("what is a cat", "a cat is a small furry animal"),
    ("how tall is everest", "everest is the highest mountain on earth"),
    ("who wrote hamlet", "hamlet is a play by shakespeare"),
    ("what do bees make", "bees produce honey and wax"),
    ("where is paris", "paris is the capital of france"),
    ("why is the sea salty", "rivers carry minerals into the sea"),
]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as CSV, JSON Lines or Parquet, chosen by the file extension."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def tokenizer_file(tmp_path: Path) -> Path:
    texts = [text for pair in PAIRS for text in pair]
    path = tmp_path / "tokenizer.json"
    build_wordpiece_tokenizer(texts).save(str(path))
    return path


@pytest.fixture
def retrieval_files(tmp_path: Path) -> dict[str, Path]:
    """Queries/corpus/qrels for PAIRS: query i is relevant to document i (plus a score-0 row that is not)."""
    queries = [{"_id": f"q{i}", "text": query} for i, (query, _) in enumerate(PAIRS)]
    corpus = [{"_id": f"d{i}", "title": "", "text": passage} for i, (_, passage) in enumerate(PAIRS)]
    qrels = [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(len(PAIRS))]
    qrels.append({"query-id": "q0", "corpus-id": "d1", "score": 0})
    return {
        "queries": write_rows(tmp_path / "queries.jsonl", queries),
        "corpus": write_rows(tmp_path / "corpus.jsonl", corpus),
        "qrels": write_rows(tmp_path / "qrels.csv", qrels),
    }


# --- configuration ---------------------------------------------------------------------------------------------


def test_yaml_and_json_configs_give_the_same_config_with_paths_relative_to_the_file(
    tmp_path: Path, tokenizer_file: Path
) -> None:
    write_rows(tmp_path / "train.csv", [{"anchor": a, "positive": p} for a, p in PAIRS])
    content = {
        "model": {"tokenizer": "tokenizer.json", "embedding_dim": 16},
        "data": {"train": "train.csv"},
        "loss": {"name": "MultipleNegativesRankingLoss", "matryoshka_dims": [16, 8]},
        "args": {"learning_rate": 0.1, "output_dir": "out"},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(content))
    (tmp_path / "config.json").write_text(json.dumps(content))
    from_yaml = build_config(read_config_file(str(tmp_path / "config.yaml")))
    from_json = build_config(read_config_file(str(tmp_path / "config.json")))
    assert from_yaml == from_json
    assert from_yaml.model["tokenizer"] == str(tokenizer_file)
    assert from_yaml.data["train"] == str(tmp_path / "train.csv")
    # output_dir is where the user runs the command from, not the config's folder; the command's defaults fill in.
    assert from_yaml.args == {
        "output_dir": "out",
        "learning_rate": 0.1,
        "batch_sampler": "no_duplicates",
        "report_to": "none",
    }


def minimal_config(tmp_path: Path, tokenizer_file: Path) -> dict[str, Any]:
    train = write_rows(tmp_path / "train.csv", [{"anchor": a, "positive": p} for a, p in PAIRS])
    return {"model": {"tokenizer": str(tokenizer_file), "embedding_dim": 8}, "data": {"train": str(train)}}


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("loss", "nme", "x", r"'loss.nme' is not valid; valid keys in 'loss' are \['name', 'kwargs'"),
        (
            "args",
            "learning_rat",
            0.1,
            r"'args.learning_rat' is not valid; valid keys in 'args' are \[.*'learning_rate'",
        ),
        ("data", "columns", "anchor", r"'data.columns' is 'anchor'; expected a list"),
        ("model", "embedding_dim", 0, r"'model.embedding_dim' is 0; expected a positive int"),
        ("loss", "matryoshka_dims", [8, -1], r"'loss.matryoshka_dims' is \[8, -1\]"),
        ("evaluator", "type", "ranking", r"'evaluator.type' is 'ranking'; expected one of"),
    ],
)
def test_bad_keys_and_values_name_the_key_and_what_is_valid(
    tmp_path: Path, tokenizer_file: Path, section: str, key: str, value: Any, message: str
) -> None:
    content = merge_overrides(minimal_config(tmp_path, tokenizer_file), [(section, key, value)])
    with pytest.raises(TrainConfigError, match=message):
        build_config(content)


def test_unknown_section_and_unknown_loss_are_rejected(tmp_path: Path, tokenizer_file: Path) -> None:
    content = minimal_config(tmp_path, tokenizer_file)
    with pytest.raises(TrainConfigError, match=r"unknown section\(s\) \['optimizer'\]; valid sections are"):
        build_config({**content, "optimizer": {}})
    with pytest.raises(
        TrainConfigError, match=r"'loss.name' is 'NoSuchLoss', not a known loss; valid names are \[.*'CoSENTLoss'"
    ):
        build_config({**content, "loss": "NoSuchLoss"})


def test_model_needs_exactly_one_of_a_folder_or_a_tokenizer(tmp_path: Path, tokenizer_file: Path) -> None:
    content = minimal_config(tmp_path, tokenizer_file)
    with pytest.raises(TrainConfigError, match="needs either 'path'"):
        build_config({**content, "model": {}})
    with pytest.raises(TrainConfigError, match="needs either 'path'"):
        build_config({**content, "model": {**content["model"], "path": str(tmp_path)}})
    with pytest.raises(TrainConfigError, match=r"'model.embedding_dim' needs 'model.tokenizer'"):
        build_config({**content, "model": {"embedding_dim": 8}})


def test_missing_files_name_the_key_and_the_path(tmp_path: Path, tokenizer_file: Path) -> None:
    content = minimal_config(tmp_path, tokenizer_file)
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(DataFileNotFoundError, match=r"'data.train' names '.*nope.csv', but no such file exists"):
        build_config({**content, "data": {"train": [str(content["data"]["train"]), missing]}})
    with pytest.raises(DataFileNotFoundError, match=r"'model.path' names .* no such folder"):
        build_config({**content, "model": {"path": str(tmp_path / "no-model")}})
    with pytest.raises(TrainConfigError, match=r"'data.train' is missing"):
        build_config({**content, "data": {}})
    with pytest.raises(TrainConfigError, match=r"needs config key 'evaluator.qrels'"):
        build_config({**content, "evaluator": {"queries": missing, "corpus": missing}})
    with pytest.raises(DataFileNotFoundError, match="config file"):
        read_config_file(str(tmp_path / "missing.yaml"))
    assert isinstance(DataFileNotFoundError("x"), FileNotFoundError)


def test_config_file_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("model: [unclosed")
    with pytest.raises(TrainConfigError, match="not valid YAML"):
        read_config_file(str(tmp_path / "bad.yaml"))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(TrainConfigError, match="holds a list; expected a mapping"):
        read_config_file(str(tmp_path / "list.json"))
    (tmp_path / "config.toml").write_text("")
    with pytest.raises(TrainConfigError, match=r"extension '.toml'; expected .yaml, .yml or .json"):
        read_config_file(str(tmp_path / "config.toml"))


def test_overrides_read_values_as_yaml_and_win_over_the_file() -> None:
    assert parse_override("args.learning_rate=0.5") == ("args", "learning_rate", 0.5)
    assert parse_override("loss.matryoshka_dims=[64, 32]") == ("loss", "matryoshka_dims", [64, 32])
    assert parse_override("model.path=my model") == ("model", "path", "my model")
    with pytest.raises(TrainConfigError, match=r"expected SECTION.KEY=VALUE"):
        parse_override("learning_rate=0.5")
    merged = merge_overrides({"args": {"seed": 1, "max_steps": 3}}, [("args", "seed", 2), ("loss", "name", "X")])
    assert merged == {"args": {"seed": 2, "max_steps": 3}, "loss": {"name": "X"}}


# --- data and evaluators ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", [".csv", ".jsonl", ".parquet"])
def test_tables_load_the_same_from_every_format(tmp_path: Path, extension: str) -> None:
    rows = [{"anchor": a, "positive": p, "score": float(i)} for i, (a, p) in enumerate(PAIRS)]
    rows.append({"anchor": "NA", "positive": "null", "score": 0.5})  # texts, not missing values
    table = load_table([str(write_rows(tmp_path / f"train{extension}", rows))], "data.train")
    assert table.column_names == ["anchor", "positive", "score"]
    assert table.to_list() == rows


def test_mixed_or_unknown_formats_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match=r"extension \['.txt'\]; expected one of"):
        load_table([str(tmp_path / "a.txt")], "data.train")
    with pytest.raises(TrainConfigError, match="mixes file formats"):
        load_table([str(tmp_path / "a.csv"), str(tmp_path / "b.parquet")], "data.train")


def test_qrels_keep_positive_scores_only(retrieval_files: dict[str, Path]) -> None:
    relevant = read_qrels(str(retrieval_files["qrels"]), "evaluator.qrels")
    assert relevant == {f"q{i}": {f"d{i}"} for i in range(len(PAIRS))}


def test_information_retrieval_evaluator_from_files_matches_one_built_by_hand(
    retrieval_files: dict[str, Path], tokenizer_file: Path
) -> None:
    from tokenizers import Tokenizer

    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from embedforge.sentence_transformer.modules import StaticEmbedding

    model = SentenceTransformer(modules=[StaticEmbedding(Tokenizer.from_file(str(tokenizer_file)), embedding_dim=8)])
    evaluator = build_evaluator(
        {"type": "information_retrieval", **{key: str(path) for key, path in retrieval_files.items()}}
    )
    by_hand = InformationRetrievalEvaluator(
        {f"q{i}": q for i, (q, _) in enumerate(PAIRS)},
        {f"d{i}": p for i, (_, p) in enumerate(PAIRS)},
        {f"q{i}": {f"d{i}"} for i in range(len(PAIRS))},
        name="dev",
    )
    assert evaluator(model) == pytest.approx(by_hand(model))


def test_similarity_evaluator_from_a_pairs_file(tmp_path: Path) -> None:
    rows = [{"sentence1": a, "sentence2": p, "score": i / 5} for i, (a, p) in enumerate(PAIRS)]
    evaluator = build_evaluator({"type": "embedding_similarity", "pairs": str(write_rows(tmp_path / "sts.csv", rows))})
    assert evaluator.sentences1 == [a for a, _ in PAIRS]
    assert evaluator.scores == [i / 5 for i in range(len(PAIRS))]
    write_rows(tmp_path / "bad.csv", [{"a": "x", "b": "y"}])
    with pytest.raises(TrainConfigError, match=r"two text columns and a score column"):
        build_evaluator({"type": "embedding_similarity", "pairs": str(tmp_path / "bad.csv")})
    with pytest.raises(TrainConfigError, match=r"\['batchsize'\] are not arguments of EmbeddingSimilarityEvaluator"):
        build_evaluator(
            {"type": "embedding_similarity", "pairs": str(tmp_path / "sts.csv"), "kwargs": {"batchsize": 4}}
        )
    assert (
        build_evaluator(
            {"type": "embedding_similarity", "pairs": str(tmp_path / "sts.csv"), "kwargs": {"batch_size": 4}}
        ).batch_size
        == 4
    )


def test_losses_are_built_by_name_with_kwargs_and_matryoshka(tokenizer_file: Path) -> None:
    from tokenizers import Tokenizer

    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.losses import (
        CoSENTLoss,
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
        TripletDistanceMetric,
    )
    from embedforge.sentence_transformer.modules import StaticEmbedding
    from embedforge.util import pairwise_dot_score

    model = SentenceTransformer(modules=[StaticEmbedding(Tokenizer.from_file(str(tokenizer_file)), embedding_dim=8)])
    loss = build_loss(
        model, {"name": "MultipleNegativesRankingLoss", "kwargs": {"scale": 10.0}, "matryoshka_dims": [8, 4]}
    )
    assert isinstance(loss, MatryoshkaLoss) and isinstance(loss.loss, MultipleNegativesRankingLoss)
    assert loss.loss.scale == 10.0 and list(loss.matryoshka_dims) == [8, 4]
    cosent = build_loss(model, {"name": "CoSENTLoss", "kwargs": {"similarity_fct": "pairwise_dot_score"}})
    assert isinstance(cosent, CoSENTLoss) and cosent.similarity_fct is pairwise_dot_score
    triplet = build_loss(model, {"name": "TripletLoss", "kwargs": {"distance_metric": "cosine"}})
    assert triplet.distance_metric is TripletDistanceMetric.COSINE
    with pytest.raises(ValueError, match=r"loss.kwargs \['scal'\] are not arguments of MultipleNegativesRankingLoss"):
        build_loss(model, {"name": "MultipleNegativesRankingLoss", "kwargs": {"scal": 1}})


# --- demo data -------------------------------------------------------------------------------------------------


def test_demo_data_is_deterministic_and_its_evaluation_split_is_held_out() -> None:
    first, second = make_demo_data(num_train_pairs=500), make_demo_data(num_train_pairs=500)
    assert first == second
    assert len(first.train_anchors) == 500 and len(first.queries) == 300 and len(first.corpus) == 1500
    assert set(first.relevant_docs) == set(first.queries)
    assert all(docs <= set(first.corpus) and len(docs) == 1 for docs in first.relevant_docs.values())
    assert not set(first.corpus.values()) & set(first.train_positives)


def test_demo_queries_and_passages_use_different_words_for_each_concept() -> None:
    query_words = {w for concepts in (QUALITIES, THINGS, PLACES) for q, _ in concepts for w in q}
    passage_words = {w for concepts in (QUALITIES, THINGS, PLACES) for _, p in concepts for w in p}
    assert not query_words & passage_words
    data = make_demo_data(num_train_pairs=200)
    for query_id, (document_id,) in data.relevant_docs.items():
        query_tokens = set(data.queries[query_id].split())
        passage_tokens = set(data.corpus[document_id].lower().replace(".", " ").replace(";", " ").split())
        assert not query_tokens & passage_tokens & (query_words | passage_words)


def test_demo_tokenizer_knows_every_demo_word_and_is_the_same_every_time() -> None:
    tokenizer = build_wordpiece_tokenizer(vocabulary_texts())
    assert build_wordpiece_tokenizer(reversed(vocabulary_texts())).to_str() == tokenizer.to_str()
    # An unknown word falls back to character pieces.
    assert tokenizer.encode("zebra").tokens == ["z", "##e", "##b", "##r", "##a"]
    data = make_demo_data(num_train_pairs=300)
    for text in [*data.train_anchors, *data.train_positives, *data.corpus.values()]:
        encoding = tokenizer.encode(text)
        assert "[UNK]" not in encoding.tokens
        # Every word of the demo is one whole token.
        assert len(encoding.tokens) == len(tokenizer.pre_tokenizer.pre_tokenize_str(text.lower()))


# --- end to end ------------------------------------------------------------------------------------------------


def test_config_run_trains_saves_and_prints_metrics(
    tmp_path: Path, tokenizer_file: Path, retrieval_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from embedforge import SentenceTransformer

    train = write_rows(tmp_path / "train.parquet", [{"anchor": a, "positive": p} for a, p in PAIRS * 4])
    config = {
        "model": {"tokenizer": tokenizer_file.name, "embedding_dim": 16},
        "data": {"train": train.name},
        "loss": {"name": "MultipleNegativesRankingLoss", "matryoshka_dims": [16, 8]},
        "evaluator": {key: path.name for key, path in retrieval_files.items()},
        "args": {"per_device_train_batch_size": 4, "learning_rate": 0.1, "max_steps": 3, "disable_tqdm": True},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    output_dir = tmp_path / "run"
    assert main(["train", str(tmp_path / "config.yaml"), "--output-dir", str(output_dir)]) == 0
    output = capsys.readouterr().out
    assert "Trained for 3 steps" in output
    assert "dev_cosine_ndcg@10" in output and "before" in output and "after" in output
    assert f"Saved the trained model to {output_dir / 'final'}" in output
    model = SentenceTransformer(str(output_dir / "final"))
    embeddings = model.encode([a for a, _ in PAIRS])
    assert embeddings.shape == (len(PAIRS), 16) and np.isfinite(embeddings).all()


def test_flags_train_a_transformer_folder_with_a_scored_loss(
    tmp_path: Path, tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from embedforge import SentenceTransformer

    rows = [{"sentence1": a, "sentence2": p, "score": (i % 3) / 2} for i, (a, p) in enumerate(PAIRS)]
    train = write_rows(tmp_path / "train.jsonl", rows)
    pairs = write_rows(tmp_path / "sts.csv", rows)
    argv = ["train", "--model", str(tiny_bert_dir), "--train", str(train), "--loss", "CoSENTLoss"]
    argv += ["--pairs", str(pairs), "--output-dir", str(tmp_path / "run"), "--max-steps", "2", "--batch-size", "3"]
    argv += ["--set", "args.disable_tqdm=true", "--set", "args.batch_sampler=batch_sampler"]
    assert main(argv) == 0
    output = capsys.readouterr().out
    assert "dev_spearman_cosine" in output and "Trained for 2 steps" in output
    assert SentenceTransformer(str(tmp_path / "run" / "final")).encode("a test").shape == (32,)


def test_command_errors_are_one_line_messages(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"embedforge train: error: .*'data.train' names .* no such file"):
        main(["train", "--model", str(tmp_path), "--train", str(tmp_path / "missing.csv")])
    with pytest.raises(SystemExit, match=r"'args.no_such_arg' is not valid"):
        main(["train", "--set", "args.no_such_arg=1"])


def test_demo_run_with_a_few_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from embedforge import SentenceTransformer

    threads = torch.get_num_threads()
    output_dir = tmp_path / "demo"
    assert main(["train", "--max-steps", "3", "--output-dir", str(output_dir), "--set", "args.disable_tqdm=true"]) == 0
    assert torch.get_num_threads() == threads  # the demo's single-thread setting does not leak
    output = capsys.readouterr().out
    assert output.startswith("DEMO:") and output.count("DEMO:") == 2
    assert "Trained for 3 steps" in output
    for metric in ("accuracy@1", "recall@10", "ndcg@10", "mrr@10", "map@100"):
        assert f"demo_cosine_{metric}" in output
    model = SentenceTransformer(str(output_dir / "final"))
    assert model.encode(["cheap car near the beach"]).shape == (1, 256)


def test_written_demo_files_make_a_valid_config_for_the_same_data(tmp_path: Path) -> None:
    from embedforge.cli.demo_files import write_demo_files

    config = build_config(read_config_file(write_demo_files(str(tmp_path / "demo"), num_train_pairs=200)))
    data = make_demo_data(num_train_pairs=200)
    train = load_table([config.data["train"]], "data.train")
    assert train["anchor"] == data.train_anchors and train["positive"] == data.train_positives
    evaluator = build_evaluator(config.evaluator)
    assert dict(zip(evaluator.queries_ids, evaluator.queries)) == data.queries
    assert dict(zip(evaluator.corpus_ids, evaluator.corpus)) == data.corpus
    assert evaluator.relevant_docs == data.relevant_docs
    assert config.loss["matryoshka_dims"] == [256, 128, 64, 32] and config.args["learning_rate"] == 0.2


def test_the_example_config_uses_only_valid_keys() -> None:
    from embedforge.cli.train_config import SECTION_KEYS, training_argument_names

    example = yaml.safe_load((Path(__file__).parents[2] / "examples" / "train_config.yaml").read_text())
    assert set(example) == set(SECTION_KEYS)
    for section, values in example.items():
        valid = training_argument_names() if section == "args" else SECTION_KEYS[section]
        assert set(values) <= set(valid), section
