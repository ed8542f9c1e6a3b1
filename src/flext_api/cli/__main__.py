"""``python -m flext_api.cli``: the same as the ``flext-api`` command."""

from __future__ import annotations

from . import main

main()
