"""render_html(report): the power report ("vigil.power-report/1") as one self-contained HTML page.

Nothing in the page reaches the network: the CSS is inline, the plots are inline SVG drawn by
matplotlib with their text as paths (no font file), and a Content-Security-Policy forbids any
fetch. Every string taken from the report is HTML-escaped. matplotlib is imported only here,
when a report is rendered (the ``report`` extra); the daemon never imports it.
"""

from __future__ import annotations

import html
import io
import math
import re
import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["render_html"]

#: Colours of the page and the plots (one palette for both).
_INK = "#1f2933"
_MUTED = "#616e7c"
_GRID = "#e4e7eb"
_DEVICE = "#2563eb"
_BATTERY = "#0f766e"
_CHARGING = "#d1fae5"
_WAKE = "#dc2626"
_ANOMALY = "#d97706"
_AGENT = "#7c3aed"
_TIERED = "#15803d"
_ALWAYS_ON = "#b91c1c"
_UNATTRIBUTED = "#9aa5b1"
_OTHER = "#cbd2d9"

#: At most this many components get their own colour in the stacked plot; the rest are "other".
_MAX_STACKED = 9
#: The tiering plot goes to a log scale when the two tiers differ by more than this factor.
_LOG_RATIO = 100.0


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report as one HTML document (a str), with its plots inline."""
    plots = _plots(report)
    energy = _map(report.get("energy"))
    provenance = _str(energy.get("provenance")) or "unknown"
    device = _map(report.get("device"))
    period = _map(report.get("period"))
    title = "vigil power report"
    host = _str(device.get("host"))
    if host:
        title += f" — {host}"
    start = _when(period.get("start"), seconds=False)
    if start:
        title += f", {start} UTC"
    body = "\n".join(
        [
            _header(report),
            _headline(report),
            _components(report),
            _wakes(report),
            _tiering(report),
            _plots_section(plots),
            _method(report),
            _footer(report),
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="vigil">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f'<body class="provenance-{_slug(provenance)}">\n<main id="report">\n{body}\n'
        "</main>\n</body>\n</html>\n"
    )


# -- the sections ------------------------------------------------------------------------------


def _header(report: Mapping[str, Any]) -> str:
    period = _map(report.get("period"))
    device = _map(report.get("device"))
    energy = _map(report.get("energy"))
    coverage = _map(report.get("coverage"))
    provenance = _str(energy.get("provenance"))

    hours = _float(period.get("hours"))
    span = f"{_when_html(period.get('start'))} → {_when_html(period.get('end'))} UTC"
    if hours is not None:
        span += f' <span class="muted">({_sig(hours)} h)</span>'

    machine = [_e(x) for x in (device.get("host"), device.get("platform")) if _str(x)]
    if _str(device.get("cpu")):
        machine.append(_e(device.get("cpu")))
    cores = _float(device.get("cores"))
    if cores is not None:
        machine.append(f"{cores:g} cores")

    source = _e(energy.get("source")) if _str(energy.get("source")) else _NA
    energy_dd = (
        f'<span class="prov prov-{_slug(provenance or "unknown")}">{_e(provenance or "unknown")}'
        f"</span> {source}"
    )
    coef = _map(energy.get("coefficient"))
    value = _float(coef.get("value"))
    if value is not None:
        unit = _str(coef.get("unit")) or ""
        energy_dd += f'<br><span class="muted">coefficient {_sig(value)} {_e(unit)}'
        low, high = _float(coef.get("low")), _float(coef.get("high"))
        if low is not None and high is not None:
            energy_dd += f" [{_sig(low)}–{_sig(high)}]"
        if _str(coef.get("source")):
            energy_dd += f" — {_e(coef.get('source'))}"
        energy_dd += "</span>"

    ledger = _float(coverage.get("ledger_hours"))
    share = _float(coverage.get("share"))
    cov = []
    if ledger is not None:
        cov.append(f"{_sig(ledger)} h" + (f" of {_sig(hours)} h" if hours is not None else ""))
    if share is not None:
        cov.append(f"({_pct(share)})")
    origins = [_e(o) for o in _list(coverage.get("origins")) if _str(o)]
    if origins:
        cov.append("from " + ", ".join(origins))

    rows = [
        ("Period", span),
        ("Device", ", ".join(machine) if machine else _NA),
        ("Energy", energy_dd),
        ("Coverage", " ".join(cov) if cov else _NA),
    ]
    meta = "\n".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    banner = ""
    text = _str(energy.get("banner"))
    if text:
        kind = "banner-estimated" if provenance == "estimated" else "banner-note"
        banner = f'<p id="banner" class="banner {kind}" role="note">{_e(text)}</p>'
    elif provenance == "estimated":
        banner = (
            '<p id="banner" class="banner banner-estimated" role="note">ESTIMATE: the energy '
            "figures in this report are estimated, not measured.</p>"
        )
    return (
        f'<header id="report-header">\n<h1>vigil power report</h1>\n{banner}\n'
        f'<dl class="meta" id="meta">\n{meta}\n</dl>\n</header>'
    )


def _headline(report: Mapping[str, Any]) -> str:
    agent = _map(report.get("agent"))
    drain = _map(report.get("device_drain"))
    tiering = _map(report.get("tiering"))
    cards: list[tuple[str, str, str, str]] = []  # id, label, value, detail

    cpu = _float(agent.get("cpu_s"))
    core = _float(agent.get("cpu_pct_of_core"))
    cpu_detail = f"{_sig(cpu)} CPU s" if cpu is not None else ""
    if core is not None:
        cpu_detail += f", {_sig(core)} % of one core"
    running = _float(agent.get("cpu_pct_running"))
    if running is not None:
        cpu_detail += f" ({_sig(running)} % without start-up)"
    cards.append(
        (
            "card-energy",
            "vigil's energy",
            _quantity(agent.get("energy_j"), "J"),
            _band_text(agent.get("energy_band_j"), "J") + _sep(cpu_detail),
        )
    )
    cards.append(
        (
            "card-power",
            "Average power",
            _quantity(agent.get("avg_power_w"), "W"),
            _band_text(agent.get("avg_power_band_w"), "W"),
        )
    )

    share = _float(agent.get("share_of_device"))
    if share is not None:
        detail = "of the device's battery drain"
        drain_j = _float(drain.get("energy_j"))
        if drain_j is not None:
            detail += f" ({_quantity(drain_j, 'J')}"
            on_battery = _float(drain.get("discharging_hours"))
            if on_battery is not None:
                detail += f" over {_sig(on_battery)} h on battery"
            avg = _float(drain.get("avg_power_w"))
            if avg is not None:
                detail += f", {_quantity(avg, 'W')} average"
            detail += ")"
        if _str(drain.get("source")):
            detail += f"; {_e(drain.get('source'))}"
        cards.append(("card-share", "Share of device drain", _pct(share), detail))
    else:
        cards.append(
            (
                "card-share",
                "Share of device drain",
                _NA,
                "not known: no reading of the device's own drain in this period",
            )
        )

    pct_day = _float(agent.get("battery_pct_per_day"))
    mah_day = _float(agent.get("battery_mah_per_day"))
    if pct_day is not None or mah_day is not None:
        value = f"{_sig(pct_day)} %/day" if pct_day is not None else f"{_sig(mah_day)} mAh/day"
        detail = "of a full battery, projected from this period"
        if pct_day is not None and mah_day is not None:
            detail = f"{_sig(mah_day)} mAh/day; " + detail
        cards.append(("card-battery", "Battery per day", value, detail))
    else:
        cards.append(
            (
                "card-battery",
                "Battery per day",
                _NA,
                "not known: no battery capacity on this device",
            )
        )

    if tiering:
        saved = _quantity(tiering.get("saved_energy_j"), "J")
        saved_share = _float(tiering.get("saved_share"))
        ticks = _float(tiering.get("ticks"))
        detail = "against the larger model on every tick"
        if ticks is not None:
            detail += f" ({ticks:,.0f} ticks)"
        if saved_share is not None:
            detail = f"{_pct(saved_share)} of the energy of running the larger model on every tick"
            if ticks is not None:
                detail += f" ({ticks:,.0f} ticks)"
        detail += _sep(_band_text(tiering.get("saved_band_j"), "J"))
        cards.append(("card-tiering", "Tiering saved", saved, detail))
    else:
        cards.append(("card-tiering", "Tiering saved", _NA, "not computed (see Tiering)"))

    html_cards = "\n".join(
        f'<div class="card" id="{cid}"><div class="label">{label}</div>'
        f'<div class="value">{_unit_small(value)}</div><div class="detail">{detail}</div></div>'
        for cid, label, value, detail in cards
    )
    return (
        f'<section id="headline"><h2>Headline</h2>\n<div class="cards">\n{html_cards}\n</div>\n'
        "</section>"
    )


def _components(report: Mapping[str, Any]) -> str:
    rows = [_map(c) for c in _list(report.get("components"))]
    rows = [c for c in rows if _str(c.get("name")) != "unattributed"] + [
        c for c in rows if _str(c.get("name")) == "unattributed"
    ]
    if not rows:
        return (
            '<section id="components-section"><h2>Components</h2>\n'
            '<p class="empty" id="components-empty">No component costs in this period.</p>'
            "</section>"
        )
    total_cpu = sum(_float(c.get("cpu_s")) or 0.0 for c in rows)
    total_j = sum(_float(c.get("energy_j")) or 0.0 for c in rows)
    total_share = sum(_float(c.get("share")) or 0.0 for c in rows)
    calls = [int(x) for c in rows if (x := _float(c.get("calls"))) is not None]
    lows, highs = [], []
    for c in rows:
        band = _band(c.get("energy_band_j"))
        if band is not None:
            lows.append(band[0])
            highs.append(band[1])
    body = []
    for c in rows:
        name = _str(c.get("name")) or "?"
        klass = "component unattributed" if name == "unattributed" else "component"
        share = _float(c.get("share"))
        bar = ""
        if share is not None:
            width = max(0.0, min(100.0, share * 100.0))
            bar = f'<span class="bar" style="width:{width:.1f}%"></span>'
        prov = _str(c.get("provenance"))
        body.append(
            f'<tr class="{klass}"><th scope="row">{_e(name)}</th>'
            f"{_num_cell(c.get('cpu_s'), 'cpu')}"
            f"{_num_cell(c.get('calls'), 'calls', integer=True)}"
            f"{_num_cell(c.get('energy_j'), 'energy')}"
            f'<td class="num band">{_band_cell(c.get("energy_band_j"))}</td>'
            f'<td class="num share" data-value="{_attr_num(share)}">'
            f'<span class="pct">{_pct(share) if share is not None else _NA}</span>'
            f'<span class="sharebar">{bar}</span></td>'
            f'<td class="provenance">{_prov_html(prov)}</td></tr>'
        )
    provs = {_str(c.get("provenance")) for c in rows} - {None}
    total_band = f"{_sig(sum(lows))}–{_sig(sum(highs))}" if len(lows) == len(rows) and lows else _NA
    total = (
        f'<tr class="total"><th scope="row">Total</th>'
        f"{_num_cell(total_cpu, 'cpu')}"
        f"{_num_cell(sum(calls) if calls else None, 'calls', integer=True)}"
        f"{_num_cell(total_j, 'energy')}"
        f'<td class="num band">{total_band}</td>'
        f'<td class="num share" data-value="{_attr_num(total_share)}">'
        f'<span class="pct">{_pct(total_share)}</span><span class="sharebar blank"></span></td>'
        f'<td class="provenance">{_prov_html(provs.pop()) if len(provs) == 1 else "mixed"}</td>'
        "</tr>"
    )
    return (
        '<section id="components-section"><h2>Components</h2>\n'
        '<p class="note">CPU time and energy of each stage over the period; '
        "<em>unattributed</em> is the agent's CPU time that no stage claimed.</p>\n"
        '<table id="components" class="data">\n<thead><tr><th scope="col">Component</th>'
        '<th scope="col" class="num">CPU s</th><th scope="col" class="num">Calls</th>'
        '<th scope="col" class="num">Energy J</th><th scope="col" class="num">band J</th>'
        '<th scope="col" class="num">Share</th><th scope="col">Provenance</th></tr></thead>\n'
        f"<tbody>\n{chr(10).join(body)}\n</tbody>\n<tfoot>\n{total}\n</tfoot>\n</table>\n"
        "</section>"
    )


def _wakes(report: Mapping[str, Any]) -> str:
    wakes = _map(report.get("wakes"))
    items = [_map(w) for w in _list(wakes.get("items"))]
    head = '<section id="wakes-section"><h2>Wakes of the larger model</h2>\n'
    if not items:
        return (
            head + '<p class="empty" id="wakes-empty">No wakes in this period: the larger model '
            "was never started.</p></section>"
        )
    summary = []
    count = _float(wakes.get("count"))
    summary.append(f"{count:,.0f} wakes" if count is not None else f"{len(items)} wakes")
    for key, label, unit in (
        ("cpu_s_median", "median CPU", "s"),
        ("cpu_s_p90", "p90 CPU", "s"),
        ("wall_s_median", "median wall", "s"),
        ("energy_j_median", "median energy", "J"),
    ):
        value = _float(wakes.get(key))
        if value is not None:
            summary.append(f"{label} {_quantity(value, unit)}")
    body = []
    for w in items:
        triggers = ", ".join(_e(t) for t in _list(w.get("triggers")) if _str(t)) or _NA
        status = _str(w.get("status"))
        energy = _num_cell(w.get("energy_j"), "energy")
        band = _band(w.get("energy_band_j"))
        if band is not None:
            energy = energy.replace(
                "</td>", f' <span class="band">[{_sig(band[0])}–{_sig(band[1])}]</span></td>', 1
            )
        t_in, t_out = _float(w.get("tokens_in")), _float(w.get("tokens_out"))
        tokens = (
            f"{_int_text(t_in)} / {_int_text(t_out)}"
            if t_in is not None or t_out is not None
            else _NA
        )
        body.append(
            f'<tr class="wake"><td class="time">{_when_html(w.get("t"))}</td>'
            f"<td>{triggers}</td><td>{_text(w.get('cause'))}</td>"
            f'<td class="culprit">{_text(w.get("culprit"))}</td>'
            f'<td><span class="status status-{_slug(status or "unknown")}">{_text(status)}'
            f"</span></td>"
            f"{_num_cell(w.get('wall_s'), 'wall')}{_num_cell(w.get('cpu_s'), 'cpu')}{energy}"
            f'<td class="num tokens">{tokens}</td></tr>'
        )
    return (
        head + f'<p class="note" id="wakes-summary">{"; ".join(summary)}.</p>\n'
        '<table id="wakes" class="data">\n<thead><tr><th scope="col">Time (UTC)</th>'
        '<th scope="col">Triggers</th><th scope="col">Cause</th><th scope="col">Culprit</th>'
        '<th scope="col">Status</th><th scope="col" class="num">Wall s</th>'
        '<th scope="col" class="num">CPU s</th><th scope="col" class="num">Energy J</th>'
        '<th scope="col" class="num">Tokens in / out</th></tr></thead>\n'
        f"<tbody>\n{chr(10).join(body)}\n</tbody>\n</table>\n</section>"
    )


def _tiering(report: Mapping[str, Any]) -> str:
    tiering = _map(report.get("tiering"))
    head = '<section id="tiering-section"><h2>Tiering: woken vs always-on</h2>\n'
    if not tiering:
        return head + f'<p class="empty" id="tiering-none">{_TIERING_NONE}</p></section>'
    rows = [
        ("Tiered, as run", tiering.get("tiered_energy_j"), tiering.get("tiered_band_j")),
        (
            "Larger model on every tick",
            tiering.get("always_on_energy_j"),
            tiering.get("always_on_band_j"),
        ),
        ("Saved", tiering.get("saved_energy_j"), tiering.get("saved_band_j")),
    ]
    body = "\n".join(
        f'<tr><th scope="row">{label}</th><td class="num">{_quantity(value, "J")}</td>'
        f'<td class="num band">{_band_text(band, "J")}</td></tr>'
        for label, value, band in rows
    )
    facts = []
    ticks = _float(tiering.get("ticks"))
    if ticks is not None:
        facts.append(f"{ticks:,.0f} ticks in the period")
    per_wake = _float(tiering.get("per_wake_cpu_s"))
    if per_wake is not None:
        fact = f"{_sig(per_wake)} CPU s per larger-model call"
        if _str(tiering.get("per_wake_source")):
            fact += f" ({_e(tiering.get('per_wake_source'))})"
        facts.append(fact)
    saved_share = _float(tiering.get("saved_share"))
    if saved_share is not None:
        facts.append(f"{_pct(saved_share)} of the always-on energy saved")
    if tiering.get("always_on_capped") is True:
        facts.append("the always-on figure is capped (see the assumptions)")
    assumptions = [a for a in _list(tiering.get("assumptions")) if _str(a)]
    listing = (
        '<ul id="assumptions">\n' + "\n".join(f"<li>{_e(a)}</li>" for a in assumptions) + "\n</ul>"
        if assumptions
        else '<p class="empty" id="assumptions-none">No assumptions recorded.</p>'
    )
    return (
        head + '<table id="tiering" class="data compact">\n<thead><tr><th scope="col"></th>'
        '<th scope="col" class="num">Energy</th><th scope="col" class="num">band</th></tr>'
        f"</thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
        + (f'<p class="note" id="tiering-facts">{"; ".join(facts)}.</p>\n' if facts else "")
        + f"<h3>Assumptions</h3>\n{listing}\n</section>"
    )


def _plots_section(plots: Sequence[_Plot]) -> str:
    figures = []
    for plot in plots:
        if plot.svg is not None:
            figures.append(
                f'<figure class="plot" id="{plot.ident}">\n{plot.svg}\n'
                f"<figcaption>{plot.caption}</figcaption>\n</figure>"
            )
        else:
            figures.append(
                f'<figure class="plot plot-empty" id="{plot.ident}">'
                f'<p class="empty">{plot.caption}</p></figure>'
            )
    return '<section id="plots"><h2>Plots</h2>\n' + "\n".join(figures) + "\n</section>"


def _method(report: Mapping[str, Any]) -> str:
    sentences = [s for s in _list(report.get("method")) if _str(s)]
    head = '<section id="method-section"><h2>Method</h2>\n'
    if not sentences:
        return head + '<p class="empty" id="method-none">No method recorded.</p></section>'
    items = "\n".join(f"<li>{_e(s)}</li>" for s in sentences)
    return head + f'<ol id="method">\n{items}\n</ol>\n</section>'


def _footer(report: Mapping[str, Any]) -> str:
    schema = _str(report.get("schema")) or "unknown schema"
    generated = _when_html(report.get("generated"))
    return (
        f'<footer id="report-footer">Generated {generated} UTC by vigil · {_e(schema)} · '
        "a single file: no scripts, no network.</footer>"
    )


_TIERING_NONE = (
    "Not shown: pricing the always-on tier needs the CPU time of a finished wake of the "
    "larger model, and the report has none for this period."
)


# -- the plots ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plot:
    ident: str
    svg: str | None  # None: nothing to draw, and the caption says why
    caption: str  # HTML


def _plots(report: Mapping[str, Any]) -> list[_Plot]:
    import matplotlib

    timeline = _map(report.get("timeline"))
    frame = _Frame.of(report, timeline)
    rc: dict[Any, Any] = {
        "svg.fonttype": "path",  # text as paths: the page needs no font file
        "svg.hashsalt": "vigil-report",  # the same ids from one render to the next
        "font.family": "DejaVu Sans",
        "font.size": 9.0,
        "axes.titlesize": 10.5,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.labelsize": 9.0,
        "axes.edgecolor": "#9aa5b1",
        "axes.labelcolor": _INK,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "axes.axisbelow": True,
        "grid.color": _GRID,
        "grid.linewidth": 0.8,
        "xtick.color": _MUTED,
        "ytick.color": _MUTED,
        "text.color": _INK,
        "legend.fontsize": 8.5,
        "legend.frameon": False,
    }
    with warnings.catch_warnings(), matplotlib.rc_context(rc):
        # A name with a glyph DejaVu Sans lacks is drawn as a box, not a reason to fail.
        warnings.filterwarnings("ignore", message=r".*[Gg]lyph .* missing from")
        return [
            _timeline_plot(report, timeline, frame),
            _components_plot(report, timeline, frame),
            _tiering_plot(report),
        ]


@dataclass(frozen=True)
class _Frame:
    """The plots' time axis: hours since ``origin`` (UTC), from ``start`` to ``end``."""

    origin: datetime
    start: float
    end: float

    @classmethod
    def of(cls, report: Mapping[str, Any], timeline: Mapping[str, Any]) -> _Frame | None:
        """The period, or else the span of the timeline's times; None when there is no time."""
        period = _map(report.get("period"))
        first, last = _datetime(period.get("start")), _datetime(period.get("end"))
        if first is None or last is None or last <= first:
            times = [_datetime(h) for h in _list(timeline.get("hours"))]
            times += [_datetime(_map(d).get("t")) for d in _list(timeline.get("device"))]
            known = [t for t in times if t is not None]
            if not known:
                return None
            first, last = min(known), max(known)
        span = (last - first).total_seconds() / 3600.0
        if span < 1.0:  # one reading or one hour: an hour around it
            return cls(first, (span - 1.0) / 2.0, (span + 1.0) / 2.0)
        return cls(first, 0.0, span)

    def x(self, moment: datetime) -> float:
        return (moment - self.origin).total_seconds() / 3600.0

    def apply(self, ax: Axes) -> None:
        """UTC times on the x axis, ticks on round hours, the date under the first and at 00:00."""
        from matplotlib.ticker import FuncFormatter, MultipleLocator

        span = self.end - self.start
        step = next((s for s in (0.25, 0.5, 1, 2, 3, 6, 12, 24) if span / s <= 14), 24 * 7)
        # Ticks on round UTC hours: shift the locator by the origin's offset from a round hour.
        offset = (self.origin.minute * 60 + self.origin.second) / 3600.0
        hour = self.origin.hour + offset
        base = (-hour) % step
        ax.set_xlim(self.start, self.end)
        ax.xaxis.set_major_locator(MultipleLocator(step, offset=base))

        def label(value: float, pos: int | None) -> str:
            moment = self.origin + timedelta(hours=value)
            text = moment.strftime("%H:%M")
            if pos == 0 or (moment.hour == 0 and moment.minute == 0):
                text += moment.strftime("\n%b %d")
            return text

        ax.xaxis.set_major_formatter(FuncFormatter(label))
        ax.set_xlabel("UTC", loc="right", color=_MUTED)


