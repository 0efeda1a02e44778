"""Prints the summary of an executed notebook: cells, wall time, PNGs, errors, and the
figures the notebook computed.

    python tests/support/summarize.py NOTEBOOK.ipynb START END

START and END are epoch seconds (the wall time is END - START). Figures come from a
stream output line `SUMMARY {json}` (the example notebooks end with one); a notebook
without it is summarised by its plain execute results. Exits 1 when a cell has an error
output."""
from __future__ import annotations

import json
import sys

import nbformat

# Shown first and in this order when present; nested values (per-department tables) are
# left out of the one-line summary.
KEYS = ("raw_rows", "duplicates_removed", "rejected", "unknown_department", "clean_rows",
        "min_age", "filtered_rows", "parquet_rows", "departments", "rows", "train_fraction",
        "seed", "train_rows", "test_rows", "rmse", "mae", "r2")


def summary_figures(nb) -> dict | None:
    """The last `SUMMARY {...}` line printed by any code cell, parsed; None without one."""
    found = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") != "stream":
                continue
            for line in out.get("text", "").splitlines():
                if line.startswith("SUMMARY "):
                    try:
                        found = json.loads(line[len("SUMMARY "):])
                    except ValueError:
                        pass
    return found


def format_figures(figures: dict) -> str:
    flat = {k: v for k, v in figures.items() if not isinstance(v, (dict, list))}
    flat.pop("notebook", None)
    order = [k for k in KEYS if k in flat] + sorted(k for k in flat if k not in KEYS)
    return ", ".join(f"{k} {flat[k]}" for k in order)


def main(argv: list[str]) -> int:
    path, start, end = argv[1], float(argv[2]), float(argv[3])
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    print(f"{path}: {len(code)} code cells, {end - start:.1f} s wall, {images} PNG, "
          f"{len(errors)} errors")
    figures = summary_figures(nb)
    if figures is not None:
        print("    figures: " + format_figures(figures))
    else:
        results = [o["data"].get("text/plain") for o in outputs
                   if o.output_type == "execute_result" and "text/html" not in o["data"]]
        print("    results: " + ", ".join(r for r in results if r))
    for e in errors:
        print(f"    error: {e.get('ename')}: {str(e.get('evalue', '')).splitlines()[:1]}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
