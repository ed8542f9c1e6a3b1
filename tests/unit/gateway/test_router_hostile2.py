"""The router under a second adversarial review: ``;`` path parameters."""

from __future__ import annotations

import pytest

from flext_api.gateway import RouteConfig
from flext_api.gateway._router import Router


def _router() -> Router:
    return Router(
        [
            RouteConfig.model_validate(
                {"name": "admin", "match": {"path_prefix": "/admin"}, "cluster": "c"}
            ),
            RouteConfig.model_validate(
                {"name": "order", "match": {"path_template": "/orders/{id}"}, "cluster": "c"}
            ),
            RouteConfig.model_validate(
                {"name": "login", "match": {"path": "/login"}, "cluster": "c"}
            ),
            RouteConfig.model_validate(
                {"name": "rest", "match": {"path_prefix": "/"}, "cluster": "c"}
            ),
        ]
    )


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/admin;x/data", "admin"),
        ("/admin;/data", "admin"),
        ("/admin;jsessionid=1", "admin"),
        ("/login;jsessionid=1", "login"),
        ("/adminx;y/data", "rest"),
        ("/public;admin", "rest"),
    ],
)
def test_path_parameters_do_not_hide_a_segment_from_its_route(path: str, route: str) -> None:
    """``/admin;x/data`` is ``/admin/data`` to Tomcat, Jetty and Spring: it takes the
    ``/admin`` route's policies, never the catch-all's."""
    found = _router().match("GET", "x", path, {}, "")
    assert found is not None and found.route.name == route


def test_a_template_binds_the_segment_without_its_parameters() -> None:
    """``/orders/7;v=2`` binds ``id`` to ``7``."""
    found = _router().match("GET", "x", "/orders/7;v=2", {}, "")
    assert found is not None and (found.route.name, dict(found.params)) == ("order", {"id": "7"})
