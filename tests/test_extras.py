"""The pip command an error message gives for a missing optional part."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from agent import extras

REPO = Path(__file__).resolve().parents[1]


def test_the_command_is_this_environments_pip_on_the_source_vigil_came_from() -> None:
    argv = [a for a in shlex.split(extras.install_command("llm")) if a != "-e"]
    assert argv[:4] == [sys.executable, "-m", "pip", "install"]
    source, extra = argv[4].rsplit("[", 1)
    assert extra == "llm]"
    assert (Path(source) / "pyproject.toml").is_file()  # the tests run on an install of a tree


@pytest.mark.parametrize(
    ("url", "requirement"),
    [
        ("file:///home/me/src/vigil", "/home/me/src/vigil[llm]"),
        ("file:///home/me/my%20src/vigil", "/home/me/my src/vigil[llm]"),
        ("file:///tmp/vigil-0.1-py3-none-any.whl", "/tmp/vigil-0.1-py3-none-any.whl[llm]"),
        ("git+https://example.org/vigil.git", "vigil[llm] @ git+https://example.org/vigil.git"),
    ],
)
def test_the_recorded_source_is_named(
    monkeypatch: pytest.MonkeyPatch, url: str, requirement: str
) -> None:
    monkeypatch.setattr(extras, "_direct_url", lambda: {"url": url})
    assert extras.requirement("llm") == requirement


def test_without_a_record_the_running_tree_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extras, "_direct_url", dict)
    assert extras.requirement("report") == f"{REPO}[report]"


def test_a_quoted_path_survives_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extras, "_direct_url", lambda: {"url": "file:///a%20b/vigil"})
    assert shlex.split(extras.install_command("report"))[-1] == "/a b/vigil[report]"


@pytest.mark.parametrize(("editable", "flag"), [(True, ["-e"]), (False, [])])
def test_an_editable_install_stays_one(
    monkeypatch: pytest.MonkeyPatch, editable: bool, flag: list[str]
) -> None:
    recorded = {"url": "file:///src/vigil", "dir_info": {"editable": editable}}
    monkeypatch.setattr(extras, "_direct_url", lambda: recorded)
    assert shlex.split(extras.install_command("llm"))[4:] == [*flag, "/src/vigil[llm]"]
