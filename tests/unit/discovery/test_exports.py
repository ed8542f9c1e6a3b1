"""The discovery layer's public names and its place below the client."""

from __future__ import annotations

import subprocess
import sys

import flext_api.discovery as discovery


def test_pinned_names_are_exported() -> None:
    """DESIGN §2 pins ServiceInstance, ServiceRegistry and ServiceClient here."""
    for name in ("ServiceInstance", "ServiceRegistry", "ServiceClient"):
        assert name in discovery.__all__
        assert getattr(discovery, name).__name__ == name


def test_discovery_does_not_import_the_client() -> None:
    """Importing flext_api.discovery loads no module of flext_api.client."""
    code = (
        "import sys, flext_api.discovery\n"
        "print(sorted(m for m in sys.modules if m.startswith('flext_api.client')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