def _timeline_plot(
    report: Mapping[str, Any], timeline: Mapping[str, Any], frame: _Frame | None
) -> _Plot:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ident = "plot-timeline"
    device = [_map(d) for d in _list(timeline.get("device"))]
    readings = sorted(
        ((t, d) for d in device if (t := _datetime(d.get("t"))) is not None), key=lambda r: r[0]
    )
    powers = [_float(d.get("power_w")) for _, d in readings]
    levels = [_float(d.get("battery_pct")) for _, d in readings]
    has_power = any(p is not None for p in powers)
    has_level = any(b is not None for b in levels)
    hours = [_datetime(h) for h in _list(timeline.get("hours"))]
    agent = [_float(x) for x in _list(timeline.get("agent_power_w"))]
    hourly = [(h, p) for h, p in zip(hours, agent, strict=False) if h is not None]

    if frame is None or (not (has_power or has_level) and not hourly):
        return _Plot(ident, None, "No device readings and no hourly ledger rows to plot.")

    fig = Figure(figsize=(10.0, 3.7))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    handles: list[Any] = []
    if has_power or has_level:
        xs = [frame.x(t) for t, _ in readings]
        source = _str(_map(report.get("device_drain")).get("source"))
        what = " and ".join(
            w for w, on in (("power (W)", has_power), ("battery level (%)", has_level)) if on
        )
        title = f"Device {what}" + (f" — {source}" if source else "")
        caption = f"The device's own readings: {what}"
        level_ax = ax
        if has_power:
            ax.plot(xs, _nan(powers), color=_DEVICE, lw=1.4, marker=".", ms=3, zorder=2)
            ax.set_ylabel("device power (W)")
            known = [p for p in powers if p is not None]
            ax.set_ylim(min(0.0, min(known) * 1.15), max(max(known) * 1.15, 0.01))
            handles.append(
                Line2D([], [], color=_DEVICE, lw=1.4, marker=".", label="device power (W)")
            )
            if has_level:
                level_ax = ax.twinx()
                level_ax.grid(False)
                level_ax.spines["right"].set_visible(True)
        if has_level:
            level_ax.plot(xs, _nan(levels), color=_BATTERY, lw=1.3, ls=(0, (4, 2)), zorder=2)
            level_ax.set_ylim(0, 108)
            level_ax.set_yticks([0, 25, 50, 75, 100])
            level_ax.set_ylabel("battery (%)")
            handles.append(
                Line2D([], [], color=_BATTERY, lw=1.3, ls=(0, (4, 2)), label="battery (%)")
            )
        charging = [d.get("charging") is True for _, d in readings]
        if any(charging):
            for lo, hi in _runs(xs, charging):
                ax.axvspan(lo, hi, color=_CHARGING, lw=0, zorder=0)
            handles.append(Patch(color=_CHARGING, label="charging"))
    else:
        peak = max((abs(p) for _, p in hourly if p is not None), default=0.0)
        factor, prefix = _prefix(peak)
        xs = [frame.x(h) for h, _ in hourly]
        ys = [p / factor if p is not None else math.nan for _, p in hourly]
        ax.bar(xs, ys, width=_step(xs) * 0.85, align="edge", color=_AGENT, zorder=2)
        ax.set_ylabel(f"vigil's power ({prefix}W)")
        title = "vigil's own average power per hour (no device power or battery readings)"
        caption = "vigil's own average power in each hour of the ledger"
        handles.append(Patch(color=_AGENT, label=f"vigil's power ({prefix}W)"))

    wakes = [t for w in _list(timeline.get("wakes")) if (t := _datetime(w)) is not None]
    for t in wakes:
        ax.axvline(frame.x(t), color=_WAKE, lw=1.1, ls=(0, (3, 2)), zorder=3)
    if wakes:
        handles.append(Line2D([], [], color=_WAKE, lw=1.1, ls=(0, (3, 2)), label="wake"))
    anomalies = [
        (t, _str(a.get("subject")) or "?")
        for a in map(_map, _list(timeline.get("anomalies")))
        if (t := _datetime(a.get("t"))) is not None
    ]
    if anomalies:
        ax.scatter(
            [frame.x(t) for t, _ in anomalies],
            [1.0] * len(anomalies),
            transform=ax.get_xaxis_transform(),
            marker="v",
            s=60,
            color=_ANOMALY,
            edgecolor="white",
            linewidth=0.7,
            zorder=5,
            clip_on=False,
        )
        handles.append(Line2D([], [], color=_ANOMALY, marker="v", ls="", ms=7, label="anomaly"))
    _title(fig, title)
    frame.apply(ax)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))

    notes = []
    if wakes:
        notes.append(f"{len(wakes)} wake{'s' * (len(wakes) != 1)} (dashed red lines)")
    if anomalies:
        shown = ", ".join(f"{_when_html(t, date=False)} {_e(s)}" for t, s in anomalies[:8])
        more = f" and {len(anomalies) - 8} more" if len(anomalies) > 8 else ""
        notes.append(f"anomalies (orange markers): {shown}{more}")
    caption = _e(caption) + ("; " + "; ".join(notes) if notes else "") + ". Times in UTC."
    return _Plot(ident, _svg(fig, ident, title), caption)


