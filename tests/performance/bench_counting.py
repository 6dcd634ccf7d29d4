"""What counting for `/metrics` costs the delivery core, measured without sockets or a broker.

Run `.venv/bin/python -m tests.performance.bench_counting [--ref main] [--rounds 7]` from the
project root. It runs `counting_child.py` (a hub with one room of C clients whose sockets always
take a frame at once, fed E events in batches of 64, as the log consumer does) alternately
against the tree of a git ref without the counting (`git archive`) and against this working
tree, each child pinned to its tree by `PYTHONPATH`, and prints the median over rounds of each
one's best CPU time per delivery. It isolates the cost of the counting on the cheapest path there
is (no socket write), so it shows the largest share counting can take; `bench_live
--metrics-off-ref` measures the same on the real path, with sockets and a broker
(tests/performance/README.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.performance.metrics_cost import export

CHILD = Path(__file__).with_name("counting_child.py")


def run_child(
    tree: Path, clients: int, events: int, repetitions: int, *, seed: int
) -> dict[str, Any]:
    """One child's figures, with `bridge` imported from `tree` and string hashing seeded with
    `seed` (see `main`)."""
    output = subprocess.run(
        [sys.executable, str(CHILD), str(clients), str(events), str(repetitions)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),  # not the project root: `bridge` must come from PYTHONPATH
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": str(seed)},
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print it."""
    parser = argparse.ArgumentParser(prog="python -m tests.performance.bench_counting")
    parser.add_argument("--ref", default="main", help="the git ref without counting")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    off: list[float] = []
    on: list[float] = []
    with tempfile.TemporaryDirectory(prefix="eventbridge-counting-off-") as folder:
        without = export(args.ref, Path(folder))
        for number in range(args.rounds):
            # CPython's speed varies with the string-hash seed of the process, by up to 1.5x on
            # this path (attribute caches keyed by name hashes): both trees run with the same
            # seeds, a new one each round, and the medians compare like with like.
            for tree, into in ((without, off), (root, on)):
                figures = run_child(tree, args.clients, args.events, args.repetitions, seed=number)
                into.append(figures["ns_per_delivery"])
            print(f"round {number + 1}: off {off[-1]:.0f} ns, on {on[-1]:.0f} ns", flush=True)
    median_off, median_on = statistics.median(off), statistics.median(on)
    print(
        f"CPU per delivery, {args.clients} clients, median of {args.rounds} rounds: "
        f"{args.ref} {median_off:.0f} ns, this tree {median_on:.0f} ns "
        f"({(median_on / median_off - 1) * 100:+.1f} %)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
