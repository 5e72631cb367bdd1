"""How long `delegation check` takes on the 500-account sample: in-process median, and the command.

    python benchmarks/check_speed.py [--runs 20] [FORM]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("form", nargs="?", default=str(REPO / "sample_forms" / "valid_500.xlsx"))
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    from flows.manual import check_file

    form = Path(args.form)
    check_file(form)  # warm: imports (pandas, pandera) are paid once per process
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        result = check_file(form)
        times.append(time.perf_counter() - start)
    assert not result.errors, result.errors[:3]
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "delegation"), "check", str(form)], check=True,
                   capture_output=True)
    command = time.perf_counter() - start
    print(f"{form.name}: read + validate, median of {args.runs}: {statistics.median(times) * 1000:.1f} ms "
          f"(min {min(times) * 1000:.1f} ms); the whole `delegation check` command, imports included: "
          f"{command:.2f} s")


if __name__ == "__main__":
    main()