def _components_plot(
    report: Mapping[str, Any], timeline: Mapping[str, Any], frame: _Frame | None
) -> _Plot:
    import numpy as np
    from matplotlib.figure import Figure

    ident = "plot-components"
    hours = [_datetime(h) for h in _list(timeline.get("hours"))]
    index = [i for i, h in enumerate(hours) if h is not None]
    series: dict[str, Any] = {}
    for name, values in _map(timeline.get("components_j")).items():
        row = _list(values)
        series[str(name)] = np.array(
            [(_float(row[i]) if i < len(row) else None) or 0.0 for i in index], dtype=float
        )
    if frame is None or not index or not series:
        return _Plot(ident, None, "No hourly energy per component to plot in this period.")
    xs = [frame.x(h) for h in hours if h is not None]

    named = sorted(
        (n for n in series if n != "unattributed"), key=lambda n: -float(series[n].sum())
    )
    keep = named if len(named) <= _MAX_STACKED + 1 else named[:_MAX_STACKED]
    stack: list[tuple[str, Any, str]] = [
        (name, series[name], colour) for name, colour in zip(keep, _palette(len(keep)), strict=True)
    ]
    rest = [n for n in named if n not in keep]
    if rest:
        stack.append((f"other ({len(rest)})", sum(series[n] for n in rest), _OTHER))
    if "unattributed" in series:
        stack.append(("unattributed", series["unattributed"], _UNATTRIBUTED))

    fig = Figure(figsize=(10.0, 3.9))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    bottom = np.zeros(len(xs))
    width = _step(xs) * 0.86
    for name, values, colour in stack:
        ax.bar(
            xs, values, width=width, bottom=bottom, align="edge", color=colour,
            label=_label(f"{name}  {_sig(float(values.sum()))} J"), linewidth=0,
        )  # fmt: skip
        bottom = bottom + values
    provenance = _str(_map(report.get("energy")).get("provenance"))
    title = "Energy per hour by component (J" + (f", {provenance})" if provenance else ")")
    _title(fig, title)
    ax.set_ylabel("J per hour")
    ax.set_ylim(bottom=0)
    ax.grid(axis="x", visible=False)
    frame.apply(ax)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="outside right upper")
    caption = (
        "Each bar is one hour of the ledger, stacked by component (the largest at the bottom, "
        "<em>unattributed</em> on top). Times in UTC."
    )
    return _Plot(ident, _svg(fig, ident, title), caption)


