"""A refused header's error message never quotes a credential's value.

An error message is logged, shown by the CLI and returned in a ``FlextResult``: the
value of ``Authorization``, ``Cookie``, ``X-API-Key``... must not be in it, whatever
makes it refused. Other headers keep their value in the message (it says what is wrong).
"""

from __future__ import annotations

import pytest

from flext_api._errors import InvalidRequestError
from flext_api._syntax import validate_header


@pytest.mark.parametrize("name", ["Authorization", "cookie", "X-API-Key", "Proxy-Authorization"])
@pytest.mark.parametrize("value", ["Bearer s3cret\r\nX: 1", "s3cret\x00", "s3cr\u00e9t"])
def test_a_credentials_value_is_not_quoted(name: str, value: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_header(name, value)
    assert "s3cr" not in info.value.message
    assert "[REDACTED]" in info.value.message
    assert name in info.value.message


def test_another_headers_value_is_quoted() -> None:
    with pytest.raises(InvalidRequestError, match=r"'a\\nb'"):
        validate_header("Accept", "a\nb")
