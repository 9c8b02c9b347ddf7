#!/usr/bin/env python3
"""Checks deploy/Dockerfile without a Docker engine: every stage named by --from or FROM is defined above it,
every COPY source exists in the repository, every product built is a product of Package.swift, and every Debian
package installed exists in this machine's Debian release (the image's base, bookworm). Also reads every YAML file
of deploy/kubernetes. Exit status 1 with one line per problem."""
import pathlib
import re
import subprocess
import sys

import yaml

root = pathlib.Path(__file__).resolve().parent.parent
problems = []
dockerfile = (root / "deploy/Dockerfile").read_text()
text = re.sub(r"\\\n\s*", " ", dockerfile)  # join continued lines
stages = []
products = set(re.findall(r'\.executable\(name:\s*"([^"]+)"', (root / "Package.swift").read_text()))
packages = set()
for number, line in enumerate(text.splitlines(), 1):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    instruction, _, rest = line.partition(" ")
    instruction = instruction.upper()
    if instruction == "FROM":
        words = rest.split()
        base = words[0]
        if base in stages or "/" in base or ":" in base:
            pass
        else:
            problems.append(f"Dockerfile: FROM {base}: no such stage above, and not an image with a tag")
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.append(words[2])
    elif instruction == "COPY":
        words = rest.split()
        source_stage = next((word.split("=", 1)[1] for word in words if word.startswith("--from=")), None)
        paths = [word for word in words if not word.startswith("--")][:-1]
        if source_stage is not None:
            if source_stage not in stages:
                problems.append(f"Dockerfile: COPY --from={source_stage}: no such stage above")
        else:
            for path in paths:
                if not (root / path).exists():
                    problems.append(f"Dockerfile: COPY {path}: not in the repository")
    elif instruction == "RUN":
        named = re.findall(r"--product\s+(\S+)", rest)
        # A loop's variable stands for the names the loop goes over.
        for loop_variable, names in re.findall(r"for\s+(\w+)\s+in\s+([^;]+);", rest):
            if any(loop_variable in product for product in named):
                named = [product for product in named if loop_variable not in product] + names.split()
        for product in named:
            if product not in products:
                problems.append(f"Dockerfile: --product {product}: not a product of Package.swift")
        for match in re.finditer(r"apt-get install\s+([^&;]+)", rest):
            packages.update(word for word in match.group(1).split() if not word.startswith("-"))
for package in sorted(packages):
    if subprocess.run(["apt-cache", "show", package], capture_output=True).returncode != 0:
        problems.append(f"Dockerfile: Debian has no package {package}")
if "runtime" not in stages or "build" not in stages:
    problems.append("Dockerfile: the build and runtime stages are missing")
# The user each stage ends with (a stage inherits its base stage's): the image's own stages must not run as root.
stage_users, current, user = {}, None, None
for line in text.splitlines():
    words = line.strip().split()
    if not words:
        continue
    if words[0].upper() == "FROM":
        user = stage_users.get(words[1], None) if words[1] in stage_users else ("root" if words[1] not in stage_users else None)
        current = words[3] if len(words) >= 4 and words[2].upper() == "AS" else f"final:{words[1]}"
        stage_users[current] = user
    elif words[0].upper() == "USER":
        stage_users[current] = words[1]
final = list(stage_users)[-1]
for stage in ("runtime", "dev", final):
    if stage_users.get(stage) in (None, "root", "0"):
        problems.append(f"Dockerfile: stage {stage} runs as root")
# Debian's promtool is built without Kubernetes discovery, so the Kubernetes scrape file is read as YAML only.
for path in sorted((root / "deploy/kubernetes").glob("*.yaml")) + [root / "deploy/prometheus/kubernetes-scrape.yml"]:
    try:
        list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as error:
        problems.append(f"{path.relative_to(root)}: {error}")
for problem in problems:
    print(f"deploy-check: FAILED: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"deploy-check: ok: the Dockerfile's {len(stages)} stages, its COPY sources, products and {len(packages)} Debian packages; deploy/kubernetes reads")
