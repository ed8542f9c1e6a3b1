"""Dict-style plugin hooks: the FLEXT guides' ``before_request(dict)`` / ``after_response(dict)``.

The FLEXT documentation writes plugins against plain dicts::

    def before_request(self, request_config: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:
        request_config["_request_id"] = make_id(request_config.get("url"))
        return FlextResult.ok(request_config)

    def after_response(self, response: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:
        started = response.get("_request_id")   # carried over from the request
        ...

:func:`uses_dict_hooks` decides once per plugin class, from the hooks' signatures and
annotations, whether a plugin is written that way; such a class gets
:func:`handle_with_dicts` as its ``handle``. The request and the response then reach the
hooks as dicts, and:

* changes to ``method``, ``url``, ``params``, ``headers`` or ``json`` are applied to the
  request; keys starting with ``_`` are the plugin's own and come back on every response
  dict (with ``_request_config``, the request dict itself);
* ``_skip_request`` with ``_cached_response`` (a dict with ``status_code``, ``headers``,
  ``data``) answers without sending; the response keeps the dict's keys, so
  ``response.data["_from_cache"]`` reads as the plugin set it;
* ``after_response`` sees every completed exchange, 4xx/5xx included, and every failure
  (with ``error`` and ``error_code``; ``status_code`` is 0 when no response arrived). The
  call's outcome stays what it was unless the hook returns a failed result of its own;
* ``_should_retry`` set by ``after_response`` sends the request again (at most
  :data:`MAX_DICT_RETRIES` times); ``_`` keys of that response carry to the next one, so
  a plugin's ``_retry_count`` grows.
"""

from __future__ import annotations

import inspect
import json as jsonlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, get_type_hints
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import FlextApiError
from .._models import Headers, HttpRequest, HttpResponse
from .._result import FlextResult

__all__ = [
    "DICT_VIEW",
    "MAX_DICT_RETRIES",
    "handle_with_dicts",
    "request_view",
    "response_view",
    "uses_dict_hooks",
]

#: The most times a ``_should_retry`` flag resends one call (a plugin that never stops
#: asking must not loop forever).
MAX_DICT_RETRIES = 10

#: Key in ``HttpResponse.extensions`` holding the response dict a dict-style plugin made.
DICT_VIEW = "flext.dict_view"

_CONTROL = frozenset({"_skip_request", "_cached_response", "_should_retry", "_request_config"})
_DICTISH = ("dict", "Dict", "Mapping", "MutableMapping")


def _positional_count(fn: Callable[..., Any]) -> int:
    params = inspect.signature(fn).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in kinds)


def _annotated_dict(fn: Callable[..., Any]) -> bool:
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    if not params:
        return False
    ann = params[0].annotation
    if ann is inspect.Parameter.empty:
        return False
    if isinstance(ann, str):
        return ann.startswith(_DICTISH)
    try:
        hints = get_type_hints(fn)
    except (NameError, TypeError):  # an annotation that cannot be resolved: read its text
        return str(ann).startswith(("dict", "typing.Dict", "typing.Mapping"))
    hint = hints.get(params[0].name, ann)
    origin = getattr(hint, "__origin__", hint)
    return isinstance(origin, type) and issubclass(origin, Mapping)


def uses_dict_hooks(cls: type) -> bool:
    """True when ``cls``'s hooks are written for dicts (decided from their signatures).

    ``after_response`` taking one argument (the modern hook takes request and response),
    or a hook whose first parameter is annotated as a dict/Mapping, marks the dict style.
    """
    after = getattr(cls, "after_response", None)
    before = getattr(cls, "before_request", None)
    if callable(after) and (_positional_count(after) == 2 or _annotated_dict(after)):
        return True
    return callable(before) and _annotated_dict(before)


# -- views ---------------------------------------------------------------------------------
def _json_body(request: HttpRequest) -> Any:
    ctype = request.headers.get("content-type", "")
    if request.content and "json" in ctype:
        try:
            return jsonlib.loads(request.content)
        except ValueError:
            return None
    return None


def request_view(request: HttpRequest) -> dict[str, Any]:
    """The dict a dict-style ``before_request`` receives."""
    view: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "headers": dict(request.headers.items()),
        "params": dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True)),
    }
    body = _json_body(request)
    if body is not None:
        view["json"] = body
    if request.timeout is not None:
        view["timeout"] = request.timeout.total
    return view


