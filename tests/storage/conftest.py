"""Storage test fixtures: real S3 (moto), Azure (Azurite) and GCS (emulator) servers on
127.0.0.1, started once per session, and a ``store`` fixture parametrized over every
backend, each test getting an empty bucket or container of its own."""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from flext_api.storage import (
    AzureStorage,
    GCSStorage,
    LocalStorage,
    MemoryStorage,
    S3Storage,
    StorageBackend,
)
from tests.servers.storage_servers import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    ServerProcess,
    azurite_server,
    create_azure_container,
    create_s3_bucket,
    gcs_emulator,
    moto_server,
)

BACKENDS = ["local", "memory", "s3", "azure", "gcs"]
_names = itertools.count()


@pytest.fixture(scope="session")
def moto() -> Iterator[ServerProcess]:
    """A moto S3 server for the whole session."""
    server = moto_server().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def azurite() -> Iterator[ServerProcess]:
    """An Azurite blob server for the whole session (telemetry off)."""
    server = azurite_server().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def gcs() -> Iterator[ServerProcess]:
    """A gcp-storage-emulator for the whole session (in memory)."""
    server = gcs_emulator("bkt").start()
    yield server
    server.close()


def new_bucket() -> str:
    return f"bkt-{next(_names):05d}"


def s3_store(endpoint: str, bucket: str | None = None, **kwargs: Any) -> S3Storage:
    bucket = bucket or new_bucket()
    create_s3_bucket(endpoint, bucket)
    return S3Storage(bucket, endpoint=endpoint, access_key_id="t", secret_access_key="t", **kwargs)


def azure_store(endpoint: str, **kwargs: Any) -> AzureStorage:
    container = new_bucket()
    create_azure_container(endpoint, container)
    return AzureStorage(
        container,
        account_name=AZURITE_ACCOUNT,
        account_key=AZURITE_KEY,
        endpoint=f"{endpoint}/{AZURITE_ACCOUNT}",
        **kwargs,
    )


def gcs_store(endpoint: str, **kwargs: Any) -> GCSStorage:
    bucket = new_bucket()
    request = urllib.request.Request(
        f"{endpoint}/storage/v1/b?project=test",
        data=json.dumps({"name": bucket}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    # The emulator is single-threaded: one connection, or the others wait on keep-alive.
    return GCSStorage(
        bucket, endpoint=endpoint, chunk_size=4 * 1024 * 1024, max_connections=1, **kwargs
    )


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    if kind == "local":
        return LocalStorage(tmp_path / "root")
    if kind == "memory":
        return MemoryStorage()
    if kind == "s3":
        return s3_store(request.getfixturevalue("moto").endpoint)
    if kind == "azure":
        return azure_store(request.getfixturevalue("azurite").endpoint)
    return gcs_store(request.getfixturevalue("gcs").endpoint)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageBackend]:
    """An empty store of each kind, closed after the test."""
    backend = make_store(request.param, request, tmp_path)
    yield backend
    await backend.close()
