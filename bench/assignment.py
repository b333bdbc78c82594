"""Whether a consumer group has settled, from its members' logs.

usage: assignment.py PARTITIONS CONSUMER_LOG...

Replays each member's "Partitions assigned." and "Partitions revoked." log
lines (incremental, cooperative-sticky) and exits 0 when every partition
0..PARTITIONS-1 is held by exactly one member and every member holds at
least one; 1 otherwise. `make bench` waits on it before starting its clock.
"""

import re
import sys

EVENT = re.compile(r"Partitions (assigned|revoked)\. partitions=\[([0-9, ]*)\]")


def held(log_path: str) -> set[int]:
    partitions: set[int] = set()
    with open(log_path, encoding="utf-8", errors="replace") as log:
        for line in log:
            match = EVENT.search(line)
            if not match:
                continue
            listed = {int(p) for p in match.group(2).split(",") if p.strip()}
            if match.group(1) == "assigned":
                partitions |= listed
            else:
                partitions -= listed
    return partitions


def main() -> int:
    expected = set(range(int(sys.argv[1])))
    members = [held(path) for path in sys.argv[2:]]
    every_partition_once = sorted(p for member in members for p in member) == sorted(expected)
    return 0 if members and every_partition_once and all(members) else 1


if __name__ == "__main__":
    sys.exit(main())
