#!/usr/bin/env bash
# Fails, naming the file, if a `*.rs` directly under a crate's tests/ folder
# is not run: every such file must be a test target of its crate (cargo
# metadata; automatic discovery makes it one unless the manifest says
# otherwise), and a target that needs features (`required-features`), which
# a plain `cargo test --workspace` skips, must be run by .ci/run with
# `--features` in a `cargo test -p CRATE ... --test NAME` line.
#
#   tools/check_tests_run.sh        # .ci/run calls it before the tests
set -euo pipefail
cd "$(dirname "$0")/.."

meta=$(mktemp)
trap 'rm -f "$meta"' EXIT
cargo metadata --no-deps --format-version 1 >"$meta"
python3 - "$meta" <<'EOF'
import json, os, re, sys

meta = json.load(open(sys.argv[1]))
ci = open(".ci/run").read().replace("\\\n", " ")
# The .ci/run commands that run tests with features.
featured = [c for line in ci.splitlines() for c in line.split("&&")
            if re.search(r"\bcargo test\b", c) and "--features" in c]
problems = []
checked = 0
for pkg in meta["packages"]:
    if pkg["id"] not in meta["workspace_members"]:
        continue
    crate = pkg["name"]
    tests_dir = os.path.join(os.path.dirname(pkg["manifest_path"]), "tests")
    if not os.path.isdir(tests_dir):
        continue
    targets = {os.path.realpath(t["src_path"]): t for t in pkg["targets"]
               if "test" in t["kind"]}
    for name in sorted(os.listdir(tests_dir)):
        path = os.path.join(tests_dir, name)
        if not name.endswith(".rs") or not os.path.isfile(path):
            continue
        checked += 1
        rel = os.path.relpath(path)
        target = targets.get(os.path.realpath(path))
        if target is None:
            problems.append(f"{rel}: not a test target of {crate} (autotests = false?)")
            continue
        features = target.get("required-features")
        if features:
            test = target["name"]
            pattern = re.compile(r"-p\s+" + re.escape(crate) + r"\s.*--test\s+"
                                 + re.escape(test) + r"(\s|$)")
            if not any(pattern.search(c) for c in featured):
                problems.append(f"{rel}: needs features {features}, and .ci/run has no "
                                f"`cargo test -p {crate} --features ... --test {test}`")
for p in problems:
    print(f"check_tests_run: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"check_tests_run: all {checked} test files run")
EOF
