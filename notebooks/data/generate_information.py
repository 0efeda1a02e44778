#!/usr/bin/env python3
"""Writes information.csv (people records for notebooks/spark-example.ipynb) and
departments.csv (the lookup it joins with), deterministically: the same bytes on every
run and every machine (a seeded random.Random, the standard library only).

    python notebooks/data/generate_information.py [--out DIR] [--rows N] [--seed S]

information.csv: id, name, age, city, department, salary, hire_date; 12,000 people plus
a few re-exported duplicates, with the dirt a real export has (the notebook cleans it):
  - id         duplicate ids: a later row repeats an earlier id (first occurrence wins)
  - name       blank now and then; some "Last, Jr." names quoted because of the comma
  - age        blank, "unknown", "n/a", negative, impossible (150, 999), padded with
               spaces; 16 and 17 year old interns are valid but below the usual min_age
  - city       stray spaces and random case ("  berlin", "PARIS "); blank
  - department codes in lower case or padded; blank; "TMP", which the lookup lacks
  - salary     "$72,000" or "72000.00" forms; blank; "n/a"; negative
  - hire_date  ISO dates, but also blank, "N/A", impossible dates (2019-02-30,
               2021-13-01) and day-first dates (13/05/2016)
"""
from __future__ import annotations

import argparse
import csv
import datetime
import pathlib
import random

HERE = pathlib.Path(__file__).resolve().parent

# code, name, division, floor
DEPARTMENTS = [
    ("ENG", "Engineering", "Technology", 4),
    ("DAT", "Data Science", "Technology", 4),
    ("OPS", "Operations", "Technology", 3),
    ("SAL", "Sales", "Commercial", 2),
    ("MKT", "Marketing", "Commercial", 2),
    ("SUP", "Customer Support", "Commercial", 1),
    ("FIN", "Finance", "Corporate", 5),
    ("HR", "Human Resources", "Corporate", 5),
    ("LEG", "Legal", "Corporate", 5),
]
# relative size, base salary
DEPT_PROFILE = {
    "ENG": (24, 78000), "DAT": (8, 82000), "OPS": (10, 61000), "SAL": (18, 56000),
    "MKT": (9, 58000), "SUP": (14, 42000), "FIN": (7, 66000), "HR": (5, 52000),
    "LEG": (5, 88000),
}
CITIES = [("Berlin", 14), ("London", 13), ("Paris", 10), ("Madrid", 8), ("Amsterdam", 8),
          ("New York", 12), ("San Francisco", 8), ("Toronto", 7), ("Sydney", 5),
          ("Tokyo", 6), ("Sao Paulo", 5), ("Hamburg", 4)]
FIRST = ("Anna Ben Carla David Emma Felix Grace Hugo Ines Jonas Kira Liam Maria Noah Olivia "
         "Paul Quinn Rosa Samuel Tara Umar Vera William Xenia Yusuf Zoe Aiko Bruno Chloe "
         "Diego Elena Farid Gita Hannah Ivan Julia Kenji Lena Mateo Nadia Oscar Priya Rafael "
         "Sofia Tomas Ursula Victor Wen Yara").split()
LAST = ("Schmidt Smith Martin Garcia Jansen Tanaka Silva Brown Dubois Rossi Novak Kowalski "
        "Nguyen Mueller Jones Lopez Weber Fischer Taylor Moreau Romero Visser Sato Costa "
        "Wilson Laurent Fernandez Bakker Suzuki Pereira Murphy Becker Wagner Evans Roux "
        "Navarro Dekker Kato Oliveira Walsh Hoffmann Richter Clarke Lefebvre Ortega "
        "Mulder Ito Santos O'Brien").split()
BAD_DATES = ["2019-02-30", "2021-13-01", "13/05/2016", "N/A", "2018-06-31", "31.12.2017"]


def messy_case(rng: random.Random, text: str) -> str:
    return rng.choice([text.lower(), text.upper(), text.swapcase()])


def person(rng: random.Random, pid: int) -> list[str]:
    name = "%s %s" % (rng.choice(FIRST), rng.choice(LAST))
    r = rng.random()
    if r < 0.003:
        name = ""
    elif r < 0.006:
        name += ", Jr."

    code = rng.choices(list(DEPT_PROFILE), weights=[w for w, _ in DEPT_PROFILE.values()])[0]
    intern = rng.random() < 0.025
    age_n = rng.randint(16, 17) if intern else min(66, max(18, int(rng.gauss(39, 10))))
    r = rng.random()
    if r < 0.010:
        age = ""
    elif r < 0.018:
        age = rng.choice(["unknown", "n/a"])
    elif r < 0.022:
        age = str(-age_n)
    elif r < 0.025:
        age = rng.choice(["150", "999"])
    elif r < 0.040:
        age = rng.choice([" %d" % age_n, "%d " % age_n])
    else:
        age = str(age_n)

    city = rng.choices([c for c, _ in CITIES], weights=[w for _, w in CITIES])[0]
    r = rng.random()
    if r < 0.010:
        city = ""
    elif r < 0.060:
        city = messy_case(rng, city)
    elif r < 0.100:
        city = rng.choice(["  %s", "%s ", " %s  "]) % city
    elif r < 0.120:
        city = rng.choice(["  %s", "%s  "]) % messy_case(rng, city)

    r = rng.random()
    if r < 0.003:
        dept = ""
    elif r < 0.009:
        dept = "TMP"
    elif r < 0.050:
        dept = rng.choice([code.lower(), " %s" % code, "%s " % code.lower()])
    else:
        dept = code

    base = DEPT_PROFILE[code][1]
    pay = base * (0.45 if intern else 1.0) * (1 + 0.012 * (age_n - 30)) * rng.uniform(0.8, 1.25)
    pay = int(round(pay, -2))
    r = rng.random()
    if r < 0.015:
        salary = ""
    elif r < 0.018:
        salary = "n/a"
    elif r < 0.020:
        salary = str(-pay)
    elif r < 0.080:
        salary = "${:,}".format(pay)
    elif r < 0.110:
        salary = "%d.00" % pay
    else:
        salary = str(pay)

    start = datetime.date(2005, 1, 1)
    hired = start + datetime.timedelta(days=rng.randrange((datetime.date(2025, 12, 31)
                                                           - start).days))
    r = rng.random()
    if r < 0.005:
        hire = ""
    elif r < 0.015:
        hire = rng.choice(BAD_DATES)
    else:
        hire = hired.isoformat()
    return [str(pid), name, age, city, dept, salary, hire]


def generate(rows: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    ids = rng.sample(range(10000, 99999), rows)
    out = [person(rng, pid) for pid in ids]
    # Re-exported records: about 1% of the ids appear again later in the file, as a copy
    # with fresh dirt or with an updated salary. The first occurrence is the valid one.
    for _ in range(rows // 100):
        src = rng.randrange(len(out) // 2)
        dup = list(out[src])
        if rng.random() < 0.5:
            dup[3] = " %s " % messy_case(rng, dup[3]) if dup[3] else dup[3]
        else:
            dup[5] = str(rng.randrange(30000, 120000, 100))
        out.insert(rng.randrange(src + 1, len(out) + 1), dup)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=HERE)
    ap.add_argument("--rows", type=int, default=12000, help="distinct people")
    ap.add_argument("--seed", type=int, default=20260105)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "information.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "name", "age", "city", "department", "salary", "hire_date"])
        w.writerows(generate(args.rows, args.seed))
    with open(args.out / "departments.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["code", "department", "division", "floor"])
        w.writerows(DEPARTMENTS)


if __name__ == "__main__":
    main()
