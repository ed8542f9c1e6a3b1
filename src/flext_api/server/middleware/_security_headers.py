"""Secure response headers on every response, errors included (OWASP REST cheat sheet).

The header lines are encoded once at start-up; per response only a check of which of
them the handler already set remains (the handler's choice wins, e.g. a cacheable
route's ``Cache-Control``), and the rest are appended. The API's strict CSP
(``default-src 'none'``) would break the Swagger/ReDoc pages, so those paths get the
relaxed ``docs_csp`` instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["SecurityHeaderSet"]

Header = tuple[bytes, bytes]


def _encode(headers: Mapping[str, str | None]) -> tuple[Header, ...]:
    return tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.items()
        if value is not None
    )


class SecurityHeaderSet:
    """The pre-encoded security headers of an app, and how to add them to a response."""

    __slots__ = ("_docs_headers", "_docs_paths", "_headers", "_names")

    def __init__(
        self,
        headers: Mapping[str, str | None],
        *,
        docs_paths: Iterable[str] = (),
        docs_csp: str | None = None,
    ) -> None:
        base = {name.lower(): value for name, value in headers.items()}
        self._headers = _encode(base)
        self._names = frozenset(name for name, _ in self._headers)
        self._docs_paths = frozenset(docs_paths)
        docs = {**base, "content-security-policy": docs_csp} if docs_csp else base
        self._docs_headers = _encode(docs)

    def for_path(self, path: str) -> tuple[Header, ...]:
        """The headers a response to ``path`` gets (the docs pages get the relaxed CSP)."""
        return self._docs_headers if path in self._docs_paths else self._headers

    def apply(self, headers: list[Header], extra: tuple[Header, ...]) -> None:
        """Append ``extra`` to ``headers``, skipping names the handler already set."""
        names = self._names
        for name, _ in headers:
            if name.lower() in names:  # the handler set one: keep its value
                present = {n.lower() for n, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                return
        headers.extend(extra)
