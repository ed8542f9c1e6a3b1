"""HealthTracker: thresholds, ejection growth, the ejection cap, re-admission."""

from __future__ import annotations

import pytest

from flext_api._errors import ConfigError, ErrorCode
from flext_api.discovery import HealthCheckConfig, HealthTracker, OutlierConfig


def _tracker(**outlier: float) -> HealthTracker:
    return HealthTracker(
        HealthCheckConfig(healthy_threshold=2, unhealthy_threshold=3),
        OutlierConfig(**outlier),  # type: ignore[arg-type]
    )


def _fail(
    tracker: HealthTracker, iid: str, times: int, now: float, *, size: int = 3, out: int = 0
) -> object:
    result = None
    for _ in range(times):
        result = tracker.record_call(
            iid,
            status=503,
            error=None,
            now=now,
            cluster_size=size,
            ejected_in_cluster=out,
            service="svc",
        )
    return result


def test_new_instance_is_available_before_any_probe() -> None:
    """An id never seen takes traffic at once."""
    assert HealthTracker().available("fresh", 0.0, service="svc")


def test_declared_unhealthy_instance_waits_for_probes() -> None:
    """An instance declared unhealthy needs healthy_threshold passing probes."""
    tracker = _tracker()
    tracker.get("a", declared_healthy=False, service="svc")
    assert not tracker.available("a", 0.0, service="svc")
    assert tracker.record_probe("a", True, 1.0, service="svc") is None
    transition = tracker.record_probe("a", True, 2.0, service="svc")
    assert transition is not None and transition.event == "up"
    assert tracker.available("a", 2.0, service="svc")


def test_unhealthy_threshold_consecutive_failures_mark_down() -> None:
    """Three failed probes in a row mark an instance down; a pass in between resets."""
    tracker = _tracker()
    tracker.record_probe("a", False, 1.0, service="svc")
    tracker.record_probe("a", False, 2.0, service="svc")
    tracker.record_probe("a", True, 3.0, service="svc")
    tracker.record_probe("a", False, 4.0, service="svc")
    tracker.record_probe("a", False, 5.0, service="svc")
    assert tracker.available("a", 5.0, service="svc")
    transition = tracker.record_probe("a", False, 6.0, service="svc")
    assert transition is not None and transition.event == "down"
    assert not tracker.available("a", 6.0, service="svc")


def test_consecutive_5xx_eject_for_base_time() -> None:
    """Five 503s in a row eject the instance for base_ejection_time."""
    tracker = _tracker(base_ejection_time=30.0)
    transition = _fail(tracker, "a", 5, 100.0)
    assert transition is not None and transition.ejected_for == 30.0  # type: ignore[attr-defined]
    assert not tracker.available("a", 129.0, service="svc")
    assert tracker.available("a", 130.0, service="svc")


def test_gateway_errors_eject() -> None:
    """Consecutive connect errors (no response) eject too."""
    tracker = _tracker(consecutive_gateway_errors=2)
    for _ in range(2):
        transition = tracker.record_call(
            "a",
            status=None,
            error=ErrorCode.CONNECT_ERROR,
            now=1.0,
            cluster_size=3,
            ejected_in_cluster=0,
            service="svc",
        )
    assert transition is not None and transition.event == "ejected"


def test_success_resets_the_consecutive_count() -> None:
    """A 200 between failures resets the consecutive count: no ejection."""
    tracker = _tracker()
    _fail(tracker, "a", 4, 1.0)
    tracker.record_call(
        "a", status=200, error=None, now=1.0, cluster_size=3, ejected_in_cluster=0, service="svc"
    )
    assert _fail(tracker, "a", 4, 1.0) is None


def test_ejection_time_grows_with_each_ejection() -> None:
    """A flapping instance is ejected for longer each time, up to the cap."""
    tracker = _tracker(base_ejection_time=10.0, max_ejection_time=25.0)
    durations = []
    now = 0.0
    for _ in range(3):
        transition = _fail(tracker, "a", 5, now)
        durations.append(transition.ejected_for)  # type: ignore[attr-defined]
        now += durations[-1]  # ejection over
    assert durations == [10.0, 20.0, 25.0]


def test_ejection_multiplier_decays_after_a_quiet_period() -> None:
    """Healthy for long after re-admission, the next ejection is short again."""
    tracker = _tracker(base_ejection_time=10.0)
    _fail(tracker, "a", 5, 0.0)
    _fail(tracker, "a", 5, 10.0)  # re-admitted at 10 (expired), ejected again: 20 s
    assert tracker.get("a", service="svc").ejections == 2
    transition = _fail(tracker, "a", 5, 1000.0)
    assert transition.ejected_for == 10.0  # type: ignore[attr-defined]


def test_max_ejection_percent_caps_ejections() -> None:
    """With 50 % of a 4-host cluster already out, no further ejection."""
    tracker = _tracker(max_ejection_percent=50.0)
    assert _fail(tracker, "a", 5, 1.0, size=4, out=2) is None
    assert tracker.available("a", 1.0, service="svc")


def test_last_available_host_is_never_ejected() -> None:
    """Even at 100 %, passive checks keep one host of the cluster."""
    tracker = _tracker(max_ejection_percent=100.0)
    assert _fail(tracker, "a", 5, 1.0, size=2, out=1) is None
    assert _fail(tracker, "b", 5, 1.0, size=1, out=0) is None


