"""FlextResult: the railway value every fallible call returns."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flext_api import ErrorCode, FlextApiError, FlextResult
from flext_api._errors import DecodeError, TimeoutError

values = st.one_of(
    st.integers(), st.text(max_size=10), st.none(), st.lists(st.integers(), max_size=3)
)
funcs = st.sampled_from([lambda x: [x], lambda x: (x, x), lambda x: repr(x), lambda x: x is None])


def _ok(x: Any) -> FlextResult[Any]:
    return FlextResult.ok(x)


def test_map_applies_the_function_to_a_success() -> None:
    """ok(2).map(+1).value is 3 (the acceptance example)."""
    assert FlextResult.ok(2).map(lambda x: x + 1).value == 3


def test_unwrap_of_a_failure_raises_its_error_with_the_code() -> None:
    """fail(..., code=READ_TIMEOUT).unwrap() raises a FlextApiError whose code is READ_TIMEOUT."""
    with pytest.raises(FlextApiError) as info:
        FlextResult.fail("boom", code=ErrorCode.READ_TIMEOUT).unwrap()
    assert info.value.code is ErrorCode.READ_TIMEOUT
    assert isinstance(info.value, TimeoutError)
    assert info.value.message == "boom"


def test_failure_properties() -> None:
    """A failure exposes its message, code and exception; a success exposes None for them."""
    fail: FlextResult[int] = FlextResult.fail("nope", code=ErrorCode.DECODE_ERROR)
    assert (fail.is_success, fail.is_failure, fail.success, bool(fail)) == (
        False,
        True,
        False,
        False,
    )
    assert fail.error == "nope"
    assert fail.error_code is ErrorCode.DECODE_ERROR
    assert isinstance(fail.exception, DecodeError)
    ok = FlextResult.ok(5)
    assert (ok.error, ok.error_code, ok.exception) == (None, None, None)
    assert ok.data == ok.value == ok.unwrap() == 5


def test_unwrap_or_returns_the_default_only_on_failure() -> None:
    """unwrap_or gives the value of a success and the default of a failure."""
    assert FlextResult.ok(1).unwrap_or(9) == 1
    assert FlextResult.fail("x").unwrap_or(9) == 9


def test_fail_from_a_foreign_exception_wraps_and_chains_it() -> None:
    """A non-FlextApiError exception is wrapped, chained as __cause__, default code kept."""
    original = ValueError("bad")
    result: FlextResult[int] = FlextResult.fail(original)
    assert result.error_code is ErrorCode.UNEXPECTED_ERROR
    assert result.exception is not None and result.exception.__cause__ is original
    assert "ValueError: bad" in (result.error or "")


def test_fail_keeps_a_flext_error_and_can_override_its_code() -> None:
    """An existing FlextApiError is reused as is; code= replaces its code."""
    err = FlextApiError("x", code=ErrorCode.CONNECT_ERROR)
    assert FlextResult.fail(err).exception is err
    assert FlextResult.fail(err, code=ErrorCode.DNS_ERROR).error_code is ErrorCode.DNS_ERROR


def test_fail_with_context_and_exception() -> None:
    """Keyword context lands on the error; exception= chains an original cause."""
    cause = OSError("refused")
    result: FlextResult[int] = FlextResult.fail(
        "no", code=ErrorCode.RATE_LIMITED, exception=cause, retry_after=3.0, details={"a": 1}
    )
    err = result.exception
    assert err is not None
    assert (err.retry_after, err.details, err.__cause__) == (3.0, {"a": 1}, cause)


def test_fail_with_context_on_an_existing_error() -> None:
    """Context passed with an exception object is set on the error."""
    result: FlextResult[int] = FlextResult.fail(FlextApiError("x"), retry_after=1.5)
    assert result.exception is not None and result.exception.retry_after == 1.5


def test_builtin_timeout_wraps_as_read_timeout() -> None:
    """A builtin TimeoutError is translated to READ_TIMEOUT."""
    assert FlextResult.fail(builtins_timeout()).error_code is ErrorCode.READ_TIMEOUT


def builtins_timeout() -> BaseException:
    import builtins

    return builtins.TimeoutError()


def test_map_and_flat_map_pass_failures_through() -> None:
    """A failure is returned unchanged by map, flat_map; map_error transforms it."""
    fail: FlextResult[int] = FlextResult.fail("x", code=ErrorCode.CANCELLED)
    assert fail.map(lambda v: v + 1) is fail
    assert fail.flat_map(lambda v: FlextResult.ok(v)) is fail
    mapped = fail.map_error(lambda e: FlextApiError("y", code=ErrorCode.CONFIG_ERROR))
    assert mapped.error_code is ErrorCode.CONFIG_ERROR
    ok = FlextResult.ok(1)
    assert ok.map_error(lambda e: e) is ok


def test_raise_for_failure() -> None:
    """raise_for_failure raises on a failure and returns None on a success."""
    FlextResult.ok(1).raise_for_failure()
    with pytest.raises(FlextApiError):
        FlextResult.fail("x").raise_for_failure()


def test_equality_hash_and_repr() -> None:
    """Results compare by value/code+message, hash consistently, and repr readably."""
    assert FlextResult.ok(1) == FlextResult.ok(1)
    assert FlextResult.ok(1) != FlextResult.ok(2)
    assert FlextResult.fail("a") == FlextResult.fail("a")
    assert FlextResult.fail("a") != FlextResult.ok("a")
    assert FlextResult.ok(1).__eq__(1) is NotImplemented
    assert (
        len({FlextResult.ok(1), FlextResult.ok(1), FlextResult.fail("a"), FlextResult.fail("a")})
        == 2
    )
    assert repr(FlextResult.ok(1)) == "FlextResult.ok(1)"
    assert (
        repr(FlextResult.fail("a", code=ErrorCode.CANCELLED))
        == "FlextResult.fail('a', code=CANCELLED)"
    )


@given(values, funcs)
def test_left_identity(x: Any, f: Any) -> None:
    """ok(x).flat_map(g) == g(x)."""

    def g(v: Any) -> FlextResult[Any]:
        return FlextResult.ok(f(v))

    assert FlextResult.ok(x).flat_map(g) == g(x)


@given(values)
def test_right_identity(x: Any) -> None:
    """m.flat_map(ok) == m, for successes and failures."""
    assert FlextResult.ok(x).flat_map(_ok) == FlextResult.ok(x)
    fail: FlextResult[Any] = FlextResult.fail(str(x))
    assert fail.flat_map(_ok) == fail


@given(values, funcs, funcs)
def test_associativity(x: Any, f: Any, h: Any) -> None:
    """(m >>= g) >>= k == m >>= (v -> g(v) >>= k)."""

    def g(v: Any) -> FlextResult[Any]:
        return FlextResult.ok(f(v))

    def k(v: Any) -> FlextResult[Any]:
        return FlextResult.ok(h(v))

    m = FlextResult.ok(x)
    assert m.flat_map(g).flat_map(k) == m.flat_map(lambda v: g(v).flat_map(k))


@given(values, funcs, funcs)
def test_functor_composition(x: Any, f: Any, h: Any) -> None:
    """map(f).map(h) == map(h . f), and map(identity) is identity."""
    m = FlextResult.ok(x)
    assert m.map(f).map(h) == m.map(lambda v: h(f(v)))
    assert m.map(lambda v: v) == m
