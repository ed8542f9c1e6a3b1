"""Gateway config: YAML loading, defaults, and errors with their path and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from flext_api import ErrorCode
from flext_api.gateway import (
    GatewayConfig,
    InstanceConfig,
    create_gateway,
    load_config,
    parse_config,
)

MINIMAL = """\
clusters:
  - name: orders
    instances: [{url: "http://127.0.0.1:9001"}, {url: "http://127.0.0.1:9002"}]
routes:
  - name: orders
    match: {path_prefix: /orders}
    cluster: orders
    cache: true
"""


def test_pinned_yaml_shape_loads_with_defaults() -> None:
    """The pinned minimal YAML loads; everything else takes its production default."""
    config = parse_config(MINIMAL).unwrap()
    cluster = config.clusters[0]
    assert [i.url for i in cluster.instances] == ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]
    assert config.routes[0].cache is True
    assert (cluster.timeouts.connect, cluster.timeouts.per_try, cluster.timeouts.total) == (
        5.0,
        30.0,
        60.0,
    )
    assert cluster.retry.retries == 2 and cluster.health.active is True
    assert config.listeners[0].port == 8000 and config.admin.host == "127.0.0.1"


def test_errors_name_path_and_line() -> None:
    """Each error names its path in the file and the line the parser gives."""
    text = MINIMAL.replace("path_prefix: /orders", "path_prefix: orders, colour: red")
    result = parse_config(text, source="gw.yaml")
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert result.error is not None
    assert "routes[0].match.path_prefix (line 6): 'orders' must start with '/'" in result.error
    assert "routes[0].match.colour (line 6): unknown key" in result.error


def test_unknown_cluster_refused() -> None:
    """A route naming a cluster that does not exist is refused, naming both."""
    result = parse_config(MINIMAL.replace("cluster: orders", "cluster: billing"))
    assert result.error is not None and "'billing'" in result.error


def test_yaml_syntax_error_has_line() -> None:
    """Broken YAML is a config error with the line of the problem."""
    result = parse_config("clusters: [\n  {name: a\nroutes: x\n")
    assert result.error is not None and "(line 3)" in result.error


def test_top_level_must_be_mapping() -> None:
    """A YAML list at the top is refused."""
    assert parse_config("- a\n- b\n").is_failure


def test_missing_file_is_failure(tmp_path: Path) -> None:
    """A file that cannot be read is a config failure, not an exception."""
    result = load_config(tmp_path / "missing.yaml")
    assert result.error_code is ErrorCode.CONFIG_ERROR


def test_load_config_reads_file(tmp_path: Path) -> None:
    """load_config reads and validates a file."""
    path = tmp_path / "gw.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_config(path).unwrap().routes[0].name == "orders"


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ({"path": "/a", "path_prefix": "/b"}, "at most one"),
        ({"path_regex": "("}, "not a valid regex"),
        ({"path_template": "/a/{id}/{id}"}, "twice"),
    ],
)
def test_match_validation(match: dict[str, str], message: str) -> None:
    """Path forms are exclusive, regexes compile, template names are unique."""
    with pytest.raises(ValidationError, match=message):
        GatewayConfig.model_validate(
            {
                "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
                "routes": [{"name": "r", "match": match, "cluster": "c"}],
            }
        )


def test_duplicate_names_refused() -> None:
    """Two routes with one name are refused."""
    with pytest.raises(ValidationError, match="used twice"):
        GatewayConfig.model_validate(
            {
                "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
                "routes": [
                    {"name": "r", "match": {}, "cluster": "c"},
                    {"name": "r", "match": {}, "cluster": "c"},
                ],
            }
        )


def test_instance_ids_derive_from_host_and_port() -> None:
    """Without an id, an instance is keyed by host-port (and path)."""
    assert InstanceConfig(url="http://127.0.0.1:9001").instance_id == "127.0.0.1-9001"
    assert InstanceConfig(url="https://svc/v1/").instance_id == "svc-443-v1"
    assert InstanceConfig(url="http://svc", id="svc-a").instance_id == "svc-a"


def test_instance_url_must_be_http() -> None:
    """Instance URLs are http(s) with a host and no query."""
    with pytest.raises(ValidationError):
        InstanceConfig(url="ftp://h")
    with pytest.raises(ValidationError):
        InstanceConfig(url="http://h/?q=1")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:1/a\r\nX-Injected: 1", "spaces or control characters"),
        ("http://h:1/a b", "spaces or control characters"),
        ("http://h:0", "port 0"),
        ("http://h:99999", "out of range"),
    ],
)
def test_instance_url_that_cannot_be_sent_to_is_refused(url: str, message: str) -> None:
    """urlsplit() drops CR/LF silently: an instance URL is checked before it runs."""
    with pytest.raises(ValidationError, match=message):
        InstanceConfig(url=url)


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"headers": {"request_add": {"X-A": "v\r\nX-Injected: 1"}}}, "control character"),
        ({"headers": {"response_add": {"X-A": "v\nw"}}}, "control character"),
        ({"headers": {"response_add": {"Bad Name": "v"}}}, "invalid header name"),
        ({"headers": {"request_remove": ["Bad Name"]}}, "invalid header name"),
        ({"match": {"headers": {"X Tenant": "a"}}}, "invalid header name"),
    ],
)
def test_route_header_that_cannot_be_sent_is_refused(route: dict[str, Any], message: str) -> None:
    """A header rule the gateway could never send (or a match no request can meet) is a
    config error with its path, not a failure of every request."""
    result = parse_config(
        json.dumps(
            {
                "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
                "routes": [{"name": "r", "cluster": "c", "match": {}, **route}],
            }
        )
    )
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert message in (result.error or "") and "routes[0]" in (result.error or "")


@pytest.mark.parametrize(
    ("route", "edge", "where"),
    [
        ({"headers": {"request_add": {"Content-Length": "5"}}}, {},
         "routes[0].headers.request_add.Content-Length (line"),
        ({"headers": {"request_add": {"Transfer-Encoding": "chunked"}}}, {},
         "routes[0].headers.request_add.Transfer-Encoding"),
        ({"headers": {"response_add": {"content-length": "3"}}}, {},
         "routes[0].headers.response_add.content-length"),
        ({"headers": {"response_add": {"Connection": "close"}}}, {},
         "routes[0].headers.response_add.Connection"),
        ({"transform": {"request_headers_add": {"Content-Length": "3"}}}, {},
         "routes[0].transform.request_headers_add.Content-Length"),
        ({}, {"defaults": {"transform": {"request_headers_add": {"Upgrade": "h2c"}}}},
         "edge.defaults.transform.request_headers_add.Upgrade"),
    ],
)  # fmt: skip
def test_header_rules_cannot_add_framing_or_hop_by_hop(
    route: dict[str, Any], edge: dict[str, Any], where: str
) -> None:
    """A rule's Content-Length framed the body other than it was sent (the upstream read
    the rest as a request of its own), and a response's cut or doubled the client's."""
    data = {
        "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
        "routes": [{"name": "r", "cluster": "c", "match": {"path_prefix": "/"}, **route}],
        "edge": edge,
    }
    result = parse_config(yaml.safe_dump(data, sort_keys=False), source="gw.yaml")
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert where in (result.error or ""), result.error
    assert "framing or hop-by-hop" in (result.error or "")


def test_transform_header_that_cannot_be_sent_is_refused() -> None:
    """A transform's CR/LF value passed validation and failed every request as an
    upstream reset, opening the instance's breaker."""
    data = {
        "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
        "routes": [
            {
                "name": "r",
                "cluster": "c",
                "match": {"path_prefix": "/"},
                "transform": {"request_headers_add": {"X-A": "v\r\nX-Injected: 1"}},
            }
        ],
    }
    result = parse_config(json.dumps(data))
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert "routes[0].transform.request_headers_add.X-A" in (result.error or "")
    assert "control character" in (result.error or "")


