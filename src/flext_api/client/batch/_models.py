"""Value objects of batch execution: :class:`BatchRequest` in, :class:`BatchResult` out.

They are frozen slotted dataclasses: a batch may hold a million of them over its life,
so each costs a few attribute slots and no validation machinery beyond
``__post_init__``. :class:`BatchProgress` is the throttled snapshot handed to a
progress callback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any, TypeAlias

from ..._errors import ErrorCode, InvalidRequestError
from ..._syntax import sendable_header

__all__ = [
    "BatchId",
    "BatchProgress",
    "BatchRequest",
    "BatchResult",
    "duplicate_id_error",
    "valid_id",
]

#: What a request id may be: a string or an integer (as it comes out of JSON).
BatchId: TypeAlias = str | int

_FIELDS = frozenset({"id", "method", "path", "params", "json", "headers"})


def valid_id(value: object) -> bool:
    """True for a usable request id: a ``str`` or an ``int`` (``bool`` is not an id)."""
    return isinstance(value, str | int) and not isinstance(value, bool)


def duplicate_id_error(request_id: BatchId) -> InvalidRequestError:
    """The failure of a batch item whose id an earlier item of the same batch has."""
    return InvalidRequestError(
        f"duplicate request id {request_id!r}: an earlier item of this batch has it; "
        "this one was not sent",
        details={"request_id": request_id},
    )


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request of a batch; ``id`` names its result.

    ``path`` is joined to the client's ``base_url`` (or is an absolute URL). Everything
    after ``path`` is keyword-only::

        BatchRequest("user-1", "/users/1")
        BatchRequest("new-7", "/users", method="POST", json={"name": "Ada"})

    Raises ``TypeError``/``ValueError`` for a malformed request (a programmer error);
    :meth:`from_dict` turns the same problems into :class:`InvalidRequestError`.
    """

    id: BatchId
    path: str
    _: KW_ONLY
    method: str = "GET"
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None
    #: The FLEXT guide's name for the JSON body (``BatchRequest(..., data={...})``).
    data: Any = None

    def __post_init__(self) -> None:
        if self.data is not None:
            if self.json is not None:
                raise ValueError(f"BatchRequest {self.id!r}: give json or data, not both")
            object.__setattr__(self, "json", self.data)
        if not valid_id(self.id):
            raise TypeError(f"BatchRequest id must be str or int, got {type(self.id).__name__}")
        path: object = self.path
        if not isinstance(path, str) or not path:
            raise TypeError(f"BatchRequest {self.id!r}: path must be a non-empty str")
        method: object = self.method
        if not isinstance(method, str) or not method.isalpha():
            raise ValueError(f"BatchRequest {self.id!r}: invalid HTTP method {method!r}")
        if not method.isupper():
            object.__setattr__(self, "method", method.upper())
        for name in ("params", "headers"):
            value: object = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(
                    f"BatchRequest {self.id!r}: {name} must be an object/mapping, "
                    f"got {type(value).__name__}"
                )
        # Checked here, so a batch input line with a bad header is reported as malformed
        # (with its line) instead of failing only once it is sent.
        given: Mapping[Any, Any] = self.headers or {}  # runtime types vary
        for key, text in given.items():
            if not isinstance(key, str) or not isinstance(text, str):
                raise TypeError(
                    f"BatchRequest {self.id!r}: header {key!r} must map a str to a str, "
                    f"got {type(text).__name__}"
                )
            try:
                sendable_header(key, text)
            except ValueError as exc:
                raise ValueError(f"BatchRequest {self.id!r}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchRequest:
        """Build a request from ``{"id", "path", "method"?, "params"?, "json"?, "headers"?}``.

        Raises :class:`InvalidRequestError` naming the problem (missing or unknown keys,
        wrong types); ``details["request_id"]`` holds the id when it was usable.
        """
        raw_id = data.get("id")
        request_id = raw_id if valid_id(raw_id) else None
        details: dict[str, Any] = {"request_id": request_id}
        unknown = sorted(str(k) for k in data if k not in _FIELDS)
        if unknown:
            raise InvalidRequestError(
                f"unknown field(s) {', '.join(map(repr, unknown))} "
                f"(allowed: {', '.join(sorted(_FIELDS))})",
                details=details,
            )
        for key in ("id", "path"):
            if data.get(key) is None:
                raise InvalidRequestError(f"missing required field {key!r}", details=details)
        try:
            return cls(
                data["id"],
                data["path"],
                method="GET" if data.get("method") is None else data["method"],
                params=data.get("params"),
                json=data.get("json"),
                headers=data.get("headers"),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(str(exc), details=details) from exc


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of one :class:`BatchRequest`; a batch yields exactly one per item.

    Attributes:
        request_id: the request's ``id`` (None only for an input item that had no
            usable id, e.g. a malformed JSON line).
        success: True when the request succeeded (status < 400 by default).
        status_code: the HTTP status of the last response, when one arrived (also for
            failures such as ``HTTP_STATUS`` or ``RETRIES_EXHAUSTED`` after 5xx).
        data: the decoded body of that response (JSON when the content type says so,
            else text; None for an empty body), or whatever the batch's ``decode``
            returned.
        error: the failure's one-line message, or None.
        error_code: the failure's :class:`ErrorCode`, or None.
        duration_ms: time from the first send to the final outcome, pauses included.
        attempts: HTTP attempts made (retries and re-runs after a breaker pause
            included; 0 when nothing was sent).
        index: the item's position in the input, from 0.
    """

    request_id: BatchId | None
    success: bool
    status_code: int | None = None
    data: Any = None
    error: str | None = None
    error_code: ErrorCode | None = None
    duration_ms: float = 0.0
    attempts: int = 0
    index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping; the id is under ``"id"``, as in the input lines."""
        return {
            "id": self.request_id,
            "success": self.success,
            "status_code": self.status_code,
            "data": self.data,
            "error": self.error,
            "error_code": None if self.error_code is None else self.error_code.value,
            "duration_ms": round(self.duration_ms, 3),
            "attempts": self.attempts,
            "index": self.index,
        }


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A snapshot of a running batch, handed to its ``progress`` callback.

    Attributes:
        done: items finished (succeeded or failed).
        failed: finished items that failed.
        in_flight: items being sent right now.
        retries: extra attempts so far (client retries plus re-runs after a pause).
        elapsed: seconds since the batch started.
        rate: finished items per second since the start.
        skipped: items skipped because the journal says they were done before.
        paused_hosts: hosts currently paused because their circuit breaker is open.
    """

    done: int
    failed: int
    in_flight: int
    retries: int
    elapsed: float
    rate: float
    skipped: int = 0
    paused_hosts: int = 0

    @property
    def succeeded(self) -> int:
        """Finished items that succeeded."""
        return self.done - self.failed
