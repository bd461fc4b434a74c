from typing import Any

def feed(
    states: list[tuple[Any, ...]],
    xs: Any,
    add: Any,
    offsets: Any,
    upper_only: bool,
    fill: bool,
    out: Any,
    edges: Any | None,
    slack: Any | None = None,
) -> None: ...
def feed_number(
    state: tuple[Any, ...], x: float, due: bool, upper_only: bool, fill: bool
) -> tuple[float, float, float]: ...
def due(ts: Any, entry_t: float, every: float, out: Any) -> float: ...
def columns(
    streams: list[tuple[Any, ...]],
    matrix: Any,
    ts: Any,
    every: float,
    warmup_s: float,
    settled_s: float,
    context: int,
    min_std: float,
    rel_std: float,
    clip: float,
    surprise: Any,
    edges: Any,
    due: Any,
    full: Any,
    learning: Any,
    young: Any,
    scaled: Any,
) -> int: ...
def memory(
    streams: list[tuple[Any, ...]],
    matrix: Any,
    ts: Any,
    width: int,
    vigilance: float,
    every: float,
    warmup: float,
    novelty: Any,
) -> int: ...
def shapes(
    errors_states: list[tuple[Any, ...]] | None,
    errors: Any,
    due: Any,
    full: Any,
    learning: Any,
    young: Any,
    margin: float,
    young_margin: float,
    surprise: Any,
    shape: Any,
) -> None: ...
def cells(
    states: list[tuple[Any, ...]],
    matrix: Any,
    due: Any,
    upper_only: bool,
    fill: bool,
    out: Any,
) -> None: ...
