"""``open_storage(url)``: a backend and a key from a URL, for the CLI and configuration.

``s3://bucket/key``, ``az://container/key``, ``gs://bucket/key``, ``file:///dir/key``
and ``memory://key``. Endpoints and credentials come from keyword options or the usual
environment variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``;
``AZURE_STORAGE_ENDPOINT``, ``AZURE_STORAGE_ACCOUNT_NAME``, ``AZURE_STORAGE_ACCOUNT_KEY``,
``AZURE_STORAGE_SAS_TOKEN``; ``STORAGE_EMULATOR_HOST``, ``GCS_TOKEN``).

:func:`check_endpoint` is the check every backend runs on an endpoint URL before its
client sees it (the Rust client of S3 and Azure panics on one it cannot parse).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .._errors import ConfigError, FlextApiError
from .._redact import strip_url
from .._result import FlextResult
from .._syntax import check_origin_form, split_config_url
from ._backend import StorageBackend

__all__ = ["check_endpoint", "open_storage", "split_url"]

# What the Rust clients take as a host without panicking: a DNS name, an IPv4 address
# in four numbers, or an IPv6 literal. They build request URLs from the endpoint's text,
# so anything looser (non-ASCII, "<", "|", "1.2.3.4.5") panics in a worker thread.
_HOST_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
# RFC 3986 userinfo: unreserved, sub-delims, ":" and %XX.
_USERINFO = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*")


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if it is an ``http(s)://host[:port][/path]`` URL; else ConfigError.

    The message is one line and shows the URL without its userinfo
    (``storage endpoint '127.0.0.1:9000' is not an http(s) URL: write http://host:port
    or https://host``).

    >>> check_endpoint("http://127.0.0.1:9000/devstoreaccount1")
    'http://127.0.0.1:9000/devstoreaccount1'
    """
    given: object = endpoint  # runtime types vary
    if not isinstance(given, str):
        raise ConfigError(f"a storage endpoint is a str, got {type(given).__name__}")

    def refuse(reason: str) -> ConfigError:
        return ConfigError(
            f"storage endpoint {strip_url(endpoint)!r} is not an http(s) URL: {reason}"
        )

    try:
        parts = split_config_url(endpoint)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise refuse("write http://host:port or https://host")
    if not parts.hostname:
        raise refuse("it has no host")
    if parts.query or parts.fragment or endpoint.endswith(("?", "#")):
        raise refuse("it takes no query or fragment")
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and not _USERINFO.fullmatch(userinfo):
        raise refuse("its user info holds characters a URL cannot carry (percent-encode them)")
    host_problem = _host_problem(parts.hostname, bracketed="[" in parts.netloc)
    if host_problem:
        raise refuse(host_problem)
    if parts.path:
        try:
            check_origin_form(parts.path)
        except ValueError as exc:
            raise refuse(f"its path {exc}") from None
    return endpoint


def _host_problem(host: str, *, bracketed: bool) -> str | None:
    """What is wrong with an endpoint's host (``urlsplit``'s ``hostname``), or None."""
    if bracketed:
        if "%" in host:
            return f"[{host}]: an IPv6 zone id is not supported"
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"[{host}] is not an IPv6 address"
        return None
    if not host.isascii():
        return "write an internationalised host name in its xn-- (IDNA) form"
    if not _HOST_NAME.fullmatch(host):
        return f"{host!r} is not a host name (letters, digits, '-', '_' and '.')"
    # A name ending in a number is read as an IPv4 address (the WHATWG URL rules).
    if _NUMERIC_LABEL.fullmatch(host.rstrip(".").rpartition(".")[2]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host!r} is not an IPv4 address (four numbers 0-255, as 127.0.0.1)"
    return None


