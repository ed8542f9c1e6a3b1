"""Hostile inputs, third pass: instance URLs and zones a store may hold, and latency
samples a balancer may be fed (zero, negative, NaN, infinite)."""

from __future__ import annotations

from collections import Counter

import pytest

from flext_api._errors import ErrorCode, FlextApiError
from flext_api.discovery import PeakEwma, ServiceInstance
from flext_api.testing import FakeClock


@pytest.mark.parametrize(
    "url",
    [
        "http://h\\x:80",  # urlsplit takes a backslash in the host; yarl refuses each call
        "http://h%0d%0a:80",  # an encoded CRLF in the host
        "http://a%2fevil.example:80",
        "http://a..b:80",  # an empty label
        "http://[not-v6]:80",
        "http://h:80/p%zz",  # a path prefix that is no path
        "http://h:80/caf\u00e9",
    ],
)
def test_an_instance_url_with_an_unusable_host_or_path_is_refused(url: str) -> None:
    """A host that is no DNS name or IP address, or a path prefix that is not URL
    characters, is INVALID_REQUEST at validation, not a failure of every call."""
    with pytest.raises(FlextApiError) as caught:
        ServiceInstance(id="a", name="orders", url=url).validate()
    assert caught.value.code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    "url",
    [
        "http://orders-1.svc.cluster.local:8080",
        "http://10.0.0.5:80/api/v1",
        "https://[::1]:8443",
        "http://xn--bcher-kva.example",
        "http://b\u00fccher.example:8080",
        "http://host_with_underscore:80",
        "http://h.example.:80/a;b=c",
    ],
)
def test_usual_instance_urls_stay_accepted(url: str) -> None:
    """DNS names, IPv4 and IPv6 literals, trailing dots and path prefixes validate."""
    assert ServiceInstance(id="a", name="orders", url=url).validate().url == url


@pytest.mark.parametrize("zone", [5, {"x": 1}, ["eu"]])
def test_a_record_with_a_zone_that_is_not_a_string_is_refused(zone: object) -> None:
    """A stored zone that is not a string is refused (ZoneAware would never match it)."""
    with pytest.raises(FlextApiError) as caught:
        ServiceInstance.from_dict({"id": "a", "name": "orders", "url": "http://h:80", "zone": zone})
    assert caught.value.code is ErrorCode.INVALID_REQUEST


def _two() -> list[ServiceInstance]:
    return [
        ServiceInstance(id=f"i{k}", name="svc", url=f"http://127.0.0.1:{9000 + k}")
        for k in range(2)
    ]


def test_peak_ewma_counts_a_zero_latency_host_as_fast_not_unmeasured() -> None:
    """A host measured at 0 s (a coarse clock) with a call in flight is the cheaper one,
    not charged the 'unmeasured' penalty per call in flight."""
    balancer = PeakEwma(clock=FakeClock())
    fast, slow = _two()
    balancer.update([fast, slow])
    balancer.on_finish(fast, 0.0, True)
    balancer.on_finish(slow, 0.5, True)
    balancer.on_start(fast)
    balancer.on_start(slow)
    counts: Counter[str] = Counter()
    for _ in range(400):
        chosen = balancer.pick()
        assert chosen is not None
        counts[chosen.id] += 1
    assert counts[fast.id] > counts[slow.id]


@pytest.mark.parametrize("sample", [float("nan"), float("inf"), -1.0])
def test_peak_ewma_is_not_poisoned_by_a_nan_infinite_or_negative_sample(sample: float) -> None:
    """After a NaN, infinite or negative latency sample, later samples bring the host's
    average back to a finite, positive value."""
    clock = FakeClock()
    balancer = PeakEwma(decay=1.0, clock=clock)
    inst = _two()[0]
    balancer.on_finish(inst, sample, True)
    for _ in range(50):
        clock.advance(1.0)
        balancer.on_finish(inst, 0.2, True)
    latency = balancer.latency(inst.id)
    assert latency is not None
    assert 0.19 < latency < 0.21


def test_peak_ewma_negative_sample_does_not_draw_calls_to_a_loaded_host() -> None:
    """A negative latency sample made a host's cost negative, more so the more calls it
    had in flight: the busiest host won every draw. It now counts as the shortest time."""
    balancer = PeakEwma(clock=FakeClock())
    broken, other = _two()
    balancer.update([broken, other])
    balancer.on_finish(broken, -1.0, True)
    balancer.on_finish(other, 1e-5, True)
    for _ in range(100):
        balancer.on_start(broken)
    counts: Counter[str] = Counter()
    for _ in range(400):
        chosen = balancer.pick()
        assert chosen is not None
        counts[chosen.id] += 1
    assert counts[other.id] > counts[broken.id]
