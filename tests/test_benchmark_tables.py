"""README.md's benchmark tables show what benchmarks/recorded/ holds: the figures come
from the benchmark's own JSON (benchmarks/readme_table.py), never from a hand."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest

from benchmarks import readme_table
from benchmarks.report import EAGER, merged
from nnbackend.backend.blas import describe_blas

RECORDED = readme_table.recorded()


def test_a_cpu_run_is_recorded_with_its_machine_and_date():
    report = RECORDED["cpu"]
    assert report["backend"] == "numpy" and report["date"]
    assert {r["workload"] for r in report["results"]} >= {1, 2, 3, 4, 5}


def test_the_readme_states_the_recorded_cpu_ratios_and_workload_2s_parts():
    """The prose under the CPU table: which workloads meet their aim (1.10x the loop on
    workload 1, 1.0x on the others) from cpu.json, and workload 2's parts as
    benchmarks/fit_parts.py recorded them."""
    ratio = {}
    for r in RECORDED["cpu"]["results"]:
        times = r["times"]
        ratio[r["workload"]] = times["nnbackend"]["median"] / times["numpy"]["median"]
    met = [n for n, value in sorted(ratio.items()) if value <= (1.10 if n == 1 else 1.0)]
    near = [n for n in sorted(ratio) if n not in met and n != 2 and ratio[n] <= 1.05]
    text = " ".join(readme_table.README.read_text().split())
    assert f"Workloads {_spoken(met)} are there in this run" in text
    near_ratios = _spoken([f"{ratio[n]:.2f}x" for n in near])
    slower = _spoken([str(_slower_pairs(n)) for n in near])
    assert (
        f"{_plural(near)} just above it ({near_ratios}; nnbackend took longer than the loop "
        f"in {slower} of their {RECORDED['cpu']['options']['repeat']} paired runs)"
    ) in text
    assert f"workload 2 is at {ratio[2]:.2f}x" in text
    parts = json.loads((readme_table.RECORDED / "fit-parts.json").read_text())
    ms = {name: f"{seconds * 1e3:.1f} ms" for name, seconds in parts["median"].items()}
    assert parts["workload"] == 2 and parts["threads"] == RECORDED["cpu"]["options"]["threads"]
    assert (
        f"the loop took {ms['NumPy loop']}, `fit` {ms['fit']}, `fit` with `metrics=[]` "
        f"{ms['fit, metrics=[]']}, and the check alone {ms['check of X alone']}"
    ) in text


def _slower_pairs(workload: int) -> int:
    """In how many of the recorded CPU run's interleaved pairs nnbackend took longer."""
    [times] = [r["times"] for r in RECORDED["cpu"]["results"] if r["workload"] == workload]
    pairs = zip(times["nnbackend"]["runs"], times["numpy"]["runs"], strict=True)
    return sum(mine > loop for mine, loop in pairs)


def test_a_scikit_learn_comparison_is_recorded_with_both_estimators():
    report = RECORDED["sklearn"]
    assert report["kind"] == "sklearn" and report["date"] and report["command"]
    by_task = {}
    for r in report["rows"]:
        by_task.setdefault(r["task"], set()).add(r["implementation"])
    assert {t.split(",")[0] for t in by_task} >= {"digits", "MNIST 784-256-10"}
    for implementations in by_task.values():
        assert {"scikit-learn", "nnbackend (numpy)"} <= implementations


def _speed_ups(report: dict, implementation: str, task: str = "", dtype: str = "") -> list:
    """scikit-learn's time over ``implementation``'s, rounded as the table shows them."""
    reference = {
        (r["task"], r["dtype"]): r["fit_seconds"]
        for r in report["rows"]
        if r["implementation"] == "scikit-learn"
    }
    return sorted(
        round(reference[r["task"], r["dtype"]] / r["fit_seconds"], 2)
        for r in report["rows"]
        if r["implementation"] == implementation
        and r["task"].startswith(task)
        and r["dtype"].startswith(dtype)
    )


