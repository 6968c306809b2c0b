"""Modality detection (embedforge.base.modality) against hand-written cases and sentence-transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from embedforge.base.modality import (
    format_modality,
    infer_batch_modality,
    infer_modality,
    is_audio_url_or_path,
    is_image_url_or_path,
    is_non_text_pair,
    is_video_url_or_path,
    raise_unsupported_modality_error,
)

IMAGE = Image.new("RGB", (6, 4))

# Inputs whose modality the rules settle, with the answer worked out by hand from them.
CASES = [
    ("plain words", "text"),
    (("a query", "a document"), "text"),
    (["a query", "a document"], "text"),
    ("https://example.com/cat.JPG?size=2", "image"),
    ("data:image/png;base64,AAAA", "image"),
    ("https://example.com/clip.mp4", "video"),
    ("https://youtu.be/abc", "video"),
    ("https://example.com/song.flac", "audio"),
    ("see https://example.com/cat.jpg", "text"),  # prose that contains a URL
    ("cat.jpg", "text"),  # a file name that does not exist is text
    (IMAGE, "image"),
    (np.zeros(10), "audio"),
    (np.zeros((2, 10)), "audio"),
    (np.zeros((4, 4, 3)), "image"),
    (torch.zeros(2, 3, 4, 4), "video"),
    (np.zeros((1, 2, 3, 4, 4)), "video"),
    ({"role": "user", "content": "hi"}, "message"),
    ([{"role": "user", "content": "hi"}], "message"),
    ({"array": np.zeros(5), "sampling_rate": 16000}, "audio"),
    ({"array": np.zeros((2, 3, 4, 4)), "video_metadata": None}, "video"),
    ({"image": IMAGE}, "image"),
    ({"text": "a", "image": IMAGE}, ("image", "text")),
    ({"video": np.zeros((2, 3, 4, 4)), "text": "a", "audio": np.zeros(3)}, ("audio", "text", "video")),
]


@pytest.mark.parametrize(("sample", "expected"), CASES)
def test_infer_modality_follows_the_rules(sample: object, expected: object) -> None:
    assert infer_modality(sample) == expected


@pytest.mark.parametrize(("sample", "expected"), CASES)
def test_infer_modality_agrees_with_sentence_transformers(sample: object, expected: object) -> None:
    reference = pytest.importorskip("sentence_transformers.base.modality")
    assert infer_modality(sample) == reference.infer_modality(sample)


def test_existing_media_files_count_and_missing_ones_do_not(tmp_path: Path) -> None:
    for name, check in (
        ("a.png", is_image_url_or_path),
        ("b.mkv", is_video_url_or_path),
        ("c.wav", is_audio_url_or_path),
    ):
        path = tmp_path / name
        assert not check(str(path))
        path.write_bytes(b"0")
        assert check(str(path))
    assert not is_image_url_or_path("https://[broken/x.png")  # urlparse raises on it


def test_media_strings_become_text_for_models_without_that_modality() -> None:
    assert infer_modality("https://example.com/a.png", supported_modalities=["text"]) == "text"
    assert infer_modality("https://example.com/a.png", supported_modalities=["text", "image"]) == "image"
    assert infer_batch_modality(["a", "https://example.com/v.mp4"], supported_modalities=["text"]) == "text"
    assert infer_batch_modality(["a", "https://example.com/v.mp4"]) == "message"


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (42, "Unsupported input type: int"),
        (torch.zeros(1, 1, 1, 1, 1, 1), "Unsupported tensor dimensionality: 6D"),
        ({}, "empty dict"),
        ({"array": np.zeros(3)}, "must also include 'sampling_rate'"),
        ({"image": IMAGE, "foo": 1, 0: 2}, "unrecognized modality keys: [0, 'foo']"),
        ({"audio": np.zeros(3), "sampling_rate": 8000}, '{"audio": {"array": waveform, "sampling_rate": 16000}}'),
    ],
)
def test_bad_inputs_are_refused_with_the_reason(sample: object, message: str) -> None:
    with pytest.raises(ValueError, match=None) as error:
        infer_modality(sample)
    assert message in str(error.value)


def test_non_text_pairs() -> None:
    assert is_non_text_pair((IMAGE, "caption"))
    assert is_non_text_pair([np.zeros(4), np.zeros(4)])
    assert not is_non_text_pair(("a", "b"))
    assert not is_non_text_pair(("a", "b", "c"))
    assert not is_non_text_pair(([{"role": "user", "content": "x"}], "b"))


def test_batch_modality_of_empty_mixed_and_uniform_batches() -> None:
    assert infer_batch_modality([]) == "text"
    assert infer_batch_modality([IMAGE, IMAGE]) == "image"
    assert infer_batch_modality(["a", IMAGE]) == "message"
    assert format_modality(("image", "text")) == "image+text"


@pytest.mark.parametrize(
    ("inputs", "modality", "supported", "fragment"),
    [
        ([IMAGE], "image", ["text"], "Modality 'image' is not supported by this model. Supported modalities: text"),
        (
            ["a", IMAGE],
            "message",
            ["text"],
            "mixes multiple modalities (image, text), but this model does not support image",
        ),
        (["a", IMAGE], "message", ["text", "image"], "which this model cannot encode in a single batch"),
        ([{"role": "user", "content": "x"}], "message", ["text"], "does not support chat-style 'message' inputs"),
        ([{"text": "a", "image": IMAGE}], ("image", "text"), ["text", "image"], "supports image and text individually"),
    ],
)
def test_unsupported_modality_errors_name_the_problem(
    inputs: list, modality: object, supported: list, fragment: str
) -> None:
    with pytest.raises(ValueError) as error:
        raise_unsupported_modality_error(inputs, modality, supported, "model")
    assert fragment in str(error.value)


def test_batch_of_strings_agrees_with_per_sample_inference(tmp_path: Path) -> None:
    """infer_batch_modality's shortcut for plain sentences gives what the per-string rules give, media included."""
    from embedforge.base.modality.detection import infer_batch_modality, infer_modality

    picture = tmp_path / "PHOTO.JPG"
    picture.write_bytes(b"not really an image")
    strings = [
        "a plain sentence",
        "see photo.jpg",  # names a file that is not there: text
        str(picture),  # an existing file with an upper-case image extension
        "http://example.com/a.png",
        "https://www.youtube.com/watch?v=x",
        "data:image/png;base64,AAAA",
        "https://example.com/page about cats",
        "song.FLAC",
        "",
    ]
    for text in strings:
        assert infer_batch_modality([text]) == infer_modality(text), text
    assert infer_batch_modality(["one", "two"]) == "text"
    assert infer_batch_modality(["one", str(picture)]) == "message"
