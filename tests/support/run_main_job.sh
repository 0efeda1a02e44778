#!/usr/bin/env bash
# The main job (make run): executes the example notebooks headless through sparkernel with
# nbconvert, writes executed notebooks and HTML to out/, and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
export JUPYTER_PATH=${JUPYTER_PATH:-$PWD/build/share/jupyter}
mkdir -p out
notebooks=(notebooks/demo.ipynb)
for nb in "${notebooks[@]}"; do
    name=$(basename "$nb" .ipynb)
    start=$(date +%s.%N)
    "$PYTHON" -m jupyter nbconvert --to notebook --execute \
        --ExecutePreprocessor.kernel_name=sparkernel --ExecutePreprocessor.timeout=600 \
        --output-dir out --output "$name.executed" "$nb" 2>out/"$name".log
    end=$(date +%s.%N)
    "$PYTHON" -m jupyter nbconvert --to html --output-dir out "out/$name.executed.ipynb" \
        2>>out/"$name".log
    "$PYTHON" tests/support/summarize.py "out/$name.executed.ipynb" "$start" "$end"
done
