"""``FlextResult[T]``: the railway-pattern value every fallible flext-api call returns.

A result is either a success holding a value or a failure holding a
:class:`~flext_api.FlextApiError`. Nothing is raised for expected failures; a caller
branches on ``is_success`` or chains with ``map``/``flat_map``::

    result = await client.get("/items")
    names = result.map(lambda r: [i["name"] for i in r.json()]).unwrap_or([])

``map`` and ``flat_map`` do not catch exceptions raised by the function passed in: a
bug in caller code stays a visible exception rather than turning into data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast, final

from ._errors import ErrorCode, FlextApiError

__all__ = ["FlextResult"]

T = TypeVar("T")
U = TypeVar("U")
D = TypeVar("D")

_MISSING: Any = object()
_new = object.__new__


@final
class FlextResult(Generic[T]):
    """Success with a value, or failure with a :class:`FlextApiError`.

    >>> FlextResult.ok(2).map(lambda x: x + 1).value
    3
    >>> FlextResult.fail("boom", code=ErrorCode.READ_TIMEOUT).error_code
    <ErrorCode.READ_TIMEOUT: 'READ_TIMEOUT'>
    """

    __slots__ = ("_error", "_value")

    def __init__(self, value: T = _MISSING, error: FlextApiError | None = None) -> None:
        # Prefer FlextResult.ok / FlextResult.fail; the constructor is kept cheap for the
        # hot path (one allocation, no validation).
        self._value = value
        self._error = error

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def _success(cls, value: T) -> FlextResult[T]:
        """A success, built without the constructor's call (a hot path's shortcut)."""
        result: FlextResult[T] = _new(cls)
        result._value = value
        result._error = None
        return result

    @classmethod
    def ok(cls, value: T = _MISSING, *, data: T = _MISSING) -> FlextResult[T]:
        """A success holding ``value``.

        ``data=`` is the FLEXT spelling (``FlextResult.ok(data=True)``); give one of the two.
        """
        if data is not _MISSING:
            if value is not _MISSING:
                raise TypeError("FlextResult.ok() takes a value or data=, not both")
            return cls(data)
        if value is _MISSING:
            raise TypeError("FlextResult.ok() needs a value (or data=)")
        return cls(value)

    @classmethod
    def fail(
        cls,
        error: str | BaseException | None,
        *,
        code: ErrorCode | None = None,
        exception: BaseException | None = None,
        **context: Any,
    ) -> FlextResult[T]:
        """A failure.

        ``error`` is a message or an exception. A :class:`FlextApiError` is kept as it is
        (``code`` then overrides its code when given); any other exception is wrapped in the
        most specific :class:`FlextApiError` for ``code`` and chained as ``__cause__``.
        ``exception`` chains an original exception to a message-built error. Keyword
        ``context`` (``request``, ``response``, ``retry_after``, ``details``) is passed to
        the error. ``None`` (a FLEXT habit: ``fail(other.error)``) reads "unknown error".
        """
        if error is None:
            error = "unknown error"
        if isinstance(error, FlextApiError):
            err = error
            if code is not None and code is not err.code:
                err.code = code
        elif isinstance(error, BaseException):
            err = FlextApiError.wrap(error, code=code)
        else:
            err = FlextApiError.from_code(code or ErrorCode.UNEXPECTED_ERROR, error, **context)
            context = {}
        if exception is not None and err.__cause__ is None and exception is not err:
            err.__cause__ = exception
        for key, val in context.items():
            setattr(err, key, val)
        return cls(_MISSING, err)

    # -- state ----------------------------------------------------------------------------
    @property
    def is_success(self) -> bool:
        """True for a success."""
        return self._error is None

    @property
    def is_failure(self) -> bool:
        """True for a failure."""
        return self._error is not None

    @property
    def value(self) -> T:
        """The value; raises the :class:`FlextApiError` on a failure."""
        if self._error is not None:
            raise self._error
        return self._value

    @property
    def error(self) -> str | None:
        """The failure's message, or None on a success."""
        return None if self._error is None else self._error.message

    @property
    def error_code(self) -> ErrorCode | None:
        """The failure's :class:`ErrorCode`, or None on a success."""
        return None if self._error is None else self._error.code

    @property
    def exception(self) -> FlextApiError | None:
        """The failure's :class:`FlextApiError`, or None on a success."""
        return self._error

    # FLEXT users write these; they are plain aliases.
    @property
    def success(self) -> bool:
        """Alias of :attr:`is_success`."""
        return self._error is None

    @property
    def data(self) -> T:
        """Alias of :attr:`value`."""
        return self.value

    # -- combinators ---------------------------------------------------------------------
    def unwrap(self) -> T:
        """The value; raises the :class:`FlextApiError` on a failure."""
        if self._error is not None:  # not `return self.value`: one call fewer
            raise self._error
        return self._value

    def unwrap_or(self, default: D) -> T | D:
        """The value, or ``default`` on a failure."""
        if self._error is not None:
            return default
        return self._value

    def map(self, fn: Callable[[T], U]) -> FlextResult[U]:
        """Apply ``fn`` to the value of a success; a failure passes through unchanged."""
        if self._error is not None:
            return cast("FlextResult[U]", self)
        return FlextResult(fn(self._value))

    def flat_map(self, fn: Callable[[T], FlextResult[U]]) -> FlextResult[U]:
        """Chain a fallible step: ``fn`` returns a result of its own."""
        if self._error is not None:
            return cast("FlextResult[U]", self)
        return fn(self._value)

    def map_error(self, fn: Callable[[FlextApiError], FlextApiError]) -> FlextResult[T]:
        """Transform the error of a failure; a success passes through unchanged."""
        if self._error is None:
            return self
        return FlextResult(_MISSING, fn(self._error))

    def raise_for_failure(self) -> None:
        """Raise the error of a failure; do nothing on a success."""
        if self._error is not None:
            raise self._error

    # -- dunder ----------------------------------------------------------------------------
    def __bool__(self) -> bool:
        return self._error is None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlextResult):
            return NotImplemented
        other_r: FlextResult[Any] = other
        if self._error is None and other_r._error is None:
            return bool(self._value == other_r._value)
        if self._error is not None and other_r._error is not None:
            return self._error is other_r._error or (
                self._error.code is other_r._error.code
                and self._error.message == other_r._error.message
            )
        return False

    def __hash__(self) -> int:
        if self._error is None:
            return hash(("ok", self._value))
        return hash(("fail", self._error.code, self._error.message))

    def __repr__(self) -> str:
        if self._error is None:
            return f"FlextResult.ok({self._value!r})"
        return f"FlextResult.fail({self._error.message!r}, code={self._error.code.value})"