def test_the_readme_states_the_recorded_scikit_learn_speed_ups():
    text = " ".join(readme_table.README.read_text().split())
    mnist = _speed_ups(RECORDED["sklearn"], "nnbackend (numpy)", "MNIST")
    assert f"is {mnist[0]:.2f}-{mnist[-1]:.2f}x on MNIST" in text
    step = {  # ms a step: a fit's seconds over its 10 epochs of 300 batches
        row["implementation"]: row["fit_seconds"] / 3000 * 1000
        for row in RECORDED["sklearn"]["rows"]
        if row["task"].startswith("MNIST") and row["dtype"] == "float32"
    }
    mine, theirs = step["nnbackend (numpy)"], step["scikit-learn"]
    assert f"takes nnbackend {mine:.1f} ms and scikit-learn {theirs:.1f}," in text
    torch = _speed_ups(RECORDED["sklearn"], "nnbackend (torch)")
    assert f"the same estimator is {torch[0]:.2f}-{torch[-1]:.2f}x as fast as" in text
    avx512 = RECORDED["sklearn-avx512"]  # the same run with OpenBLAS's AVX-512 kernels
    [f32] = _speed_ups(avx512, "nnbackend (numpy)", "MNIST", "float32")
    [f64] = _speed_ups(avx512, "nnbackend (numpy)", "MNIST", "float64")
    assert f"There MNIST in float32 trains {f32:.2f}x as fast as scikit-learn, and " in text
    assert f"float64 {f64:.2f}x" in text


def test_the_readme_states_the_recorded_gpu_scikit_learn_speed_ups():
    text = " ".join(readme_table.README.read_text().split())
    report = RECORDED["sklearn-gpu"]
    gpu = _speed_ups(report, "nnbackend (cupy)", "MNIST")
    gpu += _speed_ups(report, "nnbackend (torch:cuda)", "MNIST")
    assert f"trains {min(gpu):.2f}-{max(gpu):.2f}x as fast as scikit-learn on 16 CPU" in text
    assert report["machine"]["threads"] == 16
    [numpy] = set(_speed_ups(report, "nnbackend (numpy)", "MNIST"))
    assert f"and on NumPy at those threads {numpy:.2f}x" in text
    digits = _speed_ups(report, "nnbackend (cupy)", "digits")
    digits += _speed_ups(report, "nnbackend (torch:cuda)", "digits")
    assert f"they run at {min(digits):.2f}-{max(digits):.2f}x scikit-learn's speed" in text


def _median(result: dict, name: str) -> float:
    return result["times"][name]["median"]


def test_the_readme_states_the_recorded_cuda_graph_and_cupy_figures():
    text = " ".join(readme_table.README.read_text().split())
    graph = RECORDED["torch-cuda-graph"]["results"] + RECORDED["torch-cuda-graph-moons"]["results"]
    eager = sorted(_median(r, "nnbackend") / _median(r, "nnbackend-eager") for r in graph)
    autograd = sorted(_median(r, "nnbackend") / _median(r, "torch-autograd") for r in graph)
    assert (
        f"a fit takes {eager[0]:.2f}-{eager[-1]:.2f}x the eager fit's time, and "
        f"{autograd[0]:.2f}-{autograd[-1]:.2f}x torch autograd's"
    ) in text
    assert f"nets took {eager[0]:.2f}-{eager[-1]:.2f}x the time of eager steps" in text
    [moons] = RECORDED["torch-cuda-graph-moons"]["results"]
    [cpu_moons] = [r for r in RECORDED["cpu"]["results"] if r["workload"] == 1]
    assert (
        f"the CPU table's NumPy loop takes {_median(cpu_moons, 'numpy'):.2f} s for them, "
        f"against the graph's {_median(moons, 'nnbackend'):.2f} s"
    ) in text
    [inductor] = RECORDED["torch-cuda-inductor"]["results"]
    over = _median(inductor, "nnbackend") / _median(inductor, "nnbackend-eager")
    assert f"took {over:.2f}x the eager time on workload {inductor['workload']}" in text
    cupy = {r["workload"]: r for r in RECORDED["gpu"]["results"]}
    for workload, words in ((4, "workload 4 {:.2f}x ({:g} kernels a step against {:g})"),
                            (6, "the conv net {:.2f}x ({:g} against {:g})")):  # fmt: skip
        r = cupy[workload]
        counts = [r["launches"][name]["per_step"] for name in ("nnbackend", "torch-autograd")]
        ratio = _median(r, "nnbackend") / _median(r, "torch-autograd")
        assert words.format(ratio, *counts) in text


def test_a_speed_up_is_scikit_learns_time_over_the_estimators():
    rows = [
        {"task": "t", "implementation": name, "dtype": "float32", "accuracy": 0.9,
         "fit_seconds": seconds}
        for name, seconds in (("scikit-learn", 3.0), ("nnbackend (numpy)", 2.0))
    ]  # fmt: skip
    table = readme_table.sklearn_compare.table(rows)
    assert table.splitlines()[-1] == "| t | nnbackend (numpy) | float32 | 0.9000 | 2.00 s | 1.50x |"


