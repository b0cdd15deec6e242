"""Sum JUnit XML reports (pytest and node --test write them) into one verdict.

usage: python3 junit_summary.py LABEL=REPORT.xml ...

Prints one line per report and a final `N passed, M failed[, K skipped]`; a missing or unreadable
report counts as one failure (the runner died before writing it). Exit status 1 if anything failed.
"""

import sys
import xml.etree.ElementTree as ET


def count(path: str) -> tuple[int, int, int, list[str]]:
    passed = failed = skipped = 0
    failures: list[str] = []
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        if case.find("testcase") is not None:  # a suite that node reports as a case: count its leaves
            continue
        name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            failures.append(name)
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, failures


def main() -> int:
    total_p = total_f = total_s = 0
    for arg in sys.argv[1:]:
        label, _, path = arg.partition("=")
        try:
            p, f, s, names = count(path)
        except (OSError, ET.ParseError) as exc:
            p, f, s, names = 0, 1, 0, [f"no report ({exc.__class__.__name__})"]
        total_p, total_f, total_s = total_p + p, total_f + f, total_s + s
        print(f"  {label}: {p} passed, {f} failed, {s} skipped")
        for name in names:
            print(f"    FAILED {name}")
    tail = f", {total_s} skipped" if total_s else ""
    print(f"{total_p} passed, {total_f} failed{tail}")
    return 1 if total_f else 0


if __name__ == "__main__":
    sys.exit(main())
