"""CPU time per poll of each sensor that works on this machine (this thread's CPU clock).

    python bench/sensors.py [--polls 50]

Location is measured against a static source (gpsd's own cost is measured with the gpsd
tests); apps with whatever display this process sees (none: processes only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from agent.config import BatterySensorConfig, Config, LocationSensorConfig, SensorsConfig
from agent.errors import SensorReadError, SensorUnavailable
from agent.platform import is_termux
from agent.sensors import plan_sensors
from agent.sensors.battery import BatterySensor
from agent.sensors.location import StaticLocationSensor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=50)
    args = parser.parse_args()
    config = Config(sensors=SensorsConfig(location=LocationSensorConfig(source="none")))
    plans = plan_sensors(config, termux=is_termux(), environ=os.environ)
    sensors = [p.sensor for p in plans if p.sensor is not None]
    static = LocationSensorConfig(source="static", static_lat=46.05, static_lon=14.5)
    sensors.append(StaticLocationSensor(static))
    if not any(s.name == "battery" for s in sensors):  # no battery here: a recorded layout
        layout = Path(__file__).parents[1] / "tests/data/power_supply/thinkpad"
        sensors.append(BatterySensor(BatterySensorConfig(power_supply_dir=str(layout))))
    off = [f"{p.name} ({p.reason})" for p in plans if p.sensor is None]
    print(f"{'sensor':<10} {'polls':>6} {'mean ms':>9} {'median ms':>10} {'max ms':>8}")
    for sensor in sensors:
        costs = []
        now = 1_780_272_000.0
        for _ in range(args.polls):
            start = time.thread_time()
            try:
                sensor.read(now)
            except (SensorUnavailable, SensorReadError):
                pass
            costs.append((time.thread_time() - start) * 1e3)
            now += sensor.interval_s
        label = sensor.name
        if isinstance(sensor, StaticLocationSensor):
            label = "location*"
        elif isinstance(sensor, BatterySensor) and "tests/data" in str(vars(sensor).get("_dir")):
            label = "battery**"
        print(
            f"{label:<10} {len(costs):>6} {statistics.mean(costs):>9.3f} "
            f"{statistics.median(costs):>10.3f} {max(costs):>8.3f}"
        )
        sensor.close()
    print("* static source; ** the tests' ThinkPad sysfs layout (no battery here)")
    if off:
        print("off here:", "; ".join(off))


if __name__ == "__main__":
    main()
