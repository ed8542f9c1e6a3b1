"""Configured names that become a principal's subject must be able to name someone.

An API key's name and a basic user's name are the subject: per-consumer rate limits key
on it and the gateway sends it upstream in a header. An empty one (or all spaces, or
with a control character a header cannot carry) would be a subject shared with no one
or cleaned into another's, as a JWT's ``sub`` would (refused there too).
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from flext_api._errors import ConfigError
from flext_api._server_config import AuthConfig
from flext_api.gateway._edge_config import EdgeAuthConfig

_HASH = "pbkdf2_sha256$600000$" + "00" * 16 + "$" + "11" * 32
BAD = ["", "   ", "ops\x00", "a\r\nX-Admin: 1", "del\x7f"]


@pytest.mark.parametrize("name", BAD)
def test_an_api_key_name_that_names_nobody_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=r"auth\.api_keys\["):
        AuthConfig(api_keys={name: SecretStr("a-key")})
    with pytest.raises(ConfigError, match=r"auth\.api_key_hashes\["):
        AuthConfig(api_key_hashes={name: "ab" * 32})


@pytest.mark.parametrize("name", BAD)
def test_a_basic_user_that_names_nobody_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="basic user"):
        EdgeAuthConfig(basic={name: _HASH})


def test_usual_names_are_kept() -> None:
    assert AuthConfig(api_keys={"billing service": SecretStr("a-key")}).api_keys
    assert EdgeAuthConfig(basic={"ops.team-1": _HASH}).basic