def test_the_readme_shows_each_recorded_run():
    shown = readme_table.readme_tables(readme_table.README.read_text())
    for name, report in RECORDED.items():
        assert shown.get(name) == readme_table.render(report), (
            f"README.md's {name} benchmark table is not benchmarks/recorded/{name}.json: "
            "run python -m benchmarks.readme_table"
        )


def test_a_ratio_is_the_time_over_the_loops_in_the_same_run():
    report = {
        "reference": "numpy",
        "results": [
            {
                "workload": 9,
                "title": "t",
                "times": {
                    "numpy": {"median": 2.0},
                    "torch-manual": {"median": 3.0},
                    "torch-autograd": {"median": None},
                    "gemm": {"median": 0.5},
                    "nnbackend": {"median": 2.2},
                },
            }
        ],
    }
    assert readme_table.row(report["results"][0], "numpy") == (
        "| 9. t | 2.000 s | 1.50x | n/a | 0.25x | 1.10x |"
    )


def test_the_readme_states_the_recorded_conv_net_peak_memory():
    conv = next(r for r in RECORDED["cpu"]["results"] if r["workload"] == 6)
    mib = {k: f"{v['bytes'] / 2**20:.1f} MiB" for k, v in conv["peak_memory"].items()}
    text = " ".join(readme_table.README.read_text().split())
    assert f"({mib['nnbackend']} against {mib['numpy']}, tracemalloc)" in text


@pytest.mark.slow
def test_a_quick_scikit_learn_comparison_writes_a_run_the_readme_can_show(tmp_path):
    """The comparison's own JSON (kind, date, command, versions, rows) renders as a table;
    run in a child process, since it sets the thread counts of the process it runs in."""
    out = tmp_path / "sklearn.json"
    command = [sys.executable, "-m", "benchmarks.sklearn_compare", "--quick", "--repeat", "1",
               "--threads", "1", "--json", str(out)]  # fmt: skip
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"}  # recorded: it shapes the figures
    subprocess.run(command, check=True, capture_output=True, cwd=readme_table.HERE.parent, env=env)
    report = json.loads(out.read_text())
    assert report["command"].startswith(
        "OPENBLAS_CORETYPE=Haswell python -m benchmarks.sklearn_compare --threads 1"
    )
    table = readme_table.render(report)
    if "openblas" in describe_blas():
        assert "cores (OpenBLAS Haswell kernels);" in table.splitlines()[0]
    assert "| digits, 5-fold | nnbackend (numpy) | float64 |" in table
    assert report["date"] in table.splitlines()[0]


@pytest.mark.slow
def test_fit_parts_times_the_loop_the_fit_and_its_check_apart(tmp_path):
    """One run of each part on the moons workload, in a child process (it sets the
    thread counts of the process it runs in)."""
    out = tmp_path / "parts.json"
    command = [sys.executable, "-m", "benchmarks.fit_parts", "--workload", "1", "--repeat",
               "1", "--threads", "1", "--json", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=readme_table.HERE.parent)
    parts = json.loads(out.read_text())
    assert parts["command"].endswith("fit_parts --workload 1 --threads 1 --repeat 1")
    assert list(parts["median"]) == ["NumPy loop", "fit", "fit, metrics=[]", "check of X alone"]
    assert all(len(runs) == 1 and runs[0] > 0 for runs in parts["seconds"].values())


def _run(date: str, workloads: dict[int, float], repeat: int = 3) -> dict:
    """A recorded run in miniature: workload number -> nnbackend's median."""
    return {
        "backend": "cupy", "reference": "cupy", "date": date,
        "machine": {"gpu": "H100"}, "versions": {"cupy": "14"},
        "options": {"workloads": list(workloads), "repeat": repeat, "threads": 16,
                    "quick": False, "compile": False},
        "results": [{"workload": n, "times": {"nnbackend": {"median": t}}}
                    for n, t in workloads.items()],
    }  # fmt: skip


def test_a_run_added_to_a_recorded_one_replaces_only_its_own_workloads():
    earlier = _run("2026-01-01", {1: 9.0, 2: 2.0, 4: 4.0})
    both = merged(earlier, _run("2026-01-02", {2: 2.5, 6: 6.0}))
    medians = {r["workload"]: r["times"]["nnbackend"]["median"] for r in both["results"]}
    assert medians == {1: 9.0, 2: 2.5, 4: 4.0, 6: 6.0}
    assert both["options"]["workloads"] == [1, 2, 4, 6]
    assert both["date"] == "2026-01-02"


