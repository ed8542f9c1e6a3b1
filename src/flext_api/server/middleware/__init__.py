"""The pure-ASGI middlewares of :func:`~flext_api.server.create_fastapi_app`.

Each is a class ``Middleware(app, **options)`` with ``async __call__(scope, receive,
send)`` that passes non-HTTP scopes through untouched; none uses ``BaseHTTPMiddleware``
(which copies the context into a new task and buffers streaming). They can be used on
any ASGI app, alone or in another order, but the factory's order is the tested one.
"""

from ._body_limit import BodyTooLargeError as BodyTooLargeError
from ._content_type import UnsupportedMediaTypeError as UnsupportedMediaTypeError
from ._cors import CorsMiddleware as CorsMiddleware
from ._errors import ErrorMiddleware as ErrorMiddleware
from ._gate import BodyLimitMiddleware as BodyLimitMiddleware
from ._gate import JsonContentTypeMiddleware as JsonContentTypeMiddleware
from ._gate import OperationalRoutesMiddleware as OperationalRoutesMiddleware
from ._gate import RateLimitMiddleware as RateLimitMiddleware
from ._gate import RequestGateMiddleware as RequestGateMiddleware
from ._observed import ObservedRequestMiddleware as ObservedRequestMiddleware
from ._request_id import REQUEST_ID_PATTERN as REQUEST_ID_PATTERN
from ._single import AccessLogMiddleware as AccessLogMiddleware
from ._single import InFlightMiddleware as InFlightMiddleware
from ._single import MetricsMiddleware as MetricsMiddleware
from ._single import RequestIdMiddleware as RequestIdMiddleware
from ._single import SecurityHeadersMiddleware as SecurityHeadersMiddleware
from ._single import TimingMiddleware as TimingMiddleware
from ._slow import SlowRequestMiddleware as SlowRequestMiddleware
from ._trusted_host import TrustedHostMiddleware as TrustedHostMiddleware

__all__ = [
    "AccessLogMiddleware",
    "BodyLimitMiddleware",
    "BodyTooLargeError",
    "CorsMiddleware",
    "ErrorMiddleware",
    "InFlightMiddleware",
    "JsonContentTypeMiddleware",
    "MetricsMiddleware",
    "ObservedRequestMiddleware",
    "OperationalRoutesMiddleware",
    "REQUEST_ID_PATTERN",
    "RateLimitMiddleware",
    "RequestGateMiddleware",
    "RequestIdMiddleware",
    "SecurityHeadersMiddleware",
    "SlowRequestMiddleware",
    "TimingMiddleware",
    "TrustedHostMiddleware",
    "UnsupportedMediaTypeError",
]
