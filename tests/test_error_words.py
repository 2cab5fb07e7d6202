"""Errors in an analyst's words: the code table, JSON Schema mistakes, and plurals that never read "(s)"."""

from __future__ import annotations

import pytest
from jsonschema import SchemaError
from jsonschema.validators import validator_for

from webapp import error_words
from webapp.services.results import RETRYABLE_CODES
from webapp.words import count_of, tally


@pytest.mark.parametrize("code", sorted(RETRYABLE_CODES))
def test_every_code_the_engine_retries_has_words_and_is_called_temporary(code):
    words = error_words.explain(code)
    assert code in error_words.CODES and words.temporary
    assert words.summary.endswith(".") and "Retry failed" in words.advice


@pytest.mark.parametrize(
    "code, status, temporary, summary",
    [
        ("http_502", None, True, "The provider's servers had an internal error."),
        ("invalid_request_error", 400, False, "The provider found the request malformed."),
        ("weird_thing", 418, False, "The provider reported the error “weird_thing”."),
        (None, None, False, "The provider reported the error “error”."),
        ("insufficient_quota", 429, True, "The provider account has run out of credit."),
        ("context_length_exceeded", 400, False, "The request is longer than the model can read."),
    ],
)
def test_codes_and_statuses_in_words(code, status, temporary, summary):
    words = error_words.explain(code, status)
    assert (words.temporary, words.summary) == (temporary, summary)
    assert ("Retry failed" in words.advice) == temporary


def test_a_cancel_is_explained_as_no_fault_of_the_request():
    words = error_words.explain("cancelled")
    assert not words.temporary and "Send the cancelled requests again" in words.advice


def schema_error(schema: dict) -> error_words.Worded:
    with pytest.raises(SchemaError) as caught:
        validator_for(schema).check_schema(schema)
    return error_words.schema_error(caught.value)


@pytest.mark.parametrize(
    "schema, words, detail",
    [
        (
            {"type": "object", "properties": {"a": "string"}},
            'The JSON schema is not valid: “properties → a” should be a schema in braces, such as {"type": '
            '"string"}, not the text "string".',
            "'string' is not of type 'object', 'boolean' (at properties/a, rule type)",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "strng"}}},
            'The JSON schema is not valid: “properties → a → type” names the text "strng"; a type is one of '
            "string, number, integer, boolean, object, array, null.",
            "'strng' is not valid under any of the given schemas (at properties/a/type, rule anyOf)",
        ),
        (
            {"type": "object", "properties": {}, "required": "a"},
            'The JSON schema is not valid: “required” should be a list in brackets [ ], not the text "a".',
            "'a' is not of type 'array' (at required, rule type)",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "a"]},
            "The JSON schema is not valid: “required” lists the same item twice.",
            "['a', 'a'] has non-unique elements (at required, rule uniqueItems)",
        ),
    ],
)
def test_json_schema_mistakes_say_where_and_what_is_expected(schema, words, detail):
    message = schema_error(schema)
    assert (str(message), message.detail) == (words, detail)
    assert "is not of type" not in message  # the validator's phrasing stays in the detail


def test_counts_read_as_sentences():
    assert count_of(1, "request") == "1 request"
    assert count_of(1200, "request") == "1,200 requests"
    assert count_of(0, "provider batch", "provider batches") == "0 provider batches"
    assert tally(succeeded=3, failed=0, cancelled=2) == "3 succeeded, 2 cancelled"
    assert tally(to_send_again=1) == "1 to send again"
    assert tally(failed=0) == "nothing"
