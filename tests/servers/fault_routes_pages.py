"""Fault-server routes for pagination tests (registered on import by fault_routes.py).

Every endpoint serves one collection of ``total`` records ``{"id": i}`` (i from 0;
``total`` defaults to 25), one page per request, with these common query parameters:

* ``size=S`` (``limit`` for offsets): records per page (default 10);
* ``fail=K``: page K always answers ``503 {"error": ...}`` (a page that fails after retries);
* ``loop=1``: the last page's "next" points back to page 2 (a pagination loop).

Endpoints:

* ``/pages/number?page=N`` (from 1): ``{"items": [...], "page": N}``, empty past the end.
* ``/pages/offset?offset=O&limit=L``: ``{"data": [...], "offset": O}``, empty past the end.
* ``/pages/cursor?cursor=cO`` (no cursor for the first page):
  ``{"items": [...], "meta": {"next_cursor": "cO2"}}``, ``null`` on the last page.
* ``/pages/next?page=N``: ``{"results": [...], "next": URL}``, ``null`` on the last page.
  ``style=`` picks the URL form: root-relative (default), ``absolute``, ``relative`` (to
  the current path) or ``foreign`` (absolute, on ``localhost``: another origin).
* ``/pages/link?page=N``: a JSON list, with ``Link: <...>; rel="prev"`` and
  ``Link: <...>; rel="last", <...>; rel="next"; title="page, next"`` as two fields (no
  next link on the last page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tests.servers.fault_routes import route

if TYPE_CHECKING:
    from tests.servers.http1 import Request, ResponseWriter


def _records(start: int, size: int, total: int) -> list[dict[str, int]]:
    return [{"id": i} for i in range(start, min(start + size, total))]


def _common(req: Request, size_name: str = "size") -> tuple[int, int, int | None, bool]:
    size = max(1, req.int_param(size_name, 10))
    total = max(0, req.int_param("total", 25))
    fail = req.int_param("fail", 0) or None
    return size, total, fail, req.param("loop") == "1"


def _carry(req: Request, **changes: Any) -> str:
    """The query of ``req`` with ``changes`` applied (keeps size, total, fail, loop...)."""
    params = {name: values[-1] for name, values in req.params.items()}
    params.update({k: str(v) for k, v in changes.items()})
    return urlencode(params)


async def _failed(w: ResponseWriter, page: int) -> None:
    await w.send_json({"error": f"page {page} failed"}, 503)


@route(r"/pages/number", methods={"GET"})
async def pages_number(req: Request, w: ResponseWriter) -> None:
    size, total, fail, _ = _common(req)
    page = max(1, req.int_param("page", 1))
    if page == fail:
        await _failed(w, page)
        return
    await w.send_json({"items": _records((page - 1) * size, size, total), "page": page})


@route(r"/pages/offset", methods={"GET"})
async def pages_offset(req: Request, w: ResponseWriter) -> None:
    size, total, fail, _ = _common(req, "limit")
    offset = max(0, req.int_param("offset", 0))
    if offset // size + 1 == fail:
        await _failed(w, offset // size + 1)
        return
    await w.send_json({"data": _records(offset, size, total), "offset": offset})


@route(r"/pages/cursor", methods={"GET"})
async def pages_cursor(req: Request, w: ResponseWriter) -> None:
    size, total, fail, loop = _common(req)
    cursor = req.param("cursor") or "c0"
    if not cursor.startswith("c") or not cursor[1:].isdigit():
        await w.send_json({"error": f"bad cursor {cursor!r}"}, 400)
        return
    start = int(cursor[1:])
    if start // size + 1 == fail:
        await _failed(w, start // size + 1)
        return
    following = start + size
    if following < total:
        next_cursor: str | None = f"c{following}"
    else:
        next_cursor = f"c{size}" if loop else None
    await w.send_json({"items": _records(start, size, total), "meta": {"next_cursor": next_cursor}})


def _last_page(size: int, total: int) -> int:
    return max(1, -(-total // size))


@route(r"/pages/next", methods={"GET"})
async def pages_next(req: Request, w: ResponseWriter) -> None:
    size, total, fail, loop = _common(req)
    page = max(1, req.int_param("page", 1))
    if page == fail:
        await _failed(w, page)
        return
    last = _last_page(size, total)
    target = page + 1 if page < last else (2 if loop else None)
    next_url: str | None = None
    if target is not None:
        query = _carry(req, page=target)
        style = req.param("style", "root")
        origin = f"http://{req.headers.get('host', '')}"
        if style == "absolute":
            next_url = f"{origin}/pages/next?{query}"
        elif style == "relative":
            next_url = f"next?{query}"
        elif style == "foreign":
            next_url = f"http://localhost:{req.server.port}/pages/next?{query}"
        else:
            next_url = f"/pages/next?{query}"
    await w.send_json({"results": _records((page - 1) * size, size, total), "next": next_url})


@route(r"/pages/link", methods={"GET"})
async def pages_link(req: Request, w: ResponseWriter) -> None:
    size, total, fail, loop = _common(req)
    page = max(1, req.int_param("page", 1))
    if page == fail:
        await _failed(w, page)
        return
    last = _last_page(size, total)
    headers: list[tuple[str, str]] = []
    if page > 1:
        headers.append(("Link", f'</pages/link?{_carry(req, page=page - 1)}>; rel="prev"'))
    links = [f'</pages/link?{_carry(req, page=last)}>; rel="last"']
    target = page + 1 if page < last else (2 if loop else None)
    if target is not None:
        links.append(f'</pages/link?{_carry(req, page=target)}>; rel="next"; title="page, next"')
    headers.append(("Link", ", ".join(links)))
    await w.send_json(_records((page - 1) * size, size, total), 200, headers)
