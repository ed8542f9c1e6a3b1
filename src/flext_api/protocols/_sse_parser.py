"""A sans-IO parser of ``text/event-stream`` (WHATWG HTML §9.2.6).

Why our own: the stream must be resumable (``Last-Event-ID`` and the server's
``retry``), and the parser must survive chunks split anywhere (inside a CRLF, inside a
UTF-8 sequence). ``httpx-sse`` parses well but has no resume and is tied to httpx; a
60-line state machine fed raw bytes is simpler than adapting it.

Rules implemented (names are the spec's):

* a leading U+FEFF BOM is dropped once, from the first chunk;
* lines end at CRLF, LF or CR (a CR ends its line at once; an LF opening the next
  chunk is then skipped, so a CRLF split across chunks is one line end);
* ``:`` starts a comment line, ignored (servers send them as heartbeats);
* ``field: value`` — one space after the colon is removed; a line without a colon is a
  field with an empty value;
* ``data`` lines are joined with LF; ``event`` sets the type; ``id`` sets the event's
  ID unless the value contains NUL (it becomes the last event ID, which a reconnect
  resumes from, when its event is dispatched: an event cut short is sent again);
  ``retry`` is used only when it is all ASCII digits (a value above one hour counts as
  one hour, so a hostile server cannot park the client); unknown fields are ignored;
* an empty line dispatches the event; an event with no data is not dispatched (but its
  ``id`` still becomes the last event ID); the event type defaults to ``message``.

The spec sets no size limit; here ``max_event_size`` bounds what one event may hold
(its data so far plus the line being read, in characters): a server that never ends a
line or an event cannot grow the client's memory without end. Past it, :meth:`feed`
raises :class:`EventTooLargeError`. A line arriving in many chunks is kept as its
pieces and joined once it ends, so a long line costs time in proportion to its length.
"""

from __future__ import annotations

import codecs

__all__ = ["MAX_EVENT_SIZE", "MAX_RETRY_MS", "EventTooLargeError", "SSEParser", "ServerSentEvent"]

MAX_EVENT_SIZE = 16 * 1024 * 1024
"""The default bound of one event, in characters (data plus the line being read)."""

MAX_RETRY_MS = 3_600_000
"""The longest ``retry`` honoured, in milliseconds (larger values are capped to it)."""


class ServerSentEvent:
    """One dispatched event: ``event`` type, ``data``, the last event ``id``, ``retry`` (ms).

    A plain slotted class rather than a frozen dataclass: one is made per event, and a
    frozen dataclass's ``__init__`` costs a guarded ``object.__setattr__`` per field.
    """

    __slots__ = ("data", "event", "id", "retry")

    def __init__(
        self, data: str, event: str = "message", id: str = "", retry: int | None = None
    ) -> None:
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry

    def json(self) -> object:
        """``data`` decoded as JSON (raises ``ValueError`` on invalid JSON)."""
        from .._exactjson import loads

        return loads(self.data)

    def _key(self) -> tuple[str, str, str, int | None]:
        return (self.data, self.event, self.id, self.retry)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"ServerSentEvent(data={self.data!r}, event={self.event!r}, id={self.id!r}, "
            f"retry={self.retry!r})"
        )


class EventTooLargeError(ValueError):
    """An event (or a line) grew past the parser's ``max_event_size``."""


class SSEParser:
    """Feed bytes, get the complete events; keeps ``last_event_id`` and ``retry``.

    >>> parser = SSEParser()
    >>> parser.feed(b"id: 1\\ndata: a\\ndata: b\\n\\n")
    [ServerSentEvent(data='a\\nb', event='message', id='1', retry=None)]
    """

    __slots__ = (
        "_after_cr",
        "_data",
        "_data_size",
        "_decoder",
        "_event",
        "_failed",
        "_id",
        "_pending",
        "_pieces",
        "_retry",
        "_seen_data",
        "_started",
        "last_event_id",
        "max_event_size",
        "retry",
    )

    def __init__(
        self, last_event_id: str = "", *, max_event_size: int | None = MAX_EVENT_SIZE
    ) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pieces: list[str] = []  # the line being read, as it arrived
        self._pending = 0  # its length
        self._data_size = 0  # the length of the current event's data lines
        self._failed: EventTooLargeError | None = None  # raised at the next feed
        self.max_event_size = max_event_size
        """The bound of one event in characters (None: none); see the module doc."""
        self._after_cr = False
        self._started = False
        self._data: list[str] = []
        self._seen_data = False
        self._event = ""
        self.last_event_id = last_event_id
        self._id = last_event_id  # the spec's last event ID buffer
        self._retry: int | None = None
        # The latest valid ``retry`` value in milliseconds, or None.
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Parse ``chunk`` (any split) and return the events it completed.

        Raises :class:`EventTooLargeError` past ``max_event_size``; events the same chunk
        completed before that are returned first, and the error comes at the next call.
        """
        if self._failed is not None:
            raise self._failed
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        if not text:
            return []  # half a UTF-8 sequence: nothing to parse, and the CR flag stands
        if self._after_cr and text[:1] == "\n":
            text = text[1:]  # the LF of a CRLF split across chunks
            self._after_cr = False  # only that one LF: a chunk of it alone ends here
        if "\n" not in text and "\r" not in text:  # the line goes on
            if text:
                self._after_cr = False
                self._pieces.append(text)
                self._pending += len(text)
                self._check(0)
            return []
        buffer = "".join(self._pieces) + text if self._pieces else text
        if "\r" in buffer:
            # A CR ends its line at once; an LF opening the next chunk is then skipped.
            self._after_cr = buffer[-1] == "\r"
            buffer = buffer.replace("\r\n", "\n").replace("\r", "\n")
        else:
            self._after_cr = False
        lines = buffer.split("\n")
        rest = lines.pop()
        self._pieces = [rest] if rest else []
        self._pending = len(rest)
        events: list[ServerSentEvent] = []
        line_of = self._line
        try:
            for line in lines:
                event = line_of(line)
                if event is not None:
                    events.append(event)
            self._check(0)
        except EventTooLargeError as exc:
            if not events:
                raise
            self._failed = exc  # the events before it are delivered first
        return events

    @property
    def failure(self) -> EventTooLargeError | None:
        """The error a :meth:`feed` held back (raised at the next feed), or None.

        A stream that ends right after that feed must still fail with it: its events
        were delivered, the oversized one was not, and another connection would send
        the same again."""
        return self._failed

    def _check(self, extra: int) -> None:
        """Raise :class:`EventTooLargeError` when the event in progress is too large."""
        limit = self.max_event_size
        if limit is not None and self._data_size + self._pending + extra > limit:
            size = self._data_size + self._pending + extra
            self._pieces, self._pending, self._data, self._data_size = [], 0, [], 0
            raise EventTooLargeError(
                f"an event grew past max_event_size ({size:,} > {limit:,} characters)"
            )

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            self._seen_data = True
            if self.max_event_size is not None and self._data_size > self.max_event_size:
                self._check(0)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            # Capped before int(): thousands of digits would exceed int()'s limit.
            digits = value.lstrip("0")
            retry = MAX_RETRY_MS if len(digits) > 7 else min(int(digits or "0"), MAX_RETRY_MS)
            self._retry = self.retry = retry
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        retry, self._retry = self._retry, None
        self.last_event_id = self._id
        if not self._seen_data:
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._id,
            retry=retry,
        )
        self._data = []
        self._data_size = 0
        self._seen_data = False
        self._event = ""
        return event
