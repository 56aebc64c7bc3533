"""What the benchmark writes: the machine, library versions, a Markdown table, JSON."""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
from pathlib import Path

from nnbackend.atomic import atomic_write

COLUMNS = ("torch-manual", "torch-autograd", "gemm", "nnbackend")
EAGER = "nnbackend-eager"  # a compiled run's fit without the capture
SKIPPABLE = ("torch-manual", "torch-autograd", "gemm")  # --skip: to spare a GPU's time
NOISY = 1.25  # runs whose slowest is this much slower than the fastest get a note
BUSY = 0.05  # a note where other work took more than this share of the CPUs during a run


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name(ctx) -> str | None:
    if not ctx.gpu:
        return None
    if ctx.torch_device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    props = ctx.xp.cuda.runtime.getDeviceProperties(ctx.xp.cuda.Device().id)
    return props["name"].decode()


def machine(ctx, threads: int) -> dict:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "gpu": gpu_name(ctx),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


#: Environment variables that change what the figures measure, recorded with them.
ENVIRONMENT = ("OPENBLAS_CORETYPE",)


def environment() -> dict:
    """Those of ENVIRONMENT set for this run (e.g. OpenBLAS's kernels chosen by hand)."""
    return {name: os.environ[name] for name in ENVIRONMENT if name in os.environ}


def as_command(env: dict, line: str) -> str:
    """``line`` as a shell command run with ``env`` set."""
    return " ".join([*(f"{name}={value}" for name, value in env.items()), line])


def blas_kernels(versions: dict) -> str | None:
    """e.g. "OpenBLAS Haswell kernels": what the run's first OpenBLAS chose, if recorded."""
    for pool in versions.get("threadpools") or []:
        if pool.get("internal_api") == "openblas" and pool.get("architecture"):
            return f"OpenBLAS {pool['architecture']} kernels"
    return None


def versions() -> dict:
    found = {}
    for name in (
        "numpy",
        "torch",
        "cupy",
        "array_api_strict",
        "array_api_compat",
        "nnbackend",
        "sklearn",
        "threadpoolctl",
    ):
        try:
            found[name] = importlib.import_module(name).__version__
        except Exception:
            found[name] = None
    try:
        from threadpoolctl import threadpool_info

        found["threadpools"] = [
            {
                k: pool.get(k)
                for k in ("user_api", "internal_api", "version", "num_threads", "architecture")
            }
            for pool in threadpool_info()
        ]
    except ImportError:
        pass
    return found


