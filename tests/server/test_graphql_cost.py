"""The GraphQL cost rule reads page-size literals of any length without failing."""

from __future__ import annotations

import strawberry

from flext_api import ServerConfig
from flext_api.server import GraphQLMount, create_fastapi_app
from tests.server.helpers import serve


@strawberry.type
class Item:
    name: str


@strawberry.type
class Query:
    @strawberry.field
    def items(self, first: int = 10) -> list[Item]:
        return [Item(name=str(n)) for n in range(min(first, 3))]


SCHEMA = strawberry.Schema(query=Query)


async def _errors(first: str) -> list[str]:
    app = create_fastapi_app(ServerConfig(), graphql=GraphQLMount(SCHEMA, max_cost=500))
    async with serve(app) as client:
        query = "{ items(first: " + first + ") { name } }"
        response = await client.post("/graphql", json={"query": query})
    return [error["message"] for error in response.json()["errors"]]


async def test_literal_of_thousands_of_digits_is_over_budget() -> None:
    """A 5000-digit page size is refused by the cost rule, which does not fail on it."""
    errors = await _errors("9" * 5000)
    assert errors[0] == "'anonymous' has an estimated cost of at least 502, above the limit of 500."
    assert all(message.startswith("Expected value of type 'Int'") for message in errors[1:])


async def test_big_literal_reports_a_bounded_cost() -> None:
    """A 400-digit page size is refused with a cost just over the budget, not 400 digits."""
    errors = await _errors("9" * 400)
    assert errors[0] == "'anonymous' has an estimated cost of at least 502, above the limit of 500."


async def test_negative_literal_counts_as_one() -> None:
    """A negative page size multiplies by one; only the Int type check refuses it."""
    errors = await _errors("-" + "9" * 5000)
    assert len(errors) == 1
    assert errors[0].startswith("Expected value of type 'Int'")
