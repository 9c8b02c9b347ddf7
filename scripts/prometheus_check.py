#!/usr/bin/env python3
"""prometheus-check.sh's two steps.

render CONFIG TARGETS RULES: prints CONFIG with each job's targets replaced (TARGETS: job=host:port,...), a one
    second scrape interval and RULES as its only rule file.
check URL CONFIG RULES DASHBOARDS: waits until the Prometheus at URL has every job of CONFIG up, then runs every expression of
    the alert rules in RULES and of the Grafana dashboards (JSON files) in DASHBOARDS; fails on any expression
    that does not parse or run, or that names a metric no target exports.
"""
import json
import pathlib
import re
import sys
import time
import urllib.parse
import urllib.request

import yaml


def render(config_path, targets, rules):
    config = yaml.safe_load(pathlib.Path(config_path).read_text())
    wanted = dict(item.split("=", 1) for item in targets.split(","))
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [rules]
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in wanted]
    missing = set(wanted) - {job["job_name"] for job in jobs}
    if missing:
        sys.exit(f"prometheus-check: no job {sorted(missing)} in {config_path}")
    for job in jobs:
        job["static_configs"] = [{"targets": [wanted[job["job_name"]]]}]
    config["scrape_configs"] = jobs
    print(yaml.safe_dump(config, sort_keys=False))


def api(base, path, **params):
    url = f"{base}/api/v1/{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)


# PromQL words that are not metric names: functions are told apart by the '(' after them.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group", "inf", "nan",
}


def metric_names(expression):
    """The metric names an expression reads: identifiers outside label matchers, strings, durations and
    grouping clauses, not followed by '(' and not PromQL keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)  # strings
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    text = re.sub(r"\boffset\s+-?[0-9a-z]+", "", text)  # offsets
    for match in re.finditer(r"(?<![0-9.a-zA-Z_:])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = match.group(0)
        rest = text[match.end():].lstrip()
        if word.lower() in KEYWORDS or rest.startswith("("):
            continue
        names.add(word)
    return names


def expressions(rules_path, dashboards_dir):
    found = []
    for group in yaml.safe_load(pathlib.Path(rules_path).read_text())["groups"]:
        for rule in group["rules"]:
            found.append((f"alert {rule.get('alert') or rule.get('record')}", rule["expr"]))
    directory = pathlib.Path(dashboards_dir)

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))  # a row's panels

    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"{path.name}: {panel.get('title')}", target["expr"]))
    return found


def equality_selectors(expression):
    """Each `metric{label="value"}` pair of an expression (equality matchers only): each must select a series,
    or a misspelt label or value would go unnoticed (the query still runs, and answers nothing)."""
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expression):
        for label, value in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"', match.group(2)):
            yield f'{match.group(1)}{{{label}="{value}"}}'


def check(base, config_path, rules_path, dashboards_dir):
    expected = {job["job_name"] for job in yaml.safe_load(pathlib.Path(config_path).read_text())["scrape_configs"]}
    deadline = time.time() + 60
    while True:
        up = api(base, "query", query="up").get("data", {}).get("result", [])
        down = sorted(expected - {item["metric"]["job"] for item in up if item["value"][1] == "1"})
        if not down:
            break
        if time.time() > deadline:
            sys.exit(f"prometheus-check: FAILED: targets not up within 60 s: {down or 'none scraped'}")
        time.sleep(0.5)
    jobs = sorted(item["metric"]["job"] for item in up)
    print(f"prometheus-check: ok: every target is up ({', '.join(jobs)})")
    exported = set(api(base, "label/__name__/values")["data"])
    failures = 0
    checked = expressions(rules_path, dashboards_dir)
    for where, expression in checked:
        # Grafana's own variables, as Grafana would fill them in.
        query = expression.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "5m")
        query = re.sub(r"\$model\b", ".*", query)
        answer = api(base, "query", query=query)
        unknown = sorted(name for name in metric_names(query) if name not in exported)
        empty = [selector for selector in equality_selectors(query) if not api(base, "query", query=f"count({selector})")["data"]["result"]]
        if answer.get("status") != "success":
            print(f"prometheus-check: FAILED: {where}: {answer.get('error')}", file=sys.stderr)
            failures += 1
        elif unknown:
            print(f"prometheus-check: FAILED: {where}: no target exports {unknown}", file=sys.stderr)
            failures += 1
        elif empty:
            print(f"prometheus-check: FAILED: {where}: {empty} select no series", file=sys.stderr)
            failures += 1
    if failures:
        sys.exit(f"prometheus-check: {failures} of {len(checked)} expressions failed")
    print(f"prometheus-check: ok: {len(checked)} expressions of the alert rules and dashboards parse, run and name exported metrics")


def selftest():
    """The name extraction on expressions whose answer is known, so that a check naming nothing cannot pass."""
    cases = {
        'sum(rate(a_total{job="x",s=~"5.."}[5m])) / sum(rate(b_total[1m])) > 0.05': {"a_total", "b_total"},
        "sum(up{job=\"w\"}) == 0 or absent(up{job=\"w\"})": {"up"},
        "histogram_quantile(0.95, sum by (le, model) (rate(c_bucket[$__rate_interval])))": {"c_bucket"},
        "max(d) unless on(job) e offset 5m": {"d", "e"},
    }
    for expression, names in cases.items():
        found = metric_names(expression)
        if found != names:
            sys.exit(f"prometheus-check: selftest: {expression!r} gave {sorted(found)}, expected {sorted(names)}")


if __name__ == "__main__":
    selftest()
    if sys.argv[1] == "render":
        render(*sys.argv[2:5])
    elif sys.argv[1] == "check":
        check(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
