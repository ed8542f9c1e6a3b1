"""A strawberry schema (query, mutation, subscription) and a FastAPI app serving it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from strawberry.fastapi import GraphQLRouter

USERS = {1: "ada", 2: "grace"}


@strawberry.type
class User:
    id: int
    name: str

    @strawberry.field
    def friends(self, first: int = 2) -> list[User]:
        return [User(id=k, name=v) for k, v in list(USERS.items())[:first]]


@strawberry.type
class Query:
    @strawberry.field
    def user(self, id: int) -> User | None:
        name = USERS.get(id)
        return None if name is None else User(id=id, name=name)

    @strawberry.field
    def hello(self, name: str = "world") -> str:
        return f"hello {name}"

    @strawberry.field
    def users(self, first: int = 10) -> list[User]:
        return [User(id=k, name=v) for k, v in list(USERS.items())[:first]]

    @strawberry.field
    def broken(self) -> str | None:
        raise ValueError("broken on purpose")


@strawberry.type
class Mutation:
    @strawberry.mutation
    def create_user(self, name: str, info: strawberry.Info) -> User:
        counts: dict[str, int] = info.context["counts"]
        counts["create_user"] = counts.get("create_user", 0) + 1
        new_id = max(USERS) + 1
        return User(id=new_id, name=name)


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, count: int = 3) -> AsyncGenerator[int, None]:
        for n in range(count):
            yield n
            await asyncio.sleep(0)

    @strawberry.subscription
    async def beats(self, interval: float = 0.05) -> AsyncGenerator[int, None]:
        n = 0
        while True:  # until the client or the server ends it
            yield n
            n += 1
            await asyncio.sleep(interval)

    @strawberry.subscription
    async def failing(self) -> AsyncGenerator[int, None]:
        yield 1
        raise ValueError("subscription broke")


schema = strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription)


def build_app(counts: dict[str, int]) -> FastAPI:
    """Strawberry at /graphql, an APQ-speaking endpoint at /apq, a flaky one at /flaky."""

    async def context() -> dict[str, Any]:
        return {"counts": counts}

    app = FastAPI()
    app.include_router(GraphQLRouter(schema, context_getter=context), prefix="/graphql")
    store: dict[str, str] = {}

    @app.post("/apq")
    async def apq(request: Request) -> JSONResponse:
        body = await request.json()
        counts["apq_posts"] = counts.get("apq_posts", 0) + 1
        digest = body["extensions"]["persistedQuery"]["sha256Hash"]
        query = body.get("query")
        if query is None:
            if digest not in store:
                return JSONResponse(
                    {
                        "errors": [
                            {
                                "message": "PersistedQueryNotFound",
                                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
                            }
                        ]
                    }
                )
            query = store[digest]
        elif hashlib.sha256(query.encode()).hexdigest() == digest:
            store[digest] = query
        result = await schema.execute(query, variable_values=body.get("variables"))
        return JSONResponse({"data": result.data})

    @app.post("/flaky")
    async def flaky(request: Request) -> JSONResponse:
        counts["flaky"] = counts.get("flaky", 0) + 1
        if counts["flaky"] % 2 == 1:
            return JSONResponse({"error": "try again"}, status_code=503)
        body = await request.json()
        result = await schema.execute(body["query"], context_value={"counts": counts})
        return JSONResponse({"data": result.data})

    return app