def commit(root: Path | None = None) -> str | None:
    """The checkout's git commit (with "+changes" where the code differs from it: the
    library's and the benchmark's, not the recorded JSON or README a run rewrites), so
    that a figure can be tied to the code that made it; None outside a checkout."""
    root = root or Path(__file__).resolve().parent.parent
    status = ["git", "status", "--porcelain", "--untracked-files=no", "--", "nnbackend",
              "benchmarks/*.py"]  # fmt: skip
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root,
                              capture_output=True, text=True, timeout=10, check=True)  # fmt: skip
        dirty = subprocess.run(status, cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def cell(times: dict, name: str, ref_seconds: float | None) -> str:
    entry = times[name]
    if entry["median"] is None:
        return "n/a" if (entry.get("status") or "").startswith("n/a") else "error"
    mark = "*" if busy(entry) else ""
    if not ref_seconds:
        return f"{entry['median']:.3f} s{mark}"
    return f"{entry['median'] / ref_seconds:.2f}x ({entry['median']:.3f} s){mark}"


def busy(entry: dict) -> bool:
    """Whether other work took a noticeable share of the CPUs during any of its runs."""
    return any(s is not None and s > BUSY for s in entry.get("others_share", []))


def columns(report: dict) -> tuple[str, ...]:
    """The implementations a run's table shows beside its reference loop."""
    eager = any(EAGER in r["times"] for r in report["results"])
    return (*COLUMNS, EAGER) if eager else COLUMNS


def table(report: dict) -> str:
    ref, shown = report["reference"], columns(report)
    head = ["#", "workload", f"{ref} (s)", *shown, "nnbackend/gemm"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in report["results"]:
        times = result["times"]
        ref_s = times[ref]["median"]
        nb, floor = times["nnbackend"]["median"], times["gemm"]["median"]
        row = [
            str(result["workload"]),
            result["title"],
            f"{ref_s:.3f}{'*' if busy(times[ref]) else ''}" if ref_s else cell(times, ref, None),
            *(cell(times, name, ref_s) if name in times else "n/a" for name in shown),
            f"{nb / floor:.2f}x" if nb and floor else "n/a",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def notes(report: dict) -> str:
    lines = [
        f"Ratios are time / {report['reference']} time in the same run (below 1 = faster);"
        f" medians of {report['options']['repeat']} runs. gemm = the matrix products"
        f" alone, measured with {report['gemm_library']}. * = other work took more than"
        f" {BUSY:.0%} of the CPUs during some of its runs (see below)."
    ]
    for result in report["results"]:
        lines.append(f"- workload {result['workload']}: {result['data']}, {result['steps']} steps")
        for name, entry in result["times"].items():
            if entry.get("status"):
                lines.append(f"  - {name}: {entry['status']}")
            runs = entry["runs"]
            if len(runs) > 1 and max(runs) > NOISY * min(runs):
                lines.append(f"  - {name}: noisy, runs from {min(runs):.3f} to {max(runs):.3f} s")
            shares = [s for s in entry.get("others_share", []) if s is not None]
            if shares and max(shares) > BUSY:
                lines.append(
                    f"  - {name}: other work took up to {max(shares):.0%} of the CPUs"
                    " during its runs"
                )
        transfers = result.get("host_transfers", {})
        if "count" in transfers:
            lines.append(
                f"  - nnbackend host transfers: {transfers['count']} in {transfers['steps']} steps"
                f" ({transfers['count'] / transfers['steps']:.3f} per step)"
            )
        for name, launched in result.get("launches", {}).items():
            if "per_step" in launched:
                views = launched.get("views_per_step")
                lines.append(
                    f"  - {name}: {launched['per_step']:.1f} {launched['what']} per step"
                    + (f", and {views:.1f} views" if views else "")
                    + " (torch profiler)"
                )
        for name, peak in result.get("peak_memory", {}).items():
            if "bytes" in peak:
                lines.append(
                    f"  - peak memory {name}: {peak['bytes'] / 2**20:.1f} MiB ({peak['method']})"
                )
            else:
                lines.append(f"  - peak memory {name}: {peak['status']}")
    return "\n".join(lines)


def merged(earlier: dict, report: dict) -> dict:
    """``report`` with the workloads of ``earlier`` (a recorded run with the same settings,
    on the same machine and library versions) that it did not run itself: a long set
    can be recorded in parts, or one noisy workload run again. Each row's ratios stay
    those of its own run; the date becomes the newest."""
    same = ("backend", "reference", "machine")
    settings = ("repeat", "threads", "quick", "compile", "skip")  # the caption's command
    differ = [key for key in same if earlier.get(key) != report[key]]
    if earlier.get("environment", {}) != report.get("environment", {}):
        differ.append("environment")
    if _libraries(earlier["versions"]) != _libraries(report["versions"]):
        differ.append("versions")
    differ += [key for key in settings if earlier["options"].get(key) != report["options"].get(key)]
    if differ:
        raise ValueError(
            f"cannot add to a run that differs in {', '.join(differ)}: give the same "
            "--backend, --repeat, --threads, --quick, --compile and --skip, on the same "
            "machine "
            f"(with the same {', '.join(ENVIRONMENT)})"
        )
    ran = {r["workload"] for r in report["results"]}
    results = [r for r in earlier["results"] if r["workload"] not in ran] + report["results"]
    results.sort(key=lambda r: r["workload"])
    options = {**report["options"], "workloads": [r["workload"] for r in results]}
    date = max(earlier.get("date", ""), report["date"])
    return {**report, "date": date, "options": options, "results": results}


def _libraries(versions: dict) -> dict:
    """The libraries' versions, without the thread pools (which of those a process has
    loaded depends on what it ran)."""
    return {name: v for name, v in versions.items() if name != "threadpools"}


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(report, indent=1) + "\n").encode())  # whole or not at all
