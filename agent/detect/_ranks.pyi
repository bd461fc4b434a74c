from typing import Any

def feed(
    states: list[tuple[Any, ...]],
    xs: Any,
    add: Any,
    offsets: Any,
    upper_only: bool,
    out: Any,
    edges: Any | None,
) -> None: ...
def due(ts: Any, entry_t: float, every: float, out: Any) -> float: ...
