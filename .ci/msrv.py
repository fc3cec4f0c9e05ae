#!/usr/bin/env python3
"""Checks the declared `rust-version` against what the build really needs.

Only one toolchain is on CI's machines, so the oldest one cannot be run. Two checks
stand in for it: clippy's `incompatible_msrv` lint (on in the clippy step) flags any
std API newer than `rust-version`, and this script fails when a normal dependency,
with every feature on, declares a `rust-version` newer than ours (so users on our
`rust-version` could not build it), or when ours is higher than the newest of them
and of the language features we use (then it says to lower it).
"""
import json
import subprocess
import sys

# The newest language or std feature the code uses, beyond what the dependencies need:
# `#[diagnostic::on_unimplemented]` (1.78), `let ... else` (1.65), `is_some_and` (1.70).
OWN_FLOOR = (1, 78)

meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"]))
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
workspace = set(meta["workspace_members"])


def version(text):
    return tuple(int(x) for x in text.split(".")[:2])


root = next(i for i in workspace if packages[i]["name"] == "protean")
declared = version(packages[root]["rust_version"])
seen, stack = set(), [root]
while stack:
    current = stack.pop()
    if current in seen:
        continue
    seen.add(current)
    for dep in nodes[current]["deps"]:
        if any(k["kind"] in (None, "build") for k in dep["dep_kinds"]):
            stack.append(dep["pkg"])

needed = [(version(packages[i]["rust_version"]), packages[i]["name"], packages[i]["version"])
          for i in seen - workspace if packages[i].get("rust_version")]
needed.sort(reverse=True)
newest, name, at = needed[0]
floor = max(newest, OWN_FLOOR)
print(f"rust-version {'.'.join(map(str, declared))}; the newest dependency needs "
      f"{'.'.join(map(str, newest))} ({name} {at}); the code itself needs {'.'.join(map(str, OWN_FLOOR))}")
too_new = [n for n in needed if n[0] > declared]
if too_new:
    for v, n, a in too_new:
        print(f"  {n} {a} needs Rust {'.'.join(map(str, v))}")
    sys.exit("a dependency needs a newer Rust than the declared rust-version: raise it, or pin the dependency lower")
if declared > floor:
    sys.exit(f"rust-version is higher than anything needs: lower it to {'.'.join(map(str, floor))}")
