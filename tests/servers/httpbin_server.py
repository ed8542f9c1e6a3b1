"""The third-party ``httpbin`` Flask app served by werkzeug on 127.0.0.1 (random port)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from werkzeug.serving import make_server

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

HOST = "127.0.0.1"


class HttpbinServer:
    """httpbin in a background thread; ``start()`` it, then use ``.url``."""

    def __init__(self) -> None:
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> HttpbinServer:
        # Imported lazily: httpbin logs (logging, not ``warnings``) that flasgger is
        # missing, which is harmless and should only happen when the fixture is used.
        from httpbin import app

        self._server = make_server(HOST, 0, app, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="httpbin-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join(10)
        server.server_close()
        self._server = self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("httpbin server is not running")
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> HttpbinServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
