"""The gateway's configuration: frozen pydantic models, the same from YAML and from Python.

Every key has a production default except a route's ``match`` and ``cluster`` and a
cluster's ``instances``. Models reject unknown keys, so a typo is an error with its path,
never a silently ignored setting::

    clusters:
      - name: orders
        instances: [{url: "http://127.0.0.1:9001"}, {url: "http://127.0.0.1:9002"}]
    routes:
      - name: orders
        match: {path_prefix: /orders}
        cluster: orders

Cross-references (a route naming an unknown cluster, duplicate names, regexes that do not
compile) are checked here too, so a config that validates is one the gateway can run.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .._config import BreakerConfig, PoolConfig
from .._server_config import AuthConfig, ServerRateLimitConfig
from .._syntax import check_networks, check_origin_form, sendable_header, split_config_url
from ._edge_config import AggregateConfig, EdgeConfig, RateLimitRule, RouteAuth, TransformConfig

__all__ = [
    "AdminConfig",
    "ClusterConfig",
    "GatewayConfig",
    "GatewayTimeouts",
    "HeaderRules",
    "HealthConfig",
    "InstanceConfig",
    "ListenerConfig",
    "MatchConfig",
    "PassiveHealthConfig",
    "RegistrySourceConfig",
    "RewriteConfig",
    "RouteConfig",
    "RouteRetry",
]

_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_TEMPLATE_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regex: {exc}") from None
    return pattern


class _Model(BaseModel):
    # allow_inf_nan=False: an infinite interval, timeout or drain passed validation and
    # broke the gateway later (at start-up, or on the reload that applied it).
    # hide_input_in_errors: a config holds secrets (the admin token, JWT secrets, URLs
    # with passwords) and its errors are logged; they say where and what, not the value.
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, hide_input_in_errors=True
    )


class ListenerConfig(_Model):
    """Where the gateway accepts traffic (``flext-api gateway --port`` overrides the port).

    ``header_timeout``: seconds a client has to send a whole request head (slowloris).
    ``max_header_bytes``: the request line and headers together; more gets a 431.
    ``parser``: the HTTP/1.1 parser: ``auto`` (httptools when installed, else h11),
    ``httptools`` or ``h11``.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    header_timeout: float = Field(default=10.0, gt=0)
    max_header_bytes: int = Field(default=32768, ge=1024)
    parser: Literal["auto", "httptools", "h11"] = "auto"


