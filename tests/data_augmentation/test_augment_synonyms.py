"""Synonym replacement: how many words change, what is kept (case, stop words, punctuation, spacing), seeds,
synonyms from embeddings (against a numpy cosine top-n) and from a static model's vocabulary, augment_dataset."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from datasets import Dataset, Features, Value

from embedforge import SentenceTransformer
from embedforge.data_augmentation import SynonymAugmenter, augment_dataset
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.modules import StaticEmbedding

SYNONYMS = {
    "quick": ["fast", "rapid", "speedy"],
    "happy": ["glad", "cheerful"],
    "big": ["large", "huge"],
    "dog": ["hound", "pup"],
    "car": ["automobile"],
    "house": ["home"],
    "small": ["little", "tiny"],
    "bright": ["shiny"],
    "old": ["ancient", "aged"],
    "road": ["street"],
    "the": ["that"],  # an English stop word: never replaced
    "and": ["plus"],  # another one
}
#: Ten replaceable words (dog twice), each followed by one space or punctuation, plus stop words.
TEN = "The quick dog and the happy dog saw a big car, a small house, the old road and lights."
CANDIDATES_IN_TEN = 10


def changed_words(before: str, after: str) -> int:
    """Whitespace-separated tokens that differ (each replacement is one word for one word)."""
    old, new = before.split(" "), after.split(" ")
    assert len(old) == len(new)
    return sum(a != b for a, b in zip(old, new))


def skeleton(text: str) -> str:
    """The text with every run of letters replaced by one placeholder: spacing, punctuation and digits stay."""
    return re.sub(r"[A-Za-z]+(?:'[A-Za-z]+)*", "W", text)


# --- SynonymAugmenter ---------------------------------------------------------------------------------------------


def test_the_test_sentence_has_ten_replaceable_words() -> None:
    tokens = [re.sub(r"\W", "", token).lower() for token in TEN.split(" ")]
    assert sum(token in SYNONYMS and token not in ("the", "and") for token in tokens) == CANDIDATES_IN_TEN


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # nlpaug's count: ceil(aug_p x the 19 words of TEN), within [aug_min, aug_max], at most the 10 replaceable
        ({"aug_p": 0.5}, 10),  # ceil(9.5)
        ({"aug_p": 0.2}, 4),  # ceil(3.8)
        ({"aug_p": 0.1}, 2),  # ceil(1.9)
        ({"aug_p": 1.0, "aug_max": 4}, 4),  # capped by aug_max
        ({"aug_p": 1.0, "aug_max": 10}, 10),
        ({"aug_p": 1.0, "aug_max": 25}, 10),  # never more than the replaceable words
        ({"aug_p": 0.0, "aug_min": 2}, 2),  # raised to aug_min
        ({"aug_p": 0.05, "aug_min": 1}, 1),  # ceil(0.95)
        ({"aug_p": 0.0, "aug_min": 0}, 0),
    ],
)
def test_the_number_of_replaced_words_follows_aug_p_aug_min_and_aug_max(options: dict[str, Any], expected: int) -> None:
    augmenter = SynonymAugmenter(SYNONYMS, seed=1, **options)
    for _ in range(5):
        assert changed_words(TEN, augmenter.augment(TEN)) == expected


def test_aug_min_is_capped_by_the_replaceable_words() -> None:
    augmenter = SynonymAugmenter(SYNONYMS, aug_p=0.0, aug_min=5, aug_max=10)
    assert changed_words("the big car", augmenter.augment("the big car")) == 2


def test_every_replacement_is_a_synonym_of_the_word_it_replaces() -> None:
    augmenter = SynonymAugmenter(SYNONYMS, aug_p=1.0, seed=3)
    for _ in range(10):
        for before, after in zip(TEN.split(" "), augmenter.augment(TEN).split(" ")):
            word, new_word = re.sub(r"\W", "", before).lower(), re.sub(r"\W", "", after).lower()
            assert new_word == word or new_word in SYNONYMS[word]


def test_stop_words_are_never_replaced_unless_the_list_is_changed() -> None:
    text = "the and The AND the"
    assert SynonymAugmenter(SYNONYMS, aug_p=1.0).augment(text) == text
    assert "the" not in SynonymAugmenter(SYNONYMS).synonyms
    no_stopwords = SynonymAugmenter(SYNONYMS, aug_p=1.0, stopwords=None)
    assert no_stopwords.augment(text) == "that plus That PLUS that"
    custom = SynonymAugmenter(SYNONYMS, aug_p=1.0, stopwords=["Dog"])  # stop words match case-insensitively
    assert custom.augment("the dog and the car") == "that dog plus that automobile"


def test_replacements_take_the_capitalisation_of_the_original_word() -> None:
    augmenter = SynonymAugmenter({"car": ["automobile"], "road": ["street"], "house": ["home"]}, aug_p=1.0)
    assert augmenter.augment("Car ROAD house CAR road") == "Automobile STREET home AUTOMOBILE street"


def test_punctuation_digits_and_spacing_are_kept() -> None:
    text = "  Quick,\tthe BIG dog's  house (no. 42)...\nold-road! happy?! dog"
    augmenter = SynonymAugmenter(SYNONYMS, aug_p=1.0, seed=0)
    augmented = augmenter.augment(text)
    assert augmented != text
    assert skeleton(augmented) == skeleton(text)


def test_texts_without_replaceable_words_come_back_unchanged() -> None:
    augmenter = SynonymAugmenter(SYNONYMS, aug_p=1.0)
    for text in ["", "   ", "nothing to see here", "42 + 7 = 49", "the and the"]:
        assert augmenter.augment(text) == text


def test_the_same_seed_gives_the_same_texts_and_another_seed_other_texts() -> None:
    texts = [TEN, "a big dog", "the happy old house", *([TEN] * 5)]
    first = SynonymAugmenter(SYNONYMS, seed=7).augment_batch(texts)
    assert first == SynonymAugmenter(SYNONYMS, seed=7).augment_batch(texts)
    assert first != SynonymAugmenter(SYNONYMS, seed=8).augment_batch(texts)
    # One generator for all calls: the same text twice in a row is augmented differently (here, at least once).
    assert len(set(first[3:])) > 1


def test_a_word_listed_as_its_own_synonym_is_dropped() -> None:
    augmenter = SynonymAugmenter({"Car": ["car", "CAR", "auto"], "road": ["Road"]}, aug_p=1.0)
    assert augmenter.synonyms == {"car": ["auto"]}
    assert augmenter.augment("car road") == "auto road"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"aug_p": 1.5}, r"aug_p=1.5; expected a fraction in \[0, 1\]"),
        ({"aug_min": 3, "aug_max": 2}, r"aug_min=3, aug_max=2; expected 0 <= aug_min <= aug_max"),
        ({"aug_min": -1}, r"aug_min=-1"),
        ({"stopwords": "french"}, r"stopwords='french'; expected 'english', a list of words or None"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        SynonymAugmenter(SYNONYMS, **options)


def test_augment_needs_a_str() -> None:
    with pytest.raises(InvalidArgumentError, match=r"text=3; expected a str"):
        SynonymAugmenter(SYNONYMS).augment(3)  # type: ignore[arg-type]


# --- synonyms from embeddings -------------------------------------------------------------------------------------


def reference_neighbours(words: list[str], vectors: np.ndarray, top_n: int, min_similarity: float) -> dict[str, list]:
    """Each word's top_n other words by cosine similarity (ties to the lower index), those >= min_similarity."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    neighbours = {}
    for i, word in enumerate(words):
        ranking = sorted((j for j in range(len(words)) if j != i), key=lambda j: (-similarity[i, j], j))[:top_n]
        close = [words[j] for j in ranking if similarity[i, j] >= min_similarity]
        if close:
            neighbours[word] = close
    return neighbours


