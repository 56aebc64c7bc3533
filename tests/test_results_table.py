"""README.md's results tables show examples/results.json, and the examples, run again
here in full, still give what that file records: each pinned number within its
tolerance, each unsettled one within its range (examples/results_table.py says which
is which, and why)."""

from __future__ import annotations

import errno
import os
import re
import shutil

import pytest

from nnbackend import atomic
from tests.conftest import DATA_DIR
from tests.example_runs import full_run, results_table

TABLE = results_table()
RECORDED = TABLE.load_recorded()


def test_the_readme_shows_what_results_json_holds():
    shown = TABLE.readme_tables(TABLE.README.read_text())
    assert set(shown) == set(TABLE.HEADERS)
    rendered = TABLE.render_tables(RECORDED)
    for name in TABLE.HEADERS:
        assert shown[name] == rendered[name], (
            f"README.md's {name} table is not what examples/results.json holds: run "
            "python examples/results_table.py --data DATA (or edit neither by hand)"
        )


def test_the_record_is_complete_and_keeps_its_own_ranges():
    assert set(RECORDED["results"]) == set(TABLE.RUNS)
    # a time is recorded only by a full --times run on an idle machine; until then the
    # README says "(to measure: --times)"
    assert set(RECORDED["times"]) <= {row.key for row in TABLE.ROWS if row.time is not None}
    for row in TABLE.ROWS:
        for number in row.numbers.values():
            value = TABLE.lookup(RECORDED["results"], number)
            assert not TABLE.disagreements(number, value, value), (row.key, number)
            assert (number.tol is None) != (number.band is None), (row.key, number)


def test_a_number_held_looser_than_its_digits_says_so_in_its_row():
    """README says pinned numbers keep their printed digits: one whose tolerance is more
    than five units of its last digit (the moons grid: 0.03 at three decimals) carries
    its tolerance in the row's text."""
    loose = []
    for row in TABLE.ROWS:
        for name, number in row.numbers.items():
            decimals = re.fullmatch(r"\.(\d+)f", number.fmt)
            if number.tol and decimals and number.tol > 5.5 * 10 ** -int(decimals[1]):
                loose.append(name)
                assert f"within {number.tol:g}" in row.result, (row.key, name, number.tol)
    assert "grid" in loose


def test_a_drifted_number_is_caught():
    """The comparison itself: a pinned number moved past its tolerance, or an unsettled
    one out of its range, is reported with what was promised."""
    pinned = TABLE.Number("perceptron", ("perceptron 2-1", "error"), ".2f", tol=1e-4)
    assert TABLE.disagreements(pinned, 4.3130, 4.31303) == []
    assert TABLE.disagreements(pinned, 4.3135, 4.31303) == [
        "perceptron perceptron 2-1/error: 4.3135, not within 0.0001 of 4.31303"
    ]
    ranged = TABLE.Number("perceptron", ("x",), ".2f", band=(1.8, 2.6))
    assert TABLE.disagreements(ranged, [2.0, 2.7], [2.1, 2.2]) == [
        "perceptron x: 2.7, not in (1.8, 2.6)"
    ]


@pytest.mark.slow
@pytest.mark.parametrize("run", list(TABLE.RUNS))
def test_the_examples_still_give_the_recorded_numbers(run, monkeypatch):
    """Every example in full, as the table's command runs it (about 2 minutes in all on
    an idle 2-core CPU, half of it the nine cat runs): what the README shows cannot
    drift from what the code gives."""
    monkeypatch.delenv("NNBACKEND_MAX_STEPS", raising=False)
    if run in TABLE.LONG:
        pytest.skip(f"{run} takes tens of minutes: examples/results_table.py --only {run}")
    if run in TABLE.NEEDS_DATA:
        if not DATA_DIR.is_dir():
            pytest.skip(f"real data not found at {DATA_DIR}")
        monkeypatch.setenv("NNBACKEND_DATA", str(DATA_DIR))
    fresh, recorded = {run: full_run(run)}, RECORDED["results"]
    problems = [
        problem
        for number in TABLE.numbers_of(run)
        for problem in TABLE.disagreements(
            number, TABLE.lookup(fresh, number), TABLE.lookup(recorded, number)
        )
    ]
    assert not problems, "\n".join(problems)


