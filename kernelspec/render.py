"""Writes a ready kernelspec: kernel.json with absolute paths, and the logos.

Used by `make` (build tree) and `make install` (installed tree). The Python version goes
into argv so kernel_info can name it before the executor has started."""
import argparse
import json
import pathlib
import shutil
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
# kernel.json is readable by every local user (0644): no setting that holds a secret.
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "CREDENTIAL")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--pythonpath", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--interrupt-mode", default="message", choices=["message", "signal"])
    ap.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                    help="a deployment default, e.g. MASTER_URL=spark://master:7077 or "
                         "DRIVER_PORT=7078; written as env SPARKERNEL_SPEC_<NAME>, which the "
                         "kernel reads below the environment (see README, Spark settings)")
    args = ap.parse_args()
    version = subprocess.run(
        [args.python, "-c", "import platform; print(platform.python_version())"],
        check=True, capture_output=True, text=True).stdout.strip()
    text = (HERE / "kernel.json.in").read_text()
    for key, value in {"@BIN@": args.bin, "@PYTHON@": args.python,
                       "@PYTHONPATH@": args.pythonpath, "@PYTHON_VERSION@": version}.items():
        text = text.replace(key, value)
    spec = json.loads(text)
    spec["interrupt_mode"] = args.interrupt_mode
    for item in args.setting:
        name, _, value = item.partition("=")
        if any(w in item.upper() for w in SECRET_WORDS):
            ap.error(f"--setting {name}=...: a secret would be written into kernel.json, which "
                     "every local user can read; set it in the environment of the Jupyter "
                     "server instead (SPARK_AUTHENTICATE_SECRET; see docs/SECURITY.md)")
        spec["env"][f"SPARKERNEL_SPEC_{name.upper()}"] = value
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
    for logo in ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg"):
        shutil.copyfile(HERE / logo, out / logo)


if __name__ == "__main__":
    main()
