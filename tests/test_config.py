"""Config: the template is the defaults; unknown, mistyped or out-of-range keys name the key and
the file (and the range); files that are not UTF-8 or cannot be read are clear errors."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path

import pytest

from agent import config
from agent.cli import main
from agent.config_template import TEMPLATE, rule_text
from agent.errors import ConfigError


def test_template_equals_the_defaults() -> None:
    assert config.parse(TEMPLATE) == config.Config()


def test_values_override_defaults_and_rules_replace_them() -> None:
    c = config.parse(
        "[sensors.system]\ninterval_s = 2\n"
        '[[rules]]\nname = "warm"\nstream = "system.temp_C"\nabove = 70\n'
    )
    assert c.sensors.system.interval_s == 2.0 and isinstance(c.sensors.system.interval_s, float)
    assert c.sensors.battery == config.BatterySensorConfig()
    assert [r.name for r in c.rules] == ["warm"]


def test_each_default_rule_is_written_as_the_template_writes_it() -> None:
    for rule in config.DEFAULT_RULES:
        assert config.parse(rule_text(rule.name)).rules == (rule,)
    with pytest.raises(KeyError):
        rule_text("no_such_rule")


def _without(*names: str) -> str:
    """The template as an earlier release wrote it, before the rules ``names`` were added."""
    text = TEMPLATE
    for name in names:
        text = text.replace("\n" + rule_text(name), "")
    return text


def test_a_rules_list_written_before_a_default_rule_gets_it_appended() -> None:
    old = _without("volume_high", "heat_high")
    assert [r.name for r in config.missing_default_rules(config.parse(old).rules)] == [
        "volume_high",
        "heat_high",
    ]
    text, added = config.with_default_rules(old)
    assert added == ["volume_high", "heat_high"]
    assert text.startswith(old)  # the user's file is kept as it was, comments and all
    new = config.parse(text)
    assert sorted(new.rules, key=repr) == sorted(config.DEFAULT_RULES, key=repr)
    assert [r.name for r in new.rules[-2:]] == ["volume_high", "heat_high"]  # appended
    assert dataclasses.replace(new, rules=config.DEFAULT_RULES) == config.Config()
    assert config.with_default_rules(text) == (text, [])  # nothing left to add


def test_a_rule_of_the_users_own_on_the_same_event_or_stream_counts() -> None:
    mine = (
        '[[rules]]\nname = "busy"\nevent = "process.*"\naction = "wake"\n'
        '[[rules]]\nname = "hot"\nstream = "system.temp_C"\nabove = 80\n'
    )
    missing = {r.name for r in config.missing_default_rules(config.parse(mine).rules)}
    assert not missing & {"process_busy", "process_drain", "process_grow", "temp_high"}
    assert {"cpu_high", "heat_high", "anomaly"} <= missing
    assert config.missing_default_rules(config.DEFAULT_RULES) == []


def test_rules_written_as_an_inline_list_are_left_alone_with_a_clear_error() -> None:
    inline = 'rules = [{ name = "mine", event = "x", action = "wake" }]\n'
    with pytest.raises(ConfigError, match="cannot append \\[\\[rules\\]\\] tables"):
        config.with_default_rules(inline, "c.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sensors.sytem]\nenabled = true\n", "f.toml: sensors.sytem: unknown key"),
        ("[daemon]\ncommit_interval = 5\n", "f.toml: daemon.commit_interval: unknown key"),
        ('[sensors.system]\ninterval_s = "10"\n', "sensors.system.interval_s: expected a number"),
        ("[sensors.system]\nenabled = 1\n", "sensors.system.enabled: expected bool"),
        (
            "[sensors.system]\ninterval_s = 0\n",
            "sensors.system.interval_s: must be a finite number from 0.1 to 86,400 s, got 0.0",
        ),
        ("[sensors.apps]\ntop_n = true\n", "sensors.apps.top_n: expected int, got True"),
        ('[sensors.location]\ntermux_provider = "gsp"\n', "must be one of gps, network, passive"),
        ('"a\\u0000b" = 1\n', 'f.toml: "a\\u0000b": unknown key'),
        ("[daemon]\nretention_days = 1" + "0" * 5000 + "\n", "f.toml: not valid TOML: Exceeds"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "f.toml: not valid TOML"),
        ("sensors = 3\n", "sensors: expected a table"),
        ('[[rules]]\nname = "a"\nabove = 1\n', "rules[0]: a rule needs either 'stream' or 'event'"),
        ('[[rules]]\nname = "a"\nstream = "s"\n', "rules[0]: a rule needs 'above' or 'below'"),
        ('[[rules]]\nstream = "s"\nabove = 1\n', "rules[0].name: required"),
        (
            '[[rules]]\nname = "a"\nstream = "s"\nabove = 1\n'
            '[[rules]]\nname = "a"\nstream = "t"\nabove = 1\n',
            "rules[1].name: duplicate rule name 'a'",
        ),
        ("[daemon\n", "f.toml: not valid TOML"),
    ],
)
def test_bad_config_names_file_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse(text, "f.toml")
    assert message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    assert config.load(tmp_path / "none.toml") == config.Config()
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "none.toml", missing_ok=False)


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "config.toml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert info.value.path == str(path)
    return info.value


def _numeric_keys(cls: type, prefix: str) -> list[str]:
    """Every int or float field of the config's dataclasses, as ``BOUNDS`` names them."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = set(typing.get_args(hint)) - {type(None)}
        if f.name == "rules":
            keys += _numeric_keys(config.RuleConfig, "rules.")
        elif dataclasses.is_dataclass(hint):
            keys += _numeric_keys(typing.cast(type, hint), f"{prefix}{f.name}.")
        elif hint in (int, float) or args in ({int}, {float}):
            keys.append(prefix + f.name)
    return keys


