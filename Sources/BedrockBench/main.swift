// bedrock-bench: the event-stream decoder alone, then the Bedrock client's cost per streamed chunk against
// the emulator; printed as one Markdown table. (The full path against its floor is `chat-bench`, `make bench`.)
print("| benchmark | throughput | rate |")
print("| --- | --- | --- |")
for row in runDecoderBenchmark() {
    print(row)
}
for row in try await runClientBenchmark() {
    print(row)
}
