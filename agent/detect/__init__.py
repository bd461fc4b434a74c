"""Stages 2-3, judgements: sensor outages now; geofences, places and the tiny model later."""
