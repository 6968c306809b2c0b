"""Media in model cards: usage examples saved under assets/, media-aware snippets, dataset statistics, video decoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import embedforge_static, static_weights
from embedforge.base.model_card import BaseModelCardData, generate_model_card
from embedforge.sentence_transformer.model_card import SentenceTransformerModelCardData

Image = pytest.importorskip("PIL.Image")
datasets = pytest.importorskip("datasets")


def image(size: int, colour: tuple[int, int, int] = (255, 0, 0)) -> Any:
    return Image.new("RGB", (size, size), colour)


# -- one-line descriptions ---------------------------------------------------------------------------


def test_example_values_are_described_cut_and_escaped() -> None:
    describe = BaseModelCardData._format_example_value
    assert describe("plain") == "plain"
    assert describe("x" * 1200) == "x" * 1000 + "..."
    assert describe([1, 2, 3, 4, 5, 6]) == "[1, 2, 3, 4, 5, ...]"
    assert describe([1, 2, 3]) == "[1, 2, 3]"
    assert describe("a|b\nc") == "a\\|b<br>c"
    assert describe(image(12)) == "&lt;image 12x12&gt;"
    assert describe({"array": np.zeros(8000), "sampling_rate": 16000}) == "&lt;audio 0.50s @ 16000 Hz&gt;"
    assert describe({"array": np.zeros((2, 3, 4, 4)), "video_metadata": {}}) == "&lt;video&gt;"


def test_typed_media_dicts_are_told_from_multimodal_inputs() -> None:
    assert BaseModelCardData._is_typed_media_dict({"array": [0.0], "sampling_rate": 8000})
    assert BaseModelCardData._is_typed_media_dict({"array": [0.0], "video_metadata": {}})
    assert not BaseModelCardData._is_typed_media_dict({"text": "a", "image": "b"})
    assert not BaseModelCardData._is_typed_media_dict("array")


# -- usage examples saved as files -------------------------------------------------------------------


def test_media_usage_examples_are_saved_once_each(tmp_path: Path) -> None:
    data = BaseModelCardData()
    data.save_dir = str(tmp_path)
    red, blue = image(16), image(16, (0, 0, 255))
    data.usage_examples = [red, "text", red, {"text": "caption", "image": blue}, [blue, "pair text"]]
    data.save_usage_example_assets()
    assert data.usage_examples_display == [
        "assets/image_0.jpg",
        "text",
        "assets/image_0.jpg",
        {"text": "caption", "image": "assets/image_1.jpg"},
        ["assets/image_1.jpg", "pair text"],
    ]
    assert sorted(path.name for path in (tmp_path / "assets").iterdir()) == ["image_0.jpg", "image_1.jpg"]
    assert Image.open(tmp_path / "assets" / "image_1.jpg").size == (16, 16)


def test_text_examples_or_no_folder_save_nothing(tmp_path: Path) -> None:
    data = BaseModelCardData()
    data.save_dir = str(tmp_path)
    data.usage_examples = ["a", ["b", "c"]]
    data.save_usage_example_assets()
    assert data.usage_examples_display is None
    assert not (tmp_path / "assets").exists()

    data = BaseModelCardData()
    data.usage_examples = [image(8)]
    data.save_usage_example_assets()  # no save_dir: nothing to write to
    assert data.usage_examples_display is None


def test_unsaveable_values_are_named_by_type(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = BaseModelCardData()
    data.save_dir = str(tmp_path)
    data.usage_examples = [object()]
    data.save_usage_example_assets()
    assert data.usage_examples_display == ["<object>"]
    assert "Could not save" in caplog.text


# -- snippets ----------------------------------------------------------------------------------------


def test_text_snippet_defaults_and_display_precedence() -> None:
    data = BaseModelCardData()
    snippet = data.generate_usage_snippet()
    assert "'The weather is lovely today.'" in snippet
    assert 'SentenceTransformer("sentence_transformers_model_id")' in snippet
    assert "print(similarities.shape)\n# [3, 3]" in snippet

    data.usage_examples = ["original"]
    data.usage_examples_display = ["shown A", "shown B"]
    snippet = data.generate_usage_snippet()
    assert "'shown A'" in snippet and "original" not in snippet
    assert "# [2, ?]" in snippet  # no model: the dimension is unknown


def test_media_snippet_links_saved_files_on_the_hub() -> None:
    data = BaseModelCardData(model_id="org/model")
    data.usage_examples = [{"text": "A cat", "image": image(8)}, image(8)]
    data.usage_examples_display = [{"text": "A cat", "image": "assets/image_0.jpg"}, "assets/image_0.jpg"]
    snippet = data.generate_usage_snippet()
    url = "https://huggingface.co/org/model/resolve/main/assets/image_0.jpg"
    assert f"    {{'text': 'A cat', 'image': {url!r}}}," in snippet
    assert f"    {url!r}," in snippet
    assert "embeddings = model.encode(inputs)" in snippet
    assert "# [2, 2]" in snippet
    assert BaseModelCardData()._asset_path_to_url("assets/x.jpg") == "assets/x.jpg"


# -- dataset statistics ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def static_model() -> Any:
    return embedforge_static(static_weights())


def test_column_statistics_carry_a_modality(static_model: Any) -> None:
    data = SentenceTransformerModelCardData()
    data.register_model(static_model)
    dataset = datasets.Dataset.from_dict(
        {
            "anchor": ["a b", "c", "d e f"],
            "label": [0, 1, 1],
            "score": [0.1, 0.5, 0.9],
            "sizes": [[1], [1, 2], [1, 2, 3]],
            "audio": [{"array": [0.0] * 8000, "sampling_rate": 8000}] * 2
            + [{"array": [0.0] * 16000, "sampling_rate": 8000}],
        }
    )
    info = data.compute_dataset_metrics(dataset, {"name": "t"}, None)
    stats = info["stats"]
    assert stats["anchor"]["modality"] == "text"
    assert stats["label"] == {"dtype": "int", "modality": "", "data": {0: "~33.33%", 1: "~66.67%"}}
    assert stats["score"] == {"dtype": "float", "modality": "", "data": {"min": 0.1, "mean": 0.5, "max": 0.9}}
    assert stats["sizes"]["data"] == {"min": "1 elements", "mean": "2.00 elements", "max": "3 elements"}
    assert stats["audio"] == {
        "dtype": "audio",
        "modality": "audio",
        "data": {"min": "1.00s", "mean": "1.33s", "max": "2.00s", "sampling_rate": "8000 Hz"},
    }
    modality_row = next(line for line in info["stats_table"].splitlines() if line.startswith("| modality"))
    assert "text" in modality_row and "audio" in modality_row
    assert "<code>a b</code>" in info["examples_table"]


def test_image_columns_are_measured_and_saved_when_there_is_a_folder(static_model: Any, tmp_path: Path) -> None:
    data = SentenceTransformerModelCardData()
    data.register_model(static_model)
    dataset = datasets.Dataset.from_dict({"image": [image(8), image(16), image(30)]}).cast_column(
        "image", datasets.Image()
    )
    info = data.compute_dataset_metrics(dataset, {"name": "t"}, None)
    assert info["stats"]["image"]["dtype"] == "image"
    assert info["stats"]["image"]["data"] == {"min": "8x8 px", "mean": "18x18 px", "max": "30x30 px"}
    assert "&lt;image 8x8&gt;" in info["examples_table"]

    data.save_dir = str(tmp_path)
    info = data.compute_dataset_metrics(dataset, {"name": "t"}, None)
    assert '<img src="assets/example_image_0.jpg" width="200">' in info["examples_table"]
    assert (tmp_path / "assets" / "example_image_2.jpg").is_file()


def test_media_path_columns_are_not_tokenised(
    static_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for index in range(2):
        path = tmp_path / f"picture_{index}.jpg"
        image(8).save(path)
        paths.append(str(path))
    data = SentenceTransformerModelCardData()
    data.register_model(static_model)
    monkeypatch.setattr(type(static_model), "modalities", property(lambda self: ["text", "image"]))
    monkeypatch.setattr(static_model, "preprocess", lambda *a, **k: pytest.fail("media paths must not be tokenised"))
    info = data.compute_dataset_metrics(datasets.Dataset.from_dict({"positive": paths}), {"name": "t"}, None)
    assert info["stats"]["positive"] == {"dtype": "string", "modality": "image", "data": {}}


# -- media usage examples from the data --------------------------------------------------------------


class _FakeModel:
    def __init__(self, modalities: list[Any]) -> None:
        self.modalities = modalities


def _image_text_dataset() -> Any:
    images = [image(8 + index) for index in range(4)]
    dataset = datasets.Dataset.from_dict({"text": [f"text {i}" for i in range(4)], "image": images})
    return datasets.DatasetDict(train=dataset.cast_column("image", datasets.Image()))


@pytest.mark.parametrize(
    ("modalities", "expect_dicts"),
    [([("image", "text")], True), (["text", "image", ("image", "text")], True), (["text", "image"], False)],
)
def test_multimodal_usage_examples_follow_the_models_modalities(modalities: list[Any], expect_dicts: bool) -> None:
    data = BaseModelCardData()
    data.model = _FakeModel(modalities)
    data._set_multimodal_usage_examples(_image_text_dataset())
    assert data.usage_examples is not None and len(data.usage_examples) == 3
    if expect_dicts:
        assert data.usage_examples[0]["text"] == "text 0"
        assert data.usage_examples[0]["image"].size == (8, 8)
    else:
        assert [example.size for example in data.usage_examples] == [(8, 8), (9, 9), (10, 10)]


def test_multimodal_usage_examples_skip_duplicates_and_missing_columns() -> None:
    same = image(8)
    dataset = datasets.Dataset.from_dict({"image": [same, same.copy(), image(9), image(10), image(11)]})
    data = BaseModelCardData()
    data.model = _FakeModel(["image"])
    data._set_multimodal_usage_examples(datasets.DatasetDict(train=dataset.cast_column("image", datasets.Image())))
    assert [example.size for example in data.usage_examples] == [(8, 8), (9, 9), (10, 10)]

    data = BaseModelCardData()
    data.model = _FakeModel(["audio"])
    data.usage_examples = ["kept"]
    data._set_multimodal_usage_examples(_image_text_dataset())
    assert data.usage_examples == ["kept"]


# -- video decoders ----------------------------------------------------------------------------------


class _Metadata:
    def __init__(self, path: str | None = None, frames: int = 4) -> None:
        self.path = path
        self.duration_seconds = 2.5
        self.width = self.height = 8
        self.num_frames = frames
        self.average_fps = 12.0


class _FakeDecoder:
    """A stand-in for torchcodec's VideoDecoder: batch access can fail for all frames, or entirely."""

    def __init__(self, path: str | None = None, fail_last: bool = False, fail_all: bool = False) -> None:
        self.metadata = _Metadata(path)
        self._hf_encoded = {"path": path, "bytes": None}
        self._frames = torch.arange(4 * 3 * 8 * 8, dtype=torch.uint8).reshape(4, 3, 8, 8)
        self.fail_last, self.fail_all = fail_last, fail_all

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.fail_all:
            raise RuntimeError("broken stream")
        return self._frames[index]

    def get_frames_at(self, indices: list[int]) -> Any:
        if self.fail_all or (self.fail_last and len(indices) == len(self._frames)):
            raise RuntimeError("broken stream")
        return type("Batch", (), {"data": self._frames[indices]})()


