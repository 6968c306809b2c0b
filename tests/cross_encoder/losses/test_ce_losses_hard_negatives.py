"""The "labeled-pair" and "labeled-list" outputs of mine_hard_negatives feed the cross-encoder losses as they are.

Rows are collated by the cross-encoder collator's rule (text columns by position; a list-valued label
column becomes a list of tensors) and given to the pointwise and listwise losses; the mined datasets
and the losses' results are compared with sentence-transformers'.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from conftest import embedforge_static, load_st_util_module, random_sentences, st_static, static_weights
from embedforge.cross_encoder import losses
from test_ce_losses_helpers import assert_same_run, collate, our_model, run, st_losses, st_model

QUERIES = random_sentences(10, seed=51)
ANSWERS = random_sentences(10, seed=52, max_words=16)
#: (output_format, output_scores) -> the label column the mined dataset must have, and losses it feeds.
FORMATS = {
    ("labeled-pair", False): ("label", ["BinaryCrossEntropyLoss"]),
    ("labeled-pair", True): ("score", ["BinaryCrossEntropyLoss", "MSELoss"]),
    ("labeled-list", False): ("labels", ["LambdaLoss", "ListNetLoss", "PListMLELoss", "RankNetLoss"]),
    ("labeled-list", True): ("scores", ["ListNetLoss", "ADRMSELoss", "LambdaLoss"]),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """Tiny tensors: one intra-op thread beats contending for a busy machine's cores (by 10x and more)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mine(mine: Any, model: Any, output_format: str, output_scores: bool, **extra: Any) -> Any:
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict({"query": QUERIES, "answer": ANSWERS})
    # max_score drops some candidates, so some queries get fewer negatives: ragged lists for "labeled-list".
    return mine(
        dataset,
        model,
        num_negatives=3,
        max_score=0.1,
        output_format=output_format,
        output_scores=output_scores,
        **extra,
    )


def _batches(dataset: Any, label_column: str, size: int = 4) -> list[tuple[list[list[Any]], Any]]:
    rows = list(dataset)
    return [collate(rows[start : start + size], label_column) for start in range(0, len(rows), size)]


@pytest.mark.parametrize(("output_format", "output_scores"), list(FORMATS))
def test_mined_datasets_feed_the_losses(output_format: str, output_scores: bool) -> None:
    from embedforge.util import mine_hard_negatives

    label_column, names = FORMATS[(output_format, output_scores)]
    mined = _mine(
        mine_hard_negatives,
        embedforge_static(static_weights(seed=5, dim=16)),
        output_format,
        output_scores,
        verbose=False,
    )
    assert mined.column_names == ["query", "answer", label_column]
    if output_format == "labeled-list":
        assert len({len(documents) for documents in mined["answer"]}) > 1, "expected ragged document lists"
    model = our_model(1)
    for name in names:
        loss = getattr(losses, name)(model)
        # The collated columns pass the trainer's pre-training check and the loss's own per-batch checks.
        loss.check_input_columns(["query", "answer"], has_label=True, label_column=label_column)
        for inputs, labels in _batches(mined, label_column):
            value, gradients = run(loss, model, inputs, labels)
            assert np.isfinite(value) and gradients, name


@pytest.mark.parametrize(("output_format", "output_scores"), list(FORMATS))
def test_mined_datasets_and_losses_match_sentence_transformers(output_format: str, output_scores: bool) -> None:
    from embedforge.util import mine_hard_negatives

    st_hard = load_st_util_module("hard_negatives")
    weights = static_weights(seed=5, dim=16)
    ours = _mine(mine_hard_negatives, embedforge_static(weights), output_format, output_scores, verbose=False)
    theirs = _mine(st_hard.mine_hard_negatives, st_static(weights), output_format, output_scores, verbose=False)
    assert ours.column_names == theirs.column_names and len(ours) == len(theirs) > 0
    label_column, names = FORMATS[(output_format, output_scores)]
    for column in ours.column_names:
        if column == label_column and output_scores:
            np.testing.assert_allclose(
                np.concatenate([np.ravel(v) for v in ours[column]]),
                np.concatenate([np.ravel(v) for v in theirs[column]]),
                rtol=0,
                atol=1e-5,
            )
        else:
            assert ours[column] == theirs[column], column

    model, st_ce, st = our_model(1), st_model(1), st_losses()
    for name in names:
        ours_loss, st_loss = getattr(losses, name)(model), getattr(st, name)(st_ce)
        for (inputs, labels), (st_inputs, st_labels) in zip(
            _batches(ours, label_column), _batches(theirs, label_column)
        ):
            assert_same_run(run(ours_loss, model, inputs, labels), run(st_loss, st_ce, st_inputs, st_labels))
