"""The router: precedence, conditions, template parameters (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from flext_api.gateway import RouteConfig, Router


def _route(name: str, priority: int = 0, **match: Any) -> RouteConfig:
    return RouteConfig.model_validate(
        {"name": name, "match": match, "cluster": "c", "priority": priority}
    )


def _name(router: Router, path: str, method: str = "GET", host: str = "h", **kw: Any) -> str | None:
    found = router.match(method, host, path, kw.get("headers", {}), kw.get("query", ""))
    return None if found is None else found.route.name


ROUTER = Router(
    [
        _route("any"),
        _route("regex", path_regex=r"/items/\d+"),
        _route("prefix", path_prefix="/items"),
        _route("template", path_template="/items/{id}"),
        _route("exact", path="/items/special"),
        _route("host", path_prefix="/items", host="api.example.com"),
        _route("urgent", priority=5, path_prefix="/items", headers={"X-Pin": "1"}),
        _route("post", path="/items", methods=["post"]),
        _route("query", path="/search", query={"v": "2"}),
    ]
)


def test_exact_beats_template_beats_prefix() -> None:
    """Exact, then template, then prefix, whatever the order in the file."""
    assert _name(ROUTER, "/items/special") == "exact"
    assert _name(ROUTER, "/items/7") == "template"
    assert _name(ROUTER, "/items/7/parts") == "prefix"


def test_prefix_matches_whole_segments() -> None:
    """/items matches /items and /items/..., not /itemsx."""
    assert _name(ROUTER, "/items") == "prefix"
    assert _name(ROUTER, "/itemsx") == "any"


def test_priority_wins_over_specificity() -> None:
    """A higher priority route is tried first."""
    assert _name(ROUTER, "/items/special", headers={"x-pin": "1"}) == "urgent"


def test_host_method_and_query_conditions() -> None:
    """Host (port ignored), method and query conditions must all hold."""
    assert _name(ROUTER, "/items/x/y", host="API.example.com:8443") == "host"
    assert _name(ROUTER, "/items/x/y", host="api.example.com.:8443") == "host"  # root's dot
    assert _name(Router([_route("h", host="API.example.com.")]), "/", host="api.example.com") == "h"
    assert _name(ROUTER, "/items", method="POST") == "post"
    assert _name(ROUTER, "/search", query="v=2&x=1") == "query"
    assert _name(ROUTER, "/search", query="v=1") == "any"


def test_template_binds_parameters() -> None:
    """A template match carries its parameters."""
    found = ROUTER.match("GET", "h", "/items/42", {}, "")
    assert found is not None and dict(found.params) == {"id": "42"}


def test_regex_must_match_whole_path() -> None:
    """A regex route matches the whole path only."""
    router = Router([_route("regex", path_regex=r"/v\d+")])
    assert _name(router, "/v2") == "regex"
    assert _name(router, "/v2/x") is None


def test_routes_listed_in_trial_order() -> None:
    """Router.routes lists routes in the order they are tried."""
    names = [r.name for r in ROUTER.routes]
    assert names[0] == "urgent" and names[-1] == "any"


def test_header_condition_any_value() -> None:
    """A header condition of '*' needs the header with any value."""
    router = Router([_route("h", headers={"X-Tenant": "*"})])
    assert _name(router, "/", headers={"x-tenant": "t1"}) == "h"
    assert _name(router, "/") is None


def test_repeated_path_gives_the_same_answer() -> None:
    """A remembered match answers as the first lookup did, for hits and misses alike."""
    router = Router([_route("t", path_template="/o/{id}"), _route("p", path_prefix="/x")])
    for _ in range(2):
        found = router.match("GET", "h", "/o/7", {}, "")
        assert found is not None
        assert (found.route.name, dict(found.params)) == ("t", {"id": "7"})
        assert router.match("GET", "h", "/nothing", {}, "") is None


def test_remembered_params_are_read_only() -> None:
    """Template parameters shared by remembered matches cannot be changed by a caller."""
    router = Router([_route("t", path_template="/o/{id}")])
    found = router.match("GET", "h", "/o/7", {}, "")
    assert found is not None
    with pytest.raises(TypeError):
        found.params["id"] = "8"  # type: ignore[index]


def test_query_routes_are_matched_on_every_request() -> None:
    """With a query condition in the table, the query decides on every request."""
    router = Router([_route("q", path="/s", query={"v": "2"}), _route("other")])
    assert router.uses_query
    assert _name(router, "/s", query="v=2") == "q"
    assert _name(router, "/s", query="v=1") == "other"


def test_long_paths_are_matched_without_being_remembered() -> None:
    """A path or host over the remembered length is matched afresh, same answer."""
    router = Router([_route("p", path_prefix="/x")])
    long_path = "/x/" + "a" * 300
    assert _name(router, long_path) == "p"
    assert _name(router, "/x/1", host="h" * 300) == "p"
    assert _name(router, "/y/" + "a" * 300) is None


def test_memo_emptied_when_full_still_answers() -> None:
    """Past the memo's bound it starts afresh; answers stay the same."""
    router = Router([_route("p", path_prefix="/x")])
    for index in range(1100):
        assert _name(router, f"/x/{index}") == "p"
    assert _name(router, "/x/0") == "p"
