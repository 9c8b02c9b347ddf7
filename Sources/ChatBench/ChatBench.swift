import ArgumentParser

/// `chat-bench`: virtual users streaming replies through chat-api, the LiteLLM proxy or the Bedrock emulator
/// straight (the floor), with latency percentiles, throughput and the stack's CPU and memory; `idle` measures
/// what an idle open SSE connection costs chat-api.
@main
struct ChatBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-bench",
        abstract: "Load generator and report for the chat service, its floor and LiteLLM.",
        subcommands: [RunCommand.self, IdleCommand.self],
        defaultSubcommand: RunCommand.self
    )
}
