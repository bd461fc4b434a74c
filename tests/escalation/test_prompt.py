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
        # (seed 1, "bblender" for blender: a name inside another word is not named)
        ("The CPU use of fffmpeg reached 98 % on Monday.", "does not name ffmpeg"),
        # (seed 2, "readb used 30 % CPU" for updatedb: what used the CPU is a name)
        ("readb used 190 % CPU (before: 0 %) on Monday.", "names 'readb'"),
        ("ffmpeg.", "length"),
        ("ffmpeg used 190 % CPU at 14:00 UTC, usually 2 % to 3", "cut off"),
        ("ffmpeg used 190 % CPU, usually 2.5 % to 30 %.", "states 2.5 %"),
    ],
)
def test_an_unfaithful_sentence_is_refused_with_the_reason(sentence: str, reason: str) -> None:
    problem = check(sentence, FACTS, "ffmpeg")
    assert problem is not None and reason in problem


#: Answers SmolLM2-135M gave on bench/escalation.py's laptop (seed 1) that keep every name
#: and number of their facts but join them wrongly, with the facts they were given.
GARBLED = [
    (
        [
            "At 13:11 UTC on Friday, the battery power reached 18.9 W, usually 1.1 W to 10.0 W.",
            "The process teams-for-linux used 81 % CPU (before: 27 %).",
        ],
        "teams-for-linux used 81 % CPU (before: 27 %) to 1.1 W to 10.0 W.",
        "joins 27 % to 1.1 W",
    ),
    (
        [
            "At 15:49 UTC on Wednesday, the CPU use reached 95 %, usually 0 % to 9 %.",
            "The process cc1plus used 119 % CPU (before: 1 %).",
            "The busiest process's CPU use reached 346 %, usually 0 % to 18 %.",
        ],
        "cc1plus used 95 % CPU (before: 1 %), the busiest process used 119 % CPU (before: 1 %).",
        "says 1 % became 95 %",
    ),
    (
        [
            "At 11:44 UTC on Monday, the memory use reached 47 %, usually 18 % to 54 %.",
            "The process firefox grew from 5 % to 8 % of memory.",
        ],
        "The memory usage increased from 5 % to 8 %, and the process firefox grew from 18 % "
        "to 54 %.",
        "says 18 % became 54 %",
    ),
    (
        [
            "At 10:46 UTC on Monday, the swap use reached 7 %, usually 1 % to 3 %.",
            "The process qemu-system-x86 held 32 % of memory.",
            "The disk write rate reached 22 MB/s, usually 0 kB/s to 0.41 MB/s.",
        ],
        "qemu-system-x86 held 32 % of memory, usually 0 kB/s to 0.41 MB/s.",
        "says 32 % is usually 0 kB/s",
    ),
    (
        [
            "At 13:18 UTC on Saturday, the sensor battery.battery_pct has read exactly 70 % for "
            "13 minutes.",
            "battery.battery_pct usually reads 64 % to 100 %.",
        ],
        "The battery read 70% of the battery.battery_pct usually reads 64%.",
        "says 70 % is usually 64 %",
    ),
    (  # (seed 2; the numbers are the download rate's)
        [
            "At 01:02 UTC on Sunday, the upload rate reached 0.4 MB/s, usually 0.0069 kB/s to "
            "0.018 MB/s.",
            "The process rsync used 31 % CPU (before: 1 %).",
            "The download rate reached 0.012 MB/s, usually 0.014 kB/s to 0.12 MB/s.",
        ],
        "rsync used 31 % CPU (before: 1 %) at 01:02 UTC on Sunday, when the upload rate reached "
        "0.012 MB/s, usually 0.014 kB/s to 0.12 MB/s.",
        "says the upload reached 0.012 MB/s",
    ),
    (  # (seed 2)
        [
            "At 16:44 UTC on Sunday, the upload rate reached 0.31 MB/s, usually 0.0066 kB/s to "
            "0.024 MB/s.",
            "The process dropbox used 31 % CPU (before: 10 %).",
        ],
        "dropbox uploaded 0.31 MB/s to 16:44 UTC on Sunday, below the usual 0.0066 kB/s to "
        "0.024 MB/s.",
        "says 'below', but every value in the facts rose",
    ),
    (  # (seed 1; 0.0061 kB/s is where the usual range starts: the usual made 2,000 times less)
        [
            "At 01:02 UTC on Thursday, the upload rate reached 0.52 MB/s, usually 0.0061 kB/s "
            "to 0.013 MB/s.",
            "The process rclone used 21 % CPU (before: 1 %).",
        ],
        "rclone used 21 % CPU (before: 1 %) at 1:02 UTC on Thursday, when the upload rate "
        "reached 0.52 MB/s, far above the usual 0.0061 kB/s.",
        "says above the usual 0.0061 kB/s, the bottom of the usual range",
    ),
    (  # (seed 1)
        [
            "At 09:50 UTC on Tuesday, the sensor system.temp_C has read exactly 48 °C for 10 "
            "minutes.",
            "system.temp_C usually reads 32 °C to 51 °C.",
        ],
        "The sensor system.temp_C has read exactly 48 °C for 10 minutes, which is 32 °C.",
        "says 48 °C is 32 °C",
    ),
]


