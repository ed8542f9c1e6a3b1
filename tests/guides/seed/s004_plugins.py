"""Seed 004 (Nexios "Advanced Features"), the plugin system, as a user types it.

docs/composition.md: the seed's ``Plugin`` / ``PluginManager`` are flext-api's
``AppPlugin`` / ``AppPluginManager``, so the seed's own class bodies are replaced by that
import. ``CachePlugin`` and the usage are the seed's, with ``REDIS_URL`` (the test's
redis-server) for ``"redis://localhost"`` and the ``@app.on_event`` handlers wrapped in
``register_lifecycle(app)``.
"""

import redis.asyncio as aioredis
from fastapi import FastAPI as NexiosApp  # the seed's app type

from flext_api.composition import AppPlugin as Plugin
from flext_api.composition import AppPluginManager as PluginManager

REDIS_URL = "redis://localhost"


# Example plugin
class CachePlugin(Plugin):
    def __init__(self):
        self.cache = None

    async def initialize(self, app: "NexiosApp"):
        self.cache = await aioredis.from_url(
            REDIS_URL
        )

        # Add to app state
        app.state.cache = self.cache

    async def cleanup(self):
        if self.cache:
            await self.cache.close()


def build_plugin_manager():
    # Use in application
    plugin_manager = PluginManager()

    # Register plugins
    plugin_manager.register("cache", CachePlugin())

    # Or discover plugins
    plugin_manager.discover("my_plugins")
    return plugin_manager


def register_lifecycle(app, plugin_manager):
    @app.on_event("startup")
    async def startup():
        await plugin_manager.initialize(app)

    @app.on_event("shutdown")
    async def shutdown():
        await plugin_manager.cleanup()
