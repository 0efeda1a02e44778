"""The example notebooks (notebooks/spark-example.ipynb, notebooks/linearRegressionBostonHousing
.ipynb) executed through sparkernel against a real local standalone cluster: by nbclient
with their default parameters, then by papermill with other parameters. The expected
figures are computed here, independently, from the CSV files with the csv module.

The data is copied into a temporary directory (SPARKERNEL_DATA_DIR) so the notebooks'
Parquet output never lands in the repository."""
from __future__ import annotations

import csv
import json
import pathlib
import re
import shutil

import nbformat
import papermill
import pytest
from nbclient import NotebookClient

from cluster import LocalCluster

pytestmark = pytest.mark.timeout(900)

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
DATA = NOTEBOOKS / "data"
SPARK_EXAMPLE = NOTEBOOKS / "spark-example.ipynb"
BOSTON = NOTEBOOKS / "linearRegressionBostonHousing.ipynb"
# Log4j / SLF4J lines (e.g. "25/11/25 10:00:00 WARN TaskSetManager: ...") in any output.
LOG4J = re.compile(r"\b(WARN|INFO|DEBUG|TRACE)\b [\w.$]+:|log4j|SLF4J|^\d\d/\d\d/\d\d \d\d:",
                   re.M)


# ---- expected figures, from the CSV files --------------------------------------------------

def parse_int(text: str | None) -> int | None:
    """Spark's try_cast(trim(x) AS INT), for the values the generator writes."""
    s = (text or "").strip(" ")
    return int(s) if re.fullmatch(r"[+-]?\d+", s) else None


def parse_salary(text: str | None) -> float | None:
    """try_cast(regexp_replace(trim(x), '[$,]', '') AS DOUBLE)."""
    s = re.sub(r"[$,]", "", (text or "").strip(" "))
    return float(s) if re.fullmatch(r"[+-]?\d+(\.\d+)?", s) else None