@pytest.fixture
def fake_decoder_class(monkeypatch: pytest.MonkeyPatch) -> type:
    monkeypatch.setattr("embedforge.base.model_card.VideoDecoder", _FakeDecoder)
    return _FakeDecoder


def test_video_decoders_are_decoded_by_the_first_strategy_that_works(fake_decoder_class: type) -> None:
    to_dict = BaseModelCardData._video_decoder_to_dict
    full = to_dict(_FakeDecoder())
    assert full["array"].shape[0] == 4
    assert full["video_metadata"] == {"fps": 12.0, "total_num_frames": 4, "frames_indices": [0, 1, 2, 3]}
    assert to_dict(_FakeDecoder(fail_last=True))["array"].shape[0] == 3
    with pytest.raises(RuntimeError, match="Could not decode"):
        to_dict(_FakeDecoder(fail_all=True))
    # With a source file, a fresh decoder of it is tried (here the substitute class builds a working one).
    assert to_dict(_FakeDecoder(path="/clip.mp4", fail_all=True))["array"].shape[0] == 4
    prepared = BaseModelCardData._prepare_for_inference({"text": "t", "video": _FakeDecoder()})
    assert prepared["text"] == "t" and torch.equal(prepared["video"]["array"], full["array"])


def test_video_decoders_copy_their_source_file(fake_decoder_class: type, tmp_path: Path) -> None:
    source = tmp_path / "clip.webm"
    source.write_bytes(b"webm bytes")
    data = BaseModelCardData()
    data.save_dir = str(tmp_path)
    data.usage_examples = [_FakeDecoder(str(source)), _FakeDecoder(str(source))]
    data.save_usage_example_assets()
    assert data.usage_examples_display == ["assets/video_0.webm", "assets/video_0.webm"]
    assert (tmp_path / "assets" / "video_0.webm").read_bytes() == b"webm bytes"
    assert BaseModelCardData._format_example_value(_FakeDecoder()) == "&lt;video 2.50s 8x8 @ 12fps&gt;"
    # Within one save, a clip already written is reused (and uses no new number).
    cell, counter = data._format_and_save_example(_FakeDecoder(str(source)), 3)
    assert cell.startswith('<video controls width="200" src="assets/video_0.webm">') and counter == 3
    fresh = BaseModelCardData()
    fresh.save_dir = str(tmp_path)
    cell, counter = fresh._format_and_save_example(_FakeDecoder(str(source)), 0)
    assert cell.startswith('<video controls width="200" src="assets/example_video_0.webm">') and counter == 1


