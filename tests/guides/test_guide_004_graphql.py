"""Seed 004 (Nexios "Advanced Features"): the GraphQL block, served and queried for real.

The seed's strawberry schema is mounted as it writes it (``app.mount("/graphql",
GraphQL(schema))``) in an app of ``create_fastapi_app``, served by uvicorn on 127.0.0.1,
and its example query and mutation are sent by flext-api's ``GraphQLClient`` and by
plain aiohttp (what the seed's readers use for HTTP).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from fastapi import FastAPI

from flext_api import ClientConfig, FlextApiClient
from flext_api.protocols import GraphQLClient
from flext_api.server import create_fastapi_app
from tests.guides.seed import s004_graphql as guide
from tests.server.live import LiveServer

pytestmark = pytest.mark.integration

USERS_WITH_POSTS = [
    {
        "id": 1,
        "name": "Ada",
        "posts": [
            {"title": "Engines", "content": "On the analytical engine"},
            {"title": "Notes", "content": "Note G"},
        ],
    },
    {"id": 2, "name": "Grace", "posts": [{"title": "Compilers", "content": "A-0"}]},
]


def _served(app: FastAPI) -> Iterator[str]:
    guide.reset_data()
    server = LiveServer(app).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def mounted() -> Iterator[str]:
    """The seed's mount: ``app.mount("/graphql", graphql_app)``."""
    app = create_fastapi_app()
    guide.mount_graphql(app)
    yield from _served(app)


@pytest.fixture
async def gql(mounted: str) -> AsyncIterator[GraphQLClient]:
    async with FlextApiClient(mounted) as http:
        yield GraphQLClient(http, "/graphql")


async def test_example_query_lists_users_with_their_posts(gql: GraphQLClient) -> None:
    """users(limit: 5) returns each user's id, name and posts (the nested resolver)."""
    result = await gql.query(guide.EXAMPLE_QUERY)
    assert result.value == {"users": USERS_WITH_POSTS}


async def test_example_mutation_creates_a_user(gql: GraphQLClient) -> None:
    """createUser(name, email) returns the new user, and a later query sees it."""
    created = await gql.mutate(guide.EXAMPLE_MUTATION)
    assert created.value == {"createUser": {"id": 3, "name": "John", "email": "john@example.com"}}
    found = await gql.query("query($id: Int!) { user(id: $id) { name email } }", {"id": 3})
    assert found.value == {"user": {"name": "John", "email": "john@example.com"}}


async def test_post_author_and_create_post(gql: GraphQLClient) -> None:
    """PostType.author resolves from the post's author_id; createPost stores a post."""
    posts = await gql.query("{ posts(limit: 2, offset: 1) { title author { name } } }")
    assert posts.value == {
        "posts": [
            {"title": "Compilers", "author": {"name": "Grace"}},
            {"title": "Notes", "author": {"name": "Ada"}},
        ]
    }
    made = await gql.mutate(
        'mutation { createPost(title: "T", content: "C", authorId: 2) { id author { name } } }'
    )
    assert made.value == {"createPost": {"id": 4, "author": {"name": "Grace"}}}


async def test_unknown_user_is_null_not_an_error(gql: GraphQLClient) -> None:
    """user(id:) is Optional: an unknown id is null data, a successful result."""
    assert (await gql.query("{ user(id: 99) { name } }")).value == {"user": None}


async def test_plain_aiohttp_post_to_the_mount_path(mounted: str) -> None:
    """A POST to /graphql (the mount path, redirected 307 to /graphql/) runs the query."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{mounted}/graphql", json={"query": guide.EXAMPLE_QUERY}) as response,
    ):
        body: dict[str, Any] = await response.json()
    assert (response.status, body) == (200, {"data": {"users": USERS_WITH_POSTS}})


async def test_the_factory_serves_the_seed_schema_directly() -> None:
    """The modern spelling, create_fastapi_app(graphql=schema), answers the example at /graphql."""
    for url in _served(create_fastapi_app(graphql=guide.schema)):
        async with FlextApiClient(url, config=ClientConfig(follow_redirects=False)) as http:
            result = await GraphQLClient(http, "/graphql").query(guide.EXAMPLE_QUERY)
        assert result.value == {"users": USERS_WITH_POSTS}
