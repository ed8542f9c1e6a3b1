"""The value an edge rate limit counts per: IPv6 clients grouped by their network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flext_api import ErrorCode
from flext_api.gateway import RateLimitRule, parse_config
from flext_api.gateway._ratelimit import CompiledLimit
from flext_api.server import ClientResolver


def _key(peer: str, forwarded: bytes | None = None, **rule: Any) -> str:
    """The key of a ``key: ip`` limit (``rule`` overrides) for a request from ``peer``,
    behind 127.0.0.1 as a trusted proxy."""
    limit = CompiledLimit.build("r", 0, RateLimitRule(limit="5/minute", **rule))
    headers = [(b"x-forwarded-for", forwarded)] if forwarded is not None else []
    scope = {"client": (peer, 1234), "headers": headers}
    return limit.key(scope, None, ClientResolver(["127.0.0.1"]))


def test_ipv6_clients_of_one_slash64_share_the_ip_key() -> None:
    """Addresses one host can rotate through (its /64) count as one client."""
    assert _key("2001:db8:1:2::a") == _key("2001:db8:1:2:ffff:1:2:3") == "ip:2001:db8:1:2::/64"
    assert _key("2001:db8:1:3::a") == "ip:2001:db8:1:3::/64"


def test_ipv6_forwarded_by_a_trusted_proxy_is_grouped_too() -> None:
    """The client named by a trusted proxy's X-Forwarded-For is grouped as a peer is."""
    assert _key("127.0.0.1", b"2001:db8:1:2::a") == "ip:2001:db8:1:2::/64"
    assert _key("127.0.0.1", b"[2001:db8:1:2::b]:443") == "ip:2001:db8:1:2::/64"


def test_ipv4_clients_are_keyed_per_address() -> None:
    """IPv4 keeps one key per address."""
    assert _key("203.0.113.9") == "ip:203.0.113.9"
    assert _key("127.0.0.1", b"203.0.113.10") == "ip:203.0.113.10"


def test_ipv4_mapped_client_is_keyed_as_its_ipv4_address() -> None:
    """A dual-stack socket's IPv4 peer shares its IPv4 bucket, never ``::/64``'s."""
    assert _key("::ffff:203.0.113.9") == "ip:203.0.113.9"
    assert _key("127.0.0.1", b"::ffff:203.0.113.10") == "ip:203.0.113.10"


@pytest.mark.parametrize(
    ("prefix", "key"),
    [(48, "ip:2001:db8:1::/48"), (56, "ip:2001:db8:1::/56"), (128, "ip:2001:db8:1:2::a")],
)
def test_ipv6_prefix_is_set_per_rule(prefix: int, key: str) -> None:
    """``ipv6_prefix`` widens or narrows the group; 128 is one key per address."""
    assert _key("2001:db8:1:2::a", ipv6_prefix=prefix) == key


def test_anonymous_consumer_falls_back_on_the_grouped_ip() -> None:
    """``key: consumer`` without an identity counts the client's grouped address."""
    assert _key("2001:db8:1:2::a", key="consumer") == "ip:2001:db8:1:2::/64"


def test_the_resolved_client_keeps_its_full_address() -> None:
    """Only the limit's key is grouped: the client address itself is untouched."""
    scope = {"client": ("127.0.0.1", 1), "headers": [(b"x-forwarded-for", b"2001:db8:1:2::a")]}
    assert ClientResolver(["127.0.0.1"]).client_ip(scope) == "2001:db8:1:2::a"


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        ({"rate_limits": [{"limit": "5/minute", "ipv6_prefix": 16}]},
         "routes[0].rate_limits[0].ipv6_prefix"),
        ({"rate_limits": [{"limit": "5/minute", "ipv6_prefix": 129}]},
         "routes[0].rate_limits[0].ipv6_prefix"),
    ],
)  # fmt: skip
def test_ipv6_prefix_out_of_range_is_a_config_error(patch: dict[str, Any], where: str) -> None:
    """An ``ipv6_prefix`` outside 32..128 is refused, naming its path and the range."""
    base = {
        "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
        "routes": [{"name": "r", "cluster": "c", "match": {"path_prefix": "/"}, **patch}],
    }
    result = parse_config(json.dumps(base))
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert where in (result.error or ""), result.error
    assert "ipv6_prefix must be between 32 and 128" in (result.error or ""), result.error


def test_core_rate_limit_ipv6_prefix_out_of_range_is_a_config_error() -> None:
    """The routing core's ``rate_limit`` section checks its ``ipv6_prefix`` the same way."""
    base = {
        "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
        "routes": [{"name": "r", "cluster": "c", "match": {"path_prefix": "/"}}],
        "rate_limit": {"ipv6_prefix": 8},
    }
    result = parse_config(json.dumps(base))
    assert "rate_limit.ipv6_prefix" in (result.error or ""), result.error
    assert "ipv6_prefix must be between 32 and 128" in (result.error or ""), result.error
