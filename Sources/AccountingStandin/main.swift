print("accounting-standin: not built yet")
