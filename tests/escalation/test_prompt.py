"""The model's answer is checked against the facts it was given: names, numbers with their
units, the culprit, and nothing copied from the worked example."""

from __future__ import annotations

import pytest

from agent.escalation.prompt import EXAMPLE_ANSWER, check, first_sentence, messages

FACTS = [
    "At 14:00 UTC on Monday, the CPU use reached 98 %, usually 2 % to 30 %.",
    "The process ffmpeg used 190 % CPU (before: 0 %).",
    "The temperature reached 78 °C, usually 40 °C to 52 °C.",
]


def test_a_faithful_sentence_stands() -> None:
    sentence = "ffmpeg used 190 % CPU at 14:00 UTC on Monday, far above the usual 30 %."
    assert check(sentence, FACTS, "ffmpeg") is None


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        # Answers SmolLM2-135M gave to facts like these:
        ("The process of Adobe Photoshop uses 190 % CPU.", "names 'Adobe'"),
        (
            "The process responsible was the Linux operating system, specifically ffmpeg.",
            "names 'responsible'",
        ),
        (EXAMPLE_ANSWER, "from the example"),
        ("ffmpeg used 195 % CPU at 14:00 UTC on Monday.", "states 195 %"),
        ("ffmpeg heated the machine to 78 % at 14:00 UTC.", "states 78 %"),
        ("The CPU use reached 98 % at 14:00 UTC on Monday.", "does not name ffmpeg"),
        ("ffmpeg.", "length"),
        ("ffmpeg used 190 % CPU at 14:00 UTC, usually 2 % to 3", "cut off"),
        ("ffmpeg used 190 % CPU, usually 2.5 % to 30 %.", "states 2.5 %"),
    ],
)
def test_an_unfaithful_sentence_is_refused_with_the_reason(sentence: str, reason: str) -> None:
    problem = check(sentence, FACTS, "ffmpeg")
    assert problem is not None and reason in problem


def test_only_the_first_sentence_is_kept_and_the_example_leads_the_messages() -> None:
    text = "ffmpeg used 190 % CPU.  If you started a sync, stop ffmpeg.\nMore."
    assert first_sentence(text) == "ffmpeg used 190 % CPU."
    chat = messages(FACTS)
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert chat[-1]["content"] == " ".join(FACTS)