def _tiering_plot(report: Mapping[str, Any]) -> _Plot:
    from matplotlib.figure import Figure

    ident = "plot-tiering"
    tiering = _map(report.get("tiering"))
    if not tiering:
        return _Plot(ident, None, _TIERING_NONE)
    bars = [
        (
            "tiered, as run",
            _float(tiering.get("tiered_energy_j")),
            _band(tiering.get("tiered_band_j")),
            _TIERED,
        ),
        (
            "larger model on every tick",
            _float(tiering.get("always_on_energy_j")),
            _band(tiering.get("always_on_band_j")),
            _ALWAYS_ON,
        ),
    ]
    drawn = [(n, v, b, c) for n, v, b, c in bars if v is not None and v > 0]
    if not drawn:
        return _Plot(ident, None, "Not shown: the report has no positive energy for either tier.")
    values = [v for _, v, _, _ in drawn]
    log = max(values) / min(values) > _LOG_RATIO
    below, above = [], []
    for _, v, band, _ in drawn:
        lo, hi = band if band is not None else (v, v)
        lo = min(lo, v)
        if log and lo <= 0:
            lo = v
        below.append(v - lo)
        above.append(max(hi, v) - v)

    fig = Figure(figsize=(10.0, 2.4))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    ys = list(range(len(drawn)))[::-1]
    ax.barh(
        ys,
        values,
        height=0.55,
        color=[c for *_, c in drawn],
        log=log,
        xerr=[below, above],
        error_kw={"ecolor": _INK, "capsize": 4, "elinewidth": 1.0},
        zorder=2,
    )
    ax.set_yticks(ys, [_label(n) for n, *_ in drawn])
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0, labelsize=9.5, labelcolor=_INK)
    for (_, v, band, _), y, up in zip(drawn, ys, above, strict=True):
        text = _plain_quantity(v, "J")
        if band is not None:
            text += f"   band {_plain_quantity(band[0], 'J')} – {_plain_quantity(band[1], 'J')}"
        ax.annotate(
            _label(text), (v + up, y), xytext=(8, 0), textcoords="offset points",
            va="center", fontsize=9, color=_INK,
        )  # fmt: skip
    top = max(v + up for v, up in zip(values, above, strict=True))
    if log:
        low = min(v - lo for v, lo in zip(values, below, strict=True))
        ax.set_xlim(max(low, min(values) * 1e-3) / 3.0, top * 40.0)
        ax.set_xlabel("energy over the period (J, log scale)")
    else:
        ax.set_xlim(0, top * 1.5)
        ax.set_xlabel("energy over the period (J)")
    title = "Tiered vs always-on energy over the period"
    if len(drawn) == 2:
        title += f": always-on costs {_sig(values[1] / values[0])}× as much"
    _title(fig, title)
    caption = (
        "Bars are the central figures; whiskers span each figure's band"
        + ("; log scale, as the two differ by more than 100×" if log else "")
        + ". The assumptions are listed under Tiering."
    )
    return _Plot(ident, _svg(fig, ident, title), caption)


