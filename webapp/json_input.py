"""JSON that users send, read within the app's limits (nesting depth, 64-bit integers): whole, or item by item."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import IO, Any

import orjson

# One limit for every JSON text a user sends (an API body, an item of the requests array, a JSONL line, a JSON
# schema): far above what a request or a schema needs (OpenAI's structured outputs allow 10 levels), far below
# what breaks a reader (Python's json module and jsonschema recurse; orjson writes at most 254 levels).
MAX_DEPTH = 64
SMALLEST_INT, LARGEST_INT = -(2**63), 2**63 - 1
READ_SIZE = 1024 * 1024
# Text up to the next bracket (or comma, where commas split items) outside strings, whole strings included.
_SKIP: dict[tuple[type, bool], Any] = {
    (kind, commas): re.compile(pattern)
    for kind, commas, pattern in (
        (bytes, True, rb'(?:[^\[\]{}",]++|"(?:[^"\\]++|\\.)*+")*+'),
        (bytes, False, rb'(?:[^\[\]{}"]++|"(?:[^"\\]++|\\.)*+")*+'),
        (str, True, r'(?:[^\[\]{}",]++|"(?:[^"\\]++|\\.)*+")*+'),
        (str, False, r'(?:[^\[\]{}"]++|"(?:[^"\\]++|\\.)*+")*+'),
    )
}
# The rest of a string cut by the end of the text read so far: up to its closing quote, or again to the end
# (possessive: an escape cut in two is left for the next read).
_STRING_REST: dict[type, Any] = {
    bytes: re.compile(rb'(?:[^"\\]++|\\.)*+', re.S),
    str: re.compile(r'(?:[^"\\]++|\\.)*+', re.S),
}
# One pass over a text marks what needs a closer look: digits become 9 (orjson reads integers of up to 64 bits
# exactly and longer ones as floats, silently; each has a run of 19 digits) and "[" becomes "{" (a text with at
# most MAX_DEPTH of them cannot nest deeper). A regex search for the digits cost ten times more.
_MARKS = bytes.maketrans(b"012345678[", b"999999999{")
_LONG_NUMBER = b"9" * 19
_WHITESPACE = b" \t\r\n"
_PUNCTUATION: dict[type, Any] = {
    bytes: (b'"', (b"[", b"{"), b","),
    str: ('"', ("[", "{"), ","),
}  # quote, openers, comma


class JsonRefused(ValueError):
    """Why a JSON text is refused: ``code`` (``invalid_json``, ``too_deep``, ``integer_out_of_range``,
    ``not_an_array``, ``too_large``, ``too_many_items``) and a message; ``index``: the array item at fault."""

    def __init__(self, code: str, message: str, index: int | None = None):
        super().__init__(message)
        self.code, self.message, self.index = code, message, index

    @property
    def reason(self) -> str:
        """The message, saying "not valid JSON" where that is the problem."""
        return f"not valid JSON ({self.message})" if self.code == "invalid_json" else self.message


def loads(text: str | bytes) -> Any:
    """Parse strict JSON (orjson: no NaN, no lone surrogates) nested at most MAX_DEPTH levels, whose integers
    fit in 64 bits; raise JsonRefused otherwise."""
    marked = (text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")).translate(_MARKS)
    if marked.count(b"{") > MAX_DEPTH:
        _check_nesting(text)
    if _LONG_NUMBER in marked:
        _check_integers(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise JsonRefused("invalid_json", f"{exc.msg} at column {exc.colno}") from None


def _check_integers(text: str | bytes) -> None:
    """Refuse an integer outside 64 bits, which orjson would read as a float (the depth is known to be small:
    Python's parser does not recurse far)."""
    try:
        json.loads(text, parse_int=_int64)
    except JsonRefused:
        raise
    except ValueError:
        pass  # not JSON: orjson says why


def _int64(digits: str) -> int:
    """Check an integer's range; the value itself is orjson's."""
    size = len(digits.lstrip("-"))
    if size < 19 or size == 19 and SMALLEST_INT <= int(digits) <= LARGEST_INT:
        return 0
    shown = digits if len(digits) <= 30 else f"{digits[:24]}..."
    raise JsonRefused(
        "integer_out_of_range",
        f"the integer {shown} does not fit in 64 bits ({SMALLEST_INT:,} to {LARGEST_INT:,}); send it as a string",
    )


def check_depth(text: str | bytes) -> None:
    """Raise JsonRefused when brackets outside strings nest deeper than MAX_DEPTH; ``text`` need not be JSON."""
    _, openers, _ = _PUNCTUATION[type(text)]
    if sum(map(text.count, openers)) > MAX_DEPTH:  # fewer brackets cannot nest deeper: most texts are not scanned
        _check_nesting(text)


def _check_nesting(text: str | bytes) -> None:
    for _ in _Scanner(type(text), MAX_DEPTH).tokens(text):
        pass


def unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be stored as PostgreSQL JSON or text, or None when it can.

    PostgreSQL refuses the NUL character, lone surrogates, NaN and infinities, and integers past 64 bits would
    not be read back exactly by orjson; left to the database they fail the whole insert, so they are reported as
    problems of the value instead.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "text must not contain the NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "text must be valid Unicode (it holds a lone surrogate such as \\ud800)"
        elif isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite (NaN and Infinity are not JSON)"
        elif isinstance(item, int) and not SMALLEST_INT <= item <= LARGEST_INT:
            return f"integers must fit in 64 bits ({SMALLEST_INT:,} to {LARGEST_INT:,})"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


class _Scanner:
    """Follows the brackets and commas outside strings of a text that may arrive in pieces, keeping its depth."""

    def __init__(self, kind: type, limit: int):
        self.skip = {commas: _SKIP[kind, commas] for commas in (True, False)}
        self.string_rest = _STRING_REST[kind]
        self.quote, self.openers, self.comma = _PUNCTUATION[kind]
        self.limit = limit
        self.depth = 0
        self.pos = 0
        self.in_string = False

    def tokens(self, text) -> Iterator[tuple[int, Any]]:
        """(position, character) of each bracket, and of each comma at depth 1 (between an array's items), from
        ``pos`` to the end of ``text`` read so far. Each step skips whole strings and runs of plain text in C."""
        while True:
            if self.in_string:
                self.pos = self.string_rest.match(text, self.pos).end()
                if text[self.pos : self.pos + 1] != self.quote:
                    return  # the string goes on in the next read
                self.pos += 1
                self.in_string = False
            self.pos = self.skip[self.depth <= 1].match(text, self.pos).end()
            char = text[self.pos : self.pos + 1]
            if not char:
                return
            self.pos += 1
            if char == self.quote:  # a string not closed yet
                self.in_string = True
                continue
            if char in self.openers:
                self.depth += 1
                if self.depth > self.limit:
                    raise JsonRefused("too_deep", f"nested deeper than {MAX_DEPTH} levels, the most accepted")
            elif char != self.comma:
                self.depth -= 1
            yield self.pos - 1, char


def array_items(stream: IO[bytes], *, max_items: int, max_item_bytes: int) -> Iterator[bytes]:
    """The JSON text of each item of the array that ``stream`` holds, read a megabyte at a time.

    Items are found by their commas and brackets outside strings, and refused as the bytes arrive when one nests
    deeper than MAX_DEPTH or is larger than ``max_item_bytes``, or when there are more than ``max_items``: only
    one item is held at a time. Each item is then parsed on its own (``loads``). Raises JsonRefused.
    """
    yield from _ArrayReader(stream, max_items, max_item_bytes).items()


class _ArrayReader:
    def __init__(self, stream: IO[bytes], max_items: int, max_item_bytes: int):
        self.stream, self.max_items, self.max_item_bytes = stream, max_items, max_item_bytes
        self.buffer = bytearray()
        self.scanner = _Scanner(bytes, MAX_DEPTH + 1)  # the array is a level of its own
        self.start = 0  # where the text of the current item starts
        self.count = 0

    def items(self) -> Iterator[bytes]:
        self._open()
        while True:
            try:
                for position, char in self.scanner.tokens(self.buffer):
                    if char == b"," and self.scanner.depth == 1:
                        yield self._item(position)
                    elif self.scanner.depth == 0:
                        yield from self._close(position, char)
                        return
            except JsonRefused as exc:
                exc.index = self.count
                raise
            if len(self.buffer) - self.start > self.max_item_bytes:
                raise self._too_large()
            if not self._read():
                raise JsonRefused("invalid_json", "the body ends before the array is closed", self.count)

    def _open(self) -> None:
        """Read up to the array's opening bracket."""
        while not self.buffer.lstrip(_WHITESPACE):
            if not self._read():
                raise JsonRefused("invalid_json", "the body is empty")
        opening = len(self.buffer) - len(self.buffer.lstrip(_WHITESPACE))
        if self.buffer[opening : opening + 1] != b"[":
            raise JsonRefused("not_an_array", "not a JSON array of requests")
        self.scanner.pos = self.start = opening + 1
        self.scanner.depth = 1

    def _item(self, end: int) -> bytes:
        text = bytes(self.buffer[self.start : end]).strip(_WHITESPACE)
        if not text:
            raise JsonRefused("invalid_json", "a value is missing (two commas in a row, or one before ']')", self.count)
        if len(text) > self.max_item_bytes:
            raise self._too_large()
        if self.count == self.max_items:
            raise JsonRefused(
                "too_many_items",
                f"at most {self.max_items:,} requests can be added at once; send the rest in another call",
                self.count,
            )
        self.count += 1
        self.start = end + 1
        return text

    def _close(self, position: int, char: bytes) -> Iterator[bytes]:
        """The last item, if any, once the array's closing bracket is found; then only whitespace may follow."""
        if char != b"]":
            raise JsonRefused("invalid_json", f"'{char.decode()}' closes the array", self.count)
        if self.count or self.buffer[self.start : position].strip(_WHITESPACE):
            yield self._item(position)
        rest: bytes | bytearray = self.buffer[position + 1 :]
        while True:
            if rest.strip(_WHITESPACE):
                raise JsonRefused("invalid_json", "there is more after the array", self.count)
            rest = self.stream.read(READ_SIZE)
            if not rest:
                return

    def _read(self) -> bool:
        """Append the next piece of the stream, first dropping the items already handed out."""
        del self.buffer[: self.start]  # cheap: a bytearray drops its head without moving the rest
        self.scanner.pos -= self.start
        self.start = 0
        chunk = self.stream.read(READ_SIZE)
        self.buffer += chunk
        return bool(chunk)

    def _too_large(self) -> JsonRefused:
        return JsonRefused(
            "too_large", f"larger than {self.max_item_bytes:,} bytes, the most one request may be", self.count
        )
