"""Sums the closing lines of every test runner in a log into one line
`N passed, N failed` (and `, N skipped`), so the whole run ends on a single count."""

import re
import sys

PATTERNS = [
    # cargo test
    (re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored"), (1, 2, 3)),
    # the C test program
    (re.compile(r"^test_c: (\d+) passed, (\d+) failed, (\d+) skipped", re.M), (1, 2, 3)),
]
PYTEST = re.compile(r"^=*\s*(.*\bin [\d.]+s)\b.*$", re.M)
CTEST = re.compile(r"tests passed, (\d+) tests failed out of (\d+)")
# go test -v: one line per test, subtests indented under their parent
GO_TEST = re.compile(r"^( *)--- (PASS|FAIL|SKIP): ", re.M)


def tally_go(text: str) -> tuple[int, int, int]:
    """Counts the leaves of `go test -v` results: a parent whose subtests are listed
    under it (more deeply indented, right after it) is not a test of its own, unless it
    failed with none of its subtests failing (a failure of the parent's own code)."""
    results = [(len(m.group(1)), m.group(2)) for m in GO_TEST.finditer(text)]
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for i, (indent, outcome) in enumerate(results):
        subtree = []
        for child_indent, child_outcome in results[i + 1 :]:
            if child_indent <= indent:
                break
            subtree.append(child_outcome)
        if not subtree or (outcome == "FAIL" and "FAIL" not in subtree):
            counts[outcome] += 1
    return counts["PASS"], counts["FAIL"], counts["SKIP"]


def tally(text: str) -> tuple[int, int, int]:
    passed = failed = skipped = 0
    for pattern, (p, f, s) in PATTERNS:
        for m in pattern.finditer(text):
            passed += int(m.group(p))
            failed += int(m.group(f))
            skipped += int(m.group(s))
    for m in PYTEST.finditer(text):
        summary = m.group(1)
        if "test result:" in summary:
            continue  # cargo's line, counted above
        for count, word in re.findall(r"(\d+) (passed|failed|skipped|error|errors|xfailed|xpassed)", summary):
            n = int(count)
            if word == "passed" or word == "xpassed":
                passed += n
            elif word in ("failed", "error", "errors"):
                failed += n
            else:
                skipped += n
    for m in CTEST.finditer(text):
        bad, total = int(m.group(1)), int(m.group(2))
        passed += total - bad
        failed += bad
    go_passed, go_failed, go_skipped = tally_go(text)
    return passed + go_passed, failed + go_failed, skipped + go_skipped


def main() -> int:
    text = open(sys.argv[1], errors="replace").read()
    status = int(sys.argv[2])
    passed, failed, skipped = tally(text)
    if status != 0 and failed == 0:
        # A step that is not a test runner failed (lint, build, install): count it.
        failed = 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
