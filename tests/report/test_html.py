"""The HTML power report: one self-contained page with three inline SVG plots, every string from
the report escaped, nothing fetched from the network, and nulls and empty lists shown as such."""

from __future__ import annotations

import copy
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from _tools import require_module

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "report" / "power.json"
HOSTILE = "<script>alert(1)</script>"


def load() -> dict[str, Any]:
    report: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return report


def render(report: dict[str, Any]) -> str:
    require_module("matplotlib")
    from agent.report.html import render_html

    return render_html(report)


class Page(HTMLParser):
    """The parts of a rendered page the tests look at: elements, attributes, table cells."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.stack: list[str] = []
        self.svg_parents: list[str] = []  # the id of the figure around each <svg>
        self.figure: str | None = None
        self.style = ""
        self.rows: dict[str, list[dict[str, Any]]] = {}  # table id -> rows
        self.table: str | None = None
        self.row: dict[str, Any] | None = None
        self.cell: dict[str, Any] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        self.stack.append(tag)
        if tag == "figure":
            self.figure = a.get("id")
        elif tag == "svg":
            self.svg_parents.append(self.figure or "")
        elif tag == "table":
            self.table = a.get("id", "")
            self.rows[self.table] = []
        elif tag == "tr" and self.table is not None:
            self.row = {"class": a.get("class", ""), "cells": []}
            self.rows[self.table].append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = {"class": a.get("class", ""), "value": a.get("data-value"), "text": ""}
            self.row["cells"].append(self.cell)

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        if tag == "figure":
            self.figure = None
        elif tag == "table":
            self.table = None
        elif tag == "tr":
            self.row = None
        elif tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "style":
            self.style += data
        if self.cell is not None:
            self.cell["text"] += data

    def body_rows(self, table: str, klass: str) -> list[dict[str, Any]]:
        return [r for r in self.rows.get(table, []) if klass in r["class"].split()]

    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.tags if "id" in a]


@pytest.fixture(scope="module")
def page_text() -> str:
    return render(load())


def test_renders_one_document_with_three_plots(page_text: str) -> None:
    assert page_text.startswith("<!DOCTYPE html>")
    assert "<?xml" not in page_text and "<!DOCTYPE svg" not in page_text
    page = Page(page_text)
    assert page.svg_parents == ["plot-timeline", "plot-components", "plot-tiering"]
    for _, attrs in (t for t in page.tags if t[0] == "svg"):
        assert "viewbox" in attrs  # scales with the page
    # Each plot draws: paths beyond the text glyphs.
    for ident in ("plot-timeline", "plot-components", "plot-tiering"):
        svg = re.search(rf'<figure class="plot" id="{ident}">(.*?)</figure>', page_text, re.S)
        assert svg is not None
        assert svg[1].count("<path") > 20
    # Sections in the order the report reads.
    order = [
        "report-header",
        "headline",
        "components",
        "wakes",
        "assumptions",
        "plot-timeline",
        "plot-components",
        "plot-tiering",
        "method",
    ]
    positions = [page_text.index(f'id="{i}"') for i in order]
    assert positions == sorted(positions)


def test_ids_are_unique_across_the_inlined_svgs(page_text: str) -> None:
    ids = Page(page_text).ids()
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]
    # Every fragment reference in the page points at an element of the page.
    refs = re.findall(r'href="#([^"]+)"', page_text) + re.findall(r"url\(#([^)]+)\)", page_text)
    assert refs and set(refs) <= set(ids)


def test_no_network_reference(page_text: str) -> None:
    page = Page(page_text)
    links = ("src", "href", "xlink:href", "srcset", "action", "poster", "data", "background")
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            if name == "xmlns" or name.startswith("xmlns:"):
                continue  # a namespace name, never fetched
            if name in links:
                assert value.startswith("#"), (tag, name, value)  # only within the page
            assert not re.search(r"(https?|ftp|wss?)://", value, re.I), (tag, name, value)
    assert not any(tag in ("script", "link", "img", "iframe", "object") for tag, _ in page.tags)
    assert "@import" not in page.style and "url(" not in page.style
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_strings_from_the_report_appear_escaped(page_text: str) -> None:
    report = load()
    strings = [c["name"] for c in report["components"]]
    for w in report["wakes"]["items"]:
        strings += [w["cause"], *w["triggers"], w["status"]]
        strings += [w["culprit"]] if w["culprit"] else []
    strings += report["tiering"]["assumptions"] + report["method"]
    strings += [report["energy"]["banner"], report["energy"]["source"]]
    strings += [report["device"]["host"], report["device"]["cpu"]]
    for s in strings:
        assert html.escape(s) in page_text, s
    assert "firefox-esr (Web Content)" in page_text
    assert "agent&#x27;s own thread" in page_text  # a method sentence, its quote escaped


def test_the_components_table_adds_up() -> None:
    report = load()
    page = Page(render(report))
    rows = page.body_rows("components", "component")
    assert len(rows) == len(report["components"]) == 13
    assert "unattributed" in rows[-1]["class"]
    assert rows[-1]["cells"][0]["text"] == "unattributed"
    (total,) = page.body_rows("components", "total")

    def column(klass: str) -> tuple[list[float], float]:
        values = [
            float(c["value"]) for r in rows for c in r["cells"] if klass in c["class"].split()
        ]
        (summed,) = [float(c["value"]) for c in total["cells"] if klass in c["class"].split()]
        return values, summed

    for klass in ("cpu", "energy", "share"):
        values, summed = column(klass)
        assert summed == pytest.approx(sum(values)), klass
    cpu, _ = column("cpu")
    assert sum(cpu) == pytest.approx(report["agent"]["cpu_s"], rel=1e-6)
    assert [r["cells"][0]["text"] for r in rows[:-1]] == [
        c["name"] for c in report["components"] if c["name"] != "unattributed"
    ]
    assert len(page.body_rows("wakes", "wake")) == 3


def test_headline_and_banner(page_text: str) -> None:
    assert 'class="banner banner-estimated"' in page_text
    card = re.search(r'id="card-tiering">(.*?)</div></div>', page_text, re.S)
    assert card is not None and "96.3" in card[1] and "99.948 %" in card[1]
    assert re.search(r'id="card-energy">.*?130<span class="unit">J</span>', page_text, re.S)
    assert "0.027" in page_text  # share of the device's drain, in %
    assert "log scale" in page_text  # always-on is ~1,900x the tiered figure
    assert "2026-12-02 09:41:07" in page_text  # wake times in UTC


def test_a_measured_report_has_a_quiet_banner() -> None:
    report = load()
    report["energy"]["provenance"] = "measured"
    report["energy"]["source"] = "RAPL package+dram"
    report["energy"]["banner"] = "Measured by RAPL; the agent's share is its CPU time's share."
    text = render(report)
    assert 'class="banner banner-estimated"' not in text
    assert 'class="banner banner-note"' in text
    assert "prov-measured" in text


def test_hostile_strings_are_escaped() -> None:
    report = load()
    report["wakes"]["items"][0]["culprit"] = HOSTILE
    report["wakes"]["items"][1]["cause"] = '"><img src=x onerror=alert(1)>'
    report["components"][0]["name"] = "<b>$x$ & _y</b>"
    report["timeline"]["components_j"]["<b>$x$ & _y</b>"] = report["timeline"]["components_j"].pop(
        "sensor.system"
    )
    report["timeline"]["anomalies"][0]["subject"] = HOSTILE
    report["device"]["host"] = "</title><script>alert(2)</script>"
    report["method"].append("</ol><iframe src=https://example.com></iframe>")
    text = render(report)
    assert "<script" not in text.lower() and "<iframe" not in text.lower()
    assert "<img" not in text and "<b>" not in text
    assert html.escape(HOSTILE) in text
    assert html.escape("<b>$x$ & _y</b>") in text
    page = Page(text)
    assert not any(tag in ("script", "img", "iframe", "b") for tag, _ in page.tags)
    assert page.svg_parents == ["plot-timeline", "plot-components", "plot-tiering"]


def test_nulls_and_empty_lists_render() -> None:
    report = load()
    report["device_drain"] = None
    report["tiering"] = None
    report["wakes"] = {"count": 0, "items": []}
    report["energy"]["coefficient"] = None
    report["agent"].update(share_of_device=None, battery_pct_per_day=None, battery_mah_per_day=None)
    for c in report["components"]:
        c["calls"] = None
    report["components"][0]["energy_band_j"] = None
    report["timeline"]["device"] = []
    report["timeline"]["wakes"] = []
    report["timeline"]["anomalies"] = []
    report["method"] = []
    text = render(report)
    page = Page(text)
    assert 'id="wakes-empty"' in text and "No wakes in this period" in text
    assert 'id="tiering-none"' in text and "Not shown" in text
    assert 'id="method-none"' in text
    # Without device readings the timeline is the agent's own power per hour.
    assert page.svg_parents == ["plot-timeline", "plot-components"]
    assert 'aria-label="vigil&#x27;s own average power per hour' in text
    assert "not known" in text
    assert "None" not in re.sub(r"<svg.*?</svg>", "", text, flags=re.S)


@pytest.mark.parametrize("hours", [0, 1])
def test_a_timeline_of_zero_or_one_hour(hours: int) -> None:
    report = load()
    timeline = report["timeline"]
    timeline["hours"] = timeline["hours"][:hours]
    timeline["agent_power_w"] = timeline["agent_power_w"][:hours]
    timeline["components_j"] = {k: v[:hours] for k, v in timeline["components_j"].items()}
    timeline["device"] = timeline["device"][:hours]
    timeline["wakes"], timeline["anomalies"] = [], []
    start = timeline["hours"][0] if hours else report["period"]["start"]
    report["period"] = {"start": start, "end": start, "hours": float(hours)}
    text = render(report)
    parents = Page(text).svg_parents
    if hours:
        assert parents == ["plot-timeline", "plot-components", "plot-tiering"]
    else:
        assert parents == ["plot-tiering"]
        assert "No device readings and no hourly ledger rows" in text


def test_tiers_close_together_use_a_linear_scale() -> None:
    report = load()
    tiering = report["tiering"]
    tiering.update(always_on_energy_j=120.0, always_on_band_j=[53.0, 162.6], always_on_capped=True)
    text = render(report)
    assert "log scale" not in text
    assert "capped" in text


def test_a_bare_report_renders() -> None:
    text = render({"schema": "vigil.power-report/1"})
    page = Page(text)
    assert page.svg_parents == []
    assert "No component costs" in text and "No wakes" in text and "Not shown" in text


def test_rendering_is_deterministic_and_leaves_the_report_alone(page_text: str) -> None:
    report = load()
    before = copy.deepcopy(report)
    assert render(report) == page_text
    assert report == before


def test_names_beyond_the_plot_font_render() -> None:
    report = load()
    components = report["timeline"]["components_j"]
    components["传感器 🔋"] = components.pop("sensor.apps")
    report["components"][1]["name"] = "传感器 🔋"
    text = render(report)  # warnings are errors here: a missing glyph must not be one
    assert "传感器 🔋" in text
    assert Page(text).svg_parents == ["plot-timeline", "plot-components", "plot-tiering"]
