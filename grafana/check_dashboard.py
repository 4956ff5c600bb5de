#!/usr/bin/env python3
"""Checks grafana/chorus.json: the data source is the `datasource` template variable on every
panel and query, every panel expression is valid PromQL, and the per-node part is there: at
least one row repeated over a multi-value template variable (one row per Chorus node), whose
every query is filtered by that variable. The expressions, with Grafana's
variables replaced by plain values, are written into a Prometheus recording-rules file and
handed to `promtool check rules`, which parses each one.

Usage: grafana/check_dashboard.py [DASHBOARD.json]   (needs promtool on PATH)
Exit status: 0 when everything passes, 1 otherwise.
"""

import copy
import json
import os
import re
import subprocess
import sys
import tempfile

# Values Grafana would substitute at query time.
VARIABLES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "instance": ".*",
}
DATASOURCE = "${datasource}"


def panels(items):
    """Every panel, including those nested in collapsed rows."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def repeated_rows(items):
    """(row, its panels) for every row with `repeat`: an expanded row owns the panels after it
    up to the next row, a collapsed one holds them in `panels`."""
    for index, panel in enumerate(items):
        if panel.get("type") != "row" or not panel.get("repeat"):
            continue
        if panel.get("collapsed"):
            yield panel, panel.get("panels", [])
            continue
        following = []
        for other in items[index + 1:]:
            if other.get("type") == "row":
                break
            following.append(other)
        yield panel, following


def check_repeats(dashboard, variables):
    problems = []
    rows = list(repeated_rows(dashboard.get("panels", [])))
    if not rows:
        problems.append("no row repeated over a variable (the per-node rows)")
    for row, children in rows:
        name = row["repeat"]
        variable = variables.get(name)
        if not variable or not (variable.get("multi") or variable.get("includeAll")):
            problems.append(f"row `{row.get('title')}` repeats over `{name}`, not a multi-value variable")
        if not children:
            problems.append(f"repeated row `{row.get('title')}` has no panels")
        for child in children:
            for target in child.get("targets", []):
                if f'=~"${name}"' not in target.get("expr", "") and f'="${name}"' not in target.get("expr", ""):
                    problems.append(f"`{child.get('title')}` in repeated row `{row.get('title')}` is not filtered by ${name}")
    return problems


def self_test_repeats(dashboard, variables):
    """check_repeats must still see the two ways the per-node part can break: no repeated row,
    and a query in it that is not filtered by the row's variable."""
    problems = []
    unrepeated = copy.deepcopy(dashboard)
    for panel in unrepeated.get("panels", []):
        panel.pop("repeat", None)
    if not check_repeats(unrepeated, variables):
        problems.append("self-test: a dashboard without a repeated row is not reported")
    unfiltered = copy.deepcopy(dashboard)
    for row, children in repeated_rows(unfiltered.get("panels", [])):
        for child in children[:1]:
            for target in child.get("targets", []):
                target["expr"] = re.sub(r'\{[^}]*\$\{?' + row["repeat"] + r'\}?[^}]*\}', "", target["expr"])
    if not check_repeats(unfiltered, variables):
        problems.append("self-test: a repeated-row query without the row's variable is not reported")
    return problems


def substitute(expr):
    def value(match):
        name = match.group(1) or match.group(2)
        if name not in VARIABLES:
            raise ValueError(f"unknown variable ${name}")
        return VARIABLES[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "chorus.json")
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    problems = []
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    source = variables.get("datasource")
    if not source or source.get("type") != "datasource" or source.get("query") != "prometheus":
        problems.append("no `datasource` template variable of type datasource (prometheus)")
    for name in variables:
        if name != "datasource" and name not in VARIABLES:
            problems.append(f"template variable `{name}` has no test value in check_dashboard.py")
    problems.extend(check_repeats(dashboard, variables))
    problems.extend(self_test_repeats(dashboard, variables))
    rules = []
    for panel in panels(dashboard.get("panels", [])):
        title = panel.get("title", "?")
        targets = panel.get("targets", [])
        if panel.get("type") != "row" and not targets:
            problems.append(f"panel `{title}` has no query")
        if targets and panel.get("datasource", {}).get("uid") != DATASOURCE:
            problems.append(f"panel `{title}` does not use the {DATASOURCE} variable")
        for target in targets:
            if target.get("datasource", {}).get("uid", DATASOURCE) != DATASOURCE:
                problems.append(f"a query of `{title}` does not use the {DATASOURCE} variable")
            expr = target.get("expr", "").strip()
            if not expr:
                problems.append(f"a query of `{title}` has no expression")
                continue
            try:
                concrete = substitute(expr)
            except ValueError as e:
                problems.append(f"`{title}`: {e}")
                continue
            record = f"chorus_dashboard:panel_{panel['id']}:{target.get('refId', 'A').lower()}"
            rules.append({"record": record, "expr": concrete})
    if problems:
        for p in problems:
            print(f"dashboard: {p}", file=sys.stderr)
        return 1
    # JSON is valid YAML, so the rules file needs no YAML library.
    document = {"groups": [{"name": "chorus-dashboard", "rules": rules}]}
    with tempfile.NamedTemporaryFile("w", suffix=".rules.yml", delete=False) as f:
        json.dump(document, f, indent=1)
        rules_path = f.name
    try:
        result = subprocess.run(["promtool", "check", "rules", rules_path])
    finally:
        os.unlink(rules_path)
    if result.returncode != 0:
        return 1
    print(f"dashboard: {len(rules)} expressions in {path} pass promtool")
    return 0


if __name__ == "__main__":
    sys.exit(main())