def test_a_run_with_other_settings_is_not_added():
    with pytest.raises(ValueError, match="differs in repeat"):
        merged(_run("2026-01-01", {1: 9.0}), _run("2026-01-02", {2: 2.0}, repeat=5))
    other_gpu = {**_run("2026-01-02", {2: 2.0}), "machine": {"gpu": "H200"}}
    with pytest.raises(ValueError, match="differs in machine"):
        merged(_run("2026-01-01", {1: 9.0}), other_gpu)
    other_kernels = {**_run("2026-01-02", {2: 2.0}), "environment": {"OPENBLAS_CORETYPE": "Zen"}}
    with pytest.raises(ValueError, match="differs in environment"):
        merged(_run("2026-01-01", {1: 9.0}), other_kernels)
    skipping = _run("2026-01-02", {2: 2.0})
    skipping["options"]["skip"] = ["gemm"]  # the caption's one command would not be true
    with pytest.raises(ValueError, match="differs in skip"):
        merged(_run("2026-01-01", {1: 9.0}), skipping)


def test_a_run_shows_the_blas_kernels_and_the_environment_it_ran_under():
    run = {
        **_run("2026-01-02", {2: 2.0}),
        "machine": {"cpu": "AMD EPYC", "cores": 2, "gpu": None},
        "environment": {"OPENBLAS_CORETYPE": "SkylakeX"},
        "versions": {"numpy": "2.4.6", "threadpools": [
            {"internal_api": "openmp", "architecture": None},
            {"internal_api": "openblas", "architecture": "SkylakeX"}]},
    }  # fmt: skip
    assert readme_table.caption(run) == (
        "AMD EPYC, 2 cores (OpenBLAS SkylakeX kernels); NumPy 2.4.6; 16 CPU threads; "
        "medians of 3; 2026-01-02 "
        "(`OPENBLAS_CORETYPE=SkylakeX python -m benchmarks --backend cupy --repeat 3`):"
    )


def test_a_run_that_counted_launches_shows_them_beside_the_ratios():
    result = {
        "workload": 2, "title": "t",
        "times": {name: {"median": 1.0} for name in
                  ("numpy", "torch-manual", "torch-autograd", "gemm", "nnbackend")},
        "launches": {"nnbackend": {"per_step": 34.0, "what": "aten operators"},
                     "torch-autograd": {"per_step": 33.0, "what": "aten operators"}},
    }  # fmt: skip
    report = {
        "reference": "numpy", "backend": "torch", "date": "2026-01-01", "results": [result],
        "machine": {"cpu": "c", "cores": 2, "gpu": None}, "versions": {"torch": "2"},
        "options": {"repeat": 3, "threads": 2, "compile": True},
    }  # fmt: skip
    caption, _, header, _, line = readme_table.render(report).splitlines()
    assert caption.endswith("(`python -m benchmarks --backend torch --repeat 3 --compile`):")
    assert header.endswith("| aten operators per step (nnbackend / torch autograd) |")
    assert line.endswith("| 1.00x | 34 / 33 |")


def test_a_compiled_run_shows_the_eager_fit_of_the_same_run_beside_it():
    times = {
        "numpy": 2.0,
        "torch-manual": None,
        "torch-autograd": 1.0,
        "gemm": None,
        "nnbackend": 0.5,
        "nnbackend-eager": 0.8,
    }
    result = {
        "workload": 2,
        "title": "t",
        "times": {name: {"median": t} for name, t in times.items()},
    }
    report = {
        "reference": "numpy", "backend": "torch:cuda", "date": "2026-01-01",
        "results": [result], "machine": {"gpu": "H200"}, "versions": {"torch": "2"},
        "options": {"repeat": 3, "threads": 16, "compile": "cudagraphs",
                    "skip": ["torch-manual", "gemm"]},
    }  # fmt: skip
    caption, _, header, _, line = readme_table.render(report).splitlines()
    assert caption.endswith("--compile cudagraphs --skip torch-manual,gemm`):")
    assert header.endswith("| nnbackend | nnbackend eager |")
    assert line == "| 2. t | 2.000 s | n/a | 0.50x | n/a | 0.25x | 0.40x |"