def split_url(url: str) -> FlextResult[tuple[str, str, str]]:
    """``(scheme, bucket, key)``; for ``file://`` the bucket is the directory."""
    given: object = url  # runtime types vary
    if not isinstance(given, str):
        return FlextResult.fail(ConfigError(f"a storage URL is a str, got {type(given).__name__}"))
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unbalanced '[' in the host, for one
        return FlextResult.fail(ConfigError(f"{url!r} is not a URL: {exc}"))
    scheme = parts.scheme.lower()
    if "@" in parts.netloc:
        # Taken as the bucket name, they ended up in the backend's repr and in logs; the
        # message names the bucket only, never what came before the '@'.
        bucket = parts.netloc.rpartition("@")[2]
        return FlextResult.fail(
            ConfigError(
                f"{scheme}://...@{bucket}: a storage URL carries no credentials; pass them "
                "as options (access_key_id=, account_key=, ...) or in the environment"
            )
        )
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        # Dropping them would silently address another object ("a?v=2" is not "a").
        return FlextResult.fail(
            ConfigError(
                f"{url!r}: a storage URL takes no query or fragment (encode '?' as %3F "
                "and '#' as %23 in a key)"
            )
        )
    if scheme in {"s3", "az", "gs"}:
        if not parts.netloc:
            return FlextResult.fail(ConfigError(f"{url!r} has no bucket or container"))
        if ":" in parts.netloc:
            return FlextResult.fail(
                ConfigError(
                    f"{url!r}: a bucket or container name has no port; the server's "
                    "address is the endpoint= option"
                )
            )
        return FlextResult.ok((scheme, parts.netloc, unquote(parts.path.lstrip("/"))))
    if scheme == "memory":
        return FlextResult.ok((scheme, "", unquote(parts.netloc + parts.path).lstrip("/")))
    if scheme == "file":
        if parts.netloc not in {"", "localhost"}:
            return FlextResult.fail(
                ConfigError(f"{url!r}: a file URL names a local path (file:///dir/key)")
            )
        return FlextResult.ok((scheme, "/", unquote(parts.path).lstrip("/")))
    return FlextResult.fail(ConfigError(f"{url!r}: the scheme must be s3, az, gs, file or memory"))


def open_storage(
    url: str, *, env: Mapping[str, str] | None = None, **options: Any
) -> FlextResult[tuple[StorageBackend, str]]:
    """The backend for ``url`` and the key inside it (see the module docstring).

    ``options`` override the environment: ``endpoint``, ``access_key_id``,
    ``secret_access_key``, ``region``, ``account_name``, ``account_key``, ``token``...
    """
    split = split_url(url)
    if split.is_failure:
        return FlextResult.fail(split.exception or "bad url")
    scheme, bucket, key = split.value
    try:
        return _open(scheme, bucket, key, os.environ if env is None else env, options)
    except FlextApiError as exc:  # already says what is wrong (check_endpoint's, say)
        return FlextResult.fail(exc)
    except Exception as exc:  # noqa: BLE001 - building a backend does no network I/O
        # Unknown options, refused values, a root that cannot be created, or the
        # store library refusing its configuration (obstore's own exception types).
        error = ConfigError(f"cannot open {url!r}: {type(exc).__name__}: {exc}".splitlines()[0])
        error.__cause__ = exc
        return FlextResult.fail(error)


def _open(
    scheme: str, bucket: str, key: str, env: Mapping[str, str], options: Mapping[str, Any]
) -> FlextResult[tuple[StorageBackend, str]]:
    given = {k: v for k, v in options.items() if v is not None}
    if scheme == "file":
        from ._local import LocalStorage

        path = Path("/" + key)
        if key == "" or key.endswith("/"):
            return FlextResult.ok((LocalStorage(path), ""))
        return FlextResult.ok((LocalStorage(path.parent), path.name))
    if scheme == "gs":
        from ._gcs import GCSStorage

        emulator = env.get("STORAGE_EMULATOR_HOST")
        endpoint = given.pop("endpoint", emulator or "https://storage.googleapis.com")
        token = given.pop("token", env.get("GCS_TOKEN"))
        return FlextResult.ok((GCSStorage(bucket, endpoint=endpoint, token=token, **given), key))
    try:
        from . import _obstore
    except ImportError as exc:  # pragma: no cover - only without the 'storage' extra
        return FlextResult.fail(ConfigError(str(exc)))
    if scheme == "memory":
        return FlextResult.ok((_obstore.MemoryStorage(), key))
    if scheme == "s3":
        settings: dict[str, Any] = {
            "endpoint": env.get("AWS_ENDPOINT_URL"),
            "access_key_id": env.get("AWS_ACCESS_KEY_ID"),
            "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY"),
            "session_token": env.get("AWS_SESSION_TOKEN"),
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        }
        settings.update(given)
        return FlextResult.ok((_obstore.S3Storage(bucket, **settings), key))
    account = given.pop("account_name", env.get("AZURE_STORAGE_ACCOUNT_NAME"))
    if not account:
        return FlextResult.fail(
            ConfigError(
                "az:// needs an account name (--account-name or AZURE_STORAGE_ACCOUNT_NAME)"
            )
        )
    settings = {
        "endpoint": env.get("AZURE_STORAGE_ENDPOINT"),
        "account_key": env.get("AZURE_STORAGE_ACCOUNT_KEY"),
        "sas_token": env.get("AZURE_STORAGE_SAS_TOKEN"),
    }
    settings.update(given)
    return FlextResult.ok((_obstore.AzureStorage(bucket, account_name=account, **settings), key))
