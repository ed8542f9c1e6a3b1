"""Route response caching: the seed's ``@cached("products", expire=300)``.

    @app.get("/products")
    @cached("products", expire=300)
    async def list_products(): ...

Rules:

* Only ``GET`` and ``HEAD`` are cached. The key is the namespace, method, path, the
  query string (parameters sorted by name, repeated ones kept in their order) and the
  values of the headers named in ``vary``; the response's ``Vary`` must not name any
  other header, or it is not stored (``Vary: *`` never is).
* One computation per key at a time: concurrent misses wait for the first
  (:class:`~flext_api.AsyncSmartCache` single flight). Values live in the app's
  :class:`RouteCache` - memory by default, or any :class:`~flext_api.FlextApiCache`
  (e.g. Redis, shared by every process) given as ``store``.
* Never stored: a response with ``Cache-Control: no-store`` or ``private``, a status
  other than 200/203/204/300/301/404/405/410/414/501 (RFC 9110 heuristically cacheable),
  a streaming response - and a request carrying ``Authorization`` is neither served from
  nor stored in the cache unless the route says ``allow_authorized=True`` (its body may
  depend on who asks). ``allow_private=True`` lets a route store ``private`` responses.
  When a response turns out not to be storable, requests that waited for it compute
  their own: a response meant for one caller is never handed to another.
* Hits carry ``X-Cache: HIT`` and ``Age``; misses ``X-Cache: MISS``.
* Invalidation: ``await app.state.route_cache.invalidate_tag("products")`` (every
  route cached under that namespace or tag) or ``invalidate_path("products", "/products")``
  (every query and vary variant of exactly that path; ``/products/1`` is another path).
  Tags are known to the process that stored the entry; with a shared store, other
  processes keep their local copies until ``expire``.
* The decorator checks its arguments when it runs: ``expire`` must be seconds > 0, and
  ``tags``/``vary`` lists of str (``tags="x"`` is a ``TypeError``: write ``tags=["x"]``).

The endpoint may take ``request: Request`` (and ``response: Response``) itself: the key is
read from that parameter; without one the decorator adds a hidden one of its own.

The endpoint's return value is encoded as FastAPI would for a route without
``response_model`` (``jsonable_encoder``); return the model you want served.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar, get_args, get_origin
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi.encoders import jsonable_encoder
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from flext_api._clock import Clock, get_clock
from flext_api.cache import AsyncSmartCache, CachedError, FlextApiCache
from flext_api.cache._durations import to_names, to_seconds

__all__ = ["RouteCache", "cached"]

F = TypeVar("F", bound=Callable[..., Any])
_REQUEST_PARAM = "flext_route_cache_request"
_METHODS = ("GET", "HEAD")
_STORABLE_STATUS = frozenset({200, 203, 204, 300, 301, 404, 405, 410, 414, 501})


class _NotStored(Exception):
    """Carries a response that must not be stored out of the single-flight computation."""

    def __init__(self, response: Response) -> None:
        super().__init__("response not storable")
        self.response = response


def _encode(response: Response, stored_at: float) -> bytes:
    headers = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in response.raw_headers
        if k not in (b"content-length", b"set-cookie")
    ]
    return orjson.dumps([response.status_code, headers, stored_at]) + b"\n" + bytes(response.body)


def _decode(data: bytes, now: float) -> Response:
    head, _, body = data.partition(b"\n")
    status, headers, stored_at = orjson.loads(head)
    response = Response(body, status_code=status)
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers] + [
        (b"content-length", str(len(body)).encode())
    ]
    response.headers["Age"] = str(max(0, int(now - stored_at)))
    response.headers["X-Cache"] = "HIT"
    return response


def _storable(response: Response, vary: frozenset[str], allow_private: bool) -> bool:
    if isinstance(response, StreamingResponse) or response.status_code not in _STORABLE_STATUS:
        return False
    directives = {
        d.strip().split("=", 1)[0].lower()
        for d in response.headers.get("cache-control", "").split(",")
    }
    if "no-store" in directives or ("private" in directives and not allow_private):
        return False
    named = {h.strip().lower() for h in response.headers.get("vary", "").split(",") if h.strip()}
    return not (named - vary)


class RouteCache:
    """Where the ``@cached`` routes of one app keep their responses (module docstring)."""

    def __init__(
        self,
        store: FlextApiCache | None = None,
        *,
        max_entries: int | None = 10_000,
        clock: Clock | None = None,
    ) -> None:
        self._clock = get_clock(clock)
        self.values = AsyncSmartCache(
            retry_interval=0,
            max_entries=max_entries,
            backend=store,
            namespace="route:",
            cache_errors=(),
            clock=self._clock,
        )

    def __repr__(self) -> str:
        return f"<RouteCache {len(self.values)} entries>"

    async def invalidate(self, key: str) -> bool:
        """Drop one entry by its key, ``namespace:METHOD:/path?sorted-query#vary-digest``
        (``#-`` when the route declares no vary; a ``%``, ``?`` or ``#`` in the decoded
        path is written ``%25``, ``%3F``, ``%23``); True when it existed."""
        return await self.values.invalidate(key)

    async def invalidate_tag(self, tag: str) -> int:
        """Drop every entry of a namespace or tag; return how many."""
        return await self.values.invalidate_tag(tag)

    async def invalidate_path(self, namespace: str, path: str) -> int:
        """Drop every cached variant (method, query, vary) of ``path`` in ``namespace``.

        The path is matched exactly and literally: ``/files/report`` leaves
        ``/files/reports`` alone, and ``[``, ``*`` or ``?`` in a path are plain characters.
        """
        # A key's path never holds a "?" (see _key_path), so what follows "path?" is the
        # query and vary parts: a longer path cannot share the prefix.
        prefixes = tuple(f"{namespace}:{method}:{_key_path(path)}?" for method in _METHODS)
        return await self.values.invalidate_where(lambda key: key.startswith(prefixes))

    async def aclose(self) -> None:
        """Stop computations in flight."""
        await self.values.aclose()

    async def serve(
        self,
        key: str,
        compute: Callable[[], Any],
        *,
        expire: float,
        tags: Iterable[str],
        vary: frozenset[str],
        allow_private: bool,
    ) -> Response:
        """The cached response for ``key``, or ``compute()``'s, stored when allowed."""
        mine: list[Response] = []
        clock = self._clock

        async def fill() -> bytes:
            response = await compute()
            mine.append(response)
            if not _storable(response, vary, allow_private):
                raise _NotStored(response)
            return _encode(response, clock.time())

        try:
            data = await self.values.get_or_compute(key, fill, ttl=expire, tags=tags)
        except _NotStored as exc:  # this request computed it: its own response
            return exc.response
        except CachedError as exc:
            if not isinstance(exc.__cause__, _NotStored):
                raise exc.error from None
            response: Response = await compute()  # another request's: never shared
            response.headers["X-Cache"] = "BYPASS"
            return response
        if mine:
            mine[0].headers["X-Cache"] = "MISS"
            return mine[0]
        return _decode(data, clock.time())


def _route_cache(request: Request) -> RouteCache:
    cache = getattr(request.app.state, "route_cache", None)
    if cache is None:
        cache = request.app.state.route_cache = RouteCache()
    if not isinstance(cache, RouteCache):
        raise TypeError("app.state.route_cache must be a RouteCache")
    return cache


def _key_path(path: str) -> str:
    """The decoded request path as keys hold it: ``%``, ``?`` and ``#`` escaped.

    ``?`` and ``#`` delimit the query and vary parts of a key, and escaping ``%`` keeps
    ``/q%3F`` (decoded: ``/q?``) and ``/q%253F`` (decoded: ``/q%3F``) two entries.
    Starlette's ``request.url.path`` re-escapes ``?`` but not ``%``, and mixed them up.
    """
    return path.replace("%", "%25").replace("?", "%3F").replace("#", "%23")


def _key(namespace: str, request: Request, vary: Iterable[str]) -> str:
    # Sorted by name only: the sort is stable, so repeated parameters keep their order
    # (``?a=1&a=2`` and ``?a=2&a=1`` give a list parameter different values).
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    query = urlencode(sorted(pairs, key=lambda pair: pair[0]))
    varied = "\n".join(f"{h}={request.headers.get(h, '')}" for h in vary)
    digest = hashlib.sha256(varied.encode()).hexdigest()[:16] if varied else "-"
    return f"{namespace}:{request.method}:{_key_path(request.scope['path'])}?{query}#{digest}"


def _is_request(annotation: Any, endpoint: Callable[..., Any]) -> bool:
    """Whether FastAPI injects the request into a parameter annotated ``annotation``.

    FastAPI reads the annotation with ``Annotated`` stripped and a string evaluated in the
    endpoint's module; so does this.
    """
    if isinstance(annotation, str):
        namespace = dict(getattr(inspect.unwrap(endpoint), "__globals__", {}))
        try:  # what inspect.signature(eval_str=True) does, one annotation at a time
            annotation = eval(annotation, namespace)
        except Exception:  # noqa: BLE001 - unresolvable: not a parameter FastAPI fills
            return False
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return isinstance(annotation, type) and issubclass(annotation, Request)


def cached(
    namespace: str,
    expire: float = 300,
    *,
    vary: Iterable[str] = (),
    tags: Iterable[str] = (),
    allow_private: bool = False,
    allow_authorized: bool = False,
) -> Callable[[F], F]:
    """Cache a route's responses for ``expire`` seconds under ``namespace`` (module doc).

    ``expire`` must be seconds > 0 and ``tags``/``vary`` iterables of str: bad values
    raise ``ValueError``/``TypeError`` here, at decoration, not on every request.
    """
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, got {type(namespace).__name__}")
    ttl = to_seconds(expire, "expire", allow_zero=False)
    vary_set = frozenset(h.lower() for h in to_names(vary, "vary"))
    vary_order = sorted(vary_set)
    all_tags = to_names(tags, "tags") | {namespace}

    def decorate(endpoint: F) -> F:
        try:
            signature = inspect.signature(endpoint, eval_str=True)
        except NameError:  # annotations naming local classes: FastAPI resolves them
            signature = inspect.signature(endpoint)
        params = list(signature.parameters.values())
        # FastAPI passes the request to one parameter only (the last one annotated
        # Request): when the route declares one, read the request from it; else add ours.
        own = [p.name for p in params if _is_request(p.annotation, endpoint)]
        request_param = own[-1] if own else _REQUEST_PARAM
        if not own:
            extra = inspect.Parameter(
                _REQUEST_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=Request
            )
            at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
            params.insert(at, extra)
        is_async = inspect.iscoroutinefunction(endpoint)

        async def run(kwargs: dict[str, Any]) -> Response:
            if is_async:
                value = await endpoint(**kwargs)
            else:
                value = await run_in_threadpool(endpoint, **kwargs)
            if isinstance(value, Response):
                return value
            response = JSONResponse(jsonable_encoder(value))
            # FastAPI merges an injected ``response: Response`` only into responses it
            # builds itself; this one is built here, so merge its status and headers too.
            sub = next((v for v in kwargs.values() if isinstance(v, Response)), None)
            if sub is not None:
                response.status_code = sub.status_code or response.status_code
                response.raw_headers.extend(
                    (k, v) for k, v in sub.raw_headers if k != b"content-length"
                )
            return response

        @functools.wraps(endpoint)
        async def wrapper(**kwargs: Any) -> Response:
            request: Request = kwargs[request_param] if own else kwargs.pop(request_param)
            if request.method not in _METHODS or (
                not allow_authorized and "authorization" in request.headers
            ):
                return await run(kwargs)
            return await _route_cache(request).serve(
                _key(namespace, request, vary_order),
                lambda: run(kwargs),
                expire=ttl,
                tags=all_tags,
                vary=vary_set,
                allow_private=allow_private,
            )

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
