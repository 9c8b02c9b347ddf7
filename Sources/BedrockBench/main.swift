print("bedrock-bench: not built yet")
