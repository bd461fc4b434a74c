"""The exception tree. Every error vigil raises on purpose is a ``VigilError``.

::

    VigilError                 reaches main() as exit code 2 with its message
    ├── ConfigError            a config file that cannot be used (names the file and key)
    ├── SensorUnavailable      a sensor cannot work here: the runtime marks it down and retries
    ├── SensorReadError        one reading failed: skipped, the next poll tries again
    ├── TraceError             a trace file that cannot be used at all
    ├── ModelError             a model file missing, corrupt or not matching its card
    ├── StorageError           the database cannot be opened, read or written
    └── CalibrationError       no measured power source, or the measurement cannot be used

Each exception builds its message from data and keeps the data as attributes.
Third-party errors (psutil, SQLAlchemy) are translated at the boundary with ``raise ... from``.
"""

from __future__ import annotations


class VigilError(Exception):
    """Base of every deliberate vigil error."""


class ConfigError(VigilError):
    def __init__(self, path: str, key: str, reason: str) -> None:
        self.path, self.key, self.reason = path, key, reason
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {reason}")


class SensorUnavailable(VigilError):
    def __init__(self, sensor: str, reason: str) -> None:
        self.sensor, self.reason = sensor, reason
        super().__init__(f"sensor {sensor} unavailable: {reason}")


class SensorReadError(VigilError):
    def __init__(self, sensor: str, reason: str) -> None:
        self.sensor, self.reason = sensor, reason
        super().__init__(f"sensor {sensor} read failed: {reason}")


class TraceError(VigilError):
    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


class ModelError(VigilError):
    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"model {path}: {reason}")


class StorageError(VigilError):
    def __init__(self, target: str, reason: str) -> None:
        self.target, self.reason = target, reason
        super().__init__(f"database {target}: {reason}")


class CalibrationError(VigilError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"power calibration: {reason}")
