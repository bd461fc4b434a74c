"""The larger model's task and the check of its answer.

A small model cannot diagnose, but it can restate facts it is handed in plain prose. So it is
given the diagnosis as a few sentences of fact and one worked example, and asked for one
sentence. Its answer is kept only if it is a whole sentence, names nothing the facts do not
name, states no number the facts do not state (with the same unit, rounded at most 1 %),
joins no two numbers as a change or a range ("2 % to 30 %") that the facts do not, says of
no number that another measure reached it, says no value fell where every one rose, puts a
value above (below) no usual range's bottom (top), says no number is another ("48 °C, which
is 32 °C"), names the culprit, says what kind of incident it was (the swap, the temperature,
...) and states something that happened, not only what is usual; otherwise the template
summary stands and the reason is stored (``findings.check``).
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
    "At 10:00 UTC on Friday, the CPU use reached 95 %, usually 2 % to 30 %.",
    "The process rclone used 180 % CPU (before: 1 %).",
)
#: The culprit first, each number where the facts put it, the usual range as the facts say it:
#: a small model copies the example's shape (with "rclone downloaded 30 MB/s ..." it wrote
#: "zoom downloaded 21.1 W"; with "... far above the usual 0.2 MB/s" it often took the range's
#: bottom for the usual; with the download rate as the example's measure it lent that measure
#: to a CPU runaway's facts).
EXAMPLE_ANSWER = (
    "rclone used 180 % CPU (before: 1 %) at 10:00 UTC on Friday, when the CPU use reached "
    "95 %, usually 2 % to 30 %."
)
#: Words only the example has (its process, its day): an answer that repeats one that the
#: facts lack copied the example, not the facts.
EXAMPLE_WORDS = frozenset({"rclone", "friday"})
MAX_CHARS = 400

_WORD = re.compile(r"[A-Za-z][\w.\-]*\w|[A-Za-z]")
_UNIT = r"(%|°C|MB/s|kB/s|W|km|m|s)?"
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*" + _UNIT + r"(?![\w/])")
#: An amount that may be linked to another (not a clock's hours or minutes).
_AMOUNT = r"(?<![\d.:])(\d+(?:\.\d+)?)\s*" + _UNIT + r"(?![\w/:])"
_THEN_TO = r"\)?,?\s+to\s+(?=" + _AMOUNT + ")"  # (a lookahead: "2 to 3 to 4" links twice)
_USUAL = r"\busual(?:ly)?\s+(?:reads\s+)?"
_NOT_TIME = r"(?!\s*(?:seconds?|minutes?|hours?|days?)\b)"  # "for 13 minutes" is how long
_NOT_BEFORE = r"(?<!before: )(?<!before:)"
_SAME_CLAUSE = r"(?:(?!\.\s)[^\d;])*?"  # no other number, no sentence's end between
_TO_END = re.compile(r"\s+to\s+" + _AMOUNT)
#: How amounts are linked: a change ("from 0 % to 190 %", "190 % CPU (before: 0 %)"), a
#: range ("usually 2 % to 30 %"), either ("2 % to 30 %"), and the amount a usual range is
#: said of ("reached 98 %, usually 2 % to 30 %": 98 % is usually 2 % or 30 %; never a
#: "before:" value, which is no reading).
_LINKS = (
    ("change", re.compile(r"\bfrom\s+" + _AMOUNT + _THEN_TO)),
    ("before", re.compile(_AMOUNT + r"\s+(?:[A-Za-z][\w\-]*\s+){0,3}\(before:\s*" + _AMOUNT)),
    ("range", re.compile(_USUAL + _AMOUNT + _THEN_TO)),
    ("either", re.compile(r"(?<!from )(?<!usually )(?<!usual )" + _AMOUNT + _THEN_TO)),
    ("usual", re.compile(_NOT_BEFORE + _AMOUNT + _NOT_TIME + _SAME_CLAUSE + _USUAL + _AMOUNT)),
)
_LINK_WORDS = {
    "change": "says {a} became {b}",
    "range": "gives {a} to {b} as usual",
    "either": "joins {a} to {b}",
    "usual": "says {a} is usually {b}",
}
#: Words that name what was measured: an answer that says "upload" of the download rate's
#: number has every number right and the wrong measure.
_MEASURES = frozenset(
    "cpu load memory swap temperature battery power level upload download disk read write "
    "share".split()
)
#: A value said to be past its usual range is past that range's end on the side said: "far
#: above the usual 0.0061 kB/s" of "usually 0.0061 kB/s to 0.013 MB/s" makes the usual 2,000
#: times smaller than it is.
_PAST_USUAL = re.compile(
    r"\b(above|over|beyond|exceed\w*|below|under)\s+(?:the\s+)?usual(?:ly)?\s+" + _AMOUNT
)
_LOW_SIDE = frozenset({"below", "under"})
#: A usual value or range as said ("usually 2 % to 30 %", "the usual 30 %"): not news.
_USUAL_SAID = re.compile(_USUAL + _AMOUNT + r"(?:" + _THEN_TO + _AMOUNT + r")?")
#: What each kind of incident is about, as words a sentence on it uses (a prefix of a word
#: will do: "heated", "reads", "writing"; a larger model words it otherwise than the facts:
#: "rclone is sending 0.5 MB/s"). A sentence with none of them told another story: "The
#: process firefox held 8 % of memory." of the swap filling up, or "blender used 115 % CPU
#: (before: 0 %), the busiest process's memory share reached 7 %" of an overheating.
CAUSE_WORDS = {
    "cpu_runaway": ("cpu", "load", "processor"),
    "memory_growth": ("memory", "ram"),
    "swap_pressure": ("swap",),
    "network_burst": ("download", "upload", "network", "send", "sent", "receiv", "traffic"),
    "disk_burst": ("disk", "read", "writ", "i/o"),
    "overheating": ("temperature", "°c", "hot", "heat", "overheat"),
    "battery_drain": ("battery", "power", "drain"),
    "unusual_place": ("place", "location", "arrived"),
}
#: "A, which is B" says that A is B (a stuck sensor's "48 °C for 10 minutes, which is 32 °C"),
#: unless B is compared ("which is 20 % above ...").
_IS = re.compile(
    r"\b(?:which|that)\s+(?:is|was)\s+"
    + _AMOUNT
    + r"(?!\s*(?:above|below|more|less|higher|lower|over|under|than|of)\b)"
)
_VALUE = re.compile(_NOT_BEFORE + r"(?<![\w\-])" + _AMOUNT + _NOT_TIME)
_REACHED = re.compile(r"((?:[\w'\-]+\s+){1,3})reached\s+" + _AMOUNT)
#: Words that say a value fell ("far below the usual ..."), when the facts may say it rose.
_FALLING = re.compile(r"\b(?:below|lower|fell|dropped|decreased|shrank)\b", re.IGNORECASE)
_NAMING = frozenset({"process", "app", "application", "program", "place", "service", "daemon"})
#: What a program is said to do in the facts and in the model's answers: the word before is
#: the program's name.
_DOING = frozenset("used uses held holds grew grows downloaded uploaded".split())
#: What may do those without being a program's name.
_NOT_DOERS = _MEASURES | frozenset("usage use rate system computer machine device it".split())
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


def check(
    sentence: str, facts: Sequence[str], culprit: str | None, cause: str | None = None
) -> str | None:
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
        if not any(_near(float(number), unit, *k) for k in known_numbers):
            return f"states {number}{' ' + unit if unit else ''}, which the facts do not"
    known_links = [link for fact in facts for link in _links(fact)]
    for kind, a, b in _links(sentence):
        kinds = ("change", "range") if kind == "either" else (kind,)
        if not any(k in kinds and _near(*a, *ka) and _near(*b, *kb) for k, ka, kb in known_links):
            return f"{_LINK_WORDS[kind].format(a=_said(*a), b=_said(*b))}, which the facts do not"
    bottoms = [lo for kind, lo, _ in known_links if kind == "range"]
    tops = [hi for kind, _, hi in known_links if kind == "range"]
    for word, amount in _past_usual(sentence):
        side = 0 if word.lower() in _LOW_SIDE else 1
        ends, others = (bottoms, tops) if side == 0 else (tops, bottoms)
        if not any(_near(*amount, *e) for e in ends) and any(_near(*amount, *e) for e in others):
            end = "bottom" if side else "top"
            return f"says {word} the usual {_said(*amount)}, the {end} of the usual range"
    for a, b in _identities(sentence):
        if not _near(*b, *a):
            return f"says {_said(*a)} is {_said(*b)}"
    known_reached = _reached(known)
    for said, amount in _reached(sentence):
        whats = [what for what, at in known_reached if _near(*amount, *at)]
        if whats and not any(said <= what for what in whats):
            words = " ".join(sorted(said))
            return f"says the {words} reached {_said(*amount)}, which the facts say of another"
    falling = _FALLING.search(sentence)
    if falling is not None and not _any_fell(known_links):
        return f"says {falling[0]!r}, but every value in the facts rose"
    if culprit is not None and not _named(culprit, sentence):
        return f"does not name {culprit}"
    if cause in CAUSE_WORDS and not _tells(sentence, CAUSE_WORDS[cause]):
        return f"says nothing of the {cause.replace('_', ' ')} ({' / '.join(CAUSE_WORDS[cause])})"
    headline = _news(facts[0]) if facts else []  # "no cause stands out" gives none
    if headline:
        news = _news(known)
        if not any(_near(*said, *n) for said in _news(sentence) for n in news):
            return f"says only what is usual, not {_said(*headline[0])}"
    return None


Amount = tuple[float, str]


def _links(text: str) -> list[tuple[str, Amount, Amount]]:
    """The links between amounts that ``text`` states, as (kind, from, to): a small model
    that keeps every number may still join them wrongly ("teams used 81 % CPU (before: 27 %)
    to 1.1 W to 10.0 W."). A range is also given as its two ends said of the amount before
    it; "either" (a bare "A to B") is as a sentence says it, never in facts."""
    links = []
    for kind, pattern in _LINKS:
        for m in pattern.finditer(text):
            a, b = (float(m[1]), m[2] or ""), (float(m[3]), m[4] or "")
            if kind == "before":  # "B (before: A)": from A to B
                links.append(("change", b, a))
            elif kind == "usual":
                links.append(("usual", a, b))
                if (end := _TO_END.match(text, m.end())) is not None:  # and the range's end
                    links.append(("usual", a, (float(end[1]), end[2] or "")))
            else:
                links.append((kind, a, b))
    return links


def _past_usual(sentence: str) -> list[tuple[str, Amount]]:
    """The usual values a sentence says a value is above or below, with the word that says
    which ("far above the usual 0.2 MB/s"); not a whole range ("below the usual 2 to 5 %")."""
    return [
        (m[1], (float(m[2]), m[3] or ""))
        for m in _PAST_USUAL.finditer(sentence)
        if _TO_END.match(sentence, m.end()) is None
    ]


def _tells(sentence: str, words: Sequence[str]) -> bool:
    """Whether a word of ``sentence`` starts with one of ``words``."""
    lower = sentence.lower()
    return any(re.search(r"(?<!\w)" + re.escape(w), lower) for w in words)


def _news(text: str) -> list[Amount]:
    """The amounts ``text`` gives as what happened: none of its usual values or ranges, its
    "before:" values, durations or clock times."""
    rest = _USUAL_SAID.sub(" ", text)
    return [(float(m[1]), m[2] or "") for m in _VALUE.finditer(rest)]


def _identities(sentence: str) -> list[tuple[Amount, Amount]]:
    """The amounts a sentence says are another ("A, which is B"), A the last amount before
    that is not a duration nor a "before:" value."""
    found = []
    for m in _IS.finditer(sentence):
        before = list(_VALUE.finditer(sentence, 0, m.start()))
        if before:
            a = before[-1]
            found.append(((float(a[1]), a[2] or ""), (float(m[1]), m[2] or "")))
    return found


def _reached(text: str) -> list[tuple[frozenset[str], Amount]]:
    """What reached which amount ("the download rate reached 0.5 MB/s"): the words of a
    measure among the three before "reached", and the amount."""
    found = []
    for m in _REACHED.finditer(text):
        said = frozenset(w.lower() for w in m[1].split()) & _MEASURES
        found.append((said, (float(m[2]), m[3] or "")))
    return found


def _any_fell(links: Sequence[tuple[str, Amount, Amount]]) -> bool:
    """Whether the facts' links say that some value fell: a change downwards, or a value
    below both ends of its usual range."""
    ends: dict[Amount, list[float]] = {}
    for kind, a, b in links:
        if kind == "change" and _base(b) < _base(a):
            return True
        if kind == "usual":
            ends.setdefault(a, []).append(_base(b))
    return any(_base(x) < min(usual) for x, usual in ends.items())


def _base(amount: Amount) -> float:
    """An amount in a unit it can be compared in (the facts give rates in kB/s or MB/s)."""
    x, unit = amount
    return x / 1000.0 if unit == "kB/s" else x


def _near(x: float, unit: str, known: float, known_unit: str) -> bool:
    """Whether ``x`` states ``known``: the same unit (or none said), rounded at most 1 %."""
    return (not unit or unit == known_unit) and abs(x - known) <= 0.01 * max(abs(known), 1.0)


def _said(x: float, unit: str) -> str:
    return f"{x:g}{' ' + unit if unit else ''}"


def _named(name: str, sentence: str) -> bool:
    """Whether ``sentence`` names ``name`` as a word of its own ("bblender" is not "blender")."""
    pattern = r"(?<![\w\-])" + re.escape(name) + r"(?![\w\-])"
    return re.search(pattern, sentence, re.IGNORECASE) is not None


def _names(sentence: str) -> list[str]:
    """Words that name something: capitalised inside a sentence, shaped like a program's name
    (digits, dots, dashes, underscores), next to 'process', 'app', 'place'..., or what did
    something ("readb used 30 % CPU": a first word's case says nothing)."""
    words = [(m.group(), m.start()) for m in _WORD.finditer(sentence)]
    found = []
    for i, (word, at) in enumerate(words):
        starts_sentence = at == 0 or sentence[:at].rstrip().endswith((".", "!", "?", ":"))
        shaped = any(c.isdigit() or c in "._-" for c in word)
        capital = word[0].isupper() and not starts_sentence
        beside = any(0 <= j < len(words) and words[j][0].lower() in _NAMING for j in (i - 1, i + 1))
        doer = i + 1 < len(words) and words[i + 1][0].lower() in _DOING
        doer = doer and word.lower() not in _NOT_DOERS
        beside = (beside or doer) and word.lower() not in _GLUE
        if (shaped or capital or beside) and word.lower() not in _NAMING:
            found.append(word)
    return found
