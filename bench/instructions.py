"""Machine instructions a widget call costs, in process: `bench/hotpath.py` run under
valgrind's callgrind twice, with `--calls` and four times as many, the difference divided by
the extra calls (the start-up and the set-up cancel out). On a shared virtual machine whose
timings move by 10-20% from one run to the next, this count moves by about 0.5%: a step of a
few per cent shows here where a timing cannot tell it from noise. It counts no system call's
cost and no cache miss: confirm a step from outside (`bench/run.py`) before calling it faster.

    uv run python bench/instructions.py [--routes identify,echo] [--tree DIR ...]

Each `--tree` is a checkout's `src` (e.g. a `git worktree` of the commit before), measured
beside this one; about 1.5 minutes a tree and route on SQLite.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(tree: Path, route: str, backend: str, calls: int) -> int:
    """callgrind's count of one run of bench/hotpath.py with `calls` calls of `route`."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--cache-sim=no",
        "--branch-sim=no", sys.executable, str(ROOT / "bench" / "hotpath.py"), "--backend",
        backend, "--calls", str(calls), "--users", "50", "--clients", "32", "--routes", route,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = _COLLECTED.search(out.stderr)
    if found is None:
        raise RuntimeError(f"callgrind gave no count: {out.stderr[-500:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--routes", default="identify")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--tree", action="append", type=Path, default=[])
    args = parser.parse_args()
    trees = [*args.tree, ROOT / "src"]
    print(f"| tree | route | {args.backend}: instructions a call |")
    print("|---|---|---|")
    for route in args.routes.split(","):
        for tree in trees:
            few = instructions(tree, route, args.backend, args.calls)
            many = instructions(tree, route, args.backend, args.calls * 4)
            per_call = (many - few) / (args.calls * 3)
            print(f"| {tree} | {route} | {per_call / 1e6:.3f} M |", flush=True)


if __name__ == "__main__":
    main()