@pytest.mark.parametrize(("facts", "sentence", "reason"), GARBLED)
def test_numbers_joined_otherwise_than_in_the_facts_are_refused(
    facts: list[str], sentence: str, reason: str
) -> None:
    problem = check(sentence, facts, None)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    "sentence",
    [
        "ffmpeg raised the CPU use from 0 % to 190 %.",  # "190 % (before: 0 %)"
        "ffmpeg pushed the CPU use to 98 %, usually 2 % to 30 %.",
        "ffmpeg pushed the CPU use to 98 %, far above the usual 30 %.",
        "ffmpeg used 190 % CPU (before: 0 %) while the temperature reached 78 °C.",
        "ffmpeg used 190 % CPU; the CPU use is usually 2 to 30 %.",
        # (SmolLM2-135M's answer on vigil demo's day, its facts as these)
        "ffmpeg used 190 % CPU (before: 0 %) on Monday, far exceeding the usual 30 %.",
        "ffmpeg used 190 % CPU (before: 0 %) at 14:00 UTC on Monday, when the CPU usage reached "
        "98 %, far above the usual 30 %.",
        "ffmpeg used 190 % CPU while the CPU use reached 98 %, which is 98 % of its cores.",
        "The machine used 98 % of its CPU when ffmpeg used 190 % CPU.",
        "ffmpeg used 190 % CPU when the temperature reached 78 °C, which is above 52 °C.",
        "ffmpeg used 190 % CPU; the CPU use reached 98 %, above the usual 2 % to 30 %.",
    ],
)
def test_changes_and_ranges_as_the_facts_give_them_stand(sentence: str) -> None:
    assert check(sentence, FACTS, "ffmpeg") is None


def test_how_long_a_sensor_was_stuck_is_not_what_it_usually_reads() -> None:
    facts = [
        "At 13:18 UTC on Saturday, the sensor battery.battery_pct has read exactly 70 % for 13 "
        "minutes.",
        "battery.battery_pct usually reads 64 % to 100 %.",
    ]
    sentence = (
        "The sensor battery.battery_pct has read exactly 70 % for 13 minutes, though it usually "
        "reads 64 % to 100 %."
    )
    assert check(sentence, facts, "battery.battery_pct") is None
    problem = check("battery.battery_pct read 70 %, though it usually reads 64 %.", facts, None)
    assert problem is not None and "says 70 % is usually 64 %" in problem


def test_a_value_that_fell_may_be_said_to_be_below_its_usual() -> None:
    facts = [
        "At 03:00 UTC on Monday, the upload rate reached 0.5 kB/s, usually 2 kB/s to 0.1 MB/s."
    ]
    assert check("The upload rate fell to 0.5 kB/s, below the usual 2 kB/s.", facts, None) is None
    problem = check("The upload rate fell to 0.5 kB/s, below the usual 0.1 MB/s.", facts, None)
    assert problem is not None and "the top of the usual range" in problem
    rose = ["At 03:00 UTC on Monday, the upload rate reached 5 kB/s, usually 2 kB/s to 0.1 MB/s."]
    problem = check("The upload rate fell to 5 kB/s.", rose, None)
    assert problem is not None and "'fell'" in problem


