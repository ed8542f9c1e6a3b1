"""RFC 8288 Link header parsing."""

from __future__ import annotations

from flext_api.client.pagination._links import Link, parse_link_header


def test_single_link() -> None:
    """One link-value with a quoted rel."""
    assert parse_link_header('<https://api.example/items?page=2>; rel="next"') == [
        Link("https://api.example/items?page=2", {"rel": "next"})
    ]


def test_several_links_in_one_field() -> None:
    """Comma-separated link-values are all returned, in order."""
    links = parse_link_header('</p/2>; rel="next", </p/9>; rel="last"')
    assert [(link.url, link.rels) for link in links] == [
        ("/p/2", frozenset({"next"})),
        ("/p/9", frozenset({"last"})),
    ]


def test_several_fields() -> None:
    """Links from separate Link fields are concatenated."""
    links = parse_link_header(['</p/1>; rel="prev"', '</p/3>; rel="next"'])
    assert [link.url for link in links] == ["/p/1", "/p/3"]


def test_commas_and_semicolons_inside_quotes_do_not_split() -> None:
    """A quoted parameter may hold commas, semicolons and escaped quotes."""
    links = parse_link_header('</a>; title="one, two; three \\"q\\""; rel="next", </b>; rel=last')
    assert links[0].params == {"title": 'one, two; three "q"', "rel": "next"}
    assert links[1] == Link("/b", {"rel": "last"})


def test_rel_lists_and_case() -> None:
    """rel may hold several space-separated types, compared case-insensitively."""
    [link] = parse_link_header('</x>; REL="Next  Last"')
    assert link.rels == frozenset({"next", "last"})


def test_unquoted_values_whitespace_and_valueless_params() -> None:
    """Tokens, spaces around ; and =, and a parameter without a value all parse."""
    [link] = parse_link_header("  < /x >  ;  rel = next ;  crossorigin ; type=text/html  ")
    assert link.url == "/x"
    assert link.params == {"rel": "next", "crossorigin": "", "type": "text/html"}


def test_first_occurrence_of_a_parameter_wins() -> None:
    """A repeated rel keeps its first value (RFC 8288 §3.3)."""
    [link] = parse_link_header('</x>; rel="next"; rel="prev"')
    assert link.rels == frozenset({"next"})


def test_empty_elements_are_ignored() -> None:
    """Empty list elements (", ,") and an empty header give no links."""
    assert parse_link_header(" , ,</x>; rel=next,, ") == [Link("/x", {"rel": "next"})]
    assert parse_link_header("") == []
    assert parse_link_header([]) == []


def test_malformed_values_are_skipped_not_fatal() -> None:
    """A link-value that does not parse is skipped up to the next comma."""
    links = parse_link_header(
        'garbage "with, comma", </ok>; rel=next, </bad> junk; rel=x, <no-end; rel=y'
    )
    assert links == [Link("/ok", {"rel": "next"})]


def test_parameter_without_a_name_makes_the_value_malformed() -> None:
    """`; =x` is not a parameter: that link-value is dropped, the next one kept."""
    assert parse_link_header('</a>; =x, </b>; rel="next"') == [Link("/b", {"rel": "next"})]


def test_unterminated_quote_runs_to_the_end() -> None:
    """An unterminated quoted-string takes the rest of the field."""
    [link] = parse_link_header('</a>; title="open, ended')
    assert link.params == {"title": "open, ended"}