def test_failure_ratio_ejects_after_min_requests() -> None:
    """With failure_ratio 0.5, half failures over min_requests calls eject."""
    tracker = _tracker(failure_ratio=0.5, min_requests=10, ratio_window=10, consecutive_5xx=100)
    transition = None
    for k in range(10):
        transition = tracker.record_call(
            "a",
            status=500 if k % 2 else 200,
            error=None,
            now=1.0,
            cluster_size=3,
            ejected_in_cluster=0,
            service="svc",
        )
    assert transition is not None and "ratio" in transition.reason


def test_failure_ratio_window_slides() -> None:
    """Old results leave the window: recent successes bring the ratio down."""
    tracker = _tracker(failure_ratio=0.9, min_requests=5, ratio_window=5, consecutive_5xx=100)
    for status in (500, 500, 500, 200, 200, 200, 200):
        tracker.record_call(
            "a",
            status=status,
            error=None,
            now=1.0,
            cluster_size=3,
            ejected_in_cluster=0,
            service="svc",
        )
    assert tracker.get("a", service="svc").failures == 1


def test_passing_probe_readmits_an_ejected_host() -> None:
    """An active probe pass ends a passive ejection at once."""
    tracker = _tracker()
    _fail(tracker, "a", 5, 1.0)
    transition = tracker.record_probe("a", True, 2.0, service="svc")
    assert transition is not None and transition.event == "readmitted"
    assert tracker.available("a", 2.0, service="svc")


def test_down_instance_is_not_ejected_again() -> None:
    """Calls to an actively-down instance do not add passive ejections."""
    tracker = _tracker()
    for t in range(3):
        tracker.record_probe("a", False, float(t), service="svc")
    assert _fail(tracker, "a", 5, 5.0) is None


def test_forget_drops_other_ids() -> None:
    """forget(keep) bounds the records to the ids kept."""
    tracker = _tracker()
    tracker.get("a", service="svc")
    tracker.get("b", service="svc")
    tracker.forget(["a"], service="svc")
    assert len(tracker) == 1 and "1 instances" in repr(tracker)


def test_the_same_id_in_two_services_has_two_records() -> None:
    """Ids are unique only within a service: failures of orders' "a" leave users' "a"
    alone, and forgetting orders' records keeps users'."""
    tracker = _tracker()
    for t in range(3):
        tracker.record_probe("a", False, float(t), service="orders")
        tracker.record_probe("a", True, float(t), service="users")
    assert not tracker.available("a", 3.0, service="orders")
    assert tracker.available("a", 3.0, service="users")
    tracker.forget([], service="orders")
    assert len(tracker) == 1 and tracker.get("a", service="users").probe_passes == 3


def test_record_repr_shows_state() -> None:
    """InstanceHealth's repr says up/down and ejection."""
    tracker = _tracker()
    _fail(tracker, "a", 5, 1.0)
    assert "ejected until" in repr(tracker.get("a", service="svc"))


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: HealthCheckConfig(path="health"), "path"),
        (lambda: HealthCheckConfig(interval=0), "interval"),
        (lambda: HealthCheckConfig(jitter=1.0), "jitter"),
        (lambda: HealthCheckConfig(healthy_threshold=0), "healthy_threshold"),
        (lambda: OutlierConfig(consecutive_5xx=0), "consecutive_5xx"),
        (lambda: OutlierConfig(failure_ratio=1.5), "failure_ratio"),
        (lambda: OutlierConfig(base_ejection_time=float("nan")), "base_ejection_time"),
        (lambda: OutlierConfig(max_ejection_percent=101), "max_ejection_percent"),
    ],
)
def test_bad_settings_are_config_errors(factory: object, match: str) -> None:
    """Each invalid setting is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=match):
        factory()  # type: ignore[operator]


@pytest.mark.parametrize(
    "path",
    ["/health check", "/h\r\nX-Evil: 1", "/health\n", "/h\tx", "/health#top", "/%zz", "/santé"],
)
def test_probe_path_that_is_not_origin_form_is_a_config_error(path: str) -> None:
    """A probe path a request line cannot carry as it is (a space, CR/LF, a control
    character, a fragment, a bad %-escape, non-ASCII) is refused when the config is built,
    naming the path."""
    with pytest.raises(ConfigError, match="health check path"):
        HealthCheckConfig(path=path)


@pytest.mark.parametrize("path", ["/", "/health", "/status?full=1&x=%20", "/a;v=1/b:c@d"])
def test_origin_form_probe_paths_are_accepted(path: str) -> None:
    """A path with an optional query of URL characters is a valid probe path."""
    assert HealthCheckConfig(path=path).path == path


def test_removed_records_are_dropped_after_keep_removed() -> None:
    """An instance gone longer than keep_removed loses its record; one back keeps it."""
    tracker = HealthTracker(keep_removed=60.0)
    for iid in ("a", "b"):
        tracker.get(iid, service="svc")
        tracker.removed(iid, 0.0, service="svc")
    tracker.returned("b", service="svc")
    tracker.get("c", service="svc")
    tracker.removed("c", 100.0, service="svc")  # a later removal sweeps what is older than 60 s
    assert len(tracker) == 2 and tracker.available("b", 100.0, service="svc")
