"""Stage 4, triggers: rules over stream values (and later events) -> ``rule.fired``."""
