"""The Anthropic provider: chat bodies as Messages params, results as OpenAI output lines, and the provider itself
through the official SDK against the simulator's Anthropic dialect over HTTP."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest

from simulator import simulated_text
from tests.simulated import add_fault
from webapp.providers import ProviderError, get_provider
from webapp.providers.anthropic_format import (
    DEFAULT_MAX_TOKENS,
    JSON_OBJECT_INSTRUCTION,
    STRUCTURED_TOOL,
    chat_completion,
    to_output_line,
    to_params,
)
from webapp.providers.anthropic_provider import AnthropicProvider
from webapp.services.results import parse_result_line

MODEL = "claude-haiku-4-5"
SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": ["spam", "ham"]}, "confidence": {"type": "number"}},
    "required": ["label", "confidence"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "verdict", "strict": True, "schema": SCHEMA}}


def chat(*messages: dict, model: str = MODEL, **body) -> dict:
    return {"model": model, "messages": list(messages), **body}


def user(content) -> dict:
    return {"role": "user", "content": content}


# --- requests ----------------------------------------------------------------------------------------------------


def test_system_messages_become_the_top_level_system():
    params = to_params(
        chat(
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            user("Hello"),
        )
    )
    assert params["system"] == "Be brief.\n\nAnswer in French."
    assert params["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]


@pytest.mark.parametrize(
    ("limits", "expected"),
    [({}, DEFAULT_MAX_TOKENS), ({"max_tokens": 50}, 50), ({"max_completion_tokens": 70, "max_tokens": 50}, 70)],
)
def test_max_tokens_is_always_set(limits, expected):
    assert to_params(chat(user("x"), **limits))["max_tokens"] == expected


def test_sampling_and_stop_settings_take_anthropics_names_and_bounds():
    params = to_params(chat(user("x"), temperature=1.7, top_p=0.9, stop="END", user="u-1", seed=3, n=1))
    assert (params["temperature"], params["top_p"], params["stop_sequences"]) == (1.0, 0.9, ["END"])
    assert params["metadata"] == {"user_id": "u-1"} and "seed" not in params and "n" not in params
    assert to_params(chat(user("x"), temperature=0.2, stop=["a", "b"]))["stop_sequences"] == ["a", "b"]


def test_a_json_schema_is_structured_output_on_current_models():
    params = to_params(chat(user("Is this spam?"), response_format=JSON_SCHEMA_FORMAT))
    assert params["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in params and "tool_choice" not in params


def test_a_json_schema_is_a_forced_tool_on_models_before_structured_output():
    params = to_params(
        chat(user("Is this spam?"), model="claude-3-5-haiku-20241022", response_format=JSON_SCHEMA_FORMAT)
    )
    assert params["tools"] == [
        {"name": STRUCTURED_TOOL, "description": "Give the answer in this structure.", "input_schema": SCHEMA}
    ]
    assert params["tool_choice"] == {"type": "tool", "name": STRUCTURED_TOOL} and "output_config" not in params


def test_a_json_object_format_is_asked_for_in_the_system():
    params = to_params(
        chat({"role": "system", "content": "Classify."}, user("x"), response_format={"type": "json_object"})
    )
    assert params["system"] == f"Classify.\n\n{JSON_OBJECT_INSTRUCTION}"


def test_tools_calls_and_results_take_anthropics_shapes():
    weather = {"name": "weather", "description": "Weather now", "parameters": {"type": "object", "properties": {}}}
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    params = to_params(
        chat(
            user("Weather in Oslo?"),
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "-3 C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "windy"},
            tools=[{"type": "function", "function": weather}],
            tool_choice="required",
            parallel_tool_calls=False,
        )
    )
    assert params["tools"] == [{"name": "weather", "description": "Weather now", "input_schema": weather["parameters"]}]
    assert params["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert params["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}}],
    }
    # Two tool results in a row share one user turn, as Anthropic wants them after the call.
    assert params["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "-3 C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "windy"},
        ],
    }


def test_images_are_sent_by_url_or_as_base64():
    params = to_params(
        chat(
            user(
                [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "text", "text": ""},
                ]
            )
        )
    )
    assert params["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]


# --- results -----------------------------------------------------------------------------------------------------


def message(content: list, stop: str = "end_turn", **usage) -> dict:
    counts = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    return {"id": "msg_1", "model": MODEL, "content": content, "stop_reason": stop, "usage": {**counts, **usage}}


def test_a_succeeded_result_reads_as_an_openai_output_line_with_every_token_counted():
    line = to_output_line(
        "row 1",
        {
            "type": "succeeded",
            "message": message(
                [{"type": "text", "text": "Hi"}], cache_read_input_tokens=300, cache_creation_input_tokens=200
            ),
        },
    )
    result = parse_result_line(json.dumps(line))
    assert result.succeeded and result.custom_id == "row 1" and result.output_text == "Hi"
    assert (result.prompt_tokens, result.cached_tokens, result.completion_tokens) == (510, 300, 5)
    assert line["response"]["body"]["usage"]["prompt_tokens_details"]["cache_write_tokens"] == 200
    assert line["response"]["body"]["choices"][0]["finish_reason"] == "stop"


def test_the_structured_tools_input_is_the_output_text():
    answer = {"label": "spam", "confidence": 0.9}
    body = chat_completion(
        message([{"type": "tool_use", "id": "t", "name": STRUCTURED_TOOL, "input": answer}], "tool_use")
    )
    assert json.loads(body["choices"][0]["message"]["content"]) == answer
    assert body["choices"][0]["finish_reason"] == "stop"


def test_a_tool_call_is_an_openai_tool_call():
    body = chat_completion(
        message([{"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Oslo"}}], "tool_use")
    )
    reply = body["choices"][0]["message"]
    assert reply["content"] is None and body["choices"][0]["finish_reason"] == "tool_calls"
    assert reply["tool_calls"] == [
        {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    ]


@pytest.mark.parametrize(
    ("error_type", "status", "retryable"),
    [
        ("invalid_request_error", 400, False),
        ("rate_limit_error", 429, True),
        ("api_error", 500, True),
        ("overloaded_error", 529, True),
        ("timeout_error", 504, True),
        ("permission_error", 403, False),
        ("something_new", 500, True),
    ],
)
def test_an_errored_result_keeps_its_type_and_is_retried_only_when_passing(error_type, status, retryable):
    errored = {
        "type": "errored",
        "error": {"type": "error", "error": {"type": error_type, "message": "no"}, "request_id": "req_1"},
    }
    result = parse_result_line(json.dumps(to_output_line("a", errored)))
    assert not result.succeeded and (result.status_code, result.error_code) == (status, error_type)
    assert result.retryable is retryable and result.error == "no" and result.provider_request_id == "req_1"


@pytest.mark.parametrize(
    ("kind", "code", "retryable"), [("canceled", "batch_cancelled", False), ("expired", "batch_expired", True)]
)
def test_unrun_requests_read_as_openais_cancelled_and_expired_lines(kind, code, retryable):
    result = parse_result_line(json.dumps(to_output_line("a", {"type": kind})))
    assert (result.error_code, result.status_code, result.retryable) == (code, None, retryable)


# --- the provider, over HTTP -------------------------------------------------------------------------------------


@pytest.fixture
def claude(app_ctx, simulator) -> AnthropicProvider:
    provider = get_provider("simulator-anthropic")
    assert isinstance(provider, AnthropicProvider) and provider.inline
    return provider


def write_input(tmp_path, bodies: dict[str, dict]):
    path = tmp_path / "input.jsonl"
    path.write_text(
        "".join(
            json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": b}) + "\n"
            for cid, b in bodies.items()
        )
    )
    return path


def wait_ended(provider, batch_id: str):
    deadline = time.monotonic() + 10
    while (info := provider.get_batch(batch_id)).status in ("in_progress", "cancelling"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return info


def test_requests_with_any_custom_id_go_inline_and_come_back_under_it(claude, tmp_path):
    # Ids Anthropic would refuse: a space, another alphabet, 100 characters.
    bodies = {
        "row 1": chat(user("First?")),
        "zeile-ä": chat(user("Second?"), response_format=JSON_SCHEMA_FORMAT),
        "x" * 100: chat({"role": "system", "content": "Be brief."}, user("Third?")),
    }
    info = claude.send_batch(write_input(tmp_path, bodies), "/v1/chat/completions", "abp-test-1-6756a3f2ab12")
    assert (info.status, info.counts_total, info.output_file_id) == ("in_progress", 3, None)
    ended = wait_ended(claude, info.id)
    assert (ended.status, ended.counts_completed, ended.output_file_id) == ("completed", 3, info.id)
    assert ended.timestamps["completed_at"] >= ended.created_at
    assert claude.batch_label(info.id) == "abp-test-1-6756a3f2ab12"

    dest = tmp_path / "results.jsonl"
    assert claude.download_results(info.id, list(bodies), dest) == 3
    results = {r.custom_id: r for r in map(parse_result_line, dest.read_bytes().splitlines())}
    assert set(results) == set(bodies) and all(r.succeeded for r in results.values())
    assert results["row 1"].output_text == simulated_text(to_params(bodies["row 1"]))
    jsonschema.validate(json.loads(results["zeile-ä"].output_text), SCHEMA)
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 for r in results.values())


def test_a_result_whose_id_is_not_ours_keeps_it(claude, tmp_path):
    info = claude.send_batch(
        write_input(tmp_path, {"a": chat(user("x")), "b": chat(user("y"))}), "/v1/chat/completions", "L"
    )
    wait_ended(claude, info.id)
    dest = tmp_path / "results.jsonl"
    claude.download_results(info.id, ["only-one"], dest)  # the second request's place is past the list
    assert sorted(parse_result_line(line).custom_id for line in dest.read_bytes().splitlines()) == ["L-1", "only-one"]


def test_a_cancelled_batch_reads_as_cancelled_and_an_ended_one_is_deleted(claude, simulator, tmp_path):
    simulator.app.config["SIMULATOR_IN_PROGRESS_SECONDS"] = 30
    info = claude.send_batch(write_input(tmp_path, {"a": chat(user("x"))}), "/v1/chat/completions", "L")
    assert claude.batch_label(info.id) is None  # not ended: no results to read it from
    assert claude.cancel_batch(info.id).status == "cancelling"
    ended = wait_ended(claude, info.id)
    assert (ended.status, ended.counts_failed) == ("cancelled", 1) and ended.timestamps["cancelled_at"]
    assert [b.id for b in claude.list_batches()] == [info.id]
    claude.delete_file(ended.output_file_id)  # its results, with the batch
    claude.delete_file(ended.output_file_id)  # gone already: not an error
    assert list(claude.list_batches()) == []


def test_only_chat_completions_are_sent(claude, tmp_path):
    with pytest.raises(ProviderError, match="only /v1/chat/completions") as caught:
        claude.send_batch(write_input(tmp_path, {"a": {"model": MODEL, "input": "x"}}), "/v1/embeddings", "L")
    assert not caught.value.retryable


@pytest.mark.parametrize(("status", "retryable"), [(529, True), (429, True), (500, True), (400, False), (401, False)])
def test_sdk_errors_become_provider_errors(claude, simulator, tmp_path, status, retryable):
    add_fault(simulator, status=status, method="POST", path="/messages/batches")
    with pytest.raises(ProviderError) as caught:
        claude.send_batch(write_input(tmp_path, {"a": chat(user("x"))}), "/v1/chat/completions", "L")
    assert (caught.value.status_code, caught.value.retryable) == (status, retryable)
    assert caught.value.refused is (status < 500)


def test_the_file_calls_are_refused_and_the_list_of_files_is_empty(claude, tmp_path):
    assert list(claude.list_files()) == []
    with pytest.raises(ProviderError, match="takes its requests inline"):
        claude.upload_input(tmp_path / "x.jsonl", "x.jsonl")
    with pytest.raises(ProviderError, match="inline"):
        claude.create_batch("file-1", "/v1/chat/completions", {})


def test_the_openai_provider_refuses_the_inline_calls(app_ctx, simulator, tmp_path):
    provider = get_provider("simulator")
    assert not provider.inline
    with pytest.raises(ProviderError, match="in an input file"):
        provider.send_batch(tmp_path / "x.jsonl", "/v1/chat/completions", "L")


def test_the_model_list_is_anthropics(claude):
    assert "claude-sonnet-5-5" in claude.list_models()