def test_runs_on_real_data_refuse_to_run_without_it(tmp_path, monkeypatch, capsys):
    """Without data the MNIST example trains on the 8x8 digits: the table took their
    0.990 for MNIST's 0.949, and --check then agreed with it."""
    for name in ("README", "RESULTS"):
        copy = tmp_path / getattr(TABLE, name).name
        shutil.copy(getattr(TABLE, name), copy)
        monkeypatch.setattr(TABLE, name, copy)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    monkeypatch.delenv("NNBACKEND_DATA", raising=False)
    with pytest.raises(SystemExit):
        TABLE.main(["--only", "neuron", "mnist"])
    assert "mnist need the real data: give --data FOLDER" in capsys.readouterr().err
    monkeypatch.setenv("NNBACKEND_DATA", str(tmp_path))  # a folder without MNIST
    with pytest.raises(SystemExit, match="MNIST files not found"):
        TABLE.main(["--only", "mnist"])
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_a_failed_write_leaves_the_readme_and_results_whole(tmp_path, monkeypatch):
    """Both were written in place: a full disk mid-write left README.md cut short."""
    for name in ("README", "RESULTS"):
        copy = tmp_path / getattr(TABLE, name).name
        shutil.copy(getattr(TABLE, name), copy)
        monkeypatch.setattr(TABLE, name, copy)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "_write_some", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        TABLE.main(["--render"])
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_a_missing_record_says_which_runs_to_make(tmp_path, monkeypatch):
    """Without results.json, --check and --render ended in a KeyError naming one run."""
    monkeypatch.setattr(TABLE, "RESULTS", tmp_path / "results.json")
    with pytest.raises(SystemExit, match=r"holds no results of .*mnist.*: run python ") as stop:
        TABLE.main(["--check"])
    assert f"--only {' '.join(sorted(TABLE.RUNS))} (with --data)" in str(stop.value)


def test_only_with_no_names_is_refused(capsys):
    """--only with nothing after it read as every run: tens of minutes of conv nets, and
    the README rewritten."""
    with pytest.raises(SystemExit) as stop:
        TABLE.main(["--only"])
    told = capsys.readouterr().err
    assert stop.value.code == 2 and "--only: expected at least one argument" in told


def test_a_run_records_numpys_numbers_whatever_the_environment_asks(monkeypatch, capsys):
    """$NNBACKEND=torch made the table record torch's runs as the default flags' own."""
    monkeypatch.setenv("NNBACKEND", "strict")
    monkeypatch.setenv("NNBACKEND_FUSED", "0")
    monkeypatch.setenv("NNBACKEND_DATA", "/data")
    assert TABLE.run_main("neuron")["backend"] == "numpy"  # the flag, not $NNBACKEND
    TABLE.clean_environment(None)
    assert "NNBACKEND" not in os.environ and "NNBACKEND_FUSED" not in os.environ
    assert os.environ["NNBACKEND_DATA"] == "/data"
    TABLE.clean_environment("/given")  # --data FOLDER: what the runs on real data read
    assert os.environ["NNBACKEND_DATA"] == "/given"
    assert {run["backend"] for run in RECORDED["results"].values() if "backend" in run} == {"numpy"}


def test_runs_at_once_keep_each_others_results(tmp_path, monkeypatch):
    """Each read results.json at its start and wrote all of it back: two --only runs at
    once lost the first one's numbers, and --check agreed with the README it wrote."""
    for name in ("README", "RESULTS"):
        copy = tmp_path / getattr(TABLE, name).name
        shutil.copy(getattr(TABLE, name), copy)
        monkeypatch.setattr(TABLE, name, copy)
    this = TABLE.load_recorded()  # one run's view, from its start
    other = TABLE.record({"neuron": {**this["results"]["neuron"], "mse": 0.25}})  # the other's
    mine = TABLE.record({"activations": this["results"]["activations"]})
    assert mine["results"]["neuron"]["mse"] == 0.25 == other["results"]["neuron"]["mse"]
    assert TABLE.load_recorded() == mine
    assert TABLE.readme_tables(TABLE.README.read_text()) == TABLE.render_tables(mine)
