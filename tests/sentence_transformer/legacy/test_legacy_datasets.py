"""Datasets and the data loader of the pre-v3 fit API: the same items, in the same order for the same seeds,
as sentence-transformers' classes, plus the properties they promise."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import embedforge.sentence_transformer.datasets as embedforge_datasets
from conftest import embedforge_static, random_sentences, st_static, static_weights
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.datasets import (
    DenoisingAutoEncoderDataset,
    NoDuplicatesDataLoader,
    ParallelSentencesDataset,
    SentenceLabelDataset,
    SentencesDataset,
)
from embedforge.sentence_transformer.readers import InputExample


@pytest.fixture(scope="module")
def st_datasets() -> Any:
    """sentence-transformers' datasets package and its InputExample: the oracle."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer import datasets, readers

    return datasets, readers.InputExample


def pair_examples(example_class: type, count: int, seed: int = 0) -> list[Any]:
    """Pairs drawn from a small pool, so that texts repeat across examples (with case/space variants)."""
    pool = random_sentences(count // 2, seed=seed)
    generator = random.Random(seed)
    examples = []
    for index in range(count):
        first, second = generator.sample(pool, 2)
        if index % 3 == 0:
            first = "  " + first.upper() + " "
        examples.append(example_class(guid=str(index), texts=[first, second], label=index % 4))
    return examples


def ids(batches: list[list[Any]]) -> list[list[str]]:
    return [[example.guid for example in batch] for batch in batches]


def test_sentences_dataset_indexes_the_examples() -> None:
    examples = pair_examples(InputExample, 6)
    dataset = SentencesDataset(examples, model=None)
    assert len(dataset) == 6 and [dataset[i] for i in range(6)] == examples
    loader = DataLoader(dataset, batch_size=4, collate_fn=lambda batch: batch)
    assert [len(batch) for batch in loader] == [4, 2]


def test_no_duplicates_loader_matches_sentence_transformers(st_datasets: Any) -> None:
    st_module, st_example = st_datasets
    ours_examples, st_examples = pair_examples(InputExample, 60, seed=4), pair_examples(st_example, 60, seed=4)
    random.seed(11)
    ours = NoDuplicatesDataLoader(ours_examples, batch_size=8)
    ours_epochs = [list(ours), list(ours)]
    random.seed(11)
    theirs = st_module.NoDuplicatesDataLoader(st_examples, batch_size=8)
    theirs_epochs = [list(theirs), list(theirs)]
    assert len(ours) == len(theirs) == 7
    assert [ids(epoch) for epoch in ours_epochs] == [ids(epoch) for epoch in theirs_epochs]
    # The caller's list keeps its order (sentence-transformers shuffles it in place).
    assert [example.guid for example in ours_examples] == [str(i) for i in range(60)]


def test_no_duplicates_loader_batches_have_distinct_texts() -> None:
    examples = pair_examples(InputExample, 200, seed=9)
    random.seed(0)
    loader = NoDuplicatesDataLoader(examples, batch_size=10)
    loader.collate_fn = lambda batch: [example.texts for example in batch]
    batches = list(loader)
    assert len(batches) == 20
    for batch in batches:
        keys = [text.strip().lower() for texts in batch for text in texts]
        assert len(batch) == 10 and len(keys) == len(set(keys))


def test_no_duplicates_loader_fails_instead_of_looping_forever() -> None:
    examples = [InputExample(texts=["same", f"other {i}"]) for i in range(5)]
    with pytest.raises(InvalidArgumentError, match="batch_size=2"):
        next(iter(NoDuplicatesDataLoader(examples, batch_size=2)))
    with pytest.raises(InvalidArgumentError, match="batch_size=0"):
        NoDuplicatesDataLoader(examples, batch_size=0)


@pytest.mark.parametrize("with_replacement", [False, True])
@pytest.mark.parametrize("samples_per_label", [2, 3])
def test_sentence_label_dataset_matches_sentence_transformers(
    st_datasets: Any, with_replacement: bool, samples_per_label: int
) -> None:
    st_module, st_example = st_datasets
    labels = [i % 7 for i in range(40)] + [99]  # label 99 has one example: left out
    ours_examples = [InputExample(guid=str(i), texts=[f"t{i}"], label=label) for i, label in enumerate(labels)]
    st_examples = [st_example(guid=str(i), texts=[f"t{i}"], label=label) for i, label in enumerate(labels)]
    np.random.seed(5)
    ours = SentenceLabelDataset(ours_examples, samples_per_label, with_replacement)
    ours_order = [example.guid for example in ours] + [example.guid for example in ours]
    np.random.seed(5)
    theirs = st_module.SentenceLabelDataset(st_examples, samples_per_label, with_replacement)
    theirs_order = [example.guid for example in theirs] + [example.guid for example in theirs]
    assert len(ours) == len(theirs) == 40
    assert ours_order == theirs_order
    # Runs of samples_per_label examples share a label; without replacement a run has no repeats.
    first_pass = ours_order[: len(ours) - len(ours) % samples_per_label]
    for start in range(0, len(first_pass), samples_per_label):
        run = first_pass[start : start + samples_per_label]
        assert len({labels[int(guid)] for guid in run}) == 1 and len(set(run)) == samples_per_label


def test_sentence_label_dataset_with_no_usable_label_is_empty() -> None:
    dataset = SentenceLabelDataset([InputExample(texts=["a"], label=0), InputExample(texts=["b"], label=1)])
    assert len(dataset) == 0 and list(dataset) == []


def test_parallel_sentences_dataset_matches_sentence_transformers(st_datasets: Any, tmp_path: Any) -> None:
    st_module, _ = st_datasets
    weights = static_weights(seed=2, dim=6)
    english = random_sentences(12, seed=21, max_words=6)
    other = random_sentences(12, seed=22, max_words=6)
    rows = [f"{english[i]}\t{other[i]}\t{other[(i + 1) % 12]}" for i in range(12)]
    rows.append(f"{english[0]}\t{other[5]}")  # same source again: merged into one entry
    rows.append("x" * 200 + "\tlong")  # skipped: longer than max_sentence_length
    (tmp_path / "parallel.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    pairs = [[english[i], other[(i * 5) % 12]] for i in range(6)]

    def build(module: Any, teacher: Any) -> Any:
        dataset = module.ParallelSentencesDataset(student_model=None, teacher_model=teacher, batch_size=4)
        dataset.load_data(str(tmp_path / "parallel.tsv"), weight=3, max_sentence_length=100)
        dataset.add_dataset(pairs, weight=2)
        return dataset

    random.seed(8)
    ours = build(embedforge_datasets, embedforge_static(weights))
    ours_items = [ours[0] for _ in range(3 * len(ours))]
    random.seed(8)
    theirs = build(st_module, st_static(weights))
    theirs_items = [theirs[0] for _ in range(3 * len(theirs))]
    assert len(ours) == len(theirs) == 12 * 3 + 1 + 6 * 2
    assert [item.texts for item in ours_items] == [item.texts for item in theirs_items]
    for mine, other_item in zip(ours_items, theirs_items):
        np.testing.assert_allclose(mine.label, other_item.label, rtol=1e-6, atol=1e-6)
    assert ours.embedding_cache.keys() == theirs.embedding_cache.keys()


def test_parallel_sentences_labels_are_the_teacher_embedding_of_the_source() -> None:
    teacher = embedforge_static(static_weights(seed=1, dim=4))
    dataset = ParallelSentencesDataset(student_model=None, teacher_model=teacher, use_embedding_cache=False)
    dataset.add_dataset([["the cat", "die katze", "le chat"], ["a dog", "ein hund"]], weight=1)
    items = [dataset[0] for _ in range(5)]
    expected = {
        text: teacher.encode(source)
        for source, texts in (("the cat", ["the cat", "die katze", "le chat"]), ("a dog", ["a dog", "ein hund"]))
        for text in texts
    }
    assert sorted(item.texts[0] for item in items) == sorted(expected)
    for item in items:
        np.testing.assert_allclose(item.label, expected[item.texts[0]], rtol=1e-6)


def test_denoising_dataset_with_a_custom_noise() -> None:
    sentences = random_sentences(5, seed=3)
    dataset = DenoisingAutoEncoderDataset(sentences, noise_fn=lambda text: text[::-1])
    assert len(dataset) == 5
    assert [dataset[i].texts for i in range(5)] == [[text[::-1], text] for text in sentences]


def test_denoising_default_noise_keeps_at_least_one_word() -> None:
    pytest.importorskip("nltk")
    try:
        np.random.seed(0)
        noisy = [DenoisingAutoEncoderDataset.delete("one two three four five", del_ratio=0.99) for _ in range(5)]
    except LookupError:
        pytest.skip("nltk's punkt tokenizer data is not installed")
    assert all(
        1 <= len(text.split()) <= 5 and set(text.split()) <= {"one", "two", "three", "four", "five"} for text in noisy
    )


def test_loaders_feed_a_plain_dataloader() -> None:
    examples = pair_examples(InputExample, 10)
    loader = DataLoader(
        examples, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0), collate_fn=list
    )
    assert sorted(example.guid for batch in loader for example in batch) == sorted(str(i) for i in range(10))