class AdminConfig(_Model):
    """The admin API: its own port, loopback only by default, a bearer token required.

    Served when ``token`` is set, or when the config has an ``admin`` section at all. With
    no token only the open paths answer (``/health``, ``/ready``, ``/metrics``: what
    container probes and scrapers use); every endpoint behind the token is a 401 (there
    is no unauthenticated mode). Without the section and the token, no admin port is
    opened.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=9901, ge=0, le=65535)
    token: SecretStr | None = None

    @field_validator("token")
    @classmethod
    def _bearer_token(cls, value: SecretStr | None) -> SecretStr | None:
        # RFC 6750 §2.1's b64token: what a client can send after "Bearer ". An empty
        # token served an admin API nobody could use; not echoed (it is a secret).
        if value is not None and not _B64TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError(
                "admin.token must be a non-empty bearer token: letters, digits and "
                "-._~+/ (then '=' padding), as RFC 6750 allows after 'Bearer '"
            )
        return value


class InstanceConfig(_Model):
    """One upstream instance: ``http://host:port`` (a path prefix is allowed)."""

    url: str
    id: str | None = Field(default=None, pattern=_NAME)
    weight: int = Field(default=1, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if "@" in value.partition("://")[2].partition("/")[0]:
            # Not echoed: what comes before the '@' is a password, and errors are logged.
            raise ValueError(
                "an instance URL carries no credentials (user:password@); the upstream's "
                "own auth goes in route headers or transforms"
            )
        try:
            parts = split_config_url(value)
        except ValueError as exc:
            raise ValueError(f"{value!r}: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: an instance URL carries no query or fragment")
        return value.rstrip("/")

    @property
    def instance_id(self) -> str:
        """The id health and breaker state are keyed by (``host-port`` when none is given)."""
        if self.id is not None:
            return self.id
        parts = urlsplit(self.url)
        derived = f"{parts.hostname}-{parts.port or (443 if parts.scheme == 'https' else 80)}"
        if parts.path:
            derived += "-" + parts.path.strip("/")
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", derived)[:63]


class GatewayTimeouts(_Model):
    """Seconds. ``idle`` bounds the silence between two reads (streams, SSE), not their sum.

    ``per_try`` bounds the wait for the response head of one attempt; ``total`` the whole
    request up to the response head, retries included (Envoy's route timeout).
    """

    connect: float = Field(default=5.0, gt=0)
    per_try: float = Field(default=30.0, gt=0)
    total: float = Field(default=60.0, gt=0)
    idle: float = Field(default=300.0, gt=0)


class RouteRetry(_Model):
    """Retries of one route: idempotent requests (or ones with an ``Idempotency-Key``) only.

    A retry happens only before any response byte reached the client, goes to another
    instance when there is one, and is bounded by a budget of ``budget_ratio`` of recent
    requests (with a floor of ``budget_min_retries`` per window).
    """

    retries: int = Field(default=2, ge=0, le=10)
    statuses: frozenset[int] = frozenset({502, 503, 504})
    budget_ratio: float = Field(default=0.2, ge=0, le=1)
    budget_min_retries: int = Field(default=10, ge=0)
    budget_window: float = Field(default=10.0, gt=0)


class PassiveHealthConfig(_Model):
    """Passive outlier ejection from real traffic (Envoy's names and defaults).

    An instance is ejected for ``base_ejection_time`` x its number of ejections (capped at
    ``max_ejection_time``) after ``consecutive_5xx`` 5xx answers or
    ``consecutive_gateway_errors`` connect failures, timeouts, resets or 502/503/504;
    never more than ``max_ejection_percent`` of a cluster, never its last instance.
    """

    enabled: bool = True
    consecutive_5xx: int = Field(default=5, ge=1)
    consecutive_gateway_errors: int = Field(default=5, ge=1)
    base_ejection_time: float = Field(default=30.0, gt=0)
    max_ejection_time: float = Field(default=300.0, gt=0)
    max_ejection_percent: float = Field(default=50.0, ge=0, le=100)


class HealthConfig(_Model):
    """Active probes (``GET path`` every ``interval``, 2xx/3xx passes) and passive ejection.

    ``unhealthy_threshold`` failed probes in a row take an instance out of rotation,
    ``healthy_threshold`` passing ones bring it back.
    """

    active: bool = True
    path: str = "/health"
    interval: float = Field(default=5.0, gt=0)
    timeout: float = Field(default=2.0, gt=0)
    healthy_threshold: int = Field(default=2, ge=1)
    unhealthy_threshold: int = Field(default=3, ge=1)
    passive: PassiveHealthConfig = PassiveHealthConfig()

    @field_validator("path")
    @classmethod
    def _probe_path(cls, value: str) -> str:
        # discovery's HealthCheckConfig checks the same: refused here, the error names
        # the path in the file instead of failing when the cluster is built.
        try:
            check_origin_form(value)
        except ValueError as exc:
            raise ValueError(f"{value!r}: a probe path {exc}") from None
        return value


#: The keys only a dns registry source takes (DnsBackend's settings).
DNS_OPTIONS = ("record", "domain", "scheme", "default_port", "min_ttl", "max_ttl", "timeout")


class RegistrySourceConfig(_Model):
    """Instances from a shared discovery registry instead of the config file.

    ``backend`` is ``redis`` (``redis://host:port/db``, the ``redis`` extra), ``etcd``
    (``http://host:2379``) or ``dns`` (``dns://`` asks the system's resolvers,
    ``dns://10.0.0.2:53`` that name server; the ``dns`` extra); ``service`` is the
    registered name (default: the cluster's). With Redis and etcd, services register and
    heartbeat themselves and the gateway follows the changes. With DNS, the gateway reads
    SRV records (``_SERVICE._tcp.DOMAIN``: host, port, weight; the lowest priority group)
    or A records (``SERVICE.DOMAIN`` on ``default_port``) and asks again when their TTL
    (bounded by ``min_ttl`` and ``max_ttl``) runs out; ``record``, ``domain``, ``scheme``,
    ``default_port``, ``min_ttl``, ``max_ttl`` and ``timeout`` apply to DNS only.
    """

    backend: Literal["redis", "etcd", "dns"]
    url: str
    service: str | None = Field(default=None, pattern=_NAME)
    record: Literal["SRV", "A"] | None = None
    domain: str | None = Field(default=None, max_length=253)
    scheme: Literal["http", "https"] | None = None
    default_port: int | None = Field(default=None, ge=1, le=65535)
    min_ttl: float | None = Field(default=None, gt=0)
    max_ttl: float | None = Field(default=None, gt=0)
    timeout: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _fits_backend(self) -> RegistrySourceConfig:
        schemes = {"redis": ("redis", "rediss", "unix"), "etcd": ("http", "https"), "dns": ("dns",)}
        try:
            parts = urlsplit(self.url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"url {self.url!r} is not a valid URL: {exc}") from None
        if parts.scheme not in schemes[self.backend]:
            allowed = " or ".join(f"{scheme}://" for scheme in schemes[self.backend])
            raise ValueError(f"the {self.backend} backend's url starts with {allowed}")
        if self.backend != "dns":
            given = [name for name in DNS_OPTIONS if getattr(self, name) is not None]
            if given:
                raise ValueError(f"only the dns backend takes {', '.join(given)}")
            return self
        if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
            raise ValueError("the dns backend's url is dns:// or dns://NAMESERVER_IP[:PORT]")
        if parts.hostname:
            try:
                ipaddress.ip_address(parts.hostname)
            except ValueError:
                raise ValueError(
                    f"the dns backend's name server must be an IP address, got {parts.hostname!r}"
                ) from None
        if port == 0:
            raise ValueError("the dns backend's url needs a port from 1 to 65535")
        if self.min_ttl is not None and self.max_ttl is not None and self.min_ttl > self.max_ttl:
            raise ValueError("min_ttl must not exceed max_ttl")
        return self


class ClusterConfig(_Model):
    """A named set of upstream instances with their balancer, health, pool and policies.

    ``instances`` lists them in the file; with ``registry`` they come from a shared
    discovery registry instead (then ``instances`` must be left out: both at once is
    refused, as the listed ones would never be used).
    """

    name: str = Field(pattern=_NAME)
    instances: list[InstanceConfig] = Field(default_factory=list)
    registry: RegistrySourceConfig | None = None
    balancer: Literal["round_robin", "least_request", "random", "peak_ewma"] = "round_robin"
    health: HealthConfig = HealthConfig()
    # Idle upstream connections expire after 4 s, below the 5 s keep-alive of uvicorn and
    # Node: an upstream that closes an idle connection first races the next request on
    # it, and a POST lost that way cannot be retried. Idle connections are not capped
    # below the pool: a burst that ends leaves many idle at once for a moment, and
    # closing them only to reopen them on the next burst costs a connect per request.
    pool: PoolConfig = PoolConfig(keepalive_expiry=4.0, max_keepalive=100)
    # ``h1``: the gateway's own HTTP/1.1 client for http:// upstreams (https:// goes
    # through aiohttp); ``aiohttp``: aiohttp for every upstream.
    transport: Literal["h1", "aiohttp"] = "h1"
    timeouts: GatewayTimeouts = GatewayTimeouts()
    retry: RouteRetry = RouteRetry()
    breaker: BreakerConfig = BreakerConfig()
    max_pending: int = Field(default=1024, ge=1)
    # Bytes of a request body its routes take (None: no bound; a route may set its own):
    # a larger Content-Length is a 413 before any upstream is asked, a chunked body is
    # cut at the bound (nginx's client_max_body_size, off by default as in Envoy).
    max_request_body: int | None = Field(default=None, ge=0)

    @property
    def service(self) -> str:
        """The service name in the registry."""
        if self.registry is not None and self.registry.service is not None:
            return self.registry.service
        return self.name

    @model_validator(mode="after")
    def _unique_instances(self) -> ClusterConfig:
        if not self.instances and self.registry is None:
            raise ValueError("a cluster needs instances (or a registry source)")
        if self.instances and self.registry is not None:
            raise ValueError(
                "a cluster takes its instances from 'instances' or from 'registry', not "
                "both (with a registry the listed instances would never be used)"
            )
        seen: set[str] = set()
        for instance in self.instances:
            if instance.instance_id in seen:
                raise ValueError(f"instance {instance.instance_id!r} is listed twice")
            seen.add(instance.instance_id)
        return self


class MatchConfig(_Model):
    """What a request must look like. Exactly one path form (or none: every path).

    ``path`` is exact, ``path_prefix`` matches whole segments (``/orders`` matches
    ``/orders`` and ``/orders/1``, not ``/ordersx``), ``path_template`` has ``{name}``
    segments, ``path_regex`` must match the whole path. ``headers`` and ``query`` map a
    name to the exact value required (``"*"``: present with any value).
    """

    host: str | None = None
    path: str | None = None
    path_prefix: str | None = None
    path_template: str | None = None
    path_regex: str | None = None
    methods: frozenset[str] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)

    @field_validator("path", "path_prefix", "path_template")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/'")
        return value

    @field_validator("path_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            names = _TEMPLATE_PARAM.findall(value)
            if len(names) != len(set(names)):
                raise ValueError(f"{value!r} names a parameter twice")
        return value

    @field_validator("path_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else _compiles(value)

    @field_validator("methods")
    @classmethod
    def _upper(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        return None if value is None else frozenset(m.upper() for m in value)

    @field_validator("headers")
    @classmethod
    def _lower_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            sendable_header(name)  # a name no request can carry would never match
        return {name.lower(): v for name, v in value.items()}

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        # As the router compares: lower case, without the root's dot ("a.example.").
        return None if value is None else value.lower().removesuffix(".")

    @model_validator(mode="after")
    def _one_path_form(self) -> MatchConfig:
        forms = [self.path, self.path_prefix, self.path_template, self.path_regex]
        if sum(form is not None for form in forms) > 1:
            raise ValueError("give at most one of path, path_prefix, path_template, path_regex")
        return self


class RewriteConfig(_Model):
    """Rewrite the upstream path with a regex (``re.sub`` on the whole path)."""

    regex: str
    replacement: str

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str) -> str:
        return _compiles(value)

    @model_validator(mode="after")
    def _groups(self) -> RewriteConfig:
        """Every group the replacement names exists in the regex (else every request
        it matches would fail with ``invalid group reference``)."""
        pattern = re.compile(self.regex)
        for escape in re.finditer(r"\\(g<([^>]*)>|[0-9]{1,2}|.?)", self.replacement):
            ref = escape.group(2) if escape.group(2) is not None else escape.group(1)
            if not ref or not (ref[0].isdigit() or escape.group(2) is not None):
                continue  # an escape such as \\ or \n, not a group
            known = (int(ref) <= pattern.groups) if ref.isdigit() else ref in pattern.groupindex
            if not known:
                raise ValueError(
                    f"replacement {self.replacement!r} refers to group {ref!r}, which the "
                    f"regex does not have ({pattern.groups} group(s))"
                )
        return self


class HeaderRules(_Model):
    """Headers to add (replacing) and remove on the request and on the response."""

    request_add: dict[str, str] = Field(default_factory=dict)
    request_remove: tuple[str, ...] = ()
    response_add: dict[str, str] = Field(default_factory=dict)
    response_remove: tuple[str, ...] = ()

    @field_validator("request_add", "response_add")
    @classmethod
    def _added(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            sendable_header(name, text)
        return value

    @field_validator("request_remove", "response_remove")
    @classmethod
    def _removed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            sendable_header(name)
        return value


class RouteConfig(_Model):
    """A route: a match, the cluster it goes to and per-route overrides.

    ``auth: true`` requires a valid JWT (``Authorization: Bearer``) or API key
    (``X-API-Key``) as :attr:`GatewayConfig.auth` defines them, holding every scope in
    ``scopes``: 401 (with ``WWW-Authenticate``) or 403 otherwise. The upstream receives
    ``X-Authenticated-Subject`` (a client-sent one is always removed).

    ``rate_limit`` (``"100/second"``) limits each client of the route (its address, through
    ``trusted_proxies``) in the storage of :attr:`GatewayConfig.rate_limit`; a refusal is a
    429 with ``Retry-After``, and every answer carries ``RateLimit-*`` headers.

    ``auth: {methods, scopes, roles}`` (a mapping instead of ``true``) is the edge auth
    of ``edge.auth`` (JWT, API keys, basic, forward-auth); ``cache: true`` puts the shared
    RFC 9111 cache in front of the route; ``rate_limits``, ``concurrency``, ``transform``
    and ``aggregate`` are the other edge policies (unset ones fall back on
    ``edge.defaults``; see docs/gateway-policies.md).

    ``max_request_body`` (bytes) overrides the cluster's: a longer body gets a 413.
    """

    name: str = Field(pattern=_NAME)
    match: MatchConfig
    cluster: str
    priority: int = 0
    strip_prefix: bool = False
    rewrite: RewriteConfig | None = None
    preserve_host: bool = True
    host_rewrite: str | None = None
    headers: HeaderRules = HeaderRules()

    @field_validator("host_rewrite")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None:
            sendable_header("Host", value)  # a CR/LF would split every upstream request
        return value

    websocket: bool = True
    # true: the core's JWT / API-key check; a mapping: the edge policy (RouteAuth).
    auth: RouteAuth | bool = False
    scopes: tuple[str, ...] = ()
    rate_limit: str | None = None
    cache: bool = False
    timeouts: GatewayTimeouts | None = None
    retry: RouteRetry | None = None
    rate_limits: tuple[RateLimitRule, ...] | None = None
    concurrency: int | None = Field(default=None, ge=1)
    max_request_body: int | None = Field(default=None, ge=0)
    transform: TransformConfig | None = None
    aggregate: AggregateConfig | None = None

    @field_validator("rate_limit")
    @classmethod
    def _limit(cls, value: str | None) -> str | None:
        if value is not None:
            from limits import parse

            try:
                parse(value)
            except ValueError:
                raise ValueError(f"invalid rate limit {value!r}: use e.g. '100/second'") from None
        return value

    @model_validator(mode="after")
    def _strip_needs_prefix(self) -> RouteConfig:
        if self.strip_prefix and self.match.path_prefix is None:
            raise ValueError("strip_prefix needs match.path_prefix")
        return self


class GatewayConfig(_Model):
    """The whole gateway: listeners, admin API, trusted proxies, clusters and routes.

    >>> config = GatewayConfig.model_validate({
    ...     "clusters": [{"name": "orders", "instances": [{"url": "http://127.0.0.1:9001"}]}],
    ...     "routes": [{"name": "orders", "match": {"path_prefix": "/orders"},
    ...                 "cluster": "orders"}],
    ... })
    >>> config.routes[0].cluster
    'orders'
    """

    listeners: list[ListenerConfig] = Field(default_factory=lambda: [ListenerConfig()])
    admin: AdminConfig = AdminConfig()
    trusted_proxies: tuple[str, ...] = ()
    via: str = "flext-gateway"
    drain_timeout: float = Field(default=30.0, ge=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_networks(value)
        return value

    @field_validator("via")
    @classmethod
    def _via(cls, value: str) -> str:
        sendable_header("Via", value)  # a CR/LF would split every upstream request
        return value

    watch: bool = True
    rate_limit: ServerRateLimitConfig = ServerRateLimitConfig()
    auth: AuthConfig | None = None
    clusters: list[ClusterConfig] = Field(min_length=1)
    routes: list[RouteConfig] = Field(min_length=1)
    edge: EdgeConfig = EdgeConfig()

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        clusters = [c.name for c in self.clusters]
        _no_duplicates("cluster", clusters)
        _no_duplicates("route", [r.name for r in self.routes])
        known = set(clusters)
        for route in self.routes:
            if route.auth is True and self.auth is None:
                raise ValueError(
                    f"route {route.name!r} sets auth: true but there is no auth section"
                )
            if route.cluster not in known:
                raise ValueError(
                    f"route {route.name!r} names cluster {route.cluster!r}, "
                    f"which is not defined (clusters: {', '.join(sorted(known))})"
                )
        from ._edge_checks import check_edge

        check_edge(self)
        return self

    def cluster(self, name: str) -> ClusterConfig:
        """The cluster called ``name`` (validated to exist for every route)."""
        return next(c for c in self.clusters if c.name == name)


def _no_duplicates(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{kind} name {name!r} is used twice")
        seen.add(name)