def _edited_query(query: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """``query`` with a hook's edits to its params dict; untouched repeated keys are kept.

    The dict view holds one value per name (``?tag=a&tag=b`` reads ``{"tag": "b"}``);
    a name the hook left alone keeps all its values, in place.
    """
    pairs: list[tuple[str, Any]] = []
    written: set[str] = set()
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in after or name in written:
            continue  # removed by the hook, or an edited name already written
        if after[name] == before.get(name):
            pairs.append((name, value))
        else:
            written.add(name)
            pairs.append((name, after[name]))
    seen = {name for name, _ in pairs} | written
    pairs.extend((str(name), value) for name, value in after.items() if name not in seen)
    return urlencode(pairs, doseq=True)


def _apply(
    request: HttpRequest, before: Mapping[str, Any], after: Mapping[str, Any]
) -> HttpRequest:
    """``request`` with the changes a hook made to its dict view."""
    changed = [
        k for k in ("method", "url", "params", "headers", "json") if after.get(k) != before.get(k)
    ]
    if not changed:
        return request
    new = request.copy()
    if "method" in changed:
        new.method = str(after["method"]).upper()
    url = str(after.get("url", new.url))
    if "params" in changed:
        parts = urlsplit(url)
        query = _edited_query(parts.query, before.get("params") or {}, after.get("params") or {})
        url = urlunsplit(parts._replace(query=query))
    new.url = url
    if "headers" in changed:
        new.headers = Headers({str(k): str(v) for k, v in dict(after.get("headers") or {}).items()})
    if "json" in changed:
        new.content = jsonlib.dumps(after.get("json")).encode()
        new.headers.set("Content-Type", "application/json")
    return new


def _body_data(response: HttpResponse) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except FlextApiError:
            return response.text
    return response.text


def response_view(response: HttpResponse) -> dict[str, Any]:
    """The dict of ``response``: ``status_code``, ``headers``, ``data``, ``content``, ``url``.

    A response a dict-style plugin made (a cached answer, a hook's edited dict) gives
    back that dict, ``_`` keys included.
    """
    made = response.extensions.get(DICT_VIEW)
    if isinstance(made, dict):
        return dict(made)
    view: dict[str, Any] = {
        "status_code": response.status_code,
        "headers": dict(response.headers.items()),
        "url": response.url,
        "elapsed": response.elapsed,
    }
    try:
        content = response.content
    except FlextApiError:  # a streaming body nobody has read: no body fields
        return view
    view["content"] = content.decode(response.encoding, errors="replace")
    view["data"] = _body_data(response)
    return view


def _answer(cached: Mapping[str, Any], request: HttpRequest) -> HttpResponse:
    data = cached.get("data")
    body = data if isinstance(data, bytes) else jsonlib.dumps(data).encode()
    headers = dict(cached.get("headers") or {})
    response = HttpResponse(
        int(cached.get("status_code") or 200),
        headers=headers or {"Content-Type": "application/json"},
        content=body,
        request=request,
    )
    response.from_cache = True
    response.extensions[DICT_VIEW] = dict(cached)
    return response


# -- the handle of a dict-style plugin --------------------------------------------------------
async def _call(hook: Callable[[Any], Any], arg: Any) -> Any:
    out = hook(arg)
    return await out if inspect.isawaitable(out) else out


def _unwrap(
    out: Any, fallback: MutableMapping[str, Any]
) -> FlextResult[Any] | MutableMapping[str, Any]:
    """A hook's return: a failed result stops the call; else the dict to go on with."""
    if isinstance(out, FlextResult):
        if out.is_failure:
            return out
        out = out.value
    return out if isinstance(out, MutableMapping) else fallback


def _own_keys(view: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k.startswith("_") and k not in _CONTROL}


def _stopped(out: FlextResult[Any], request: HttpRequest) -> FlextResult[HttpResponse]:
    err = out.exception
    assert err is not None
    if err.request is None:
        err.request = request
    return FlextResult(error=err)


async def handle_with_dicts(
    plugin: Any,
    request: HttpRequest,
    call_next: Callable[[HttpRequest], Awaitable[FlextResult[HttpResponse]]],
) -> FlextResult[HttpResponse]:
    """``FlextApiPlugin.handle`` for a plugin whose hooks take dicts (see the module doc)."""
    before = plugin.before_request
    after = plugin.after_response
    original = request_view(request)
    # A view of its own, nested dicts included: a hook that edits them in place
    # (``request_config["headers"]["Authorization"] = ...``) must not edit ``original``.
    req_view: MutableMapping[str, Any] = request_view(request)
    if before is not None:
        got = _unwrap(await _call(before, req_view), req_view)
        if isinstance(got, FlextResult):
            return _stopped(got, request)
        req_view = got
        request = _apply(request, original, req_view)
    carried = _own_keys(req_view)
    retries = 0
    while True:
        cached = req_view.get("_cached_response")
        if req_view.get("_skip_request") and isinstance(cached, Mapping):
            result: FlextResult[HttpResponse] = FlextResult(_answer(cached, request))
        else:
            result = await call_next(request)
        if after is None:
            return result
        error = result.exception
        response = result.value if error is None else _response_of(error)
        view = {**carried, **_outcome_view(response, error), "_request_config": req_view}
        got = _unwrap(await _call(after, view), view)
        if isinstance(got, FlextResult):
            return _stopped(got, request)
        if got.get("_should_retry") and retries < MAX_DICT_RETRIES and request.is_replayable:
            retries += 1
            carried = _own_keys(got)
            continue
        if response is not None:
            response.extensions[DICT_VIEW] = {
                k: v for k, v in got.items() if k != "_request_config"
            }
        return result


def _response_of(error: FlextApiError) -> HttpResponse | None:
    """The response behind a failure (also behind ``RETRIES_EXHAUSTED``), if one arrived."""
    seen: BaseException | None = error
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, HttpResponse):
            return response
        seen = seen.__cause__
    return None


def _outcome_view(response: HttpResponse | None, error: FlextApiError | None) -> dict[str, Any]:
    """The response dict; a failure adds ``error`` (and ``status_code`` 0 without a response)."""
    view = response_view(response) if response is not None else {"status_code": 0, "headers": {}}
    if error is not None:
        view["error"] = error.message
        view["error_code"] = error.code.value
    return view