def test_a_busy_run_is_marked_in_the_readme_as_in_the_printed_table():
    """The README's tables dropped the * that the printed table gives a run during which
    other work took the CPUs (one of workload 1's runs: 21 s against 3)."""
    times = {"numpy": (2.0, [0.0, 0.0]), "torch-autograd": (1.0, [0.0, 0.42]),
             "nnbackend": (0.5, [0.01, 0.0])}  # fmt: skip
    result = {
        "workload": 1, "title": "t",
        "times": {n: {"median": t, "others_share": s} for n, (t, s) in times.items()},
    }  # fmt: skip
    report = {
        "reference": "numpy", "backend": "numpy", "date": "2026-01-01", "results": [result],
        "machine": {"gpu": None, "cpu": "x", "cores": 2}, "versions": {"numpy": "2"},
        "options": {"repeat": 2, "threads": 2, "quiet_wait": 5, "skip": ["torch-manual", "gemm"]},
    }  # fmt: skip
    caption, _, _, _, line, _, note = readme_table.render(report).splitlines()
    assert caption.endswith("--repeat 2 --skip torch-manual,gemm --quiet-wait 5`):")
    assert line == "| 1. t | 2.000 s | n/a | 0.50x* | n/a | 0.25x |"
    assert note.startswith("\\* other work took more than 5% of the CPUs")


def test_a_run_leaves_out_what_skip_names_and_times_the_eager_fit_when_compiled(monkeypatch):
    """Neither warmed up nor timed: only the loop, torch autograd and both fits run."""
    import numpy as np

    from benchmarks import harness, workloads

    ran = []
    monkeypatch.setattr(harness, "time_once", lambda impl, *a: ran.append(impl) or (1.0, 0.5))
    monkeypatch.setattr(harness, "wait_until_quiet", lambda seconds: None)
    ctx = harness.Context("torch", None, "cpu", False, compile=True, skip=("torch-manual", "gemm"))
    data = workloads.Data(np.zeros((400, 784)), np.zeros(400, dtype=int), [], "zeros")
    times = harness.time_workload(workloads.WORKLOADS[2], data, ctx, 2, quick=True, quiet_wait=0)
    assert sorted(set(ran)) == ["nnbackend", "nnbackend-eager", "ref", "torch-autograd"]
    assert len(ran) == 4 * 3  # a warm-up and two runs each
    assert (
        times["gemm"]["status"]
        == times["torch-manual"]["status"]
        == ("n/a: left out of this run (--skip)")
    )
    assert times["nnbackend-eager"]["runs"] == [1.0, 1.0]


