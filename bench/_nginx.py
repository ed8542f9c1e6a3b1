"""A throwaway nginx upstream on 127.0.0.1 for benchmarks (one worker, keep-alive)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

# One worker, no logs, temp files in the run's directory; a config adds its http body.
PREAMBLE = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
"""
CONF = (
    PREAMBLE
    + """    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
    }}
}}
"""
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    """Starts nginx with a config in a temp dir; stops it on exit.

    ``conf`` is a template with ``{root}`` and ``{port}`` (and any of ``fields``).
    """

    def __init__(self, conf: str = CONF, **fields: object) -> None:
        self._conf = conf
        self._fields = fields
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise SystemExit("nginx is missing: run `make bench`, which installs Debian's nginx")
        self.binary = binary
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="flext-bench-nginx-")
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        root = self._tmp.name
        conf = Path(root) / "nginx.conf"
        conf.write_text(self._conf.format(root=root, port=self.port, **self._fields))
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(conf), "-p", root],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self._proc.poll() is not None:
                    err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                    raise SystemExit(f"nginx failed to start: {err}") from None
                time.sleep(0.05)
        raise SystemExit("nginx did not start within 10 s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            if self._proc.stderr:
                self._proc.stderr.close()
        self._tmp.cleanup()
