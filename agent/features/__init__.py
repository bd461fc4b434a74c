"""Stage 1, features: Samples -> named numeric streams (later: rolling windows). Pure."""
