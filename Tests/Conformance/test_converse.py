"""Converse and ConverseStream of bedrock-emulator with the official AWS SDK (boto3 / botocore), every family.

Besides botocore's parsing, every response is held against the output shape of botocore's own service model
(`bedrock-runtime`): each required member present, no member the shape does not have, each value of its type.
The emulator must already run (see test_bedrock_emulator.py for the settings).
"""

import botocore.session
import pytest
from botocore.exceptions import ClientError, EventStreamError

from test_bedrock_emulator import CLAUDE, make_client  # noqa: F401  (the client fixture's maker)

MODELS = {
    "claude": CLAUDE,
    "nova": "amazon.nova-lite-v1:0",
    "titan": "amazon.titan-text-express-v1",
    "llama": "meta.llama3-8b-instruct-v1:0",
    "mistral": "mistral.mistral-7b-instruct-v0:2",
}
SERVICE = botocore.session.get_session().get_service_model("bedrock-runtime")


@pytest.fixture(scope="module")
def client():
    return make_client()


def conforms(value, shape, path="$"):
    """Problems of `value` against botocore shape `shape` (an empty list when it conforms)."""
    problems = []
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not a structure"]
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}.{name}: required, missing")
        for name, member in value.items():
            if name not in shape.members:
                if name != "ResponseMetadata" or path != "$":
                    problems.append(f"{path}.{name}: not a member of {shape.name}")
                continue
            problems += conforms(member, shape.members[name], f"{path}.{name}")
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: not a list"]
        for index, item in enumerate(value):
            problems += conforms(item, shape.member, f"{path}[{index}]")
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: not a string")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} not in {shape.enum}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int):
            problems.append(f"{path}: not an integer")
    elif kind in ("float", "double"):
        if not isinstance(value, (int, float)):
            problems.append(f"{path}: not a number")
    return problems


def converse_request(model, prompt, system=None, max_tokens=None, **config):
    request = {"modelId": model, "messages": [{"role": "user", "content": [{"text": prompt}]}]}
    if system is not None:
        request["system"] = [{"text": system}]
    inference = dict(config)
    if max_tokens is not None:
        inference["maxTokens"] = max_tokens
    if inference:
        request["inferenceConfig"] = inference
    return request


@pytest.mark.parametrize("family", sorted(MODELS))
def test_converse_every_family_with_system_prompt_and_inference_configuration(client, family):
    # Converse takes no system prompt for Titan Text or Mistral 7B Instruct (AWS's table of Converse features).
    system = None if family in ("titan", "mistral") else "You are terse and kind."
    prompt = f"Tell me about rivers, {family}."
    request = converse_request(MODELS[family], prompt, system=system, max_tokens=200, temperature=0.5, topP=0.9, stopSequences=["END"])
    response = client.converse(**request)
    assert conforms(response, SERVICE.operation_model("Converse").output_shape) == []
    message = response["output"]["message"]
    assert message["role"] == "assistant"
    text = "".join(block["text"] for block in message["content"])
    words = len((system or "").split()) + len(prompt.split())
    assert response["usage"] == {"inputTokens": words, "outputTokens": len(text.split()), "totalTokens": words + len(text.split())}
    assert response["stopReason"] == "end_turn"
    assert response["metrics"]["latencyMs"] >= 0
    # Deterministic: the same conversation gives the same reply.
    assert "".join(block["text"] for block in client.converse(**request)["output"]["message"]["content"]) == text


@pytest.mark.parametrize("family", sorted(MODELS))
def test_converse_stream_gives_the_same_reply_as_converse_in_botocores_event_order(client, family):
    request = converse_request(MODELS[family], f"Stream about harbors, {family}.", max_tokens=300)
    whole = client.converse(**request)
    response = client.converse_stream(**request)
    stream_shape = SERVICE.operation_model("ConverseStream").output_shape.members["stream"]
    events = list(response["stream"])
    names = [next(iter(event)) for event in events]
    assert names[0] == "messageStart" and names[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert set(names[1:-3]) == {"contentBlockDelta"} and len(names) - 4 >= 2
    for event in events:
        name = next(iter(event))
        assert conforms(event[name], stream_shape.members[name], name) == []
    text = "".join(event["contentBlockDelta"]["delta"]["text"] for event in events if "contentBlockDelta" in event)
    assert text == "".join(block["text"] for block in whole["output"]["message"]["content"])
    assert events[-2]["messageStop"]["stopReason"] == whole["stopReason"]
    assert events[-1]["metadata"]["usage"] == whole["usage"]


def test_converse_and_invoke_model_agree_on_the_same_conversation(client):
    import json

    prompt = "The same words either way."
    converse_text = client.converse(**converse_request(CLAUDE, prompt, max_tokens=100))["output"]["message"]["content"][0]["text"]
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}]}
    invoked = json.loads(client.invoke_model(modelId=CLAUDE, body=json.dumps(body))["body"].read())
    assert invoked["content"][0]["text"] == converse_text


def test_max_tokens_cuts_the_reply_and_says_so(client):
    response = client.converse(**converse_request(MODELS["nova"], "Long one [[tokens:40]]", max_tokens=5))
    assert response["stopReason"] == "max_tokens"
    assert response["usage"]["outputTokens"] == 5


@pytest.mark.parametrize(
    "request_, message",
    [
        (converse_request(CLAUDE, "hi", max_tokens=10_000_000), "exceeds the model limit"),
        ({"modelId": CLAUDE, "messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, "must start with a user message"),
        (
            {"modelId": CLAUDE, "messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]},
            "must alternate",
        ),
        (converse_request(MODELS["titan"], "hi", system="Be brief."), "doesn't support system messages"),
        (converse_request(MODELS["mistral"], "hi", system="Be brief."), "doesn't support system messages"),
        (converse_request(CLAUDE, "  "), "is blank"),
        (converse_request(CLAUDE, "hi", temperature=1.5), "temperature"),
    ],
)
def test_invalid_requests_are_validation_exceptions(client, request_, message):
    with pytest.raises(ClientError) as raised:
        client.converse(**request_)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert message in raised.value.response["Error"]["Message"]


def test_unknown_model_is_resource_not_found(client):
    with pytest.raises(ClientError) as raised:
        client.converse(**converse_request("anthropic.claude-9-imaginary-v1:0", "hi"))
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_throttled_converse_and_an_exception_mid_stream(client):
    with pytest.raises(ClientError) as raised:
        client.converse(**converse_request(CLAUDE, "busy [[throttle]]"))
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    response = client.converse_stream(**converse_request(CLAUDE, "break [[exception:2:modelStreamErrorException]] [[tokens:10]]"))
    seen = []
    with pytest.raises(EventStreamError) as raised:
        for event in response["stream"]:
            seen.append(next(iter(event)))
    assert raised.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert seen.count("contentBlockDelta") == 2


def test_echo_settings_replies_with_the_inference_configuration_received(client):
    request = converse_request(CLAUDE, "What did you get? [[echo-settings]]", max_tokens=77, temperature=0.3, topP=0.8, stopSequences=["END"])
    text = client.converse(**request)["output"]["message"]["content"][0]["text"]
    assert text == "temperature=0.3 topP=0.8 stop=END maxTokens=77"


def test_converse_events_carry_padding_that_botocore_leaves_out(client):
    # Bedrock pads every ConverseStream event with `p`; botocore's parser drops members its model does not have.
    events = list(client.converse_stream(**converse_request(CLAUDE, "Padding please [[tokens:3]]"))["stream"])
    assert all("p" not in event[next(iter(event))] for event in events)
    assert [next(iter(event)) for event in events][0] == "messageStart"