@pytest.mark.parametrize(("top_n", "min_similarity"), [(1, -1.0), (3, 0.2), (4, 0.6)])
def test_synonyms_from_embeddings_are_the_nearest_words_by_cosine(top_n: int, min_similarity: float) -> None:
    words = ["apple", "pear", "plum", "grape", "lemon", "melon", "peach", "berry", "mango", "kiwi", "lime", "fig"]
    vectors = np.random.default_rng(0).normal(size=(len(words), 5))
    augmenter = SynonymAugmenter.from_embeddings(words, vectors, top_n=top_n, min_similarity=min_similarity)
    expected = reference_neighbours(words, vectors, top_n, min_similarity)
    assert augmenter.synonyms == expected
    assert 0 < len(expected) <= len(words)


def test_from_embeddings_passes_the_augmenter_settings_on() -> None:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    augmenter = SynonymAugmenter.from_embeddings(["car", "auto", "tree"], vectors, top_n=1, aug_p=1.0, seed=3)
    # "tree" is closest to "auto", but at cosine 0.11, below the default min_similarity 0.5.
    assert augmenter.synonyms == {"car": ["auto"], "auto": ["car"]}
    assert augmenter.augment("Car") == "Auto"
    assert (augmenter.aug_p, augmenter.aug_min, augmenter.aug_max) == (1.0, 1, 10)


def test_from_embeddings_errors() -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"vectors has shape \(2, 3\); expected one row per word \(3 words\)"
    ):
        SynonymAugmenter.from_embeddings(["a", "b", "c"], np.zeros((2, 3)))
    with pytest.raises(InvalidArgumentError, match=r"top_n=0; expected a positive integer"):
        SynonymAugmenter.from_embeddings(["a", "b"], np.ones((2, 3)), top_n=0)