def test_skip_names_what_it_takes():
    from benchmarks import __main__ as bench

    assert bench.parse_args(["--skip", "gemm,torch-manual"]).skip == ["gemm", "torch-manual"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--skip", "nnbackend"])


@pytest.mark.parametrize("wait", ["-1", "nan", "inf", "soon"])
def test_quiet_wait_takes_seconds_of_zero_or_more(wait, capsys):
    from benchmarks import __main__ as bench

    assert bench.parse_args(["--quiet-wait", "2.5"]).quiet_wait == 2.5
    assert bench.parse_args(["--quiet-wait", "0"]).quiet_wait == 0  # never wait
    with pytest.raises(SystemExit):
        bench.parse_args(["--quiet-wait", wait])
    assert f"a number of seconds >= 0, not {wait!r}" in capsys.readouterr().err


def _over_autograd(name: str) -> dict[int, float]:
    """Workload -> nnbackend's time over torch autograd's in the recorded run ``name``."""
    ratio = {}
    for r in RECORDED[name]["results"]:
        times = {impl: t["median"] for impl, t in r["times"].items()}
        ratio[r["workload"]] = times["nnbackend"] / times["torch-autograd"]
    return ratio


def test_the_readme_states_the_recorded_torch_ratios():
    """The prose under the torch tables: nnbackend over torch autograd, from the JSON."""
    eager, compiled = _over_autograd("torch-cpu"), _over_autograd("torch-cpu-compile")
    text = " ".join(readme_table.README.read_text().split())
    low, high = min(eager.values()), max(eager.values())
    assert f"takes between {low:.2f}x and {high:.2f}x its time on every workload" in text
    over_eager = {}  # the compiled fit over the eager one, timed in the same run
    for r in RECORDED["torch-cpu-compile"]["results"]:
        times = r["times"]
        over_eager[r["workload"]] = times["nnbackend"]["median"] / times[EAGER]["median"]
    said = (f"takes {over_eager[1]:.2f}x the time of the same fit run eagerly in the same run "
            f'(the "nnbackend eager" column) on workload 1, {over_eager[2]:.2f}x on workload 2 '
            f"and {over_eager[5]:.2f}x on workload 5, and {compiled[1]:.2f}x, {compiled[2]:.2f}x "
            f"and {compiled[5]:.2f}x torch autograd's")  # fmt: skip
    assert said in text


def _spoken(numbers: list[int]) -> str:
    """[1, 2, 5] -> "1, 2 and 5"."""
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def test_the_readme_states_the_recorded_operator_counts():
    fewer, same, more = [], [], []
    for r in RECORDED["torch-cpu"]["results"]:
        ours, torchs = (r["launches"][impl]["per_step"] for impl in ("nnbackend", "torch-autograd"))
        (fewer if ours < torchs else same if ours == torchs else more).append(r["workload"])
    text = " ".join(readme_table.README.read_text().split())
    clauses = [f"{word} on {_plural(numbers)}" for word, numbers in
               (("more", more), ("the same", same), ("fewer", fewer)) if numbers]  # fmt: skip
    first, *rest = clauses
    word, where = first.split(" on ", 1)
    clauses = [f"{word} computing operators per step than torch autograd on {where}", *rest]
    said = ", ".join(clauses[:-1]) + ", and " + clauses[-1] if len(clauses) > 1 else clauses[0]
    assert said in text
    views = {impl: [r["launches"][impl]["views_per_step"] for r in RECORDED["torch-cpu"]["results"]]
             for impl in ("nnbackend", "torch-autograd")}  # fmt: skip
    ours, torchs = (f"{min(v):.0f}-{max(v):.0f}" for v in views.values())
    assert f"{ours} a step for nnbackend, {torchs} for torch autograd" in text


def _plural(numbers: list[int]) -> str:
    """[6] -> "workload 6"; [1, 6] -> "workloads 1 and 6"."""
    return f"workload{'s' if len(numbers) > 1 else ''} {_spoken(numbers)}"


def test_the_readme_and_the_gpu_guide_state_the_recorded_host_transfers():
    """Transfers in a whole fit, as the benchmark counted them (benchmarks/harness.py):
    workload 2 is one MNIST epoch, workload 1 the 20000 full-batch moons steps."""
    counted = {r["workload"]: r["host_transfers"] for r in RECORDED["cpu"]["results"]}
    mnist, moons = counted[2]["count"], counted[1]["count"]
    readme = " ".join(readme_table.README.read_text().split())
    assert f"{mnist} in a whole MNIST epoch (its log," in readme
    assert f"{moons} in the {counted[1]['steps']} moons steps" in readme
    guide_path = readme_table.HERE.parent / "docs" / "guide" / "gpu.md"
    guide = " ".join(guide_path.read_text().split())
    said = (
        f"counts them (`transfers.count`): {mnist} in a whole MNIST epoch, {moons} in "
        f"{counted[1]['steps']} full"
    )
    assert said in guide


def test_a_fit_transfers_once_per_log(backend):
    """What the prose explains: one transfer per logged epoch (every epochs // 20, and
    the last), none for the checks on NumPy data: 200 epochs log at 0, 10, ..., 190
    and 199."""
    import nnbackend as nb

    X, y = nb.datasets.make_moons(50, noise=0.2, seed=0)
    layers = [nb.layers.Dense(2, 3), "tanh", nb.layers.Dense(3, 2)]
    model = nb.Sequential(layers, seed=0, backend=backend)
    with nb.count_host_transfers() as transfers:
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=200, batch_size=None,
                  verbose=0)  # fmt: skip
    assert transfers.count == 21


def _gpu_seconds() -> dict[int, float]:
    """Workload -> nnbackend's seconds on the GPU, from README's table kept from the H100
    run (the CuPy loop's seconds times nnbackend's ratio, the table's last column)."""
    after_header = readme_table.README.read_text().split("An older run, on an NVIDIA H100")[1]
    after_header = after_header.split("| workload | CuPy loop |")[1]
    seconds = {}
    for line in itertools.takewhile(lambda s: s.startswith("| "), after_header.splitlines()[2:]):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        loop, ratio = float(cells[1].removesuffix(" s")), float(cells[-1].removesuffix("x"))
        seconds[int(cells[0].split(".")[0])] = loop * ratio
    return seconds


