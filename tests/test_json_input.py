"""Users' JSON: the depth and integer limits, and the array read item by item however its bytes arrive."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp import json_input
from webapp.json_input import JsonRefused

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",)) | st.sampled_from('"\\[]{},')),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


def items_of(data: bytes, read_size: int, max_items: int = 1000, max_item_bytes: int = 10_000) -> list:
    """The array's items as ``array_items`` finds them, read ``read_size`` bytes at a time, parsed."""
    saved, json_input.READ_SIZE = json_input.READ_SIZE, read_size
    try:
        return [
            json_input.loads(text)
            for text in json_input.array_items(io.BytesIO(data), max_items=max_items, max_item_bytes=max_item_bytes)
        ]
    finally:
        json_input.READ_SIZE = saved


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(
    items=st.lists(JSON_VALUES, max_size=6),
    read_size=st.sampled_from([1, 2, 3, 7, 64, 1 << 20]),
    ensure_ascii=st.booleans(),
    indent=st.sampled_from([None, 1]),
)
def test_array_items_are_found_whatever_the_reads_cut(items, read_size, ensure_ascii, indent):
    """Strings full of brackets, commas, quotes and escapes, cut anywhere by the reads, split where json does."""
    data = json.dumps(items, ensure_ascii=ensure_ascii, indent=indent).encode()
    assert items_of(data, read_size) == items


@pytest.mark.parametrize(
    "data, code, index",
    [
        (b"", "invalid_json", None),
        (b"  \n ", "invalid_json", None),
        (b'{"a": [1]}', "not_an_array", None),
        (b"[1, 2", "invalid_json", 1),
        (b"[1,, 2]", "invalid_json", 1),
        (b"[1, 2,]", "invalid_json", 2),
        (b"[1} ", "invalid_json", 0),
        (b"[1] [2]", "invalid_json", 1),
        (b'["unterminated]', "invalid_json", 0),
        (b"[1, " + b"[" * 65 + b"]" * 65 + b"]", "too_deep", 1),
        (b"[" + b"1," * 1000 + b"1]", "too_many_items", 1000),
        (b'[1, "' + b"x" * 10_000 + b'"]', "too_large", 1),
    ],
)
def test_arrays_that_cannot_be_read_are_refused_naming_the_item(data, code, index):
    with pytest.raises(JsonRefused) as caught:
        items_of(data, 3)
    assert (caught.value.code, caught.value.index) == (code, index)


def test_an_item_at_the_limits_is_read():
    at_depth = b"[" * 64 + b"]" * 64
    assert items_of(b"[" + at_depth + b"]", 5) == [json.loads(at_depth)]
    assert items_of(b'["' + b"x" * 9_998 + b'"]', 5) == ["x" * 9_998]  # 10,000 bytes with its quotes


def test_an_item_too_large_is_refused_before_it_is_read_whole():
    class Endless(io.RawIOBase):
        read_bytes = 0

        def read(self, size=-1):
            self.read_bytes += size
            return b'["' if self.read_bytes == size else b"x" * size

    stream = Endless()
    with pytest.raises(JsonRefused, match="larger than 10,000 bytes"):
        list(json_input.array_items(stream, max_items=10, max_item_bytes=10_000))
    assert stream.read_bytes <= 10_000 + 2 * json_input.READ_SIZE


@pytest.mark.parametrize("text", ["[" * 65 + "]" * 65, '{"a": ' * 65 + "1" + "}" * 65, "[" * 100_000])
def test_documents_nested_past_the_limit_are_refused(text):
    for form in (text, text.encode()):
        with pytest.raises(JsonRefused, match="nested deeper than 64 levels"):
            json_input.loads(form)


def test_brackets_in_strings_do_not_count_as_nesting():
    text = json.dumps({"prompt": "[" * 500 + "{" * 500, "ok": [[1]]})
    assert json_input.loads(text)["ok"] == [[1]]
    json_input.check_depth("{{ Text }} " * 100)  # a template is no JSON, but balanced


@pytest.mark.parametrize(
    "number, fits",
    [
        (2**63 - 1, True),
        (-(2**63), True),
        (2**63, False),
        (-(2**63) - 1, False),
        (10**25, False),
    ],
)
def test_integers_outside_64_bits_are_refused(number, fits):
    text = f'{{"n": {number}, "s": "{number}"}}'
    if fits:
        assert json_input.loads(text) == {"n": number, "s": str(number)}
    else:
        with pytest.raises(JsonRefused, match=f"the integer {number} does not fit in 64 bits"):
            json_input.loads(text)
    assert json_input.loads(f'{{"s": "{number}", "f": 1{"0" * 30}.5}}')["s"] == str(number)  # text and floats


def test_unstorable_values_are_named():
    assert json_input.unstorable({"a": [2**64]}).startswith("integers must fit in 64 bits")
    assert json_input.unstorable({"a": "x\x00"}).startswith("text must not contain the NUL")
    assert json_input.unstorable({"a": [True, 1.5, -(2**63), "é"]}) is None
