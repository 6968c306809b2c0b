"""InputFormatter: batches grouped by modality, chat messages, pair roles, prompts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from jinja2 import Environment
from PIL import Image

from embedforge.base.modality import InputFormatter

IMAGE = Image.new("RGB", (4, 4))


class TemplateProcessor:
    """The two attributes of a processor the formatter uses: a chat template and its renderer."""

    def __init__(self, chat_template: Any) -> None:
        self.chat_template = chat_template

    def apply_chat_template(
        self, messages: list, tokenize: bool = False, chat_template: str | None = None, **kwargs: Any
    ) -> str:
        template = self.chat_template
        if isinstance(template, dict):
            template = template[chat_template or "default"]
        return Environment().from_string(template).render(messages=messages, **kwargs)


def structured() -> InputFormatter:
    return InputFormatter("test", message_format="structured")


def test_text_and_pairs_stay_text() -> None:
    assert structured().parse_inputs(["a", "b"])[:2] == ("text", {"text": ["a", "b"]})
    assert structured().parse_inputs([("q", "d")])[:2] == ("text", {"text": [("q", "d")]})
    modality, values, extra = structured().parse_inputs([])
    assert (modality, values, dict(extra)) == ("text", {"text": []}, {})


def test_multimodal_dicts_keep_the_first_samples_key_order() -> None:
    modality, values, _ = structured().parse_inputs([{"text": "a", "image": IMAGE}, {"text": "b", "image": IMAGE}])
    assert modality == ("image", "text")
    assert list(values) == ["text", "image"]
    assert values["text"] == ["a", "b"]


def test_audio_dicts_unwrap_and_share_one_sampling_rate() -> None:
    wave = np.zeros(8)
    modality, values, extra = structured().parse_inputs([{"array": wave, "sampling_rate": 8000}, {"audio": wave}])
    assert modality == "audio"
    assert values["audio"][0] is wave and values["audio"][1] is wave
    assert extra["audio"] == {"sampling_rate": 8000}
    with pytest.raises(ValueError, match="different sampling rates"):
        structured().parse_inputs([{"array": wave, "sampling_rate": 8000}, {"array": wave, "sampling_rate": 16000}])


def test_video_metadata_stays_aligned_with_its_video() -> None:
    plain = np.zeros((3, 3, 4, 4))
    tagged = {"array": np.zeros((5, 3, 4, 4)), "video_metadata": {"fps": 2}}
    _, _, extra = structured().parse_inputs([plain, tagged])
    first, second = extra["video"]["video_metadata"]
    assert first == {"total_num_frames": 3, "fps": None, "duration": None, "frames_indices": [0, 1, 2]}
    assert second == {"fps": 2}
    with pytest.raises(ValueError, match="every video"):
        structured().parse_inputs(["https://example.com/a.mp4", tagged])


def test_mixed_batches_and_media_pairs_become_conversations() -> None:
    modality, values, _ = structured().parse_inputs(["a", IMAGE])
    assert modality == "message"
    assert values["message"][0] == [{"role": "user", "content": [{"type": "text", "text": "a"}]}]
    assert values["message"][1] == [{"role": "user", "content": [{"type": "image", "image": IMAGE}]}]

    modality, values, _ = structured().parse_inputs([("q", "d"), (IMAGE, "caption")])
    assert modality == "message"
    assert [[m["role"] for m in conversation] for conversation in values["message"]] == [["query", "document"]] * 2


def test_flat_and_structured_messages() -> None:
    flat = InputFormatter("test", message_format="flat")
    assert flat.to_message({"text": "hi"}) == [{"role": "user", "content": "hi"}]
    assert flat.normalize_messages([{"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "x"}]) == [
        {"role": "user", "content": "hi", "name": "x"}
    ]
    assert structured().normalize_messages([{"role": "user", "content": "hi"}, {"bad": 1}]) == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    ]
    assert InputFormatter("gpt_oss", processor=TemplateProcessor("{{ x.type }}")).message_format == "flat"
    assert InputFormatter("bert", processor=TemplateProcessor("{{ m.content }}")).message_format == "flat"
    assert InputFormatter("bert", processor=TemplateProcessor("{{ m.content[0].text }}")).message_format == "structured"


def test_prompts() -> None:
    assert structured().prepend_prompt_to_texts(["a", ("q", "d")], "P: ") == ["P: a", ["P: q", "d"]]
    conversations = structured().prepend_prompt_to_messages([[{"role": "user", "content": "a"}]] * 2, "P")
    assert conversations[0][0] == {"role": "system", "content": [{"type": "text", "text": "P"}]}
    assert conversations[0][0] is not conversations[1][0]


@pytest.mark.parametrize(
    ("template", "carries_pairs"),
    [
        ("{% for m in messages %}{{ m.role }}: {{ m.content[0].text }}\n{% endfor %}", True),
        ("{% for m in messages %}{{ m.content[0].text | upper | truncate(10) }}\n{% endfor %}", True),
        ("{% for m in messages %}{% if m.role == 'query' %}{{ m.content[0].text }}{% endif %}{% endfor %}", False),
        ("{{ undefined_function() }}", False),
    ],
)
def test_pair_roles_probe(template: str, carries_pairs: bool) -> None:
    formatter = InputFormatter("bert", processor=TemplateProcessor(template))
    assert (formatter.pair_roles_failure() is None) is carries_pairs


def test_pair_roles_probe_sees_a_fixed_template() -> None:
    processor = TemplateProcessor(
        {"default": "{% for m in messages %}{% if m.role == 'user' %}x{% endif %}{% endfor %}"}
    )
    formatter = InputFormatter("bert", processor=processor)
    assert "'query' and 'document' content" in formatter.pair_roles_failure()
    processor.chat_template["default"] = "{% for m in messages %}{{ m.content[0].text }}{% endfor %}"
    assert formatter.pair_roles_failure() is None
    assert InputFormatter("bert").pair_roles_failure() == "the model has no chat template"


def test_parse_inputs_agrees_with_sentence_transformers() -> None:
    reference = pytest.importorskip("sentence_transformers.base.modality")
    batches = [
        ["a", "b"],
        [{"text": "a", "image": "https://example.com/a.png"}, {"image": "https://example.com/b.png", "text": "b"}],
        ["a", "https://example.com/a.png"],
        [("q", "d"), ("https://example.com/a.png", "d")],
        [{"role": "user", "content": "hi"}],
    ]
    for batch in batches:
        ours = InputFormatter("test", message_format="structured").parse_inputs(batch)
        theirs = reference.InputFormatter("test", message_format="structured").parse_inputs(batch)
        assert ours[0] == theirs[0]
        assert ours[1] == theirs[1]
