#!/usr/bin/env python3
"""make profile's breakdown of Redis's time by command and, for scripts, by the kind of their first key.

Reads every entry of SLOWLOG (make profile logs every command) from the Redis on the given port through
redis-cli and prints calls, total and mean microseconds per group, largest first."""
import re
import subprocess
import sys

port = sys.argv[1]
raw = subprocess.run(["redis-cli", "-p", port, "--json", "SLOWLOG", "GET", "1000000"], capture_output=True, text=True).stdout
try:
    import json
    entries = json.loads(raw)
except ValueError:
    sys.exit("redis-cli gave no JSON (it needs Redis 7's --json)")
groups = {}
for entry in entries:
    micros, args = int(entry[2]), entry[3]
    name = args[0].upper()
    if name in ("EVAL", "EVALSHA") and len(args) > 3 and args[2] != "0":
        # The first key's kind: its text with ids (hex, uuids, digits) folded.
        kind = re.sub(r"[0-9a-f]{8,}(-[0-9a-f]{4,})*", "<id>", args[3])
        name = f"{name} {'<body>' if name == 'EVAL' else args[1][:8]} keys={args[2]} first={kind}"
    elif name in ("XREAD", "XREADGROUP"):
        name = f"{name} ({len(args)} args)" if len(args) < 12 else f"{name} (12+ args)"
    calls, total = groups.get(name, (0, 0))
    groups[name] = (calls + 1, total + micros)
print(f"{'calls':>8} {'usec':>10} {'usec/call':>9}  command")
for name, (calls, total) in sorted(groups.items(), key=lambda item: -item[1][1])[:30]:
    print(f"{calls:8d} {total:10d} {total / calls:9.1f}  {name}")
