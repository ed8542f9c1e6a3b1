"""The client's ``discovery`` stage as a built-in plugin (``FlextApiClient(registry=...)``).

:class:`~flext_api.discovery._stage.DiscoveryStage` is a plain middleware, so the
discovery layer never imports the client; it also offers the steps of a
:class:`~flext_api.client._plugin.SplitPlugin` (``enter``, ``leave``, ``abandon``,
``take_over``). This subclass makes it one: it runs in the coroutine frame the pipeline
shares with the retry and breaker stages around it, under the pipeline's guard, which
still names it when it raises. Imported only by a client made with a registry.
"""

from __future__ import annotations

from ..discovery._stage import DiscoveryStage
from ._plugin import SplitPlugin

__all__ = ["DiscoveryPlugin"]


class DiscoveryPlugin(DiscoveryStage, SplitPlugin):
    """:class:`DiscoveryStage` run as a built-in split stage named ``discovery``."""

    name = "discovery"
