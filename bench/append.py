"""Steady appender for `make bench`'s latency phase.

usage: append.py CSV_FILE SENT_FILE RATE SECONDS

Creates CSV_FILE with the export header, then appends RATE orders per second
for SECONDS, in batches every 10 ms, each batch one write() of whole lines.
For every order it records "id,unix_time_after_write" in SENT_FILE; joined
with orders.written_at (same machine clock) that gives line written -> row
committed.
"""

import os
import sys
import time
from datetime import datetime, timezone

TICK = 0.010
FIRST_ID = 900_000_000


def main() -> None:
    csv_path, sent_path, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    fd = os.open(csv_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, b"id,user_id,completed_at,item_total,shipment_total\n")
    time.sleep(1.0)  # let the producer pick the file up before the clock starts
    sent = []
    next_id = FIRST_ID
    start = time.monotonic()
    tick = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        # Lines owed so far at RATE, so a late tick catches up instead of drifting.
        due = int(min(elapsed + TICK, seconds) * rate) - (next_id - FIRST_ID)
        if due > 0:
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
            ids = range(next_id, next_id + due)
            lines = "".join(f"{i},{i % 5000 + 1},{stamp},{10 + i % 90}.{i % 100:02d},2.5\n" for i in ids)
            os.write(fd, lines.encode())
            written = time.time()
            sent.extend(f"{i},{written:.6f}\n" for i in ids)
            next_id += due
        tick += 1
        pause = start + tick * TICK - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    os.close(fd)
    with open(sent_path, "w") as out:
        out.writelines(sent)
    took = time.monotonic() - start
    print(f"append: {next_id - FIRST_ID} lines in {took:.1f} s ({(next_id - FIRST_ID) / took:.0f} lines/s)", file=sys.stderr)


if __name__ == "__main__":
    main()
