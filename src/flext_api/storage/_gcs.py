"""``GCSStorage``: Google Cloud Storage over its JSON API, on flext-api's own client.

Why not ``obstore`` here: it speaks GCS's XML API, which no local emulator implements,
so it could not be tested against a real server; the JSON API can (``gcp-storage-
emulator``), and going through :class:`~flext_api.FlextApiClient` reuses its pooled
aiohttp transport and timeouts. The client's own retries and breaker are off: the
storage driver retries with the same policy, and :class:`MultiBackendStorage` keeps a
breaker per backend.

* **Small bodies go up in one request** (``uploadType=multipart``), **others as
  resumable uploads**: one ``POST`` carries the metadata and opens a
  session, then the body goes up in ``chunk_size`` pieces (a multiple of 256 KiB) with
  ``Content-Range``; only one piece is in memory at a time. A failed upload cancels its
  session (``DELETE``), so nothing partial is left behind.
* **Generations are the ETags.** GCS's conditional writes work on object generations,
  so :class:`FileInfo.etag` holds the generation and ``if_match`` sends
  ``ifGenerationMatch`` (``if_none_match`` sends ``ifGenerationMatch=0``). The
  condition is also checked before the body is sent, so a lost race fails fast
  instead of after uploading gigabytes. On an emulator that ignores the condition
  (``gcp-storage-emulator`` does), that early check is all there is: sequential
  conditional writes are refused as they should be, but two racing ones can both
  succeed there; GCS itself decides at the write.
* **Presigned URLs** are V4-signed locally with a service account's key
  (``service_account=``, the parsed JSON key file); ``cryptography`` is needed.
* **Listing** pages with ``maxResults`` and ``startOffset``; the page is cut again
  here, so a server that ignores those parameters still gives correct pages.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from .._clock import Clock
from .._config import BreakerConfig, ClientConfig, PoolConfig, RetryConfig, TimeoutConfig
from .._errors import ErrorCode, FlextApiError
from .._redact import strip_url
from .._result import FlextResult
from ..client import FlextApiClient
from ..resilience import RetryPolicy
from ._backend import paginate
from ._driver import PutMode, StoreBackend
from ._signing import sign_v4
from ._types import ByteStream, FileInfo, ListPage, Source
from ._url import check_endpoint

__all__ = ["GCSStorage"]

_QUANTUM = 256 * 1024
#: The most entries GCS returns for one listing request, whatever maxResults asks.
_MAX_RESULTS = 1000
_CODES = {
    404: ErrorCode.NOT_FOUND,
    412: ErrorCode.PRECONDITION_FAILED,
    401: ErrorCode.AUTH_ERROR,
    403: ErrorCode.AUTH_ERROR,
    429: ErrorCode.RATE_LIMITED,
}


class GCSStorage(StoreBackend):
    """Google Cloud Storage bucket ``bucket`` (see the module docstring).

    ``endpoint`` targets an emulator (``http://127.0.0.1:9023``); ``token`` is an OAuth2
    access token sent as ``Authorization: Bearer`` (omit it for an emulator).
    ``max_connections=1`` suits a single-threaded emulator, which serves one kept-alive
    connection at a time and leaves the others waiting.
    """

    scheme = "gs"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str = "https://storage.googleapis.com",
        token: str | None = None,
        service_account: Mapping[str, str] | None = None,
        chunk_size: int = 8 * 1024 * 1024,
        timeout: TimeoutConfig | None = None,
        max_connections: int = 100,
        retry: RetryConfig | RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(retry=retry, clock=clock)
        if chunk_size < _QUANTUM or chunk_size % _QUANTUM:
            raise ValueError(f"chunk_size must be a multiple of {_QUANTUM}, got {chunk_size}")
        self.bucket = bucket
        self.service_account = service_account
        self.endpoint = check_endpoint(endpoint).rstrip("/")
        self.chunk_size = chunk_size
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        config = ClientConfig(
            retry=RetryConfig(enabled=False),
            breaker=BreakerConfig(enabled=False),
            timeout=timeout or TimeoutConfig(total=None, read=60.0),
            pool=PoolConfig(
                max_connections=max_connections, max_keepalive=min(20, max_connections)
            ),
            follow_redirects=False,  # 308 means "resume incomplete" here
        )
        self._client = FlextApiClient(base_url=self.endpoint, config=config, headers=headers)
        self._objects = f"/storage/v1/b/{quote(bucket, safe='')}/o"

    def url(self, path: str) -> str:
        return f"gs://{self.bucket}/{path}"

    def __repr__(self) -> str:
        # An endpoint may carry user info (basic auth through a proxy): never shown.
        return f"<GCSStorage gs://{self.bucket} endpoint={strip_url(self.endpoint)!r}>"

    async def close(self) -> None:
        await self._client.aclose()

    def _object(self, key: str) -> str:
        return f"{self._objects}/{quote(key, safe='')}"

    @staticmethod
    def _unwrap(result: FlextResult[Any]) -> Any:
        """The value, or raise: a status becomes NOT_FOUND, PRECONDITION_FAILED, AUTH_ERROR..."""
        exc = result.exception
        if exc is None:
            return result.value
        if exc.code is ErrorCode.HTTP_STATUS and exc.response is not None:
            status = exc.response.status_code
            mapped = FlextApiError.from_code(
                _CODES.get(status, ErrorCode.STORAGE_ERROR),
                f"GCS answered {status}: {exc.message}",
                details={**exc.details, "status": status},
                response=exc.response,
            )
            raise mapped from exc
        raise exc

    # -- primitives ------------------------------------------------------------------------
    async def _put(
        self,
        key: str,
        source: Source,
        metadata: dict[str, str],
        content_type: str | None,
        mode: PutMode,
    ) -> None:
        params: dict[str, str] = {"uploadType": "resumable", "name": key}
        if mode is not None:
            params["ifGenerationMatch"] = "0" if mode == "create" else mode
            await self._check_condition(key, mode)
        resource: dict[str, Any] = {"name": key, "metadata": metadata}
        if content_type is not None:
            resource["contentType"] = content_type
        if source.kind == "bytes" and len(source.value) <= self.chunk_size:  # type: ignore[arg-type]
            await self._put_small(params, resource, source.value)  # type: ignore[arg-type]
            return
        opened = self._unwrap(
            await self._client.post(
                f"/upload{self._objects}",
                params=params,
                json=resource,
                headers={"X-Upload-Content-Type": content_type or "application/octet-stream"},
            )
        )
        session = opened.headers["Location"]
        try:
            await self._send_pieces(session, source)
        except BaseException:
            await self._client.delete(session, fail_on_http_error=False)  # cancel the session
            raise

    async def _put_small(
        self, params: dict[str, str], resource: dict[str, Any], data: bytes
    ) -> None:
        """One request: a ``multipart/related`` body with the resource and the data."""
        boundary = "flext-" + secrets.token_hex(12)
        head = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(resource)}\r\n--{boundary}\r\n"
            f"Content-Type: {resource.get('contentType', 'application/octet-stream')}\r\n\r\n"
        ).encode()
        body = head + data + f"\r\n--{boundary}--\r\n".encode()
        self._unwrap(
            await self._client.post(
                f"/upload{self._objects}",
                params={**params, "uploadType": "multipart"},
                content=body if len(body) <= _QUANTUM else _slices(body),
                headers={
                    "Content-Type": f"multipart/related; boundary={boundary}",
                    "Content-Length": str(len(body)),
                },
            )
        )

    async def _check_condition(self, key: str, mode: str) -> None:
        current = await self._client.get(self._object(key), fail_on_http_error=False)
        status = self._unwrap(current).status_code
        if mode == "create" and status == 200:
            raise FlextApiError.from_code(
                ErrorCode.PRECONDITION_FAILED, f"{key!r} already exists", details={"status": 412}
            )
        if mode != "create" and (status != 200 or current.value.json()["generation"] != mode):
            raise FlextApiError.from_code(
                ErrorCode.PRECONDITION_FAILED,
                f"{key!r} is not at generation {mode}",
                details={"status": 412},
            )

    async def _send_pieces(self, session: str, source: Source) -> None:
        buffer = bytearray()
        sent = 0
        async for chunk in source.chunks(self.chunk_size):
            buffer += chunk
            while len(buffer) > self.chunk_size:  # keep one piece back: it may be the last
                piece = bytes(buffer[: self.chunk_size])
                del buffer[: self.chunk_size]
                await self._send(session, piece, sent, None)
                sent += len(piece)
        await self._send(session, bytes(buffer), sent, sent + len(buffer))

    async def _send(self, session: str, piece: bytes, start: int, total: int | None) -> None:
        end = f"{start}-{start + len(piece) - 1}" if piece else "*"
        size = "*" if total is None else str(total)
        headers = {"Content-Range": f"bytes {end}/{size}", "Content-Length": str(len(piece))}
        # Handed over in slices, so the event loop never copies megabytes in one go.
        response = self._unwrap(
            await self._client.put(session, content=_slices(piece), headers=headers)
        )
        done = response.status_code in {200, 201}
        if done != (total is not None):  # pragma: no cover - a server breaking the protocol
            raise FlextApiError.from_code(
                ErrorCode.PROTOCOL_ERROR,
                f"resumable upload answered {response.status_code} at byte {start}",
            )

    async def _resource(self, key: str) -> dict[str, Any]:
        resource: dict[str, Any] = self._unwrap(await self._client.get(self._object(key))).json()
        return resource

    async def _open(self, key: str, chunk_size: int) -> ByteStream:
        info = _info(await self._resource(key))
        response = self._unwrap(
            await self._client.get(
                self._object(key),
                params={"alt": "media", "generation": info.etag or ""},
                extensions={"stream": True},
            )
        )
        return ByteStream(info, _body(response))

    async def _head(self, key: str) -> FileInfo:
        return _info(await self._resource(key))

    async def _delete(self, key: str) -> None:
        result = await self._client.delete(self._object(key))
        if result.is_failure:
            response = result.exception.response if result.exception else None
            if response is not None and response.status_code == 404:
                return  # absent is fine: delete is idempotent
            self._unwrap(result)

    async def _list(
        self, prefix: str, delimiter: str | None, start_after: str | None, limit: int
    ) -> ListPage:
        # GCS answers at most 1,000 entries a request (fewer when prefixes repeat), with
        # a nextPageToken while there are more: a short answer is no end of the listing.
        params: dict[str, str] = {"maxResults": str(min(limit + 1, _MAX_RESULTS))}
        if prefix:
            params["prefix"] = prefix
        if delimiter:
            params["delimiter"] = delimiter
        if start_after is not None:
            params["startOffset"] = start_after + "\x00"
        files: list[FileInfo] = []
        folders: dict[str, None] = {}  # in order, each once: pages may repeat a prefix
        while True:
            body = self._unwrap(await self._client.get(self._objects, params=params)).json()
            files += [_info(item) for item in body.get("items") or []]
            folders.update((p.rstrip("/") + "/", None) for p in body.get("prefixes") or [])
            page = _page(files, list(folders), prefix, start_after, limit)
            token = body.get("nextPageToken")
            if page.next_token is not None or not token:
                return page
            params["pageToken"] = token

    async def _copy(self, src: str, dst: str, overwrite: bool) -> None:
        params: dict[str, str] = {}
        if not overwrite:
            params["ifGenerationMatch"] = "0"
            await self._check_condition(dst, "create")
        target = f"/b/{quote(self.bucket, safe='')}/o/{quote(dst, safe='')}"
        self._unwrap(await self._client.post(f"{self._object(src)}/copyTo{target}", params=params))

    async def _sign(self, method: str, key: str, expires_in: timedelta) -> str:
        if self.service_account is None:
            raise FlextApiError.from_code(
                ErrorCode.CONFIG_ERROR,
                "GCS presigned URLs need service_account= (the JSON key's client_email "
                "and private_key)",
            )
        return sign_v4(
            self.service_account,
            method,
            self.endpoint,
            f"/{self.bucket}/{key}",
            expires_in,
            datetime.now(UTC),
        )

    def _translate(self, exc: Exception, operation: str, key: str) -> FlextApiError:
        return FlextApiError.wrap(exc, code=ErrorCode.STORAGE_ERROR)


async def _slices(piece: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    view = memoryview(piece)
    for start in range(0, len(piece), size):
        yield bytes(view[start : start + size])


async def _body(response: Any) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    finally:
        await response.aclose()


def _page(
    files: list[FileInfo], folders: list[str], prefix: str, start_after: str | None, limit: int
) -> ListPage:
    """One page of objects and "directories" (listed by GCS itself with a delimiter)."""
    if not folders:
        return paginate(files, prefix, None, start_after, limit)
    marked = files + [FileInfo(path=p, size=-1) for p in folders]
    page = paginate(marked, prefix, None, start_after, limit)
    return ListPage(
        files=[f for f in page.files if f.size >= 0],
        prefixes=[f.path for f in page.files if f.size < 0],
        next_token=page.next_token,
    )


def _info(item: Mapping[str, Any]) -> FileInfo:
    updated = item.get("updated")
    return FileInfo(
        path=item["name"],
        size=int(item.get("size") or 0),
        last_modified=datetime.fromisoformat(updated.replace("Z", "+00:00")) if updated else None,
        etag=str(item["generation"]) if item.get("generation") else None,
        content_type=item.get("contentType"),
        metadata={k.lower(): str(v) for k, v in (item.get("metadata") or {}).items()},
        version=str(item["generation"]) if item.get("generation") else None,
    )
