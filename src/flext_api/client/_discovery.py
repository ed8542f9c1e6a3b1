"""The client's ``discovery`` stage as a built-in plugin (``FlextApiClient(registry=...)``).

:class:`~flext_api.discovery._stage.DiscoveryStage` is a plain middleware, so the
discovery layer never imports the client; run as such it would get an exception guard
of its own, one more coroutine frame paid on every resume after network I/O. This
subclass makes it a trusted built-in (``guarded = False``): it runs under the
pipeline's shared guard, which still names it when it raises. Imported only by a client
made with a registry.
"""

from __future__ import annotations

from typing import ClassVar

from ..discovery._stage import DiscoveryStage
from ._plugin import FlextApiPlugin

__all__ = ["DiscoveryPlugin"]


class DiscoveryPlugin(DiscoveryStage, FlextApiPlugin):
    """:class:`DiscoveryStage` run as an unguarded built-in plugin named ``discovery``."""

    name = "discovery"
    guarded: ClassVar[bool] = False
    handle = DiscoveryStage.__call__
