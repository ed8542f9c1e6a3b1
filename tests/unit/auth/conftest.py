"""Fixtures of this directory: captured JSON logs."""

from tests.unit.observability.logcapture import json_logs as json_logs
