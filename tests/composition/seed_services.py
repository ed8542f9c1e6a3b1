"""The seed's dependency-injection example, verbatim apart from the container's name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    database_url: str
    redis_url: str


class Database:
    def __init__(self, config: Config):
        self.url = config.database_url


class Cache:
    def __init__(self, config: Config):
        self.url = config.redis_url


class UserService:
    def __init__(self, db: Database, cache: Cache):
        self.db = db
        self.cache = cache
