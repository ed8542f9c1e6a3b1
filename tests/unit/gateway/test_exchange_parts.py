"""Small parts of the proxy exchange and the app (no sockets)."""

from __future__ import annotations

from flext_api.gateway import GatewayConfig, create_gateway
from flext_api.gateway._proxy import _hop


def test_via_element_per_version_and_name() -> None:
    """The Via element is the request's HTTP version and the configured name."""
    assert _hop("1.1", b"gw") == b"1.1 gw"
    for index in range(100):  # past the cache's bound: still right
        assert _hop("1.0", b"gw%d" % index) == b"1.0 gw%d" % index


def test_request_id_kept_when_sane() -> None:
    """A client's sane X-Request-ID is kept; a malformed one is replaced."""
    gateway = create_gateway(
        GatewayConfig.model_validate(
            {
                "clusters": [{"name": "c", "instances": [{"url": "http://127.0.0.1:9"}]}],
                "routes": [{"name": "r", "match": {"path_prefix": "/"}, "cluster": "c"}],
            }
        )
    )
    assert gateway.request_id({"headers": [(b"x-request-id", b"abc-1")]}) == b"abc-1"
    fresh = gateway.request_id({"headers": [(b"x-request-id", b"bad id\n")]})
    assert len(fresh) == 32 and fresh != b"bad id\n"
