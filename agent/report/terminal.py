"""The power report for a terminal (rich tables) and as a long CSV, both from the report dict."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

#: The width of tables written to a file or a pipe: rich would take 80 columns and cut the
#: wakes' times and causes short ("2026-…", "cpu_r…") where nobody reads them in a terminal.
FILE_WIDTH = 200


class _PipedConsole(Console):
    """A console whose broken pipe is a ``BrokenPipeError``, which the command line ends as a
    pipe's writer does (rich's own ends the process with 1, vigil's code for a bug)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def output_console() -> Console:
    """A console for stdout: the terminal's width, or ``FILE_WIDTH`` when stdout is no terminal
    (unless ``COLUMNS`` says otherwise)."""
    console = _PipedConsole(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = _PipedConsole(highlight=False, width=FILE_WIDTH)
    return console


_ENERGY_UNITS = ((3.6e6, "kWh"), (3600.0, "Wh"), (3.6, "mWh"), (1.0, "J"), (0.001, "mJ"))
_POWER_UNITS = ((1.0, "W"), (0.001, "mW"), (1e-6, "µW"))


def _unit(value: float, units: Sequence[tuple[float, str]]) -> tuple[float, str]:
    for scale, name in units:
        if abs(value) >= scale:
            return scale, name
    return units[-1]


def _show(value: float | None, units: Sequence[tuple[float, str]], like: float | None) -> str:
    if value is None:
        return "-"
    scale, name = _unit(like if like is not None else value, units)
    return f"{value / scale:,.3g} {name}"


def energy(j: float | None, like: float | None = None) -> str:
    """Joules in the unit that reads best (Wh, mWh, J, mJ), or in ``like``'s unit."""
    return _show(j, _ENERGY_UNITS, like)


def power(w: float | None, like: float | None = None) -> str:
    return _show(w, _POWER_UNITS, like)


def band(values: Sequence[float] | None, unit: str = "J", like: float | None = None) -> str:
    """A band in the unit of ``like`` (the central figure it belongs to)."""
    if not values:
        return ""
    show = energy if unit == "J" else power
    return f"[{show(values[0], like)} – {show(values[1], like)}]"


def share(value: float | None) -> str:
    if value is None:
        return "unknown"
    pct = 100 * value
    return f"{pct:.2f} %" if pct >= 0.1 or pct == 0 else f"{pct:.2g} %"


def render(report: Mapping[str, Any], console: Console) -> None:
    period, device, energy_info = report["period"], report["device"], report["energy"]
    agent, coverage = report["agent"], report["coverage"]
    console.print(
        f"[bold]vigil power[/] · {period['start']} → {period['end']} ({period['hours']:.1f} h) · "
        f"{device['host']} ({device['cpu']}, {device['cores']} cores)"
    )
    console.print(
        f"coverage: {coverage['ledger_hours']:.1f} h of ledger ({100 * coverage['share']:.0f} %)"
        f", from {', '.join(coverage['origins']) or 'nothing'}"
    )
    style = "bold yellow" if energy_info["provenance"] == "estimated" else "bold green"
    console.print(Text(energy_info["banner"], style=style))
    console.print()
    line = (
        f"[bold]vigil itself[/]: {agent['cpu_s']:.2f} CPU s ({agent['cpu_pct_of_core']:.3f} % of "
        f"one core; {agent['cpu_pct_running']:.3f} % without start-up) · "
        f"{energy(agent['energy_j'])} "
        f"{band(agent['energy_band_j'], like=agent['energy_j'])}"
        f" · average {power(agent['avg_power_w'])} "
        f"{band(agent['avg_power_band_w'], 'W', agent['avg_power_w'])}"
    )
    console.print(line)
    drain = report["device_drain"]
    if drain is not None:
        console.print(
            f"device drain (measured): {energy(drain['energy_j'])} over "
            f"{drain['discharging_hours']:.1f} h discharging, average "
            f"{power(drain['avg_power_w'])}; vigil's share {share(agent['share_of_device'])}"
        )
    if agent["battery_pct_per_day"] is not None or agent["battery_mah_per_day"] is not None:
        parts = []
        if agent["battery_pct_per_day"] is not None:
            parts.append(f"{agent['battery_pct_per_day']:.2f} % of the battery")
        if agent["battery_mah_per_day"] is not None:
            parts.append(f"{agent['battery_mah_per_day']:.1f} mAh")
        console.print("projected battery cost per day: " + ", ".join(parts))
    elif drain is None:
        console.print("device drain: unknown (no battery readings while discharging)")
    tiering = report["tiering"]
    if tiering is not None:
        console.print(
            f"[bold]tiering saved[/] {energy(tiering['saved_energy_j'])} "
            f"{band(tiering['saved_band_j'], like=tiering['saved_energy_j'])} "
            f"({100 * tiering['saved_share']:.2f} %) against "
            f"the larger model on every tick: {energy(tiering['always_on_energy_j'])} always on "
            f"vs {energy(tiering['tiered_energy_j'])} tiered (estimate)"
        )
    else:
        console.print(
            "tiering saved: not shown (no wake of the larger model has been measured yet: "
            "vigil replay --wake, vigil explain EVENT_ID, or a daemon wake measures one)"
        )
    console.print()
    console.print(_components(report["components"]))
    console.print(_wakes(report["wakes"]))
    if tiering is not None:
        console.print("[bold]Tiering assumptions[/]")
        for text in tiering["assumptions"]:
            console.print(f"  · {text}")
    console.print("[bold]Method[/]")
    for text in report["method"]:
        console.print(f"  · {text}")


def _components(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="What each part of vigil cost", title_justify="left")
    for name, justify in [
        ("component", "left"),
        ("CPU s", "right"),
        ("calls", "right"),
        ("energy", "right"),
        ("band", "right"),
        ("share", "right"),
        ("provenance", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row["name"],
            f"{row['cpu_s']:.3f}",
            f"{row['calls']:,}" if row["calls"] else "–",
            energy(row["energy_j"]),
            band(row["energy_band_j"], like=row["energy_j"]),
            f"{100 * row['share']:.1f} %",
            row["provenance"],
        )
    total_cpu = sum(r["cpu_s"] for r in rows)
    table.add_section()
    table.add_row(
        "total",
        f"{total_cpu:.3f}",
        "",
        energy(sum(r["energy_j"] for r in rows)),
        "",
        "100.0 %" if total_cpu > 0 else "–",
        "",
    )
    return table


def _wakes(wakes: Mapping[str, Any]) -> Table | Text:
    if not wakes["items"]:
        return Text("No wakes of the larger model in this period.")
    table = Table(title=f"Wakes of the larger model ({wakes['count']})", title_justify="left")
    for name in (
        "time",
        "triggers",
        "cause",
        "culprit",
        "status",
        "wall s",
        "CPU s",
        "energy",
        "tokens in/out",
    ):
        table.add_column(name)
    for w in wakes["items"]:
        table.add_row(
            w["t"],
            ", ".join(t for t in w["triggers"] if t),
            w["cause"],
            w["culprit"] or "–",
            w["status"],
            f"{w['wall_s']:.1f}" if w["wall_s"] is not None else "–",
            f"{w['cpu_s']:.2f}" if w["cpu_s"] is not None else "–",
            energy(w["energy_j"]),
            f"{w['tokens_in'] or 0}/{w['tokens_out'] or 0}",
        )
    return table


def write_csv(report: Mapping[str, Any], path: Path) -> int:
    """The long format: one row per hour × component. Returns the rows written."""
    timeline = report["timeline"]
    provenance = report["energy"]["provenance"]
    hours = timeline["hours"]
    cpu = timeline["components_cpu_s"]
    device = _device_per_hour(timeline["device"], hours)
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "hour",
                "window_s",
                "component",
                "cpu_s",
                "energy_j",
                "provenance",
                "device_w",
                "battery_pct",
            ]
        )
        for name, values in sorted(timeline["components_j"].items()):
            for i, hour in enumerate(hours):
                watts, pct = device.get(hour, (None, None))
                writer.writerow(
                    [
                        hour,
                        3600,
                        name,
                        f"{cpu[name][i]:.6g}",
                        f"{values[i]:.6g}",
                        provenance,
                        _num(watts),
                        _num(pct),
                    ]
                )
                n += 1
    return n


def _device_per_hour(
    points: Sequence[Mapping[str, Any]], hours: Sequence[str]
) -> dict[str, tuple[float | None, float | None]]:
    """Mean device power and the last battery level in each hour (ISO hour prefixes)."""
    sums: dict[str, list[float]] = {}
    last: dict[str, float] = {}
    for p in points:
        hour = p["t"][:13]
        if p["power_w"] is not None:
            sums.setdefault(hour, []).append(p["power_w"])
        if p["battery_pct"] is not None:
            last[hour] = p["battery_pct"]
    out: dict[str, tuple[float | None, float | None]] = {}
    for hour in hours:
        key = hour[:13]
        watts = sums.get(key)
        out[hour] = (sum(watts) / len(watts) if watts else None, last.get(key))
    return out


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
