"""Instance health: active probe results and passive outlier detection, sans-IO.

:class:`HealthTracker` keeps one record per instance and decides, from what it is told,
whether the instance takes traffic. It does no I/O and reads no clock: callers pass
``now`` (the prober and the client stage do). Records are keyed by ``(service, id)``:
an id is unique only within its service, so ``orders``' ``primary`` and ``users``'
``primary`` are two hosts with two records, even when one tracker serves every service
of a registry. An instance that is unregistered and registered again (a restart, a
config reload) keeps its state: a host ejected a second ago is not handed traffic again
because a reload re-created it.

Two sources, as Envoy has them:

* **active** probes (:class:`HealthCheckConfig`): ``unhealthy_threshold`` consecutive
  failures mark an instance down, ``healthy_threshold`` consecutive passes mark it up.
  A newly seen instance is up (unless it was declared ``"unhealthy"``), so it takes
  traffic before its first probe.
* **passive** outlier detection (:class:`OutlierConfig`) from real calls: consecutive
  5xx, consecutive gateway errors (connect failures, timeouts, 502-504) or a failure
  ratio over a minimum of calls eject the instance for ``base_ejection_time`` times the
  number of times it was ejected (capped), and never more than ``max_ejection_percent``
  of a cluster - the last available instance is never ejected by passive checks. A
  passing probe, or the end of the ejection time, re-admits it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from .._errors import ConfigError, ErrorCode
from .._syntax import check_origin_form

__all__ = ["HealthCheckConfig", "HealthTracker", "InstanceHealth", "OutlierConfig", "Transition"]

_GATEWAY_STATUSES = frozenset({502, 503, 504})


def _positive(name: str, value: float, *, zero: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        raise ConfigError(f"{name} must be a {'non-negative' if zero else 'positive'} number")


@dataclass(frozen=True, slots=True)
class HealthCheckConfig:
    """Active HTTP probes: ``GET path`` every ``interval`` (+/- ``jitter`` fraction).

    A probe passes on a status in ``200..399`` within ``timeout`` seconds. ``path`` is
    an origin-form request target (``/health``, ``/status?full=1``): no spaces, control
    characters, fragment or other characters a request line cannot carry as they are.
    """

    path: str = "/health"
    interval: float = 10.0
    timeout: float = 2.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    jitter: float = 0.1

    def __post_init__(self) -> None:
        path: object = self.path
        if not isinstance(path, str):
            raise ConfigError(f"health check path must be a str, got {type(path).__name__}")
        try:
            check_origin_form(path)
        except ValueError as exc:
            raise ConfigError(f"health check path {exc}, got {path!r}") from None
        _positive("interval", self.interval)
        _positive("timeout", self.timeout)
        if not 0 <= self.jitter < 1:
            raise ConfigError("jitter must be a fraction in [0, 1)")
        for name in ("healthy_threshold", "unhealthy_threshold"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1")


@dataclass(frozen=True, slots=True)
class OutlierConfig:
    """Passive outlier detection from real calls (Envoy's names and defaults).

    ``failure_ratio`` (None: off) ejects when that share of the last ``ratio_window``
    calls failed, once ``min_requests`` calls were seen.
    """

    consecutive_5xx: int = 5
    consecutive_gateway_errors: int = 5
    failure_ratio: float | None = None
    min_requests: int = 20
    ratio_window: int = 100
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: float = 50.0

    def __post_init__(self) -> None:
        for name in (
            "consecutive_5xx",
            "consecutive_gateway_errors",
            "min_requests",
            "ratio_window",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1")
        if self.failure_ratio is not None and not 0 < self.failure_ratio <= 1:
            raise ConfigError("failure_ratio must be in (0, 1] or None")
        _positive("base_ejection_time", self.base_ejection_time)
        _positive("max_ejection_time", self.max_ejection_time)
        if not 0 <= self.max_ejection_percent <= 100:
            raise ConfigError("max_ejection_percent must be in [0, 100]")


@dataclass(frozen=True, slots=True)
class Transition:
    """An instance changed state: ``event`` is ``up``, ``down``, ``ejected`` or ``readmitted``.

    ``service`` is the service the instance belongs to.
    """

    instance_id: str
    event: str
    reason: str
    ejected_for: float | None = None
    service: str = ""


class InstanceHealth:
    """What is known of one instance (read it through :meth:`HealthTracker.get`)."""

    __slots__ = (
        "active_up",
        "calls",
        "consecutive_5xx",
        "consecutive_gateway",
        "ejected_until",
        "ejections",
        "failures",
        "last_probe",
        "last_readmit",
        "probe_fails",
        "probe_passes",
        "window",
    )

    def __init__(self, up: bool) -> None:
        self.active_up = up
        self.probe_passes = 0
        self.probe_fails = 0
        self.last_probe: float | None = None
        self.consecutive_5xx = 0
        self.consecutive_gateway = 0
        self.ejected_until: float | None = None
        self.ejections = 0
        self.last_readmit: float | None = None
        # Failure-ratio window as a ring of booleans (True = failed).
        self.window: list[bool] = []
        self.calls = 0
        self.failures = 0

    def available(self, now: float) -> bool:
        """Takes traffic: actively up and not (or no longer) ejected."""
        until = self.ejected_until
        return self.active_up and (until is None or now >= until)

    def __repr__(self) -> str:
        state = "up" if self.active_up else "down"
        if self.ejected_until is not None:
            state += f", ejected until {self.ejected_until:.1f}"
        return f"<InstanceHealth {state} ejections={self.ejections}>"


class HealthTracker:
    """Health records keyed by ``(service, instance id)``; decides availability (sans-IO).

    Every method takes the instance's ``service`` (a required keyword): ids are unique
    only within a service, so an id alone names no record.
    """

    __slots__ = ("_records", "_removed", "check", "keep_removed", "outlier")

    def __init__(
        self,
        check: HealthCheckConfig | None = None,
        outlier: OutlierConfig | None = None,
        *,
        keep_removed: float = 3600.0,
    ) -> None:
        self.check = check or HealthCheckConfig()
        self.outlier = outlier or OutlierConfig()
        #: Seconds the record of an unregistered instance is kept for its return.
        self.keep_removed = keep_removed
        self._records: dict[tuple[str, str], InstanceHealth] = {}
        self._removed: dict[tuple[str, str], float] = {}

    def removed(self, instance_id: str, now: float, *, service: str) -> None:
        """``instance_id`` left ``service``: its record goes after ``keep_removed``
        seconds unless it comes back (then it keeps its state)."""
        key = (service, instance_id)
        self._removed.pop(key, None)  # oldest first: the sweep stops early
        self._removed[key] = now
        horizon = now - self.keep_removed
        if next(iter(self._removed.values())) <= horizon:
            for gone, since in list(self._removed.items()):
                if since <= horizon:
                    del self._removed[gone]
                    self._records.pop(gone, None)

    def returned(self, instance_id: str, *, service: str) -> None:
        """``instance_id`` is registered in ``service`` again: its record stays."""
        self._removed.pop((service, instance_id), None)

    def get(
        self, instance_id: str, *, service: str, declared_healthy: bool = True
    ) -> InstanceHealth:
        """The record of ``instance_id`` in ``service``, created (up unless declared
        unhealthy) if new."""
        key = (service, instance_id)
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = InstanceHealth(declared_healthy)
        return record

    def available(self, instance_id: str, now: float, *, service: str) -> bool:
        """True when the instance takes traffic (an unknown id does: it is new)."""
        record = self._records.get((service, instance_id))
        return record is None or record.available(now)

    def forget(self, keep: Iterable[str], *, service: str) -> None:
        """Drop the records of ``service``'s ids not in ``keep`` at once (the records of
        other services stay)."""
        wanted = set(keep)
        for key in [k for k in self._records if k[0] == service and k[1] not in wanted]:
            del self._records[key]
            self._removed.pop(key, None)

    # -- active -------------------------------------------------------------------------------
    def record_probe(
        self, instance_id: str, passed: bool, now: float, *, service: str
    ) -> Transition | None:
        """Count one probe result; the transition it causes, if any."""
        record = self.get(instance_id, service=service)
        record.last_probe = now
        if passed:
            record.probe_fails = 0
            record.probe_passes += 1
            if record.ejected_until is not None and record.active_up:
                # A passing probe re-admits a passively ejected host (Envoy's default).
                self._readmit(record, now)
                return Transition(instance_id, "readmitted", "probe passed", service=service)
            if not record.active_up and record.probe_passes >= self.check.healthy_threshold:
                record.active_up = True
                self._readmit(record, now)
                return Transition(
                    instance_id,
                    "up",
                    f"{record.probe_passes} consecutive probes passed",
                    service=service,
                )
            return None
        record.probe_passes = 0
        record.probe_fails += 1
        if record.active_up and record.probe_fails >= self.check.unhealthy_threshold:
            record.active_up = False
            return Transition(
                instance_id,
                "down",
                f"{record.probe_fails} consecutive probes failed",
                service=service,
            )
        return None

    # -- passive ------------------------------------------------------------------------------
    def record_call(
        self,
        instance_id: str,
        *,
        status: int | None,
        error: ErrorCode | None,
        now: float,
        cluster_size: int,
        ejected_in_cluster: int,
        service: str,
    ) -> Transition | None:
        """Count one real call (``status`` when a response came, ``error`` otherwise).

        ``cluster_size`` and ``ejected_in_cluster`` (hosts of the service now ejected or
        down) bound ejection by ``max_ejection_percent``.
        """
        cfg = self.outlier
        record = self._records.get((service, instance_id))
        if (
            record is not None
            and status is not None
            and status < 500
            and error is None
            and not (record.consecutive_5xx or record.consecutive_gateway)
            and record.ejected_until is None
            and cfg.failure_ratio is None
        ):
            return None  # the usual call: a success that changes nothing
        if record is None:
            record = self.get(instance_id, service=service)
        until = record.ejected_until
        if until is not None and now >= until:
            self._readmit(record, until)  # back since the ejection ran out, not since now
        gateway = (error is not None and error.is_transport) or status in _GATEWAY_STATUSES
        failed = gateway or (status is not None and status >= 500)
        record.consecutive_5xx = (
            record.consecutive_5xx + 1 if status is not None and status >= 500 else 0
        )
        record.consecutive_gateway = record.consecutive_gateway + 1 if gateway else 0
        if cfg.failure_ratio is not None:
            window = record.window
            window.append(failed)
            record.failures += failed
            if len(window) > cfg.ratio_window:
                record.failures -= window.pop(0)
        if record.ejected_until is not None or not record.active_up:
            return None
        reason = None
        if record.consecutive_5xx >= cfg.consecutive_5xx:
            reason = f"{record.consecutive_5xx} consecutive 5xx"
        elif record.consecutive_gateway >= cfg.consecutive_gateway_errors:
            reason = f"{record.consecutive_gateway} consecutive gateway errors"
        elif (
            cfg.failure_ratio is not None
            and len(record.window) >= cfg.min_requests
            and record.failures / len(record.window) >= cfg.failure_ratio
        ):
            reason = f"failure ratio {record.failures / len(record.window):.0%}"
        if reason is None:
            return None
        allowed = math.floor(cluster_size * cfg.max_ejection_percent / 100)
        if ejected_in_cluster >= min(allowed, cluster_size - 1):
            return None  # never eject past the cap, never the last available host
        return Transition(instance_id, "ejected", reason, self._eject(record, now), service)

    def _eject(self, record: InstanceHealth, now: float) -> float:
        cfg = self.outlier
        # The multiplier decays by one per base_ejection_time spent healthy since the
        # last re-admission, so a host that recovered for good is not punished forever.
        if record.last_readmit is not None and record.ejections:
            quiet = int((now - record.last_readmit) // cfg.base_ejection_time)
            record.ejections = max(0, record.ejections - quiet)
        record.ejections += 1
        duration = min(cfg.base_ejection_time * record.ejections, cfg.max_ejection_time)
        record.ejected_until = now + duration
        record.consecutive_5xx = record.consecutive_gateway = 0
        record.window.clear()
        record.failures = 0
        return duration

    @staticmethod
    def _readmit(record: InstanceHealth, now: float) -> None:
        if record.ejected_until is not None:
            record.ejected_until = None
            record.last_readmit = now

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"<HealthTracker [{len(self._records)} instances]>"
