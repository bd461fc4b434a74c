"""``vigil report power`` and ``vigil power calibrate``: the commands' work, out of cli.py."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
from pathlib import Path

from agent.clock import SystemClock
from agent.config import Config
from agent.errors import StorageError, VigilError
from agent.extras import install_command
from agent.memory.db import open_engine, upgrade

logger = logging.getLogger(__name__)


def report_power(args: argparse.Namespace, db: str) -> int:
    from agent.cli import parse_since, since_window
    from agent.report.power import build_report
    from agent.report.terminal import output_console, render, write_csv

    if args.html is not None and importlib.util.find_spec("matplotlib") is None:
        raise VigilError(f"the HTML report draws with matplotlib: {install_command('report')}")
    if not Path(db).exists() and "://" not in db:
        raise StorageError(db, "no such database (vigil run, replay --db or demo make one)")
    engine = open_engine(db)
    upgrade(engine)
    now = SystemClock().now()
    text = args.since.strip()
    window = since_window(text)
    start = None if text == "all" or window is not None else parse_since(text, now)
    report = build_report(engine, generated=now, window_s=window, start=start)
    engine.dispose()
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    else:
        render(report, output_console())
    if args.csv is not None:
        n = write_csv(report, args.csv)
        print(f"report: {n} rows written to {args.csv}", file=sys.stderr)
    if args.html is not None:
        from agent.report.html import render_html

        args.html.write_text(render_html(report), encoding="utf-8")
        print(f"report: page written to {args.html}", file=sys.stderr)
    return 0


def calibrate(args: argparse.Namespace, config: Config, db: str) -> int:
    from agent.power.calibrate import Block, require_probe, run_calibration
    from agent.power.calibrations import save_calibration
    from agent.power.probe import find_probe

    clock = SystemClock()
    battery = config.sensors.battery
    probe = require_probe(
        find_probe(
            powercap_root=args.powercap,
            power_supply_dir=battery.power_supply_dir,
            termux_timeout_s=battery.termux_timeout_s,
        )
    )
    total = args.pairs * (args.busy_s + args.idle_s)
    print(
        f"calibrating against {probe.label}: {args.pairs} pairs of {args.busy_s:g} s busy and "
        f"{args.idle_s:g} s idle ({total / 60:.1f} min); keep the machine otherwise idle",
        file=sys.stderr,
    )

    def on_block(block: Block) -> None:
        print(
            f"  pair {block.pair + 1:>2} {block.kind:<4} {block.power_w:8.3f} W "
            f"({block.cores:.2f} cores busy, {block.seconds:.1f} s)",
            file=sys.stderr,
        )

    try:
        result = run_calibration(
            probe,
            clock,
            pairs=args.pairs,
            busy_s=args.busy_s,
            idle_s=args.idle_s,
            on_block=on_block,
        )
    finally:
        probe.close()
    engine = open_engine(db)
    upgrade(engine)
    save_calibration(engine, result, clock.now())
    engine.dispose()
    print(
        f"k = {result.k_w:.2f} W per busy core [{result.ci_low_w:.2f}-{result.ci_high_w:.2f}, "
        f"95 %]; idle {result.idle_w:.2f} W, busy {result.busy_w:.2f} W; kept in {db} "
        "(vigil report power uses it)"
    )
    return 0
