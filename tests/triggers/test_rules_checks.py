"""Rules with values that cannot work are refused with the rule's key and the range: from a
config file, and when built in code (``RuleSet`` checks them the same way)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agent import config
from agent.config import RuleConfig
from agent.errors import ConfigError
from agent.triggers.rules import RuleSet

HOT = '[[rules]]\nname = "hot"\nstream = "system.temp_C"\n'
ON_EVENT = '[[rules]]\nname = "seen"\nevent = "anomaly.start"\n'


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (HOT + "above = nan\n", "rules[0].above", "from -1e+15 to 1e+15, got nan"),
        (HOT + "below = -inf\n", "rules[0].below", "from -1e+15 to 1e+15, got -inf"),
        (HOT + "above = 1e300\n", "rules[0].above", "from -1e+15 to 1e+15, got 1e+300"),
        (HOT + "above = 80.0\nfor_s = -1.0\n", "rules[0].for_s", "from 0 to 604,800 s, got -1.0"),
        (HOT + "above = 80.0\nfor_s = 1e308\n", "rules[0].for_s", "got 1e+308"),
        (HOT + "above = 80.0\nhysteresis = nan\n", "rules[0].hysteresis", "got nan"),
        (ON_EVENT + "cooldown_s = inf\n", "rules[0].cooldown_s", "from 0 to 604,800 s"),
        (ON_EVENT + "data = { n = inf }\n", "rules[0].data.n", "must be a finite number"),
        (ON_EVENT + 'action = "sleep"\n', "rules[0].action", "must be one of record, wake"),
        (HOT + "above = 90.0\nbelow = 10.0\n", "rules[0]", "'above' must be less than 'below'"),
        ('[[rules]]\nname = ""\nevent = "x"\n', "rules[0].name", "one printable line"),
        ('[[rules]]\nname = "a"\nstream = ""\nabove = 1.0\n', "rules[0].stream", "printable"),
        ('[[rules]]\nname = "a"\nevent = "\\u0007"\n', "rules[0].event", "got '\\x07'"),
        ('[[rules]]\nname = "a"\nevent = "' + "*" * 201 + '"\n', "rules[0].event", "1 to 200"),
        ('[[rules]]\nname = "a"\nevent = "x"\nsubject = "\\u0000"\n', "rules[0].subject", "NUL"),
    ],
)
def test_a_bad_rule_in_a_file_names_the_rule_key_and_range(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert (err.value.path, err.value.key) == (str(path), key)
    assert reason in err.value.reason


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (RuleConfig("hot", "s.x", above=math.nan), "<rules>: rules[0].above: must be a finite"),
        (RuleConfig("hot", "s.x", above=1.0, for_s=-5.0), "rules[0].for_s: must be a finite"),
        (RuleConfig("hot", event="x", cooldown_s=math.inf), "rules[0].cooldown_s: must be a"),
        (RuleConfig("hot", "s.x"), "rules[0]: a rule needs 'above' or 'below'"),
        (RuleConfig("\ud800", event="x"), "rules[0].name: is not valid Unicode (a lone surrogate)"),
    ],
)
def test_rules_built_in_code_are_checked_too(rule: RuleConfig, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        RuleSet([RuleConfig("ok", event="y"), rule])
    assert message.replace("[0]", "[1]") in str(err.value)
    str(err.value).encode("utf-8")  # printable as it is


def test_the_extremes_of_each_range_still_fire(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        HOT + "above = -1e15\nhysteresis = 1e15\nfor_s = 604800.0\n"
        '[[rules]]\nname = "low"\nstream = "system.temp_C"\nbelow = 1e15\n'
    )
    rules = RuleSet(config.load(path).rules)
    assert [e.subject for e in rules.feed(0.0, {"system.temp_C": 20.0})] == ["low"]
    assert [e.subject for e in rules.feed(604_800.0, {"system.temp_C": 20.0})] == ["hot"]
