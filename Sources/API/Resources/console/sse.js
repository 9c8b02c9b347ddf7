// Server-Sent Events over a fetch Response (so requests can carry an Authorization header, which
// EventSource cannot). Follows the WHATWG event-stream parsing rules: lines end in CRLF, LF or CR;
// "field: value" with one optional space; ":" starts a comment; a blank line dispatches the event.

/**
 * Reads `response.body` to its end, calling `onEvent({event, data, id})` for each dispatched event
 * (`event` defaults to "message"; `id` is the frame's own id line or undefined when it had none) and
 * `onComment(text)` for each comment line. Resolves when the body ends; rejects when reading fails
 * (network drop, or an AbortError when the fetch's signal was aborted).
 */
export async function readEventStream(response, onEvent, onComment = () => {}) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8");
  let buffer = "";
  let frame = newFrame();

  const handleLine = (line) => {
    if (line === "") {
      if (frame.data.length > 0) {
        onEvent({ event: frame.event || "message", data: frame.data.join("\n"), id: frame.id });
      }
      frame = newFrame();
      return;
    }
    if (line.startsWith(":")) {
      onComment(line.slice(1).trimStart());
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") frame.event = value;
    else if (field === "data") frame.data.push(value);
    else if (field === "id" && !value.includes("\u0000")) frame.id = value;
    else if (field === "retry" && /^\d+$/.test(value)) frame.retry = Number(value);
  };

  for (;;) {
    const { value, done } = await reader.read();
    buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const ch = buffer[i];
      if (ch !== "\n" && ch !== "\r") continue;
      // A CR at the very end may be the first half of a CRLF split across reads: wait for more.
      if (ch === "\r" && i === buffer.length - 1 && !done) break;
      handleLine(buffer.slice(start, i));
      if (ch === "\r" && buffer[i + 1] === "\n") i++;
      start = i + 1;
    }
    buffer = buffer.slice(start);
    if (done) return; // an unterminated last frame is discarded, as the spec says
  }
}

function newFrame() {
  return { event: "", data: [], id: undefined };
}