# -- the whole card ----------------------------------------------------------------------------------


def test_saved_card_links_its_media_and_states_modalities(static_model: Any, tmp_path: Path) -> None:
    static_model.model_card_data.model_id = "org/model"
    static_model.model_card_data.usage_examples = [image(8), image(9)]
    try:
        static_model.save(str(tmp_path / "saved"))
    finally:
        static_model.model_card_data.usage_examples = None
        static_model.model_card_data.usage_examples_display = None
        static_model.model_card_data.model_id = None
    card = (tmp_path / "saved" / "README.md").read_text()
    assert (tmp_path / "saved" / "assets" / "image_1.jpg").is_file()
    assert "'https://huggingface.co/org/model/resolve/main/assets/image_0.jpg'," in card
    assert "- **Supported Modality:** Text" in card


def test_per_task_lengths_are_listed(tmp_path: Path) -> None:
    from conftest import write_tiny_bert
    from embedforge import SentenceTransformer

    model = SentenceTransformer(str(write_tiny_bert(tmp_path / "bert")))
    assert "Maximum Query Length" not in generate_model_card(model)
    model[0].query_length, model[0].document_length = 16, 48
    card = generate_model_card(model)
    assert (
        f"- **Maximum Sequence Length:** {model.max_seq_length} tokens\n"
        "    - **Maximum Query Length:** 16 tokens\n"
        "    - **Maximum Document Length:** 48 tokens\n"
    ) in card
