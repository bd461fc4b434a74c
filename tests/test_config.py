"""Config: the template is the defaults; unknown or mistyped keys name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from agent.config_template import TEMPLATE
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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sensors.sytem]\nenabled = true\n", "f.toml: sensors.sytem: unknown key"),
        ("[daemon]\ncommit_interval = 5\n", "f.toml: daemon.commit_interval: unknown key"),
        ('[sensors.system]\ninterval_s = "10"\n', "sensors.system.interval_s: expected a number"),
        ("[sensors.system]\nenabled = 1\n", "sensors.system.enabled: expected bool"),
        ("[sensors.system]\ninterval_s = 0\n", "sensors.system.interval_s: must be > 0"),
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
