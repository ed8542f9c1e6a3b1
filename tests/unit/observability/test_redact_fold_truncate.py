"""The helpers secret matching and URL cutting are built on: fold_name, truncate."""

from __future__ import annotations

from flext_api._redact import MAX_LOGGED_URL, fold_name, truncate


def test_fold_name_ignores_case_dashes_and_underscores() -> None:
    """accessToken, access_token and ACCESS-TOKEN fold alike."""
    assert {fold_name(n) for n in ("accessToken", "access_token", "ACCESS-TOKEN")} == {
        "accesstoken"
    }


def test_truncate_keeps_short_text_and_counts_what_it_cuts() -> None:
    """Text within the bound is unchanged; past it, '...[N more]' follows the bound."""
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdef", 3) == "abc...[3 more]"


def test_the_url_bound_is_8192_characters() -> None:
    """The documented bound: Apache's request-line limit, nginx's 8k header buffer."""
    assert MAX_LOGGED_URL == 8192