def _svg(fig: Figure, ident: str, title: str) -> str:
    """The figure as an SVG element to inline: no prolog, no metadata, ids unique to it."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    raw = buf.getvalue()
    svg = raw[raw.find("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    ids = set(re.findall(r'\sid="([^"]+)"', svg))
    svg = re.sub(r'(\sid=")([^"]+)"', lambda m: f'{m[1]}{ident}-{m[2]}"', svg)
    svg = re.sub(
        r'(href=")#([^"]+)"',
        lambda m: f'{m[1]}#{ident}-{m[2]}"' if m[2] in ids else m[0],
        svg,
    )
    svg = re.sub(
        r"url\(#([^)]+)\)", lambda m: f"url(#{ident}-{m[1]})" if m[1] in ids else m[0], svg
    )
    # matplotlib's <style> says "*{...}": keep it to this plot, not the whole page.
    svg = svg.replace("*{", f"#{ident}-svg *{{")
    opening = re.match(r"<svg\b[^>]*>", svg)
    assert opening is not None
    tag = re.sub(r'\s(width|height)="[^"]*"', "", opening[0])
    tag = tag.replace(
        "<svg",
        f'<svg id="{ident}-svg" class="plot-svg" role="img" aria-label="{_e(title)}"',
        1,
    )
    return tag + svg[opening.end() :].rstrip()


def _title(fig: Figure, title: str) -> None:
    """The plot's title, on the figure's left edge (all three plots alike)."""
    fig.suptitle(_label(title), x=0.008, ha="left", fontsize=10.5, fontweight="bold")


def _palette(n: int) -> list[str]:
    base = [
        "#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6",
        "#06b6d4", "#ec4899", "#84cc16", "#f97316", "#6366f1", "#14b8a6",
    ]  # fmt: skip
    return [base[i % len(base)] for i in range(n)]


def _runs(xs: Sequence[float], flags: Sequence[bool]) -> list[tuple[float, float]]:
    """The spans where ``flags`` hold, each to the next reading (the last: one step on)."""
    runs: list[tuple[float, float]] = []
    start: float | None = None
    for i, (x, on) in enumerate(zip(xs, flags, strict=True)):
        if on and start is None:
            start = x
        if start is not None and (not on or i == len(xs) - 1):
            runs.append((start, x if not on else x + _step(xs)))
            start = None
    return runs


def _step(xs: Sequence[float]) -> float:
    """The usual spacing of ``xs`` (hours); one hour when there is only one."""
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False) if b > a]
    return statistics.median(gaps) if gaps else 1.0


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _label(text: str) -> str:
    """Text for matplotlib taken literally: no mathtext, not hidden from the legend."""
    text = text.replace("$", r"\$")
    return " " + text if text.startswith("_") else text


# -- formatting --------------------------------------------------------------------------------

_NA = '<span class="na">—</span>'
_PREFIXES = ((1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _text(value: Any) -> str:
    text = _str(value)
    return _e(text) if text else _NA


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list | tuple):
        return None
    text = str(value)
    return text if text else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _band(value: Any) -> tuple[float, float] | None:
    items = _list(value)
    if len(items) != 2:
        return None
    low, high = _float(items[0]), _float(items[1])
    return (low, high) if low is not None and high is not None else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def _sig(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits (whole numbers never lose digits)."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def _prefix(reference: float) -> tuple[float, str]:
    size = abs(reference)
    if size == 0:
        return 1.0, ""
    for factor, prefix in _PREFIXES:
        if size >= factor:
            return factor, prefix
    return _PREFIXES[-1]


def _plain_quantity(value: float, unit: str) -> str:
    factor, prefix = _prefix(value)
    return f"{_sig(value / factor)} {prefix}{unit}"


def _quantity(value: Any, unit: str) -> str:
    number = _float(value)
    return _NA if number is None else _e(_plain_quantity(number, unit))


def _band_text(value: Any, unit: str) -> str:
    band = _band(value)
    if band is None:
        return ""
    factor, prefix = _prefix(max(abs(band[0]), abs(band[1])))
    return (
        f'<span class="band">band {_sig(band[0] / factor)}–{_sig(band[1] / factor)} '
        f"{prefix}{unit}</span>"
    )


def _band_cell(value: Any) -> str:
    band = _band(value)
    return _NA if band is None else f"{_sig(band[0])}–{_sig(band[1])}"


def _unit_small(value: str) -> str:
    """A card's figure with its unit set smaller: "130 J" -> 130 <small>J</small>."""
    number, space, unit = value.rpartition(" ")
    if not space or "<" in value:
        return value
    return f'{number}<span class="unit">{unit}</span>'


