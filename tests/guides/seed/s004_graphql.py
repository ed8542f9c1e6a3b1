"""Seed 004 (Nexios "Advanced Features"), the GraphQL integration, as a user types it.

The schema is the seed's, unchanged. The data functions it leaves to the reader
(``get_user``, ``get_users``, ``get_user_posts``, ``get_posts``, ``create_user``,
``create_post``) are an in-memory store at the top; ``app.mount("/graphql", graphql_app)``
is wrapped in ``mount_graphql(app)``.
"""

import strawberry
from strawberry.asgi import GraphQL
from typing import List, Optional
from dataclasses import dataclass

# Types
@dataclass
class User:
    id: int
    name: str
    email: str

@dataclass
class Post:
    id: int
    title: str
    content: str
    author_id: int


# --- the reader's data layer (not in the seed) --------------------------------------------
USERS: dict = {}
POSTS: dict = {}


def reset_data():
    USERS.clear()
    POSTS.clear()
    USERS[1] = User(1, "Ada", "ada@example.com")
    USERS[2] = User(2, "Grace", "grace@example.com")
    POSTS[1] = Post(1, "Engines", "On the analytical engine", 1)
    POSTS[2] = Post(2, "Compilers", "A-0", 2)
    POSTS[3] = Post(3, "Notes", "Note G", 1)


async def get_user(id):
    return USERS.get(id)


async def get_users(limit, offset):
    return list(USERS.values())[offset : offset + limit]


async def get_user_posts(user_id):
    return [p for p in POSTS.values() if p.author_id == user_id]


async def get_posts(limit, offset):
    return list(POSTS.values())[offset : offset + limit]


async def create_user(name, email):
    user = User(max(USERS, default=0) + 1, name, email)
    USERS[user.id] = user
    return user


async def create_post(title, content, author_id):
    post = Post(max(POSTS, default=0) + 1, title, content, author_id)
    POSTS[post.id] = post
    return post


reset_data()
# --- the seed --------------------------------------------------------------------------------

# GraphQL types
@strawberry.type
class UserType:
    id: int
    name: str
    email: str

    @strawberry.field
    async def posts(self) -> List["PostType"]:
        return await get_user_posts(self.id)

@strawberry.type
class PostType:
    id: int
    title: str
    content: str

    @strawberry.field
    async def author(self) -> UserType:
        return await get_user(self.author_id)

# Queries
@strawberry.type
class Query:
    @strawberry.field
    async def user(
        self,
        id: int
    ) -> Optional[UserType]:
        return await get_user(id)

    @strawberry.field
    async def users(
        self,
        limit: int = 10,
        offset: int = 0
    ) -> List[UserType]:
        return await get_users(limit, offset)

    @strawberry.field
    async def posts(
        self,
        limit: int = 10,
        offset: int = 0
    ) -> List[PostType]:
        return await get_posts(limit, offset)

# Mutations
@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_user(
        self,
        name: str,
        email: str
    ) -> UserType:
        return await create_user(name, email)

    @strawberry.mutation
    async def create_post(
        self,
        title: str,
        content: str,
        author_id: int
    ) -> PostType:
        return await create_post(
            title,
            content,
            author_id
        )

# Create schema
schema = strawberry.Schema(
    query=Query,
    mutation=Mutation
)

# Create GraphQL app
graphql_app = GraphQL(schema)


def mount_graphql(app):
    # Mount in Nexios
    app.mount("/graphql", graphql_app)


# Example query
EXAMPLE_QUERY = """
query {
    users(limit: 5) {
        id
        name
        posts {
            title
            content
        }
    }
}
"""

# Example mutation
EXAMPLE_MUTATION = """
mutation {
    createUser(name: "John", email: "john@example.com") {
        id
        name
        email
    }
}
"""
