"""WHATWG event-stream parsing rules (HTML §9.2.6)."""

from __future__ import annotations

import pytest

from flext_api.protocols import ServerSentEvent, SSEParser
from flext_api.protocols._sse_parser import MAX_RETRY_MS, EventTooLargeError


def _parse(*chunks: bytes) -> list[ServerSentEvent]:
    parser = SSEParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_multi_line_data_is_joined_with_lf() -> None:
    """Several data lines make one event whose data is joined with LF."""
    assert _parse(b"data: a\ndata: b\n\n") == [ServerSentEvent("a\nb")]


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending_is_accepted(eol: bytes) -> None:
    """CR, LF and CRLF all end a line."""
    stream = b"event: tick" + eol + b"data: 1" + eol + eol
    assert _parse(stream) == [ServerSentEvent("1", event="tick")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    """A CR at the end of a chunk followed by LF in the next is a single line end."""
    assert _parse(b"data: x\r", b"\n\r\n") == [ServerSentEvent("x")]


def test_leading_bom_is_dropped() -> None:
    """A UTF-8 BOM at the start of the stream is not part of the first field name."""
    assert _parse(b"\xef\xbb\xbfdata: hi\n\n") == [ServerSentEvent("hi")]


def test_only_the_first_bom_is_dropped() -> None:
    """A second BOM is an ordinary character (it makes an unknown field)."""
    assert _parse(b"\xef\xbb\xbf\xef\xbb\xbfdata: hi\n\n") == []


def test_utf8_sequence_split_across_chunks_decodes() -> None:
    """A multi-byte character split between chunks is decoded whole."""
    data = "data: é\n\n".encode()
    assert _parse(data[:7], data[7:]) == [ServerSentEvent("é")]


def test_comments_are_ignored() -> None:
    """Lines starting with a colon are comments."""
    assert _parse(b": keep-alive\ndata: x\n: more\n\n") == [ServerSentEvent("x")]


def test_only_one_space_after_colon_is_removed() -> None:
    """One leading space of the value is removed, a second is kept."""
    assert _parse(b"data:  two\n\n") == [ServerSentEvent(" two")]


def test_field_without_colon_has_empty_value() -> None:
    """A line ``data`` alone appends an empty line to the data."""
    assert _parse(b"data\ndata\n\n") == [ServerSentEvent("\n")]


def test_event_without_data_is_not_dispatched() -> None:
    """An empty line with no data dispatches nothing."""
    assert _parse(b"event: x\n\n") == []


def test_id_persists_to_later_events() -> None:
    """The last event ID carries over to events without an id field."""
    events = _parse(b"id: 7\ndata: a\n\ndata: b\n\n")
    assert [e.id for e in events] == ["7", "7"]


def test_id_without_data_still_updates_last_event_id() -> None:
    """An id in an event that is not dispatched still becomes the last event ID."""
    parser = SSEParser()
    parser.feed(b"id: 9\n\n")
    assert parser.last_event_id == "9"


def test_id_with_nul_is_ignored() -> None:
    """An id value containing NUL does not change the last event ID."""
    parser = SSEParser("1")
    parser.feed(b"id: a\x00b\ndata: x\n\n")
    assert parser.last_event_id == "1"


def test_numeric_retry_is_kept() -> None:
    """``retry`` with only ASCII digits sets the reconnection time."""
    parser = SSEParser()
    events = parser.feed(b"retry: 2500\ndata: x\n\n")
    assert (parser.retry, events[0].retry) == (2500, 2500)


@pytest.mark.parametrize("value", [b"abc", b"12.5", b"-1", b"  5"])
def test_non_numeric_retry_is_ignored(value: bytes) -> None:
    """A ``retry`` value that is not all digits is ignored."""
    parser = SSEParser()
    parser.feed(b"retry:" + value + b"\n\n")
    assert parser.retry is None


def test_unknown_fields_are_ignored() -> None:
    """A field the spec does not define changes nothing."""
    assert _parse(b"foo: bar\ndata: x\n\n") == [ServerSentEvent("x")]


def test_incomplete_event_at_end_is_not_dispatched() -> None:
    """Data without the closing empty line stays pending."""
    assert _parse(b"data: x\n") == []


def test_event_type_resets_after_dispatch() -> None:
    """The event type applies to one event; the next defaults to ``message``."""
    events = _parse(b"event: a\ndata: 1\n\ndata: 2\n\n")
    assert [e.event for e in events] == ["a", "message"]


def test_json_decodes_data() -> None:
    """``json()`` decodes the data."""
    assert ServerSentEvent('{"a": 1}').json() == {"a": 1}


def test_cr_flag_survives_an_empty_chunk() -> None:
    """CR, then a chunk that decodes to nothing, then LF: still one line end."""
    parser = SSEParser()
    events = parser.feed(b"data: x\r") + parser.feed(b"") + parser.feed(b"\ndata: y\n\n")
    assert events == [ServerSentEvent("x\ny")]


def test_cr_then_split_utf8_is_not_a_crlf() -> None:
    """CR, half a UTF-8 character, the rest: the CR ended the line, nothing is skipped."""
    parser = SSEParser()
    events = parser.feed(b"data: x\r") + parser.feed(b"\xc3") + parser.feed(b"\xa9\n\n")
    assert events == [ServerSentEvent("x")]


def test_equality_and_repr() -> None:
    """Events compare by value and show their fields."""
    event = ServerSentEvent("d", "e", "1", 5)
    assert event == ServerSentEvent("d", "e", "1", 5) and event != "d"
    assert hash(event) == hash(ServerSentEvent("d", "e", "1", 5))
    assert repr(event) == "ServerSentEvent(data='d', event='e', id='1', retry=5)"


@pytest.mark.parametrize("digits", [400, 5000])
def test_huge_retry_is_capped_to_an_hour(digits: int) -> None:
    """A `retry` of hundreds or thousands of digits is capped at one hour, not an error."""
    parser = SSEParser()
    events = parser.feed(b"retry: " + b"9" * digits + b"\ndata: x\n\n")
    assert events[0].retry == MAX_RETRY_MS == 3_600_000 and parser.retry == MAX_RETRY_MS


def test_retry_with_leading_zeros_keeps_its_value() -> None:
    """Leading zeros do not count towards the cap: `000000000007` is 7 ms."""
    parser = SSEParser()
    parser.feed(b"retry: 000000000007\n\n")
    assert parser.retry == 7


def test_a_line_that_never_ends_is_bounded() -> None:
    """Chunks without a line end are kept until max_event_size, then refused."""
    parser = SSEParser(max_event_size=10_000)
    for _ in range(9):
        assert parser.feed(b"data: " + b"x" * 994) == []  # 9 x 1000 characters
    with pytest.raises(EventTooLargeError, match="max_event_size"):
        parser.feed(b"x" * 1001)


def test_many_data_lines_are_bounded_too() -> None:
    parser = SSEParser(max_event_size=100)
    with pytest.raises(EventTooLargeError):
        parser.feed(b"data: " + b"y" * 60 + b"\ndata: " + b"y" * 60 + b"\n")


def test_an_event_at_the_bound_passes_and_the_count_restarts() -> None:
    parser = SSEParser(max_event_size=10)
    for _ in range(3):  # each event is 9 characters of data and its newline
        [event] = parser.feed(b"data: 123456789\n\n")
        assert event.data == "123456789"


def test_events_before_an_oversized_one_come_first() -> None:
    """The events a chunk completed are returned; the error comes with the next feed."""
    parser = SSEParser(max_event_size=50)
    events = parser.feed(b"data: a\n\ndata: b\n\ndata: " + b"z" * 60)
    assert [e.data for e in events] == ["a", "b"]
    with pytest.raises(EventTooLargeError):
        parser.feed(b"\n\n")


def test_a_long_line_split_in_chunks_parses_whole() -> None:
    parser = SSEParser(max_event_size=None)
    parser.feed(b"data: ")
    for _ in range(500):
        assert parser.feed(b"0123456789") == []
    [event] = parser.feed(b"\r\n\r\n")
    assert event.data == "0123456789" * 500


def test_a_chunk_holding_only_the_lf_of_a_crlf_clears_the_cr_flag() -> None:
    """CR | LF | LF in three chunks: a CRLF, then an empty line that dispatches the event
    (the second LF used to be skipped as well, merging the event into the next one)."""
    parser = SSEParser()
    events = parser.feed(b"data: a\r") + parser.feed(b"\n") + parser.feed(b"\n")
    assert events == [ServerSentEvent("a")]
    assert parser.feed(b"data: b\n\n") == [ServerSentEvent("b")]


def test_an_id_takes_effect_when_its_event_is_dispatched() -> None:
    """The last event ID (what a reconnect resumes from) is an event's once that event
    is complete: a stream cut inside an event must not skip it on resume."""
    parser = SSEParser("1")
    assert parser.feed(b"id: 2\ndata: x\n") == []
    assert parser.last_event_id == "1"
    [event] = parser.feed(b"\n")
    assert (event.id, parser.last_event_id) == ("2", "2")
