"""Object keys are validated before anything is sent or written.

A key is what S3, GCS and Azure call an object name and what :class:`LocalStorage`
maps under its root. One set of rules for every backend, so a key that works on one
works on all of them and can never climb out of a local root:

* a non-empty ``str`` of at most 1,024 UTF-8 bytes (the S3 and GCS limit);
* no control characters (``\\x00``-``\\x1f``, ``\\x7f``) and no backslash;
* relative: no leading ``/``; segments separated by single ``/`` (no empty segment,
  no trailing ``/``) and none of them ``.`` or ``..``;
* valid Unicode (no lone surrogate: the stores take UTF-8 names);
* no segment is ``.flext-meta`` (where :class:`LocalStorage` keeps metadata: at its
  root, and below it when a ``file://`` URL roots a store in a sub-folder of another)
  and none starts with ``.flext-tmp-`` (its writes in progress).

A bad key is a failed :class:`~flext_api.FlextResult` with code ``INVALID_REQUEST``
and an :class:`InvalidPathError`, never an exception and never a write.
"""

from __future__ import annotations

import re
from typing import Final

from .._atomic import TMP_PREFIX
from .._errors import ErrorCode, InvalidRequestError
from .._result import FlextResult

__all__ = ["META_DIR", "InvalidPathError", "validate_key", "validate_prefix"]

META_DIR: Final = ".flext-meta"
MAX_KEY_BYTES: Final = 1024
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


class InvalidPathError(InvalidRequestError):
    """A storage key or prefix broke the rules of :mod:`flext_api.storage._paths`."""

    default_code = ErrorCode.INVALID_REQUEST


def _problem(key: object, *, prefix: bool) -> str | None:
    if not isinstance(key, str):
        return f"must be a str, got {type(key).__name__}"
    if not key:
        return None if prefix else "must not be empty"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode (it holds a lone surrogate)"
    if size > MAX_KEY_BYTES:
        return f"is longer than {MAX_KEY_BYTES} bytes"
    bad = _BAD_CHARS.search(key)
    if bad is not None:
        return f"contains the forbidden character {bad.group()!r}"
    if key.startswith("/"):
        return "must be relative (no leading '/')"
    body = key[:-1] if prefix and key.endswith("/") else key
    segments = body.split("/")
    for segment in segments:
        if segment == "":
            return "has an empty segment ('//' or a trailing '/')"
        if segment in {".", ".."}:
            return f"has a {segment!r} segment"
        if segment.startswith(TMP_PREFIX):
            return f"has a segment starting with the reserved {TMP_PREFIX!r}"
        if segment == META_DIR:
            return f"has the reserved {META_DIR!r} segment"
    return None


def _checked(key: str, what: str, *, prefix: bool) -> FlextResult[str]:
    problem = _problem(key, prefix=prefix)
    if problem is None:
        return FlextResult.ok(key)
    error = InvalidPathError(
        f"storage {what} {key!r} {problem}", details={what: key, "reason": problem}
    )
    return FlextResult.fail(error)


def validate_key(key: str) -> FlextResult[str]:
    """``key`` itself when it is a valid object key, else a failed INVALID_REQUEST result.

    >>> validate_key("reports/2024/q1.csv").value
    'reports/2024/q1.csv'
    >>> validate_key("../etc/passwd").error
    "storage path '../etc/passwd' has a '..' segment"
    """
    return _checked(key, "path", prefix=False)


def validate_prefix(prefix: str) -> FlextResult[str]:
    """Like :func:`validate_key`, but ``""`` and a trailing ``/`` are allowed."""
    return _checked(prefix, "prefix", prefix=True)
