"""Authentication plugins for ``FlextApiClient(auth=...)``.

The client places the auth plugin just above the transport, inside retry, so every
attempt is authenticated afresh (a refreshed token reaches the next retry). Secrets
never appear in a ``repr`` or an error message, and the headers and query parameters
that carry them are marked for the observability plugins to mask.
"""

from __future__ import annotations

from ._base import SENSITIVE_EXTENSION as SENSITIVE_EXTENSION
from ._base import SensitiveNames as SensitiveNames
from ._base import mark_sensitive as mark_sensitive
from ._oauth2 import OAuth2ClientCredentials as OAuth2ClientCredentials
from ._oauth2_token import AccessToken as AccessToken
from ._static import ApiKeyAuth as ApiKeyAuth
from ._static import BasicAuth as BasicAuth
from ._static import BearerAuth as BearerAuth
from ._static import TokenProvider as TokenProvider

__all__ = [
    "AccessToken",
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "OAuth2ClientCredentials",
    "SENSITIVE_EXTENSION",
    "SensitiveNames",
    "TokenProvider",
    "mark_sensitive",
]