async def test_python_config_with_a_framing_rule_does_not_start() -> None:
    """A config built in Python skips the loader: the gateway refuses to build it."""
    config = GatewayConfig.model_validate(
        {
            "clusters": [
                {"name": "c", "instances": [{"url": "http://h:1"}], "health": {"active": False}}
            ],
            "routes": [
                {
                    "name": "r",
                    "cluster": "c",
                    "match": {"path_prefix": "/"},
                    "headers": {"request_add": {"Content-Length": "5"}},
                }
            ],
        }
    )
    gateway = create_gateway(config)
    with pytest.raises(ValueError, match=r"route 'r'.*framing or hop-by-hop"):
        await gateway.start()
    await gateway.aclose()


@pytest.mark.parametrize(
    ("patch", "where", "message"),
    [
        ({"trusted_proxies": ["not-an-ip"]}, "trusted_proxies", "not an IP address or network"),
        ({"via": "gw\r\nX-Injected: 1"}, "via", "control character"),
        ({"drain_timeout": float("inf")}, "drain_timeout", "finite number"),
        (
            {"routes": [{"name": "r", "cluster": "c", "match": {"path_prefix": "/a"},
                         "host_rewrite": "h\r\nX: 1"}]},
            "routes[0].host_rewrite", "control character",
        ),
        (
            {"routes": [{"name": "r", "cluster": "c", "match": {"path_prefix": "/a"},
                         "rewrite": {"regex": "^/a/(.*)$", "replacement": "/b/\\2"}}]},
            "routes[0].rewrite", "refers to group '2'",
        ),
        (
            {"clusters": [{"name": "c", "instances": [{"url": "http://h:1"}],
                           "health": {"interval": float("inf")}}]},
            "clusters[0].health.interval", "finite number",
        ),
    ],
)  # fmt: skip
def test_values_the_gateway_could_not_run_are_refused(
    patch: dict[str, Any], where: str, message: str
) -> None:
    """Values that validated and then broke the start-up, a reload or every request (an
    unknown network, CR/LF in Via or Host, a group the regex does not have, infinity)."""
    base = {
        "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
        "routes": [{"name": "r", "cluster": "c", "match": {"path_prefix": "/"}}],
    }
    result = parse_config(json.dumps({**base, **patch}).replace("Infinity", ".inf"))
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert where in (result.error or "") and message in (result.error or ""), result.error


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x: &a [*a]\n", "(line 1): an alias refers to a node that contains it"),
        # Nine aliases of nine aliases...: a few lines, 9**9 values once expanded.
        (
            'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
                for i in range(8)
            ),
            "the aliases expand to more than 1,000,000 values",
        ),
    ],
)
def test_aliases_that_cannot_be_expanded_are_refused(text: str, message: str) -> None:
    """A self-referencing alias hung `gateway check` (and a reload, on the event loop);
    an alias bomb would have been validated value by value."""
    result = parse_config(text, source="gw.yaml")
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert message in (result.error or "")


