"""Conformance of bedrock-emulator with the official AWS SDK (boto3 / botocore).

The emulator must already run: `PORT=3010 .build/debug/bedrock-emulator &`.
Settings: BEDROCK_ENDPOINT (default http://127.0.0.1:3010), EMULATOR_ACCESS_KEY_ID and
EMULATOR_SECRET_ACCESS_KEY (the emulator's defaults).
"""

import datetime
import json
import os
import urllib.request
import uuid
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

ENDPOINT = os.environ.get("BEDROCK_ENDPOINT", "http://127.0.0.1:3010")
ACCESS_KEY_ID = os.environ.get("EMULATOR_ACCESS_KEY_ID", "AKIDEMULATOREXAMPLE")
SECRET_ACCESS_KEY = os.environ.get("EMULATOR_SECRET_ACCESS_KEY", "emulator/secret/key/EXAMPLEKEY0000000000000")
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
METRICS = "amazon-bedrock-invocationMetrics"


def make_client(region="us-east-1", key=ACCESS_KEY_ID, secret=SECRET_ACCESS_KEY):
    return boto3.client(
        "bedrock-runtime",
        region_name=region,
        endpoint_url=ENDPOINT,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def client():
    with urllib.request.urlopen(ENDPOINT + "/emulator/health", timeout=5) as response:
        assert response.status == 200, "bedrock-emulator is not running at " + ENDPOINT
    return make_client()


# One family per entry: a model id, the request body for (system, prompt, max tokens), the prompt text whose words
# are the input tokens, how to read (text, input, output, stop) from the InvokeModel body, and how to read the same
# from the stream's chunks. None means the family does not report that value there.


def claude_body(system, prompt, max_tokens):
    return {"anthropic_version": "bedrock-2023-05-31", "max_tokens": max_tokens, "system": system,
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}]}


def claude_invoke(body):
    text = "".join(block["text"] for block in body["content"] if block["type"] == "text")
    assert body["type"] == "message" and body["role"] == "assistant" and body["stop_sequence"] is None
    return text, body["usage"]["input_tokens"], body["usage"]["output_tokens"], body["stop_reason"]


def claude_stream(chunks):
    types = [chunk["type"] for chunk in chunks]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(types[2:-3]) <= {"content_block_delta"}
    text = "".join(chunk["delta"]["text"] for chunk in chunks if chunk["type"] == "content_block_delta")
    delta = chunks[-2]
    return text, chunks[0]["message"]["usage"]["input_tokens"], delta["usage"]["output_tokens"], delta["delta"]["stop_reason"]


def nova_body(system, prompt, max_tokens):
    return {"schemaVersion": "messages-v1", "system": [{"text": system}],
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0.5}}


