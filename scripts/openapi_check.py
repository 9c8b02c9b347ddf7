#!/usr/bin/env python3
"""chat-api's OpenAPI document checked, then held against what the API really answered.

openapi_check.py DOCUMENT [EXCHANGES [--every-operation]]: validates DOCUMENT as OpenAPI 3.1 (openapi-spec-validator); then, for each
line of EXCHANGES (JSON lines written by the integration tests' ExchangeRecorder: method, route template,
status, content type, body), checks that the operation is documented, that the status is one of its
responses, and that the body matches the schema of that response: JSON bodies as a whole, event streams
event by event (each event's `data` against the schema its name maps to in `x-sse-events`). Exit status 1
with one line per problem."""
import collections
import json
import re
import sys

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

document_path = sys.argv[1]
document = json.load(open(document_path))
validate(document)
print(f"openapi-check: ok: {document_path} is a valid OpenAPI {document['openapi']} document")
if len(sys.argv) < 3:
    sys.exit(0)

# Every `$ref` of a schema points into the document: resolve them against it.
registry = Registry().with_resource("urn:openapi", Resource(contents=document, specification=DRAFT202012))


def rebase(schema):
    """The schema with its local references (#/components/...) made to point into the document."""
    if isinstance(schema, dict):
        return {key: ("urn:openapi" + value if key == "$ref" and value.startswith("#") else rebase(value)) for key, value in schema.items()}
    if isinstance(schema, list):
        return [rebase(item) for item in schema]
    return schema


def errors(schema, instance):
    return [error.message for error in OAS31Validator(rebase(schema), registry=registry).iter_errors(instance)]


def events(text):
    """(event name, data text) of each event of an SSE body; comments and empty frames skipped."""
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in frame.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            yield name, "\n".join(data)


# Literal paths first: /api/chat/sessions/active before /api/chat/sessions/{id}.
TEMPLATES = [
    (re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"), path)
    for path in sorted(document["paths"], key=lambda path: path.count("{"))
]


def template(path):
    """The document's path template a concrete path (recorded by a client) belongs to; None for another service's."""
    return next((name for pattern, name in TEMPLATES if pattern.match(path)), None)


def resolve(pointer):
    """The part of the document a local `$ref` (#/a/b) names."""
    node = document
    for part in pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


problems = []
checked = collections.Counter()
for number, line in enumerate(open(sys.argv[2]), 1):
    exchange = json.loads(line)
    if exchange.get("server") != "chat-api":
        continue  # another service's answer (a stand-in, the worker's health port)
    method, status = exchange["method"].lower(), str(exchange["status"])
    route = exchange.get("route") or template(exchange["path"])
    if route in ("unmatched", None):
        continue
    where = f"{exchange['method']} {route} → {status}"
    operation = document["paths"].get(route, {}).get(method)
    if operation is None:
        problems.append(f"{where}: the operation is not in the document")
        continue
    response = operation.get("responses", {}).get(status) or operation.get("responses", {}).get("default")
    while isinstance(response, dict) and "$ref" in response:  # a shared response of components
        response = resolve(response["$ref"])
    if response is None:
        problems.append(f"{where}: status {status} is not among its responses")
        continue
    body = exchange["body"]
    content_type = exchange["contentType"].split(";")[0].strip()
    content = response.get("content", {})
    if not body:
        if content and status not in ("204", "304") and exchange["method"] != "HEAD":
            problems.append(f"{where}: an empty body, the document says {sorted(content)}")
        checked[where] += 1
        continue
    if not content:
        problems.append(f"{where}: a body, the document says none")
        continue
    media = content.get(content_type)
    if media is None:
        problems.append(f"{where}: answered {content_type}, the document says {sorted(content) or 'no body'}")
        continue
    if content_type == "application/json":
        try:
            instance = json.loads(body)
        except ValueError:
            problems.append(f"{where}: the body is not JSON")
            continue
        if "schema" not in media:
            problems.append(f"{where}: the document gives no schema for {content_type}")
            continue
        for message in errors(media["schema"], instance)[:3]:
            problems.append(f"{where}: {message}")
    elif content_type == "text/event-stream":
        mapping = media.get("x-sse-events", {})
        for name, data in events(body):
            if name not in mapping:
                problems.append(f"{where}: event {name!r} is not in x-sse-events")
                continue
            try:
                instance = json.loads(data)
            except ValueError:
                problems.append(f"{where}: event {name!r} carries data that is not JSON")
                continue
            for message in errors(mapping[name], instance)[:3]:
                problems.append(f"{where}: event {name}: {message}")
    checked[where] += 1

operations = {key.rsplit(" → ", 1)[0] for key in checked}
documented = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item if method in ("get", "put", "post", "delete", "patch")}
if not checked:
    problems.append("no answer of chat-api was recorded: nothing was checked")
if "--every-operation" in sys.argv:  # the whole test suite ran: every documented operation must have been answered
    for operation in sorted(documented - operations):
        problems.append(f"{operation}: documented, but no test's answer exercised it")
for problem in sorted(set(problems)):
    print(f"openapi-check: FAILED: {problem}", file=sys.stderr)
print(f"openapi-check: {sum(checked.values())} answers of {len(operations)} operations held against the document, {len(set(problems))} problems")
sys.exit(1 if problems else 0)
