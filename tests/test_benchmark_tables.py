"""README.md's benchmark tables show what benchmarks/recorded/ holds: the figures come
from the benchmark's own JSON (benchmarks/readme_table.py), never from a hand."""

from __future__ import annotations

from benchmarks import readme_table

RECORDED = readme_table.recorded()


def test_a_cpu_run_is_recorded_with_its_machine_and_date():
    report = RECORDED["cpu"]
    assert report["backend"] == "numpy" and report["date"]
    assert {r["workload"] for r in report["results"]} >= {1, 2, 3, 4, 5}


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