def expected_people(min_age: int, top_n: int = 3) -> dict:
    """The spark-example figures by the notebook's rules: first record of an id wins; a
    valid record has age 14..90 and a positive salary; inner join on the trimmed, upper-case
    department code; then age >= min_age."""
    with open(DATA / "information.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(DATA / "departments.csv", newline="") as f:
        departments = {d["code"]: d for d in csv.DictReader(f)}
    seen: set[int] = set()
    deduped = []
    for r in rows:
        rid = parse_int(r["id"])
        if rid is None or rid in seen:
            continue
        seen.add(rid)
        deduped.append(r)
    valid = []
    for r in deduped:
        age, salary = parse_int(r["age"]), parse_salary(r["salary"])
        if age is not None and 14 <= age <= 90 and salary is not None and salary > 0:
            valid.append((r, age, salary))
    clean = [(r, a, s) for r, a, s in valid
             if (r["department"] or "").strip(" ").upper() in departments]
    adults = [(r, a, s) for r, a, s in clean if a >= min_age]
    cities = {" ".join(w.capitalize() for w in (r["city"] or "").split(" ") if w) or "Unknown"
              for r, _, _ in adults}
    by_dept: dict[str, list[float]] = {}
    for r, _, s in adults:
        name = departments[r["department"].strip(" ").upper()]["department"]
        by_dept.setdefault(name, []).append(s)
    top = 0
    for salaries in by_dept.values():  # rank() <= top_n: 1 + number of higher salaries
        top += sum(1 for s in salaries if 1 + sum(1 for o in salaries if o > s) <= top_n)
    return {
        "raw_rows": len(rows),
        "duplicates_removed": len(rows) - len(deduped),
        "rejected": len(deduped) - len(valid),
        "unknown_department": len(valid) - len(clean),
        "clean_rows": len(clean),
        "filtered_rows": len(adults),
        "departments": len(by_dept),
        "cities": sorted(cities),
        "top_paid_rows": top,
        "headcount": {d: len(v) for d, v in by_dept.items()},
        "avg_salary": {d: sum(v) / len(v) for d, v in by_dept.items()},
    }


def boston_rows() -> int:
    with open(DATA / "boston_housing.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][-1] == "medv" and len(rows[0]) == 14
    return len(rows) - 1


# ---- running the notebooks -----------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(workers=1, cores=2, memory="2g") as c:
        yield c


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("notebook-data")
    for name in ("information.csv", "departments.csv", "boston_housing.csv"):
        shutil.copy(DATA / name, d / name)
    return d


@pytest.fixture
def kernel_env(cluster, data_dir, monkeypatch) -> dict:
    """The driver's environment for the cluster, set in os.environ (papermill and nbclient
    start the kernel with it). Driver ports of their own, so that other kernels on this
    machine do not push this one to another slot."""
    env = cluster.driver_env({})
    env.update(cluster.sparkernel_env(), SPARKERNEL_DATA_DIR=str(data_dir))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def run_nbclient(path: pathlib.Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="sparkernel", timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def run_papermill(path: pathlib.Path, out: pathlib.Path, **parameters) -> nbformat.NotebookNode:
    papermill.execute_notebook(str(path), str(out), kernel_name="sparkernel",
                               parameters=parameters, cwd=str(NOTEBOOKS),
                               execution_timeout=600, progress_bar=False)
    return nbformat.read(out, as_version=4)


def outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def output_text(o: dict) -> str:
    if o["output_type"] == "stream":
        return o["text"]
    if o["output_type"] == "error":
        return "%s: %s\n%s" % (o["ename"], o["evalue"], "\n".join(o["traceback"]))
    return "\n".join(v for k, v in o.get("data", {}).items()
                     if k.startswith("text/") and isinstance(v, str))


def check_clean(nb) -> None:
    """No error output, nothing on stderr, no log4j line, and a PNG."""
    outs = outputs(nb)
    errors = [output_text(o) for o in outs if o["output_type"] == "error"]
    assert not errors, errors
    stderr = [o["text"] for o in outs if o["output_type"] == "stream" and o["name"] == "stderr"]
    assert not stderr, stderr
    for o in outs:
        text = output_text(o)
        assert not LOG4J.search(text), text[:2000]
    assert any("image/png" in o.get("data", {}) for o in outs), "no PNG"


def summary(nb) -> dict:
    found = [line[len("SUMMARY "):] for o in outputs(nb) if o["output_type"] == "stream"
             for line in o["text"].splitlines() if line.startswith("SUMMARY ")]
    assert len(found) == 1, found
    return json.loads(found[0])


def check_people(got: dict, min_age: int, top_n: int = 3) -> None:
    want = expected_people(min_age, top_n)
    for key in ("raw_rows", "duplicates_removed", "rejected", "unknown_department",
                "clean_rows", "filtered_rows", "departments", "top_paid_rows"):
        assert got[key] == want[key], (key, got[key], want[key])
    assert got["parquet_rows"] == want["filtered_rows"]
    assert got["min_age"] == min_age
    assert got["headcount_by_department"] == want["headcount"]
    assert set(got["avg_salary_by_department"]) == set(want["avg_salary"])
    for dept, avg in want["avg_salary"].items():
        assert got["avg_salary_by_department"][dept] == pytest.approx(avg, abs=0.006), dept


# ---- the tests -----------------------------------------------------------------------------

def test_spark_example_with_nbclient(kernel_env, data_dir):
    nb = run_nbclient(SPARK_EXAMPLE)
    check_clean(nb)
    got = summary(nb)
    check_people(got, min_age=18)
    # The figures hold real work: dirt was found, young people were filtered out.
    assert got["duplicates_removed"] > 0 and got["rejected"] > 0
    assert got["unknown_department"] > 0 and got["filtered_rows"] < got["clean_rows"]
    assert got["raw_rows"] >= 10000
    outs = outputs(nb)
    # %%sql rendered HTML tables (one row per city; hires per year).
    sql_cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%sql")]
    assert len(sql_cells) >= 1
    for c in sql_cells:
        tables = [o for o in c.outputs if "<table>" in o.get("data", {}).get("text/html", "")]
        assert tables, c.source
    # One row per normalised city ("  BERLIN" and "berlin " are Berlin; blank is Unknown).
    city_table = next(o for o in sql_cells[0].outputs if "<table>" in o.get("data", {}).get(
        "text/html", ""))["data"]["text/plain"].splitlines()
    assert city_table[0].split("|")[0].strip() == "city"
    cities = [line.split("|")[0].strip() for line in city_table[2:-1]]
    assert sorted(cities) == expected_people(18)["cities"]
    assert "Unknown" in cities and "Berlin" in cities
    # The live progress of at least one Spark job, in its final state.
    progress = [o for o in outs if "[Spark job" in o.get("data", {}).get("text/plain", "")]
    assert progress
    # The Parquet output was written to the data directory, partitioned by division.
    parquet = data_dir / "output" / "people_clean.parquet"
    assert sorted(p.name for p in parquet.iterdir() if p.is_dir()) == [
        "division=Commercial", "division=Corporate", "division=Technology"]


def test_boston_with_nbclient(kernel_env):
    nb = run_nbclient(BOSTON)
    check_clean(nb)
    got = summary(nb)
    assert got["rows"] == boston_rows() == 506
    assert got["features"] == 13
    assert got["train_fraction"] == 0.8 and got["seed"] == 42
    assert got["train_rows"] + got["test_rows"] == 506
    assert 0.7 * 506 <= got["train_rows"] <= 0.9 * 506
    assert 0.6 <= got["r2"] <= 0.85, got
    assert 3.0 <= got["rmse"] <= 7.0, got
    # The coefficients table names every feature.
    html = [o["data"]["text/html"] for o in outputs(nb) if "coefficient" in
            o.get("data", {}).get("text/html", "")]
    assert html and all(f"<td>{f}</td>" in html[0] for f in ("crim", "rm", "lstat", "b"))


@pytest.mark.long
def test_spark_example_with_papermill(kernel_env, data_dir, tmp_path):
    nb = run_papermill(SPARK_EXAMPLE, tmp_path / "spark-example.ipynb", min_age=35, top_n=2)
    check_clean(nb)
    got = summary(nb)
    check_people(got, min_age=35, top_n=2)
    assert got["filtered_rows"] < expected_people(18)["filtered_rows"]
    # papermill put the injected parameters after the tagged cell
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "min_age = 35" in injected[0].source


@pytest.mark.long
def test_boston_with_papermill(kernel_env, tmp_path):
    nb = run_papermill(BOSTON, tmp_path / "boston.ipynb", train_fraction=0.6, seed=7)
    check_clean(nb)
    got = summary(nb)
    assert got["train_fraction"] == 0.6 and got["seed"] == 7
    assert got["train_rows"] + got["test_rows"] == 506
    assert 0.5 * 506 <= got["train_rows"] <= 0.7 * 506, got
    assert 0.55 <= got["r2"] <= 0.9 and 3.0 <= got["rmse"] <= 7.0, got
