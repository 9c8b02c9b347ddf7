"""Inference profiles, ARNs, regions and the per-model faults of bedrock-emulator, with boto3.

Models Bedrock serves on demand only through a cross-region inference profile are refused by their plain id with
Bedrock's own ValidationException; their profile ids (`us.`, `eu.`, `apac.`, `global.`) and profile ARNs answer, and
so do foundation-model ARNs. The emulator answers for us-east-1 and us-west-2 (EMULATOR_REGION) and refuses a
signature scoped to any other region. `[[throttle-model:ID]]` and `[[throttle-region:R]]` throttle one model or
one region only: what the service's fallback chains are tested with.
"""

import pytest
from botocore.exceptions import ClientError

from test_bedrock_emulator import CLAUDE, make_client

SONNET4 = "anthropic.claude-sonnet-4-20250514-v1:0"


def converse(client, model, text="Hello there"):
    return client.converse(modelId=model, messages=[{"role": "user", "content": [{"text": text}]}])


def text_of(answer):
    return answer["output"]["message"]["content"][0]["text"]


@pytest.fixture(scope="module")
def client():
    return make_client()


def test_plain_id_of_a_profile_only_model_is_refused_as_bedrock_does(client):
    with pytest.raises(ClientError) as caught:
        converse(client, SONNET4)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Message"] == (
        f"Invocation of model ID {SONNET4} with on-demand throughput isn\u2019t supported. "
        "Retry your request with the ID or ARN of an inference profile that contains this model."
    )


@pytest.mark.parametrize(
    "model",
    [
        "us." + SONNET4,
        "eu." + SONNET4,
        "apac." + SONNET4,
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us." + SONNET4,
        "arn:aws:bedrock:us-east-1::foundation-model/" + CLAUDE,
        "us.meta.llama3-3-70b-instruct-v1:0",
        "us.amazon.nova-premier-v1:0",
    ],
)
def test_profiles_and_arns_answer(client, model):
    answer = converse(client, model)
    assert answer["stopReason"] in ("end_turn", "max_tokens")
    assert text_of(answer).strip()


def test_the_same_conversation_gives_the_same_reply_through_a_profile_and_the_plain_id(client):
    assert text_of(converse(client, "us." + CLAUDE)) == text_of(converse(client, CLAUDE))


def test_unknown_model_is_not_found(client):
    with pytest.raises(ClientError) as caught:
        converse(client, "us.anthropic.claude-unknown-v9:0")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_other_region_answers_and_an_unknown_region_is_refused():
    assert text_of(converse(make_client(region="us-west-2"), CLAUDE))
    with pytest.raises(ClientError) as caught:
        converse(make_client(region="eu-west-3"), CLAUDE)
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "eu-west-3" in caught.value.response["Error"]["Message"]


def test_a_throttled_model_or_region_fails_alone(client):
    text = f"Busy [[throttle-model:{CLAUDE}]]"
    with pytest.raises(ClientError) as caught:
        converse(client, CLAUDE, text)
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert text_of(converse(client, "amazon.nova-lite-v1:0", text))

    text = "Busy here [[throttle-region:us-east-1]]"
    with pytest.raises(ClientError) as caught:
        converse(client, CLAUDE, text)
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert text_of(converse(make_client(region="us-west-2"), CLAUDE, text))

    with pytest.raises(ClientError) as caught:
        converse(client, "amazon.nova-lite-v1:0", "Warming up [[not-ready-model:amazon.nova-lite-v1:0]]")
    assert caught.value.response["Error"]["Code"] == "ModelNotReadyException"
