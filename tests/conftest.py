"""Shared pytest configuration: loads the local test-server fixtures."""

pytest_plugins = ["tests.servers.fixtures"]
