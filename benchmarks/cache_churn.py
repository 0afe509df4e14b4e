"""The longest single insertion into a full cache under churn (each insert evicts one), in CPU
time: what a dict's periodic whole-table rehash costs serving, at the sizes operators use::

    .venv/bin/python benchmarks/cache_churn.py                        # this checkout
    .venv/bin/python benchmarks/cache_churn.py --checkout ../main     # another, read only
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import dns.message
import dns.rrset


def worst_put(cache_module: object, capacity: int, inserts: int) -> tuple[float, int]:
    """(slowest insertion in ms of CPU, insertions over 1 ms) after filling to capacity."""
    from resolver.querystate import parse_reply

    query = dns.message.make_query("x.example.", "A")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("x.example.", 300, "IN", "A", "192.0.2.1"))
    answer = parse_reply(reply.to_wire())
    policy = cache_module.CachePolicy(capacity=capacity, max_memory=1 << 40)  # type: ignore[attr-defined]
    cache = cache_module.Cache(policy, time.monotonic)  # type: ignore[attr-defined]
    for i in range(capacity):
        cache.put(b"fill%d" % i, answer)
    gc.disable()  # the collector is another cause (benchmarks/tail_probe.py): not this one
    worst, slow = 0.0, 0
    for i in range(inserts):
        key = b"churn%d" % i
        began = time.thread_time()
        cache.put(key, answer)
        spent = time.thread_time() - began
        worst = max(worst, spent)
        slow += spent > 0.001
    gc.enable()
    return worst * 1e3, slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", help="measure this checkout's resolver/cache.py")
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args()
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(Path(args.checkout or Path(__file__).parents[1]).resolve()))
    from resolver import cache as cache_module

    print(f"resolver from {Path(cache_module.__file__).parents[1]}")
    for capacity in (int(size) for size in args.sizes.split(",")):
        worst, slow = worst_put(cache_module, capacity, 2 * capacity)
        print(f"capacity {capacity:>9,}: {2 * capacity:,} inserts, slowest {worst:.1f} ms CPU, "
              f"{slow} over 1 ms")  # fmt: skip


if __name__ == "__main__":
    main()
