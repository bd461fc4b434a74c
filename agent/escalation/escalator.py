"""The escalation stage's I/O: a due wake -> context from memory -> diagnosis -> the wakes and
findings rows and the ``wake.done`` event -> the backend's question, answered inline (replay,
``vigil explain``) or on a worker thread (the daemon, whose loop must keep polling).

``wake.done`` carries only the diagnosis, so it is the same whether or not, and however well,
a model answered; the model's text, its check and its cost are written to the wake's rows
when it answers, and a backend that fails adds ``wake.failed``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection

from agent.config import EscalationConfig
from agent.errors import StorageError
from agent.escalation.backends import Answer, Backend, Job
from agent.escalation.context import Context, build_context
from agent.escalation.diagnosis import Diagnosis, diagnose
from agent.escalation.policy import WakeRequest
from agent.escalation.prompt import check, first_sentence, messages
from agent.escalation.redact import Redacted, redact
from agent.memory.recall import Recall
from agent.memory.store import MemoryStore
from agent.memory.wakes import WakeStore
from agent.power.meter import LARGE_MODEL, NullMeter, PowerMeter
from agent.samples import Event, to_us

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Asked:
    """A question out to the backend, with what its answer is checked against."""

    t: float
    job: Job
    redacted: Redacted
    culprit: str | None
    cause: str


@dataclass(frozen=True)
class _Prepared:
    """A wake before it is written: its context, diagnosis and wake row."""

    request: WakeRequest
    context: Context
    diagnosis: Diagnosis
    row: dict[str, Any]


@dataclass(frozen=True)
class WakeResult:
    """A wake as ``vigil explain`` shows it (no context and no diagnosis: a second look at
    an incident whose cause no later look could change, never made)."""

    wake_id: int | None
    context: Context | None
    diagnosis: Diagnosis | None
    events: list[Event]


HOUR_S = 3600.0
DAY_S = 86_400.0

#: The causes no later look can change: the diagnosis names them first (a sensor's readings
#: are not facts, an arrival is one) or above every other resource (swap). Their second look
#: is not made: a look reads a week of vitals (about a second of CPU in replay).
FINAL_CAUSES = frozenset({"sensor_fault", "unusual_place", "swap_pressure"})


class Escalator:
    def __init__(
        self,
        config: EscalationConfig,
        store: MemoryStore,
        backend: Backend | None,
        *,
        origin: str,
        background: bool = False,
    ) -> None:
        self.config = config
        self.store = store
        self.backend = backend
        self.origin = origin
        #: The larger model's child is charged to ``large_model`` here (``drive`` sets it).
        self.meter: PowerMeter = NullMeter()
        self._recall = Recall(store)
        self._wakes = WakeStore(store.engine)
        self._runner: _Runner = (
            _ThreadRunner(backend, config.keep_warm_s)
            if background and backend is not None
            else _Inline(backend)
        )

    @property
    def waiting(self) -> bool:
        """An answer has come in and waits for ``collect``."""
        return self._runner.waiting

    def wake(self, request: WakeRequest, *, store_event: bool = False) -> WakeResult:
        """One wake (``wake_all`` of one): ``vigil explain`` adds a wake and a finding, no
        events; asked by hand, it wakes the model whatever the diagnosis."""
        return self.wake_all([request], store_event=store_event, asked=True)[0]

    def wake_all(
        self, requests: Sequence[WakeRequest], *, store_event: bool = False, asked: bool = False
    ) -> list[WakeResult]:
        """Wakes: each one's context, diagnosis, wake row and finding, all written in one
        commit with the batch so far (the samples that woke them), and with ``store_event``
        their ``wake.done`` too: a kill keeps every wake of a part of the samples or none of
        them with it (a commit per wake kept the part's samples with the first wake only,
        and a replay resumed after them never ran the others). Then the larger model is
        asked for each, when there is one.

        A wake whose diagnosis names no cause (``unknown``) wakes nothing, unless
        ``wake_unknown`` or ``asked`` (``vigil explain``): the larger model only words the
        diagnosis, and "no cause stands out" is not worth its battery. It is recorded as a
        ``wake.suppressed`` (reason ``no_cause``, with the diagnosis's summary; ``vigil
        explain`` on it runs the wake by hand), with no wake row."""
        early, quiet, recorded = ({}, set(), None) if asked else self._over_budget(requests)
        prepared, confirmed = self._looked(requests, skip=early.keys() | quiet)
        held = early | {
            i: _suppressed(p, "no_cause")
            for i, p in enumerate(prepared)
            if p is not None
            and i not in confirmed
            and p.diagnosis.cause == "unknown"
            and not (asked or self.config.wake_unknown)
        }
        if not asked:
            held |= self._held_back(prepared, skip=held.keys() | confirmed, woken=recorded)
        woken = [
            p
            for i, p in enumerate(prepared)
            if p is not None and i not in held and i not in confirmed
        ]
        started: list[int] = []

        def write(conn: Connection) -> list[Event]:
            started.extend(self._wakes.start(**p.row, conn=conn) for p in woken)
            if not store_event:
                return []
            return [_done(p, w) for p, w in zip(woken, started, strict=True)] + list(held.values())

        written = self.store.try_flush(also=write)
        wake_ids: list[int | None] = list(started) if written else [None] * len(woken)
        if not written:
            for p in woken:
                logger.error(
                    "wake at %s not recorded: the database refused the commit", p.request.t
                )
                self.store.count("wake.write_failed")
                if store_event:
                    self.store.record_events([_done(p, None)])
            if store_event and held:
                self.store.record_events(list(held.values()))
        ids = iter(wake_ids)
        results = []
        for i, looked in enumerate(prepared):
            if i in quiet:
                self.store.count("wake.second_look_held")
                results.append(WakeResult(None, None, None, []))
                continue
            if i in confirmed:
                self.store.count("wake.second_look_same")
                if looked is None:
                    results.append(WakeResult(None, None, None, []))
                else:
                    results.append(WakeResult(None, looked.context, looked.diagnosis, []))
                continue
            if i in held:
                reason = held[i].data["reason"]
                self.store.count(f"wake.{reason}")
                logger.debug("wake at %s: %s, the model stays asleep", held[i].t, reason)
                context, diagnosis = (looked.context, looked.diagnosis) if looked else (None, None)
                results.append(WakeResult(None, context, diagnosis, [held[i]]))
                continue
            assert looked is not None
            p, diagnosis = looked, looked.diagnosis
            wake_id = next(ids)
            self.store.count("wake.started")
            logger.debug(
                "wake at %s: %s, culprit %s", p.request.t, diagnosis.cause, diagnosis.culprit
            )
            events = [_done(p, wake_id)]
            if self.backend is not None and wake_id is not None:
                redacted = redact(p.context, diagnosis, self.config)
                job = Job(wake_id, messages(redacted.facts), redacted.payload)
                self._runner.submit(
                    _Asked(p.request.t, job, redacted, diagnosis.culprit, diagnosis.cause)
                )
                answers = self.collect()
                if store_event:
                    self.store.record_events(answers)
                events += answers
            results.append(WakeResult(wake_id, p.context, diagnosis, events))
        return results

    def _over_budget(
        self, requests: Sequence[WakeRequest]
    ) -> tuple[dict[int, Event], set[int], dict[int, float] | None]:
        """The wakes the budget holds before they are looked at: ``max_per_hour`` or
        ``max_per_day`` incidents are recorded as having woken the model before each, so
        whatever its diagnosis the model stays asleep, and the look (a week of vitals read,
        about a second of CPU) is not made (nor known to be a repeat). A first look is held
        with a ``wake.suppressed``; a second look (of an incident that did not wake the
        model: one that did is not held) says nothing, its incident's first look has. The
        wakes of these requests are counted after their looks (``_held_back``), from the
        incidents read here (returned; None: not read)."""
        if not requests:
            return {}, set(), None
        try:
            woken = self._wakes.woken_since(requests[0].t - DAY_S)
        except StorageError:  # (``_held_back`` says so)
            return {}, set(), None
        held, quiet = {}, set()
        for i, request in enumerate(requests):
            if request.second_look and to_us(request.start_t) in woken:
                continue
            limit = self._limit(woken, request.t)
            if limit is None:
                continue
            if request.second_look:
                quiet.add(i)
            else:
                held[i] = _unlooked(request, *limit)
        return held, quiet, woken

    def _limit(self, woken: dict[int, float], t: float) -> tuple[str, int] | None:
        """The budget a wake at ``t`` is over, after the incidents ``woken`` (first trigger
        times) woke the model, as (reason, limit); None: within it."""
        day = [w for w in woken.values() if t - w < DAY_S]
        per_hour, per_day = self.config.max_per_hour, self.config.max_per_day
        if sum(1 for w in day if t - w < HOUR_S) >= per_hour:
            return "max_per_hour", per_hour
        if len(day) >= per_day:
            return "max_per_day", per_day
        return None

    def _looked(
        self, requests: Sequence[WakeRequest], skip: Set[int] = frozenset()
    ) -> tuple[list[_Prepared | None], set[int]]:
        """Each request prepared, in order (not those in ``skip``: None), and the second looks
        that change nothing: their diagnosis names no cause, or the cause the incident's last
        finding named (a wake earlier in these requests, else the one recorded; a culprit that
        moved between processes of one program, a browser's, is no news). They wake nothing
        and say nothing. A second look at a cause in ``FINAL_CAUSES`` is not prepared at
        all."""
        said: dict[float, str] = {}  # each incident's cause, in these requests
        prepared: list[_Prepared | None] = []
        confirmed = set()
        for i, request in enumerate(requests):
            if i in skip:
                prepared.append(None)
                continue
            start, before = request.start_t, None
            if request.second_look:
                before = said[start] if start in said else self._diagnosed(start)
                if before in FINAL_CAUSES:
                    prepared.append(None)
                    confirmed.add(i)
                    continue
            p = self._prepare(request)
            prepared.append(p)
            cause = p.diagnosis.cause
            if request.second_look and cause in ("unknown", before):
                confirmed.add(i)
            elif cause != "unknown":
                said[start] = cause
        return prepared, confirmed

    def _held_back(
        self,
        prepared: Sequence[_Prepared | None],
        skip: Set[int],
        woken: dict[int, float] | None = None,
    ) -> dict[int, Event]:
        """The wakes (not in ``skip``), in order, that leave the model asleep:

        - a **repeat**: its diagnosis names the cause and culprit of a finding less than
          ``repeat_s`` before (recorded, or a wake earlier in these): the user has been told,
          and the model would word the same sentence again (a swap storm's triggers every
          few minutes, a runaway's every ten); the event has the finding's ``finding_t``;
        - over the **budget**: ``max_per_hour`` incidents woke the model in the last hour,
          or ``max_per_day`` in the last day (recorded, or earlier in these); the event has
          the ``limit``. Only incidents that woke the model count: a repeat or a wake with no
          cause costs no model and must not hold back the next incident. A second look of an
          incident that woke the model is that incident's: it neither counts nor is held.

        Each is a ``wake.suppressed`` with its reason. ``woken``: the incidents that woke
        the model since a day before the first wake (``WakeStore.woken_since``), if read
        already. Memory not read: none is held."""
        due = [(i, p) for i, p in enumerate(prepared) if p is not None and i not in skip]
        if not due:
            return {}
        window = self.config.repeat_s
        first_t = due[0][1].request.t
        try:
            said = self._wakes.said_since(first_t - window) if window > 0.0 else []
            if woken is None:
                woken = self._wakes.woken_since(first_t - DAY_S)
        except StorageError as exc:
            logger.warning("earlier wakes not read, every wake wakes the model: %s", exc)
            return {}
        last = {(s.cause, s.culprit): s.t for s in said}
        held = {}
        for i, p in due:
            t, key = p.request.t, (p.diagnosis.cause, p.diagnosis.culprit)
            start = to_us(p.request.start_t)
            before = last.get(key)
            if window > 0.0 and before is not None and t - before < window:
                held[i] = _suppressed(p, "repeat", finding_t=before)
                continue
            if not (p.request.second_look and start in woken):
                limit = self._limit(woken, t)
                if limit is not None:
                    reason, most = limit
                    held[i] = _suppressed(p, reason, limit=most)
                    continue
                woken[start] = t
            last[key] = t
        return held

    def _diagnosed(self, start_t: float) -> str | None:
        try:
            return self._wakes.diagnosed(start_t)
        except StorageError as exc:  # then the second look is a wake of its own
            logger.warning("the first look of the incident at %s not read: %s", start_t, exc)
            return None

    def _prepare(self, request: WakeRequest) -> _Prepared:
        """A wake's context, diagnosis and wake row, not written yet."""
        context = build_context(self._recall, request, self.config)  # pending rows count too
        diagnosis = diagnose(context)
        backend = self.backend
        row: dict[str, Any] = {
            "t": request.t,
            "start_t": request.start_t,
            "triggers": [dict(t.data) | {"t": t.t, "rule": t.subject} for t in request.triggers],
            "origin": self.origin,
            "backend": backend.name if backend else "none",
            "model": backend.model if backend else None,
            "model_sha256": backend.model_sha256() if backend else None,
            "status": "running" if backend else "none",
            "finding": {
                "cause": diagnosis.cause,
                "culprit": diagnosis.culprit,
                "culprit_kind": diagnosis.culprit_kind,
                "evidence": _dumps(diagnosis.evidence()),
                "summary": diagnosis.summary,
                "advice": diagnosis.advice,
            },
        }
        return _Prepared(request, context, diagnosis, row)

    def answers(self) -> list[Event]:
        """The answers that came in (``collect``), stored with their events."""
        answers = self.collect()
        self.store.record_events(answers)
        return answers

    def collect(self) -> list[Event]:
        """Write the answers that came in; ``wake.failed`` for each backend that failed."""
        events = []
        for asked, answer in self._runner.finished():
            event = self._record(asked, answer)
            if event is not None:
                events.append(event)
        return events

    def _record(self, asked: _Asked, answer: Answer) -> Event | None:
        wake_id = asked.job.wake_id
        failed = answer.error is not None or answer.text is None
        model_text = asked.redacted.restore(answer.text) if answer.text is not None else None
        sentence = first_sentence(model_text) if model_text is not None else None
        problem = None
        if sentence is not None:
            problem = check(sentence, _real_facts(asked), asked.culprit, asked.cause)
        status = "failed" if failed else ("template" if problem else "done")
        if answer.cost is not None:
            self.meter.add(LARGE_MODEL, answer.cost.cpu_s)
        self.store.count(f"wake.{status}")
        try:
            self._wakes.finish(
                wake_id,
                status=status,
                reason=answer.error,
                cost=answer.cost,
                model_text=model_text,
                text=sentence if not failed and problem is None else None,
                check=problem,
            )
        except StorageError as exc:
            logger.error("wake %d's answer not recorded: %s", wake_id, exc)
            self.store.count("wake.write_failed")
        if failed:
            logger.warning("larger model failed for wake %d: %s", wake_id, answer.error)
            return Event(
                asked.t,
                "wake.failed",
                self.backend.name if self.backend else "none",
                {"wake": wake_id, "reason": answer.error},
            )
        return None

    def close(self) -> list[Event]:
        """Stop: a question still out is killed and its wake marked ``stopped``."""
        cut = self._runner.stop()
        events = [
            e
            for asked, answer in self._runner.finished()
            if asked.job.wake_id not in cut and (e := self._record(asked, answer)) is not None
        ]
        for wake_id in sorted(cut):
            try:
                self._wakes.finish(wake_id, status="stopped", reason="vigil stopped first")
            except StorageError as exc:
                logger.error("wake %d not closed: %s", wake_id, exc)
        if self.backend is not None:
            self.backend.release()
        return events


def _done(wake: _Prepared, wake_id: int | None) -> Event:
    """A wake's ``wake.done``: its diagnosis and its row's id (None: not written)."""
    diagnosis = wake.diagnosis
    data = {
        "cause": diagnosis.cause,
        "culprit": diagnosis.culprit,
        "culprit_kind": diagnosis.culprit_kind,
        "wake": wake_id,
    }
    if wake.request.second_look:  # the incident's diagnosis changed since its first wake
        data["second_look"] = True
    return Event(wake.request.t, "wake.done", diagnosis.cause, data)


def _suppressed(wake: _Prepared, reason: str, **extra: Any) -> Event:
    """The ``wake.suppressed`` of a wake the model sleeps through, with the diagnosis's
    summary (``_held``)."""
    return _held(wake.request, reason, wake.diagnosis.summary, **extra)


def _unlooked(request: WakeRequest, reason: str, limit: int) -> Event:
    """``_suppressed`` of a wake the budget holds before it is looked at: no diagnosis."""
    span = "hour" if reason == "max_per_hour" else "day"
    summary = f"not looked at: {limit} incidents woke the model in the last {span}"
    return _held(request, reason, summary, limit=limit)


def _held(request: WakeRequest, reason: str, summary: str, **extra: Any) -> Event:
    """A ``wake.suppressed``: the request's first trigger, the reason and ``summary``."""
    first = request.triggers[0]
    data = {
        **first.data,
        "reason": reason,
        "triggers": len(request.triggers),
        "summary": summary,
        **extra,
    }
    return Event(request.t, "wake.suppressed", first.subject, data)


def _real_facts(asked: _Asked) -> list[str]:
    """The facts with real names, as the restored answer is checked against them."""
    return [asked.redacted.restore(f) for f in asked.redacted.facts]


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False, default=str)


class _Runner(Protocol):
    @property
    def waiting(self) -> bool: ...

    def submit(self, asked: _Asked) -> None: ...

    def finished(self) -> list[tuple[_Asked, Answer]]: ...

    def stop(self) -> set[int]:
        """Stop asking; kill a question in progress. Returns the wakes cut short."""
        ...


class _Inline:
    """Replay and ``vigil explain``: the question is answered before the loop goes on."""

    waiting = False

    def __init__(self, backend: Backend | None) -> None:
        self._backend = backend
        self._done: list[tuple[_Asked, Answer]] = []

    def submit(self, asked: _Asked) -> None:
        assert self._backend is not None
        self._done.append((asked, self._backend.ask(asked.job)))

    def finished(self) -> list[tuple[_Asked, Answer]]:
        done, self._done = self._done, []
        return done

    def stop(self) -> set[int]:
        return set()


class _ThreadRunner:
    """The daemon: one worker thread asks the backend, one question at a time, and lets a warm
    model go after ``keep_warm_s`` without questions. The loop collects the answers."""

    def __init__(self, backend: Backend, keep_warm_s: float) -> None:
        self._backend = backend
        self._keep_warm_s = keep_warm_s
        self._jobs: queue.Queue[_Asked | None] = queue.Queue()
        self._done: queue.Queue[tuple[_Asked, Answer]] = queue.Queue()
        self._current: _Asked | None = None
        self._thread = threading.Thread(target=self._work, name="vigil-escalation", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> bool:
        return not self._done.empty()

    def submit(self, asked: _Asked) -> None:
        self._jobs.put(asked)

    def _work(self) -> None:
        while True:
            try:
                asked = self._jobs.get(timeout=self._keep_warm_s or None)
            except queue.Empty:
                self._backend.release()  # no question for keep_warm_s: let the model go
                continue
            if asked is None:
                return
            self._current = asked
            answer = self._backend.ask(asked.job)
            self._current = None
            self._done.put((asked, answer))

    def finished(self) -> list[tuple[_Asked, Answer]]:
        done = []
        while not self._done.empty():
            done.append(self._done.get_nowait())
        return done

    def stop(self) -> set[int]:
        cut: set[int] = set()
        while not self._jobs.empty():
            waiting = self._jobs.get_nowait()
            if waiting is not None:
                cut.add(waiting.job.wake_id)
        current = self._current
        self._jobs.put(None)
        if current is not None:
            cut.add(current.job.wake_id)
            self._backend.abort()
        self._thread.join(timeout=30.0)
        return cut