@pytest.mark.parametrize(
    "auth",
    [
        {"forward": {"url": "http://127.0.0.1:1/auth", "copy_headers": ["Content-Length"]}},
        {"forward": {"url": "http://127.0.0.1:1/auth", "copy_headers": ["host"]}},
        {"identity_headers": {"subject": "authorization"}},
    ],
)
def test_identity_headers_cannot_take_framing_or_credentials(auth: dict[str, Any]) -> None:
    """The gateway drops the headers it sets from every client request first: these
    names would strip every request's framing, host or credentials."""
    data = {
        "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
        "routes": [{"name": "r", "cluster": "c", "match": {"path_prefix": "/"}}],
        "edge": {"auth": auth},
    }
    result = parse_config(json.dumps(data))
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert "cannot carry an identity" in (result.error or "")


def test_a_key_given_twice_is_refused() -> None:
    """YAML keeps the last of two equal keys: a second `routes:` dropped the first."""
    text = MINIMAL + "routes:\n  - {name: other, match: {path_prefix: /o}, cluster: orders}\n"
    result = parse_config(text, source="gw.yaml")
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert "gw.yaml (line 9): key 'routes' is given twice in one mapping (first on line 4)" in (
        result.error or ""
    )


def test_strip_prefix_needs_prefix() -> None:
    """strip_prefix without match.path_prefix is refused."""
    with pytest.raises(ValidationError, match="strip_prefix"):
        GatewayConfig.model_validate(
            {
                "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
                "routes": [
                    {"name": "r", "match": {"path": "/a"}, "cluster": "c", "strip_prefix": True}
                ],
            }
        )


def test_example_config_is_valid() -> None:
    """The bundled examples/gateway.yaml validates."""
    assert load_config(Path("examples/gateway.yaml")).is_success


def test_invalid_rate_limit_refused() -> None:
    """A route's rate limit must parse ('100/second')."""
    result = parse_config(MINIMAL.replace("cache: true", "rate_limit: lots"))
    assert result.error is not None and "invalid rate limit 'lots'" in result.error


def test_auth_route_needs_auth_section() -> None:
    """auth: true on a route without a top-level auth section is refused."""
    result = parse_config(MINIMAL.replace("cache: true", "auth: true"))
    assert result.error is not None and "no auth section" in result.error


def test_cluster_pool_expires_idle_connections_before_common_upstreams() -> None:
    """A cluster's idle upstream connections expire before uvicorn's and Node's 5 s."""
    from flext_api.gateway import ClusterConfig

    cluster = ClusterConfig.model_validate({"name": "svc", "instances": [{"url": "http://a:1"}]})
    assert cluster.pool.keepalive_expiry < 5.0