def test_the_readme_compares_the_gpu_with_the_cpu_from_both_tables():
    """The CPU over the GPU for nnbackend, workload by workload, as the prose says."""
    cpu = {r["workload"]: r["times"]["nnbackend"]["median"] for r in RECORDED["cpu"]["results"]}
    gpu = _gpu_seconds()
    assert set(gpu) == {1, 2, 4, 5}
    gpu_faster = {n: cpu[n] / gpu[n] for n in gpu}
    said = (
        f"the tutorial-sized nets of workloads 1 and 2 train faster on the CPU "
        f"({1 / gpu_faster[1]:.0f} and {1 / gpu_faster[2]:.0f} times), the cat net of "
        f"workload 5 is {gpu_faster[5]:.1f} times faster on the GPU, and at 784-1000-1000-10 "
        f"the GPU is {gpu_faster[4]:.0f} times faster"
    )
    assert gpu_faster[1] < 1 and gpu_faster[2] < 1 and gpu_faster[5] > 1 and gpu_faster[4] > 1
    assert said in " ".join(readme_table.README.read_text().split())
    guide = " ".join((readme_table.HERE.parent / "docs" / "guide" / "gpu.md").read_text().split())
    assert f"the cat net (12288 inputs) {gpu_faster[5]:.1f} times faster on the GPU" in guide
    assert f"({gpu_faster[4]:.0f} times there;" in guide


def test_a_run_stopped_part_way_keeps_the_workloads_it_finished(tmp_path, monkeypatch, capsys):
    """The JSON is written after every workload: a GPU session that ends during the third
    workload leaves the first two recorded, ready for --add."""
    from benchmarks import __main__ as bench
    from benchmarks import harness

    def run_workload(wl, data, ctx, repeat, quick, quiet_wait=0):
        if wl.number == 4:
            raise KeyboardInterrupt  # the GPU session's end
        return {"workload": wl.number, "title": wl.title, "times": {}}

    monkeypatch.setattr(harness, "run_workload", run_workload)
    monkeypatch.setattr(bench, "set_threads_before_import", lambda threads: None)
    monkeypatch.setattr(bench, "set_threads_after_import", lambda threads: None)
    monkeypatch.setattr("benchmarks.workloads.load", lambda wl: None)
    out = tmp_path / "run.json"
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--quick", "--workloads", "3,2,4", "--json", str(out)])
    recorded = json.loads(out.read_text())
    assert [r["workload"] for r in recorded["results"]] == [3, 2]
    # Ctrl-C from the shell: status 130, as the examples end, and no traceback
    assert bench.command(["--quick", "--workloads", "4", "--json", str(tmp_path / "b.json")]) == 130
    assert capsys.readouterr().err.endswith("interrupted (each workload that had finished is in "
                                            "the JSON file)\n")  # fmt: skip


@pytest.mark.parametrize(
    ("status", "runs", "code"),
    [("RuntimeError: out of memory", [], 1), ("n/a: no GPU", [], 0),
     ("error: RuntimeError: out of memory", [1.0], 1)],  # failed after its first run
)  # fmt: skip
def test_a_run_with_a_failed_implementation_exits_1_keeping_the_others(
    status, runs, code, tmp_path, monkeypatch, capsys
):
    """An implementation's error was printed as "error" in the table and the run exited
    0: a script or CI running the benchmarks saw it pass. n/a (not installed, --skip) is
    no failure."""
    from benchmarks import __main__ as bench
    from benchmarks import harness, report

    def run_workload(wl, data, ctx, repeat, quick, quiet_wait=0):
        times = {
            "ref": {"median": 1.0, "runs": [1.0], "status": None},
            "nnbackend": {"median": runs[0] if runs else None, "runs": runs, "status": status},
        }
        return {"workload": wl.number, "title": wl.title, "times": times}

    monkeypatch.setattr(harness, "run_workload", run_workload)
    monkeypatch.setattr(bench, "set_threads_before_import", lambda threads: None)
    monkeypatch.setattr(bench, "set_threads_after_import", lambda threads: None)
    monkeypatch.setattr("benchmarks.workloads.load", lambda wl: None)
    monkeypatch.setattr(report, "table", lambda whole: "table")
    monkeypatch.setattr(report, "notes", lambda whole: "notes")
    out = tmp_path / "run.json"
    assert bench.main(["--quick", "--workloads", "3,2", "--json", str(out)]) == code
    said = capsys.readouterr().err
    assert (
        "failed (the errors are above): workload 3 nnbackend, workload 2 nnbackend" in said
    ) == bool(code)
    assert [r["workload"] for r in json.loads(out.read_text())["results"]] == [3, 2]


