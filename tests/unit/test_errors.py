"""The error tree: codes map to the most specific class, messages stay readable."""

from __future__ import annotations

import pytest

from flext_api import ErrorCode, FlextApiError
from flext_api import _errors as errors


@pytest.mark.parametrize(
    ("code", "klass"),
    [
        (ErrorCode.CONNECT_ERROR, errors.ConnectError),
        (ErrorCode.DNS_ERROR, errors.ConnectError),
        (ErrorCode.READ_TIMEOUT, errors.TimeoutError),
        (ErrorCode.POOL_TIMEOUT, errors.TimeoutError),
        (ErrorCode.PROTOCOL_ERROR, errors.ProtocolError),
        (ErrorCode.HTTP_STATUS, errors.HttpStatusError),
        (ErrorCode.CIRCUIT_OPEN, errors.CircuitOpenError),
        (ErrorCode.RETRIES_EXHAUSTED, errors.RetriesExhaustedError),
        (ErrorCode.INVALID_REQUEST, errors.InvalidRequestError),
        (ErrorCode.UNEXPECTED_ERROR, FlextApiError),
    ],
)
def test_from_code_builds_the_most_specific_class(
    code: ErrorCode, klass: type[FlextApiError]
) -> None:
    """from_code picks the subclass registered for the code and keeps the code."""
    err = FlextApiError.from_code(code, "m")
    assert type(err) is klass
    assert err.code is code


def test_transport_errors_share_a_base() -> None:
    """Connect, timeout and protocol errors are all TransportErrors."""
    for code in (ErrorCode.CONNECT_ERROR, ErrorCode.READ_TIMEOUT, ErrorCode.PROTOCOL_ERROR):
        assert isinstance(FlextApiError.from_code(code, "m"), errors.TransportError)
        assert code.is_transport
    assert ErrorCode.READ_TIMEOUT.is_timeout and not ErrorCode.HTTP_STATUS.is_timeout


def test_str_and_repr_show_code_message_and_retry_after() -> None:
    """str() is '[CODE] message'; repr shows retry_after when set."""
    err = FlextApiError.from_code(ErrorCode.RATE_LIMITED, "slow down", retry_after=2.0)
    assert str(err) == "[RATE_LIMITED] slow down"
    assert repr(err) == "RateLimitedError(code=RATE_LIMITED, message='slow down', retry_after=2.0)"
    assert repr(FlextApiError("x")) == "FlextApiError(code=UNEXPECTED_ERROR, message='x')"


def test_wrap_keeps_our_errors_and_chains_others() -> None:
    """wrap returns a FlextApiError unchanged and chains any other exception."""
    ours = FlextApiError("x")
    assert FlextApiError.wrap(ours) is ours
    wrapped = FlextApiError.wrap(KeyError(), code=ErrorCode.DECODE_ERROR)
    assert wrapped.code is ErrorCode.DECODE_ERROR
    assert isinstance(wrapped.__cause__, KeyError)
    assert wrapped.message == "KeyError"