def test_only_the_first_sentence_is_kept_and_the_example_leads_the_messages() -> None:
    text = "ffmpeg used 190 % CPU.  If you started a sync, stop ffmpeg.\nMore."
    assert first_sentence(text) == "ffmpeg used 190 % CPU."
    chat = messages(FACTS)
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert chat[-1]["content"] == " ".join(FACTS)


#: Answers SmolLM2-135M gave on bench/escalation.py's laptop (seeds 1 and 2) that keep every
#: name and number right and still do not tell what happened, with their facts and cause.
UNTOLD = [
    (
        [
            "At 11:49 UTC on Monday, the swap use reached 12 %, usually 1 % to 3 %.",
            "The process firefox held 8 % of memory.",
        ],
        "swap_pressure",
        "firefox",
        "The process firefox held 8 % of memory.",
        "says nothing of the swap pressure",
    ),
    (
        [
            "At 22:31 UTC on Sunday, the temperature reached 79 °C, usually 33 °C to 52 °C.",
            "The process blender used 115 % CPU (before: 0 %).",
            "The second largest process's memory share reached 7 %, usually 1 % to 6 %.",
        ],
        "overheating",
        "blender",
        "The process blender used 115 % CPU (before: 0 %), the second largest process's memory "
        "share reached 7 %, usually 1 % to 6 %.",
        "says nothing of the overheating",
    ),
    (
        [
            "At 13:19 UTC on Sunday, the sensor battery.battery_pct has read exactly 68 % for 13 "
            "minutes.",
            "battery.battery_pct usually reads 54 % to 100 %.",
        ],
        "sensor_fault",
        "battery.battery_pct",
        "The battery.battery_pct usually reads 54 % to 100 %.",
        "says only what is usual, not 68 %",
    ),
]


@pytest.mark.parametrize(("facts", "cause", "culprit", "sentence", "reason"), UNTOLD)
def test_a_sentence_that_does_not_tell_the_incident_is_refused(
    facts: list[str], cause: str, culprit: str, sentence: str, reason: str
) -> None:
    problem = check(sentence, facts, culprit, cause)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    ("cause", "sentence"),
    [
        ("swap_pressure", "firefox held 8 % of memory when the swap use reached 12 %."),
        ("overheating", "blender used 115 % CPU when the temperature reached 79 °C."),
        ("overheating", "blender heated the machine to 79 °C."),
        # a larger model's own words for it
        ("swap_pressure", "firefox holds 8 % of memory while the machine swaps (12 %)."),
        ("overheating", "blender made the machine overheat: 79 °C."),
        ("sensor_fault", "battery.battery_pct has read exactly 68 % for 13 minutes."),
        # what happened may sit at an end of the usual range: it is still what happened
        ("memory_growth", "firefox's memory share reached 10 %, usually 3 % to 10 %."),
    ],
)
def test_a_sentence_that_tells_the_incident_stands(cause: str, sentence: str) -> None:
    facts = [
        "At 11:49 UTC on Monday, the swap use reached 12 %, usually 1 % to 3 %.",
        "The temperature reached 79 °C, usually 33 °C to 52 °C.",
        "The process firefox held 8 % of memory.",
        "The process blender used 115 % CPU (before: 0 %).",
        "The largest process's memory share reached 10 %, usually 3 % to 10 %.",
        "The sensor battery.battery_pct has read exactly 68 % for 13 minutes.",
    ]
    assert check(sentence, facts, None, cause) is None


def test_a_sentence_of_usual_values_alone_is_refused_even_where_one_is_also_news() -> None:
    facts = ["At 14:26 UTC on Sunday, the memory use reached 10 %, usually 3 % to 10 %."]
    problem = check("The memory use is usually 3 % to 10 %.", facts, None, "memory_growth")
    assert problem is not None and "only what is usual" in problem


def test_where_no_cause_stands_out_retelling_the_trigger_stands() -> None:
    facts = [
        "At 14:00 UTC on Monday, rule.fired warm.",
        "The CPU use reached 40 %, usually 0 % to 30 %.",
    ]
    sentence = "Something unusual happened at 14:00 UTC on Monday."
    assert check(sentence, facts, None, "unknown") is None
    problem = check(sentence, [*facts[1:], facts[0]], None, "unknown")  # a headline with news
    assert problem is not None and "only what is usual, not 40 %" in problem