def _h200(name: str, workload: int) -> dict:
    return next(r for r in RECORDED[name]["results"] if r["workload"] == workload)


def _nnbackend_over_autograd(result: dict) -> str:
    times = result["times"]
    return f"{times['nnbackend']['median'] / times['torch-autograd']['median']:.2f}x"


def test_the_readme_states_the_recorded_h200_figures():
    """The prose under the H200 tables, and the choice "auto" makes, from their JSON."""
    cupy2, torch2 = _h200("gpu", 2), _h200("torch-cuda", 2)
    torch6 = _h200("torch-cuda", 6)
    launches = {name: f"{c['per_step']:.0f}" for name, c in cupy2["launches"].items()}
    seconds = lambda r: f"{r['times']['nnbackend']['median']:.3f} s"  # noqa: E731
    text = " ".join(readme_table.README.read_text().split())
    assert (
        f"On CuPy, nnbackend takes {_nnbackend_over_autograd(cupy2)} torch autograd's time on "
        f"workload 2 and launches {launches['nnbackend']} kernels a step, as torch does (the "
        f"CuPy loop launches {launches['cupy']}:"
    ) in text
    assert launches["nnbackend"] == launches["torch-autograd"]
    assert (
        f"On torch:cuda it takes {_nnbackend_over_autograd(torch2)} torch autograd's time on "
        f"workload 2 and {_nnbackend_over_autograd(torch6)} on the conv net."
    ) in text
    assert f"the same epoch took {seconds(torch2)} there against {seconds(cupy2)} on CuPy" in text
    assert torch2["times"]["nnbackend"]["median"] < cupy2["times"]["nnbackend"]["median"]
    assert f"{cupy2['host_transfers']['count']} in the H200's MNIST epoch" in text


def _batch_rows(wl) -> set[int]:
    """The row counts of an epoch's batches."""
    return {min(wl.batch_size, wl.n_samples - s) for s in range(0, wl.n_samples, wl.batch_size)}


@pytest.mark.parametrize("number", [2, 3, 4, 6])
def test_the_warm_up_meets_every_batch_shape_of_the_epoch(number):
    """Workloads 3 and 4 end on a batch of 96 rows: the untimed warm-up meets it too."""
    from benchmarks.workloads import WORKLOADS, warmup

    wl = WORKLOADS[number]
    small = warmup(wl)
    assert _batch_rows(small) == _batch_rows(wl)
    assert small.n_samples <= 3 * wl.batch_size


def test_each_row_records_the_commit_that_made_it():
    """Every JSON said nnbackend 0.1.0: rows of different code could not be told apart."""
    from benchmarks import report

    git = ["git", "-C", str(readme_table.README.parent), "rev-parse", "--short=12", "HEAD"]
    try:
        head = subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    assert report.commit().split("+")[0] == head


def test_a_rewritten_table_or_json_is_no_change_of_code(tmp_path):
    """A run rewrites recorded/*.json and README.md as it goes: its rows were all marked
    "+changes" though the code was the commit's."""
    from benchmarks import report

    (tmp_path / "nnbackend").mkdir()
    (tmp_path / "benchmarks" / "recorded").mkdir(parents=True)
    files = ["nnbackend/x.py", "benchmarks/run.py", "benchmarks/recorded/cpu.json", "README.md"]
    for name in files:
        (tmp_path / name).write_text("1\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "start"]):
        if subprocess.run(git + command, capture_output=True).returncode:
            pytest.skip("git cannot make a repository here")
    for name in ("README.md", "benchmarks/recorded/cpu.json"):
        (tmp_path / name).write_text("2\n")
    assert not report.commit(tmp_path).endswith("+changes")
    (tmp_path / "benchmarks/run.py").write_text("2\n")
    assert report.commit(tmp_path).endswith("+changes")


def test_an_implementation_raising_not_implemented_is_an_error_not_n_a():
    """A method a base class leaves out raises NotImplementedError: it was filed as n/a,
    with an empty reason, and the run exited 0."""
    from benchmarks import harness

    def broken():
        raise NotImplementedError

    value, status = harness.attempt("workload 1 nnbackend", broken)
    assert value is None and status.startswith("error: NotImplementedError")
    assert harness.attempt("x", lambda: 1) == (1, None)
