"""Real local test servers (127.0.0.1 only) exposed as pytest fixtures.

See ``tests/servers/README.md`` for every endpoint and fixture attribute.
"""