def test_every_numeric_key_has_bounds_and_every_bound_a_key() -> None:
    keys = _numeric_keys(config.Config, "")
    assert len(keys) > 50
    assert sorted(keys) == sorted(config.BOUNDS)
    for key, (lo, hi) in config.BOUNDS.items():
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi, key


def test_template_documents_every_range() -> None:
    documented: dict[str, str] = {}
    section = ""
    for line in TEMPLATE.splitlines():
        if header := re.fullmatch(r"\[\[?([\w.]+)\]\]?", line):
            section = header[1]
        elif keyed := re.fullmatch(r"#?\s*(\w+) = [^#]*#\s*(.+)", line):
            documented.setdefault(f"{section}.{keyed[1]}", keyed[2])
    for key in config.BOUNDS:
        if key == "rules.below":  # not in the default rules: said in their comment
            assert f"each {config.describe_range(key)}" in TEMPLATE
        else:
            assert documented.get(key) == config.describe_range(key), key


# -- regressions: each used to end in a traceback (exit 1) or a daemon that stores nothing ------


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            "[sensors.system]\ninterval_s = nan\n",
            "sensors.system.interval_s",
            "must be a finite number from 0.1 to 86,400 s, got nan",
        ),
        (
            "[daemon]\nretention_days = inf\n",
            "daemon.retention_days",
            "must be a finite number from 1 to 3,650 days, got inf",
        ),
        (
            "[daemon]\nmisfire_grace_s = 1e308\n",
            "daemon.misfire_grace_s",
            "must be a finite number from 1 to 3,600 s, got 1e+308",
        ),
        (
            "[daemon]\ncommit_interval_s = 1" + "0" * 400 + "\n",
            "daemon.commit_interval_s",
            "from 0.1 to 3,600 s, got an integer of 1329 bits",
        ),
        ('[storage]\npath = "a\\u0000b"\n', "storage.path", "contains a NUL character"),
        (
            '[sensors.battery]\npower_supply_dir = ""\n',
            "sensors.battery.power_supply_dir",
            "must be a path, not empty",
        ),
        (
            '[escalation]\napi_key_file = "' + "a" * 5000 + '"\n',
            "escalation.api_key_file",
            "a path of 5000 bytes; at most 4096",
        ),
        (
            '[escalation]\nbackend = "command"\ncommand = ["a\\u0000"]\n',
            "escalation.command[0]",
            "contains a NUL character",
        ),
        ('[sensors.apps]\nredact = ["a{4294967296}"]\n', "sensors.apps.redact[0]", "bad regex"),
        (
            '[[rules]]\nname = "a"\nevent = "x"\ndata = { v = nan }\n',
            "rules[0].data.v",
            "must be a finite number, got nan",
        ),
        (
            '[[rules]]\nname = "a\\nb"\nevent = "x"\n',
            "rules[0].name",
            "must be one printable line of 1 to 200 characters, got 'a\\nb'",
        ),
        (
            '[[rules]]\nname = "band"\nstream = "s.x"\nabove = 5.0\nbelow = 1.0\n',
            "rules[0]",
            "'above' must be less than 'below'",
        ),
        (
            "[anomaly]\nstart_score = 0.5\nend_score = 0.6\n",
            "anomaly.end_score",
            "must be <= start_score",
        ),
    ],
)
def test_bad_value_in_a_file_names_file_key_and_range(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    err = _refused(_write(tmp_path, text))
    assert err.key == key
    assert reason in err.reason
    assert str(err) == f"{tmp_path / 'config.toml'}: {key}: {err.reason}"


def test_non_utf8_byte_in_a_comment(tmp_path: Path) -> None:
    err = _refused(_write(tmp_path, b"[daemon]\n# caf\xe9\nretention_days = 3.0\n"))
    assert err.reason == "not UTF-8 text: byte e9 at line 2, column 6"


def test_lone_surrogate_in_a_value() -> None:
    with pytest.raises(ConfigError, match=r"storage.path: is not valid Unicode \(a lone surr"):
        config.parse('[storage]\npath = "\ud800"\n', "f.toml")
    with pytest.raises(ConfigError, match=r"f.toml: not valid TOML: Escaped character"):
        config.parse('[storage]\npath = "\\ud800"\n', "f.toml")


def test_unreadable_file(tmp_path: Path) -> None:
    err = _refused(tmp_path)  # a folder
    assert err.key == "" and err.reason


def test_own_model_needs_a_model_path_and_a_model_a_tflite_file() -> None:
    with pytest.raises(ConfigError, match=r"anomaly.own_model: needs anomaly.model"):
        config.parse("[anomaly]\nown_model = true\n")
    with pytest.raises(ConfigError, match=r"anomaly.model: must be a .tflite file"):
        config.parse('[anomaly]\nmodel = "mine.bin"\nown_model = true\n')
    c = config.parse('[anomaly]\nmodel = "/m/mine.tflite"\nown_model = true\n')
    assert (c.anomaly.model, c.anomaly.own_model) == ("/m/mine.tflite", True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[sensors.system]\ninterval_s = nan\n", "sensors.system.interval_s: must be a finite"),
        (b"# \xff\n", "not UTF-8 text: byte ff at line 1, column 3"),
        (b'[storage]\npath = "a\\u0000"\n', "storage.path: contains a NUL character"),
    ],
)
def test_the_command_line_exits_2_with_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = _write(tmp_path, content)
    assert main(["fences", "list", "--config", str(path), "--db", str(tmp_path / "v.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vigil: error: {path}: ") and message in err
    assert "Traceback" not in err
