"""The runtime: where samples come from (live sensors or a trace) and the one loop."""
