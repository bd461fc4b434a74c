"""The larger model's task and the check of its answer.

A small model cannot diagnose, but it can restate facts it is handed in plain prose. So it is
given the diagnosis as a few sentences of fact and one worked example, and asked for one
sentence. Its answer is kept only if it is a whole sentence, names nothing the facts do not
name, states no number the facts do not state (with the same unit, rounded at most 1 %), and
names the culprit; otherwise the template summary stands and the reason is stored
(``findings.check``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SYSTEM = (
    "You explain in one sentence what happened on a computer, from the facts given. "
    "Use only the facts. Keep names and numbers exactly."
)
#: One worked example: a cause and culprit that no real wake shares, so a copied name fails
#: the check.
EXAMPLE_FACTS = (
    "At 10:00 UTC on Friday, the download rate reached 30 MB/s, usually 0.01 MB/s to 0.2 MB/s.",
    "The process rclone used 20 % CPU (before: 0 %).",
)
EXAMPLE_ANSWER = "rclone downloaded 30 MB/s at 10:00 UTC on Friday, far above the usual 0.2 MB/s."
#: Words only the example has (its process, its verb, its day): an answer that repeats one
#: that the facts lack copied the example, not the facts.
EXAMPLE_WORDS = frozenset({"rclone", "downloaded", "friday"})
MAX_CHARS = 400

_WORD = re.compile(r"[A-Za-z][\w.\-]*\w|[A-Za-z]")
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(%|°C|MB/s|kB/s|W|km|m|s)?(?![\w/])")
_NAMING = frozenset({"process", "app", "application", "program", "place", "service", "daemon"})
#: Little words that stand beside a name without being one ("the process of ...").
_GLUE = frozenset(
    "a an the of that which was is has had used uses using on at in for with to from and "
    "named called by its this".split()
)


def messages(facts: Sequence[str]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": " ".join(EXAMPLE_FACTS)},
        {"role": "assistant", "content": EXAMPLE_ANSWER},
        {"role": "user", "content": " ".join(facts)},
    ]


def first_sentence(text: str) -> str:
    """The answer's first sentence (a small model tends to ramble on)."""
    text = " ".join(text.split())
    match = re.search(r"(?<=[.!?])\s+(?=[A-Z])", text)
    return text[: match.start()] if match else text


def check(sentence: str, facts: Sequence[str], culprit: str | None) -> str | None:
    """Why ``sentence`` cannot stand for the facts, or None when it can."""
    if not 10 <= len(sentence) <= MAX_CHARS:
        return f"length {len(sentence)} outside 10-{MAX_CHARS}"
    if not sentence.endswith((".", "!", "?")):
        return "is cut off (no full sentence)"
    known = " ".join(facts)
    known_words = {w.lower() for w in _WORD.findall(known)}
    for word in _WORD.findall(sentence):
        if word.lower() in EXAMPLE_WORDS and word.lower() not in known_words:
            return f"names {word!r} from the example, not from the facts"
    for name in _names(sentence):
        if name.lower() not in known_words:
            return f"names {name!r}, which the facts do not"
    known_numbers = [(float(n), unit) for n, unit in _NUMBER.findall(known)]
    for number, unit in _NUMBER.findall(sentence):
        x = float(number)
        near = [k for k, u in known_numbers if not unit or unit == u]
        if not any(abs(x - k) <= 0.01 * max(abs(k), 1.0) for k in near):  # rounding only
            return f"states {number}{' ' + unit if unit else ''}, which the facts do not"
    if culprit is not None and culprit.lower() not in sentence.lower():
        return f"does not name {culprit}"
    return None


def _names(sentence: str) -> list[str]:
    """Words that name something: capitalised inside a sentence, shaped like a program's name
    (digits, dots, dashes, underscores), or next to 'process', 'app', 'place'..."""
    words = [(m.group(), m.start()) for m in _WORD.finditer(sentence)]
    found = []
    for i, (word, at) in enumerate(words):
        starts_sentence = at == 0 or sentence[:at].rstrip().endswith((".", "!", "?", ":"))
        shaped = any(c.isdigit() or c in "._-" for c in word)
        capital = word[0].isupper() and not starts_sentence
        beside = any(0 <= j < len(words) and words[j][0].lower() in _NAMING for j in (i - 1, i + 1))
        beside = beside and word.lower() not in _GLUE
        if (shaped or capital or beside) and word.lower() not in _NAMING:
            found.append(word)
    return found