def _sep(text: str) -> str:
    return f"<br>{text}" if text else ""


def _pct(share: float | None) -> str:
    """A fraction as a percentage, with the digits a small or near-total share needs."""
    if share is None:
        return "—"
    pct = share * 100.0
    if pct == 0:
        return "0 %"
    if 99.0 < pct < 100.0:
        decimals = min(4, max(1, -math.floor(math.log10(100.0 - pct)) + 1))
        return f"{pct:.{decimals}f} %"
    return f"{_sig(pct, 2) if abs(pct) < 10 else f'{pct:.1f}'} %"


def _int_text(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _attr_num(value: float | None) -> str:
    return "" if value is None else repr(value)


def _num_cell(value: Any, klass: str, *, integer: bool = False) -> str:
    number = _float(value)
    if number is None:
        return f'<td class="num {klass}" data-value="">{_NA}</td>'
    text = _int_text(number) if integer else _sig(number)
    return f'<td class="num {klass}" data-value="{_attr_num(number)}">{text}</td>'


def _prov_html(provenance: str | None) -> str:
    if not provenance:
        return _NA
    return f'<span class="prov prov-{_slug(provenance)}">{_e(provenance)}</span>'


def _datetime(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (a naive one is taken as UTC)."""
    text = _str(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _when(value: Any, *, seconds: bool = True, date: bool = True) -> str | None:
    moment = value if isinstance(value, datetime) else _datetime(value)
    if moment is None:
        return None
    fmt = ("%Y-%m-%d " if date else "") + ("%H:%M:%S" if seconds else "%H:%M")
    return moment.astimezone(UTC).strftime(fmt)


def _when_html(value: Any, *, date: bool = True) -> str:
    """A time for the page, in UTC; an unreadable one is shown as given, escaped."""
    text = _when(value, date=date)
    if text is not None:
        return _e(text)
    return _text(value)


_CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --soft: #f5f7fa;
  --accent: #2563eb; --warn-bg: #fff7e6; --warn: #b45309; }
* { box-sizing: border-box; }
html { background: #eef1f5; }
body { margin: 0; color: var(--ink); font: 14px/1.5 system-ui, -apple-system, "Segoe UI",
  Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1120px; margin: 24px auto; padding: 28px 36px 20px; background: #fff;
  border: 1px solid var(--line); border-radius: 10px; box-shadow: 0 1px 3px rgba(0,0,0,.06); }
h1 { font-size: 24px; margin: 0 0 12px; letter-spacing: -.01em; }
h2 { font-size: 17px; margin: 30px 0 10px; padding-bottom: 6px;
  border-bottom: 2px solid var(--line); }
h3 { font-size: 14px; margin: 16px 0 6px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.muted, .note, .band, figcaption, footer { color: var(--muted); }
.note { margin: 4px 0 10px; }
.band { font-size: 12.5px; white-space: nowrap; }
.na { color: #9aa5b1; }
.empty { padding: 10px 14px; background: var(--soft); border-radius: 6px; color: var(--muted);
  font-style: italic; margin: 6px 0; }
.banner { margin: 0 0 14px; padding: 10px 14px; border-radius: 6px; font-weight: 600; }
.banner-estimated { background: var(--warn-bg); color: var(--warn); border: 1px solid #fcd34d;
  border-left: 6px solid #f59e0b; font-size: 15px; }
.banner-note { background: var(--soft); color: var(--muted); border-left: 4px solid #9aa5b1;
  font-weight: 500; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; }
dl.meta dt { color: var(--muted); font-weight: 600; }
dl.meta dd { margin: 0; }
.prov { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
  font-weight: 600; background: var(--soft); border: 1px solid var(--line); }
.prov-measured { background: #dcfce7; border-color: #86efac; color: #166534; }
.prov-attributed { background: #dbeafe; border-color: #93c5fd; color: #1e40af; }
.prov-estimated { background: #fef3c7; border-color: #fcd34d; color: #92400e; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  background: linear-gradient(#fff, #fafbfc); }
.card .label { font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); font-weight: 600; }
.card .value { font-size: 24px; font-weight: 700; margin: 2px 0; white-space: nowrap;
  font-variant-numeric: tabular-nums; }
.card .value .unit { font-size: 15px; font-weight: 600; margin-left: 4px; color: var(--muted); }
.card .detail { font-size: 12.5px; color: var(--muted); }
.card .detail .band { font-size: 12.5px; }
table.data { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.data.compact { width: auto; min-width: 50%; }
table.data th, table.data td { padding: 5px 10px; text-align: left;
  border-bottom: 1px solid var(--line); vertical-align: baseline; }
table.data thead th { font-size: 12px; text-transform: uppercase; letter-spacing: .03em;
  color: var(--muted); border-bottom: 2px solid #cbd2d9; white-space: nowrap; }
table.data tbody tr:nth-child(even) { background: #fafbfc; }
table.data tbody th { font-weight: 500; }
#components tbody th { font-family: ui-monospace, "DejaVu Sans Mono",
  Menlo, Consolas, monospace; font-size: 13px; }
table.data .num { text-align: right; white-space: nowrap; }
table.data tr.unattributed th, table.data tr.unattributed td { color: var(--muted);
  font-style: italic; }
table.data tfoot tr.total th, table.data tfoot tr.total td { font-weight: 700;
  border-top: 2px solid #9aa5b1; border-bottom: none; font-family: inherit; }
.pct { display: inline-block; min-width: 4.2em; }
.sharebar { display: inline-block; width: 64px; height: 8px; margin-left: 10px;
  background: var(--soft); border-radius: 4px; overflow: hidden; vertical-align: middle; }
.sharebar .bar { display: block; height: 100%; background: var(--accent); }
.sharebar.blank { background: none; }
td.time { white-space: nowrap; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace;
  font-size: 13px; }
td.culprit { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 13px;
  word-break: break-all; }
.status { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
  background: var(--soft); border: 1px solid var(--line); }
.status-done { background: #dcfce7; border-color: #86efac; color: #166534; }
.status-failed, .status-error { background: #fee2e2; border-color: #fca5a5; color: #991b1b; }
ul#assumptions, ol#method { margin: 6px 0; padding-left: 22px; }
ul#assumptions li, ol#method li { margin: 3px 0; }
figure.plot { margin: 18px 0 26px; }
figure.plot svg { display: block; width: 100%; height: auto; }
figure.plot figcaption { font-size: 12.5px; margin-top: 4px; padding-left: 4px; }
footer { margin-top: 30px; padding-top: 10px; border-top: 1px solid var(--line);
  font-size: 12px; }
@media print { html { background: #fff; } main { border: none; box-shadow: none; margin: 0;
  max-width: none; } figure.plot, table.data tr { break-inside: avoid; } }
"""