# --- synonyms from a static model ---------------------------------------------------------------------------------

#: A vocabulary mixing whole words with what must not become a synonym: special tokens, word pieces, numbers,
#: words with digits or apostrophes, and words shorter than min_length.
VOCAB = [
    "[UNK]",
    "[CLS]",
    "cat",
    "##ing",
    "dog",
    "it",
    "42",
    "kitten",
    "x2",
    "puppy",
    "don't",
    "feline",
    "canine",
    "car",
    "##s",
    "ox",
]
WHOLE_WORDS = ["cat", "dog", "kitten", "puppy", "feline", "canine", "car"]


def static_vocab_model() -> tuple[StaticEmbedding, np.ndarray]:
    """A StaticEmbedding over VOCAB whose non-word rows sit right next to the words (they would win if allowed)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({token: i for i, token in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(len(VOCAB), 6)).astype(np.float32)
    for shadow, word in [("##ing", "cat"), ("42", "dog"), ("it", "kitten"), ("don't", "puppy"), ("[CLS]", "car")]:
        weights[VOCAB.index(shadow)] = weights[VOCAB.index(word)] + 0.01 * rng.normal(size=6)
    return StaticEmbedding(tokenizer, embedding_weights=torch.from_numpy(weights)), weights


def test_from_static_model_uses_only_whole_alphabetic_words_of_min_length(tmp_path: Path) -> None:
    module, weights = static_vocab_model()
    rows = [VOCAB.index(word) for word in WHOLE_WORDS]
    expected = reference_neighbours(WHOLE_WORDS, weights[rows].astype(np.float64), 2, 0.0)
    augmenter = SynonymAugmenter.from_static_model(module, top_n=2, min_similarity=0.0)
    assert augmenter.synonyms == expected
    used = set(augmenter.synonyms) | {word for choices in augmenter.synonyms.values() for word in choices}
    assert used <= set(WHOLE_WORDS)

    # The same from a SentenceTransformer that starts with the module, and from its saved folder.
    model = SentenceTransformer(modules=[module], device="cpu")
    assert SynonymAugmenter.from_static_model(model, top_n=2, min_similarity=0.0).synonyms == expected
    model.save(str(tmp_path / "static"))
    assert (
        SynonymAugmenter.from_static_model(str(tmp_path / "static"), top_n=2, min_similarity=0.0).synonyms == expected
    )


def test_from_static_model_min_length() -> None:
    module, weights = static_vocab_model()
    long_words = [word for word in WHOLE_WORDS if len(word) >= 5]
    rows = [VOCAB.index(word) for word in long_words]
    expected = reference_neighbours(long_words, weights[rows].astype(np.float64), 1, -1.0)
    assert SynonymAugmenter.from_static_model(module, min_length=5, top_n=1, min_similarity=-1.0).synonyms == expected
    # With min_length=2, "it" and "ox" take part too.
    two = SynonymAugmenter.from_static_model(module, min_length=2, top_n=1, min_similarity=-1.0)
    assert set(two.synonyms) == {*WHOLE_WORDS, "ox"}  # "it" is an English stop word: never a key


def test_from_static_model_refuses_other_models() -> None:
    from embedforge.sentence_transformer.modules import Normalize

    with pytest.raises(InvalidArgumentError, match=r"model=SentenceTransformer; expected a StaticEmbedding"):
        SynonymAugmenter.from_static_model(SentenceTransformer(modules=[Normalize()], device="cpu"))
    module, _ = static_vocab_model()
    with pytest.raises(InvalidArgumentError, match=r"no whole alphabetic words"):
        SynonymAugmenter.from_static_model(module, min_length=10)


# --- augment_dataset ----------------------------------------------------------------------------------------------


def test_augment_dataset_keeps_labels_and_drops_unchanged_rows() -> None:
    features = Features({"s1": Value("string"), "s2": Value("string"), "label": Value("float32")})
    dataset = Dataset.from_dict(
        {
            "s1": ["The big dog", "nothing here", "Big", "no change"],
            "s2": ["a small cat", "at all", "x", "Small!"],
            "label": [0.75, 0.5, 1.0, 0.25],
        },
        features=features,
    )
    augmenter = SynonymAugmenter({"big": ["large"], "dog": ["hound"], "small": ["little"]}, aug_p=1.0)
    silver = augment_dataset(dataset, augmenter)
    assert silver.features == features
    assert silver.to_dict() == {
        "s1": ["The large hound", "Large", "no change"],
        "s2": ["a little cat", "x", "Little!"],
        "label": [0.75, 1.0, 0.25],
    }
