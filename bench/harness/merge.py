"""--merge: the families of this run measured again (or added) into the results.json of an
earlier run, whose other families, header and notes stay as they were; the later run is
named in the report beside them."""

from __future__ import annotations

import json
from pathlib import Path

from harness.results import Results
from harness.targets import targets

# What a later run of some families says about itself in the merged results.
RUN_FACTS = ("date", "command", "duration_s", "repeats", "load_during_run", "paused_for_compilers_s",
             "samples_measured_again", "samples_still_disturbed")
# The version of the code measured, named when the later run measured another one (the
# other entries describe tools of the earlier run's families).
MEASURED_CODE = ("wasm-image (git)",)


def into_previous(previous: Path, doc: dict, families: list) -> dict:
    """The earlier run's results (previous) with these families' samples taken from this
    run's doc; the targets computed again over the merged samples. Without an earlier
    results.json, this run's doc as it is."""
    if not previous.exists():
        return doc
    old = json.loads(previous.read_text())
    names = [f.name for f in families]
    cases = {case for f in families for case in f.cases}
    merged = dict(old)
    merged["samples"] = [s for s in old["samples"] if s["case"] not in cases] + \
                        [s for s in doc["samples"] if s["case"] in cases]
    # Requests per operation are kept by case as well: this run's for its cases.
    merged["requests"] = {**{k: v for k, v in old.get("requests", {}).items() if k not in cases},
                          **{k: v for k, v in doc.get("requests", {}).items() if k in cases}}
    # Tools only this run knows (the Go toolchain…) join the versions; those that changed
    # since the earlier run are named with the later run.
    merged["versions"] = {**old["versions"], **{k: v for k, v in doc["versions"].items() if k not in old["versions"]}}
    later = {k: doc[k] for k in RUN_FACTS if k in doc}
    later["families"] = names
    later["versions_changed"] = {k: doc["versions"][k] for k in MEASURED_CODE
                                 if k in doc["versions"] and doc["versions"][k] != old["versions"].get(k)}
    # An earlier later run keeps the families this run did not measure again.
    kept = []
    for r in old.get("merged_runs", []):
        rest = [f for f in r["families"] if f not in names]
        if rest:
            kept.append({**r, "families": rest})
    merged["merged_runs"] = kept + [later]
    merged["targets"] = targets(Results.from_json(merged), old["machine"]["cores"])
    return merged


def markdown_lines(meta: dict) -> list[str]:
    """One paragraph per later run merged in (none for a results.json of one run)."""
    out = []
    for r in meta.get("merged_runs", []):
        load = r.get("load_during_run", {})
        changed = r.get("versions_changed", {})
        out.append(
            f"**Measured in a later run:** the {', '.join(r['families'])} tables and targets, {r['date']} — `{r['command']}` — "
            f"{r['repeats']} repeats per figure; load median {load.get('load1_median', 0):.2f}, max {load.get('load1_max', 0):.2f}; "
            f"paused {r.get('paused_for_compilers_s', 0):.0f} s for other compilers, {r.get('samples_measured_again', 0)} samples "
            f"measured again, {r.get('samples_still_disturbed', 0)} kept although disturbed"
            + (f"; versions then: {'; '.join(f'{k} {v}' for k, v in changed.items())}" if changed else "") + ".")
        out.append("")
    return out