DNS_CLUSTER = """\
clusters:
  - name: orders
    registry: {registry}
routes:
  - name: orders
    match: {{path_prefix: /orders}}
    cluster: orders
"""


@pytest.mark.parametrize(
    "registry",
    [
        "{backend: dns, url: 'dns://'}",
        "{backend: dns, url: 'dns://127.0.0.1:5353', record: A, default_port: 8080}",
        "{backend: dns, url: 'dns://[::1]', domain: svc.cluster.local, min_ttl: 2, max_ttl: 60}",
    ],
)
def test_dns_registry_source_loads(registry: str) -> None:
    """A cluster can take its instances from DNS (system resolvers or one name server)."""
    config = parse_config(DNS_CLUSTER.format(registry=registry)).unwrap()
    source = config.clusters[0].registry
    assert source is not None and source.backend == "dns"


def test_instances_and_a_registry_together_are_refused() -> None:
    """A cluster names its instances in the file or takes them from a registry: with
    both, the listed ones were silently never used."""
    text = DNS_CLUSTER.format(registry="{backend: dns, url: 'dns://'}").replace(
        "    registry:", "    instances: [{url: 'http://10.0.0.5:8080'}]\n    registry:"
    )
    result = parse_config(text, source="gw.yaml")
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert result.error is not None and "clusters[0]" in result.error
    assert "not both" in result.error


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        ("{backend: dns, url: 'http://10.0.0.2'}", "url starts with dns://"),
        ("{backend: dns, url: 'dns://ns1.example:53'}", "must be an IP address"),
        ("{backend: dns, url: 'dns://10.0.0.2/zone'}", "dns://NAMESERVER_IP[:PORT]"),
        ("{backend: dns, url: 'dns://10.0.0.2:0'}", "port from 1 to 65535"),
        ("{backend: dns, url: 'dns://10.0.0.2:70000'}", "not a valid URL"),
        ("{backend: dns, url: 'dns://', min_ttl: 9, max_ttl: 3}", "min_ttl must not exceed"),
        ("{backend: dns, url: 'dns://', record: MX}", "record"),
        ("{backend: redis, url: 'redis://127.0.0.1:6379/0', record: A}", "only the dns backend"),
        ("{backend: etcd, url: 'redis://127.0.0.1:6379'}", "url starts with http://"),
    ],
)
def test_registry_source_errors(registry: str, message: str) -> None:
    """A registry source that cannot work is refused with its reason, before start-up."""
    result = parse_config(DNS_CLUSTER.format(registry=registry), source="gw.yaml")
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert result.error is not None and "clusters[0].registry" in result.error
    assert message in result.error


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"edge": {"redis_url": "http://127.0.0.1:6379"}}, "not a redis://"),
        ({"edge": {"redis_url": "redis://:secret@127.0.0.1:0"}}, "port 0"),
        ({"clusters": [{"name": "c", "instances": [{"url": "http://h:1"}],
                        "health": {"path": "health"}}]}, "probe path"),
        ({"clusters": [{"name": "c", "instances": [{"url": "http://h:1"}],
                        "health": {"path": "/h\r\nX: y"}}]}, "probe path"),
        ({"clusters": [{"name": "c", "instances": [{"url": "http://h:1"}],
                        "health": {"path": "/santé#top"}}]}, "probe path"),
    ],
)  # fmt: skip
def test_redis_url_and_probe_path_are_checked(patch: dict[str, Any], message: str) -> None:
    """A Redis URL of another scheme or a probe path that is not a path is a config error
    at load (with no password shown), not a failure of every limit check or probe."""
    config = {
        "clusters": [{"name": "c", "instances": [{"url": "http://h:1"}]}],
        "routes": [{"name": "r", "cluster": "c", "match": {}}],
        **patch,
    }
    result = parse_config(json.dumps(config))
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert message in (result.error or "") and "secret" not in (result.error or "")


def test_instance_url_with_credentials_is_refused_without_repeating_them() -> None:
    """user:password@ in an instance URL is a config error that does not echo it (it
    would be logged, shown by `flext-api gateway check` and kept in describe())."""
    text = MINIMAL.replace("http://127.0.0.1:9001", "http://svc:s3cr3t@127.0.0.1:9001")
    result = parse_config(text, source="gw.yaml")
    assert result.error_code is ErrorCode.CONFIG_ERROR and result.error is not None
    assert "carries no credentials" in result.error and "s3cr3t" not in result.error