def nova_invoke(body):
    usage = body["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    text = "".join(block["text"] for block in body["output"]["message"]["content"])
    return text, usage["inputTokens"], usage["outputTokens"], body["stopReason"]


def nova_stream(chunks):
    assert list(chunks[0]) == ["messageStart"] and list(chunks[-3]) == ["contentBlockStop"]
    text = "".join(chunk["contentBlockDelta"]["delta"]["text"] for chunk in chunks[1:-3])
    usage = chunks[-1]["metadata"]["usage"]
    return text, usage["inputTokens"], usage["outputTokens"], chunks[-2]["messageStop"]["stopReason"]


def titan_invoke(body):
    result = body["results"][0]
    return result["outputText"], body["inputTextTokenCount"], result["tokenCount"], result["completionReason"]


def titan_stream(chunks):
    text = "".join(chunk["outputText"] for chunk in chunks)
    last = chunks[-1]
    return text, chunks[0]["inputTextTokenCount"], last["totalOutputTextTokenCount"], last["completionReason"]


def llama_prompt(system, prompt):
    return ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + system
            + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n" + prompt
            + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")


def llama_invoke(body):
    return body["generation"], body["prompt_token_count"], body["generation_token_count"], body["stop_reason"]


def llama_stream(chunks):
    text = "".join(chunk["generation"] for chunk in chunks)
    last = chunks[-1]
    return text, chunks[0]["prompt_token_count"], last["generation_token_count"], last["stop_reason"]


def mistral_invoke(body):
    return body["outputs"][0]["text"], None, None, body["outputs"][0]["stop_reason"]


def mistral_stream(chunks):
    assert all(chunk["outputs"][0]["stop_reason"] is None for chunk in chunks[:-1])
    return "".join(chunk["outputs"][0]["text"] for chunk in chunks), None, None, chunks[-1]["outputs"][0]["stop_reason"]


FAMILIES = {
    "claude": dict(
        model=CLAUDE, body=claude_body, prompt_text=lambda system, prompt: system + " " + prompt,
        invoke=claude_invoke, stream=claude_stream, stops=("end_turn", "max_tokens"),
    ),
    "nova": dict(
        model="amazon.nova-lite-v1:0", body=nova_body, prompt_text=lambda system, prompt: system + " " + prompt,
        invoke=nova_invoke, stream=nova_stream, stops=("end_turn", "max_tokens"),
    ),
    "titan": dict(
        model="amazon.titan-text-express-v1",
        body=lambda system, prompt, max_tokens: {
            "inputText": system + "\n\n" + prompt,
            "textGenerationConfig": {"maxTokenCount": max_tokens, "temperature": 0.7, "topP": 0.9}},
        prompt_text=lambda system, prompt: system + "\n\n" + prompt,
        invoke=titan_invoke, stream=titan_stream, stops=("FINISH", "LENGTH"),
    ),
    "llama": dict(
        model="meta.llama3-8b-instruct-v1:0",
        body=lambda system, prompt, max_tokens: {"prompt": llama_prompt(system, prompt), "max_gen_len": max_tokens, "top_p": 0.9},
        prompt_text=llama_prompt, invoke=llama_invoke, stream=llama_stream, stops=("stop", "length"),
    ),
    "mistral": dict(
        model="mistral.mistral-7b-instruct-v0:2",
        body=lambda system, prompt, max_tokens: {"prompt": "<s>[INST] " + system + "\n\n" + prompt + " [/INST]", "max_tokens": max_tokens},
        prompt_text=lambda system, prompt: "<s>[INST] " + system + "\n\n" + prompt + " [/INST]",
        invoke=mistral_invoke, stream=mistral_stream, stops=("stop", "length"),
    ),
}


def invoke(client, family, body):
    response = client.invoke_model(modelId=family["model"], body=json.dumps(body),
                                   contentType="application/json", accept="application/json")
    assert response["contentType"] == "application/json"
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    uuid.UUID(response["ResponseMetadata"]["RequestId"])
    text, input_tokens, output_tokens, stop = family["invoke"](json.loads(response["body"].read()))
    return dict(text=text, input=input_tokens, output=output_tokens, stop=stop,
                header_input=int(headers["x-amzn-bedrock-input-token-count"]),
                header_output=int(headers["x-amzn-bedrock-output-token-count"]),
                latency=int(headers["x-amzn-bedrock-invocation-latency"]))


def read_stream(client, family, body):
    response = client.invoke_model_with_response_stream(modelId=family["model"], body=json.dumps(body))
    assert response["contentType"] == "application/json"
    chunks = []
    for event in response["body"]:
        assert list(event) == ["chunk"]
        chunks.append(json.loads(event["chunk"]["bytes"]))
    assert all(METRICS not in chunk for chunk in chunks[:-1]), "only the last chunk carries the metrics"
    metrics = chunks[-1][METRICS]
    assert metrics["firstByteLatency"] <= metrics["invocationLatency"]
    text, input_tokens, output_tokens, stop = family["stream"](chunks)
    return dict(text=text, input=input_tokens, output=output_tokens, stop=stop, metrics=metrics, chunks=chunks)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_invoke_and_stream_agree_with_reported_usage(client, name):
    family = FAMILIES[name]
    system = "You are a terse assistant."
    prompt = f"Conformance check for {name}: describe the weather in four words [[tokens:9]]"
    body = family["body"](system, prompt, 200)
    expected_input = len(family["prompt_text"](system, prompt).split())

    whole = invoke(client, family, body)
    streamed = read_stream(client, family, body)

    words = whole["text"].split(" ")
    assert len(words) == 9 and all(words), whole["text"]
    assert streamed["text"] == whole["text"], "the stream's chunks concatenate to the InvokeModel text"
    assert streamed["text"].split() == words
    assert whole["header_output"] == streamed["metrics"]["outputTokenCount"] == len(words)
    assert whole["header_input"] == streamed["metrics"]["inputTokenCount"] == expected_input
    for reported in (whole, streamed):
        assert reported["output"] in (None, len(words))
        assert reported["input"] in (None, expected_input)
        assert reported["stop"] == family["stops"][0]
    if name != "mistral":
        assert whole["output"] == streamed["output"] == len(words)
        assert whole["input"] == streamed["input"] == expected_input


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_max_tokens_cuts_the_reply_with_the_max_tokens_stop_reason(client, name):
    family = FAMILIES[name]
    body = family["body"]("Be brief.", "Tell a long story please [[tokens:40]] [[tps:0]]", 3)
    whole = invoke(client, family, body)
    streamed = read_stream(client, family, body)
    assert len(whole["text"].split()) == 3 == whole["header_output"] == streamed["metrics"]["outputTokenCount"]
    assert whole["stop"] == streamed["stop"] == family["stops"][1]


def test_the_same_prompt_gives_the_same_words_and_another_prompt_other_words(client):
    family = FAMILIES["claude"]
    first = invoke(client, family, claude_body("s", "one prompt [[tps:0]]", 100))["text"]
    again = invoke(client, family, claude_body("other system", "one prompt [[tps:0]]", 100))["text"]
    other = invoke(client, family, claude_body("s", "another prompt [[tps:0]]", 100))["text"]
    assert first == again, "the seed is the last user message, not the system prompt"
    assert first != other


def error_of(call):
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response


def claude_call(client, body=None, model=CLAUDE):
    body = body or claude_body("s", "hello [[tps:0]]", 50)
    return lambda: client.invoke_model(modelId=model, body=json.dumps(body))


def test_wrong_secret_is_an_invalid_signature():
    error = error_of(claude_call(make_client(secret="not-the-secret")))
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Message"].startswith("The request signature we calculated does not match")


def test_unknown_access_key_is_an_unrecognized_client():
    error = error_of(claude_call(make_client(key="AKIDUNKNOWN000000000")))
    assert error["Error"]["Code"] == "UnrecognizedClientException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_wrong_region_is_an_invalid_signature():
    error = error_of(claude_call(make_client(region="eu-west-1")))
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert "eu-west-1" in error["Error"]["Message"]


@pytest.mark.parametrize("minutes", [-6, 6])
def test_a_signing_time_more_than_five_minutes_off_is_an_invalid_signature(client, minutes):
    skewed = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(minutes=minutes)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=skewed):
        error = error_of(claude_call(client))
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert error["Error"]["Message"].startswith("Signature expired" if minutes < 0 else "Signature not yet current")


