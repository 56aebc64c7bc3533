"""README.md's benchmark tables, made from the benchmark's own JSON.

    python -m benchmarks --backend numpy --repeat 3 --json benchmarks/recorded/cpu.json
    python -m benchmarks --backend cupy --json benchmarks/recorded/gpu.json   # on a GPU
    python -m benchmarks.sklearn_compare --threads 1 --backends numpy,torch \
        --json benchmarks/recorded/sklearn.json
    python -m benchmarks.readme_table            # rewrite README's tables from them
    python -m benchmarks.readme_table --check    # only compare

Each recorded file fills the table between ``<!-- benchmark:NAME -->`` markers in
README.md (NAME: the file's stem), with the machine, the library versions and the
date the run wrote into it. tests/test_benchmark_tables.py holds README to them.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from benchmarks import report as reports
from benchmarks import sklearn_compare
from nnbackend.atomic import atomic_write

HERE = Path(__file__).resolve().parent
RECORDED = HERE / "recorded"
README = HERE.parent / "README.md"
COLUMNS = {
    "torch-manual": "torch by hand",
    "torch-autograd": "torch autograd",
    "gemm": "GEMM only",
    "nnbackend": "nnbackend",
    "nnbackend-eager": "nnbackend eager",  # a compiled run's only
}
LOOP = {"numpy": "NumPy loop", "cupy": "CuPy loop"}
LAUNCHES = {"nnbackend": "nnbackend", "torch-autograd": "torch autograd"}


def recorded() -> dict[str, dict]:
    """Table name -> the benchmark's JSON recorded for it (fit_parts.py's run makes no
    table: the prose under the CPU table reads it)."""
    found = {path.stem: json.loads(path.read_text()) for path in sorted(RECORDED.glob("*.json"))}
    return {name: report for name, report in found.items() if report.get("kind") != "fit-parts"}


def caption(report: dict) -> str:
    """Where and how the figures were measured, in one sentence."""
    machine, versions = report["machine"], report["versions"]
    if machine["gpu"]:  # the host's BLAS does none of a GPU run's work
        device = machine["gpu"]
    else:
        device = _with_kernels(f"{machine['cpu']}, {machine['cores']} cores", versions)
    libraries = ", ".join(_array_libraries(versions))
    options = report["options"]
    command = f"python -m benchmarks --backend {report['backend']} --repeat {options['repeat']}"
    if options.get("compile"):
        compiler = options["compile"]
        command += " --compile" + ("" if compiler is True else f" {compiler}")
    if options.get("skip"):
        command += " --skip " + ",".join(options["skip"])
    if options.get("quiet_wait") not in (None, 30):  # the default on a full run
        command += f" --quiet-wait {options['quiet_wait']:g}"
    command = reports.as_command(report.get("environment", {}), command)
    return (
        f"{device}; {libraries}; "
        f"{options['threads'] or 'default'} CPU threads; "
        f"medians of {options['repeat']}; {report.get('date', 'undated')} (`{command}`):"
    )


def sklearn_caption(report: dict) -> str:
    machine, versions = report["machine"], report["versions"]
    device = f"{machine['cpu']}, {machine['cores']} cores"
    if machine.get("gpu"):
        device += f", {machine['gpu']}"
    libraries = [f"scikit-learn {versions['sklearn']}", *_array_libraries(versions)]
    return (
        f"{_with_kernels(device, versions)}; {', '.join(libraries)}; "
        f"{machine['threads']} CPU thread{'s' if machine['threads'] != 1 else ''}; "
        f"{report['date']} (`{report['command']}`):"
    )


def _array_libraries(versions: dict) -> list[str]:
    """ "NumPy 2.5.2", "CuPy 14.2.0", "torch ...": those the run had."""
    names = (("NumPy", "numpy"), ("CuPy", "cupy"), ("torch", "torch"))
    return [f"{name} {versions[key]}" for name, key in names if versions.get(key)]


def _with_kernels(device: str, versions: dict) -> str:
    """The device, with the BLAS's kernels where the run recorded them."""
    kernels = reports.blas_kernels(versions)
    return device if kernels is None else f"{device} ({kernels})"


def row(result: dict, reference: str, launches: str | None = None, shown=reports.COLUMNS) -> str:
    """``shown``: the implementations in the table's columns, after the loop's seconds."""
    times = result["times"]
    ref = times[reference]["median"]
    mark = "*" if reports.busy(times[reference]) else ""
    cells = [f"{result['workload']}. {result['title']}", f"{ref:.3f} s{mark}"]
    for name in shown:
        median = times.get(name, {}).get("median")
        mark = "*" if reports.busy(times.get(name, {})) else ""
        cells.append("n/a" if median is None else f"{median / ref:.2f}x{mark}")
    if launches is not None:
        counts = [result.get("launches", {}).get(name, {}) for name in LAUNCHES]
        shown = [f"{c['per_step']:g}" if "per_step" in c else "n/a" for c in counts]
        cells.append(" / ".join(shown))
    return "| " + " | ".join(cells) + " |"


def launches_counted(report: dict) -> str | None:
    """What the run counted per step ("aten operators", "kernels"), if it counted."""
    for result in report["results"]:
        for counted in result.get("launches", {}).values():
            if "what" in counted:
                return counted["what"]
    return None


def render(report: dict) -> str:
    """The caption and the table of one benchmark run: seconds for the hand-written
    loop, every other column as a ratio to it (for the scikit-learn comparison, its
    own table)."""
    if report.get("kind") == "sklearn":
        return sklearn_caption(report) + "\n\n" + sklearn_compare.table(report["rows"])
    shown = reports.columns(report)
    head = ["workload", LOOP.get(report["reference"], report["reference"])]
    head += [COLUMNS[name] for name in shown]
    launches = launches_counted(report)
    if launches is not None:
        head.append(f"{launches} per step ({' / '.join(LAUNCHES.values())})")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [row(result, report["reference"], launches, shown) for result in report["results"]]
    if any("*" in line for line in lines[2:]):
        lines.append(
            f"\n\\* other work took more than {reports.BUSY:.0%} of the CPUs during one of "
            "its runs (the JSON has each run's share)"
        )
    return caption(report) + "\n\n" + "\n".join(lines)


def readme_tables(text: str) -> dict[str, str]:
    """Table name -> what README.md shows between its markers."""
    found = re.findall(r"<!-- benchmark:([\w-]+) -->\n(.*?)\n?<!-- /benchmark:\1 -->", text, re.S)
    return dict(found)


def with_tables(text: str, tables: dict[str, str]) -> str:
    for name, table in tables.items():
        pattern = rf"(<!-- benchmark:{name} -->\n).*?\n?(<!-- /benchmark:{name} -->)"
        if not re.search(pattern, text, re.S):
            raise SystemExit(f"error: README.md has no <!-- benchmark:{name} --> markers")
        between = lambda m, t=table: m.group(1) + t + "\n" + m.group(2)  # noqa: E731
        text = re.sub(pattern, between, text, flags=re.S)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only compare README.md")
    args = parser.parse_args(argv)
    tables = {name: render(report) for name, report in recorded().items()}
    text = README.read_text()
    if args.check:
        if {k: v for k, v in readme_tables(text).items() if k in tables} != tables:
            raise SystemExit("README.md does not show benchmarks/recorded/: run without --check")
        print("README.md shows benchmarks/recorded/")
        return
    atomic_write(README, with_tables(text, tables).encode())  # whole or not at all
    print(f"wrote the tables of {', '.join(tables)} into {README}")


if __name__ == "__main__":
    main()
