"""Prints one summary line for an executed notebook: cells, wall time, outputs, errors."""
import sys

import nbformat

path, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
nb = nbformat.read(path, as_version=4)
code = [c for c in nb.cells if c.cell_type == "code"]
errors = [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
images = sum("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
results = [o["data"].get("text/plain") for c in code for o in c.get("outputs", [])
           if o.output_type == "execute_result" and "text/html" not in o["data"]]
print(f"{path}: {len(code)} code cells, {end - start:.1f} s wall, {images} PNG, "
      f"{len(errors)} errors; results: {', '.join(r for r in results if r)}")
sys.exit(1 if errors else 0)