def test_stream_requests_are_signature_checked_too():
    client = make_client(secret="not-the-secret")
    with pytest.raises(ClientError) as caught:
        client.invoke_model_with_response_stream(modelId=CLAUDE, body=json.dumps(claude_body("s", "hi", 5)))
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_unknown_model_is_not_found(client):
    error = error_of(claude_call(client, model="anthropic.claude-9-imaginary-v1:0"))
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    uuid.UUID(error["ResponseMetadata"]["RequestId"])


def test_claude_without_max_tokens_is_a_validation_error(client):
    body = claude_body("s", "hello", 50)
    del body["max_tokens"]
    error = error_of(claude_call(client, body))
    assert error["Error"]["Code"] == "ValidationException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "max_tokens" in error["Error"]["Message"]


def test_max_tokens_above_the_model_limit_is_a_validation_error(client):
    error = error_of(claude_call(client, claude_body("s", "hello", 100_000)))
    assert error["Error"]["Code"] == "ValidationException"
    assert "4096" in error["Error"]["Message"]


def chunk_text(chunk):
    """The reply text a chunk of any family carries ("" for framing chunks such as Claude's message_start)."""
    if chunk.get("type") == "content_block_delta":
        return chunk["delta"]["text"]
    if "contentBlockDelta" in chunk:
        return chunk["contentBlockDelta"]["delta"]["text"]
    return chunk.get("outputText") or chunk.get("generation") or (chunk.get("outputs") or [{}])[0].get("text", "")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_stream_exception_marker_ends_the_stream_after_two_text_chunks(client, name):
    # K counts chunks with text, so that it means the same in every family; where every chunk is a word (Titan,
    # Llama, Mistral) exactly two chunks are read, Claude and Nova also send their opening framing chunks first.
    family = FAMILIES[name]
    body = family["body"]("s", "break please [[exception:2:modelStreamErrorException]] [[tps:0]]", 50)
    response = client.invoke_model_with_response_stream(modelId=family["model"], body=json.dumps(body))
    read = []
    with pytest.raises(EventStreamError) as caught:
        for event in response["body"]:
            read.append(json.loads(event["chunk"]["bytes"]))
    assert [chunk_text(chunk) != "" for chunk in read] == {"claude": [False, False, True, True], "nova": [False, True, True]}.get(
        name, [True, True])
    assert caught.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert caught.value.response["Error"]["Message"]


def test_throttle_marker_always_throttles(client):
    body = claude_body("s", f"{uuid.uuid4()} [[throttle]]", 50)
    for _ in range(2):
        error = error_of(claude_call(client, body))
        assert error["Error"]["Code"] == "ThrottlingException"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_counted_throttle_fails_the_first_n_identical_requests_then_succeeds(client):
    # botocore's `max_attempts` counts retries, not attempts: {"max_attempts": 1} sends each call up to twice.
    attempts = client.meta.config.retries["total_max_attempts"]
    body = claude_body("s", f"{uuid.uuid4()} [[throttle:{attempts}]] [[tps:0]]", 50)
    error = error_of(claude_call(client, body))
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["ResponseMetadata"]["RetryAttempts"] == attempts - 1
    response = client.invoke_model(modelId=CLAUDE, body=json.dumps(body))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"]["RetryAttempts"] == 0


def test_reset_forgets_the_fault_counts(client):
    body = json.dumps(claude_body("s", f"{uuid.uuid4()} [[throttle:1]] [[tps:0]]", 50))
    assert client.invoke_model(modelId=CLAUDE, body=body)["ResponseMetadata"]["RetryAttempts"] == 1
    assert client.invoke_model(modelId=CLAUDE, body=body)["ResponseMetadata"]["RetryAttempts"] == 0
    request = urllib.request.Request(ENDPOINT + "/emulator/reset", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 204
    assert client.invoke_model(modelId=CLAUDE, body=body)["ResponseMetadata"]["RetryAttempts"] == 1
