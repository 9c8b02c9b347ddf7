print("bedrock-emulator: not built yet")
