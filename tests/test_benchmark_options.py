"""The benchmark commands refuse a bad option before any timing: --repeat 0 printed a
table of errors and exited 0 (replacing the results file), --threads 0 and a --json
folder ended in tracebacks, the latter after the whole run."""

from __future__ import annotations

import argparse
import importlib
import os

import pytest

from benchmarks import options


@pytest.mark.parametrize(
    ("module", "argv", "told"),
    [
        ("benchmarks.__main__", ["--repeat", "0"], "--repeat: a whole number >= 1, not '0'"),
        ("benchmarks.__main__", ["--threads", "-3"], "--threads: a whole number >= 1"),
        ("benchmarks.__main__", ["--json", "{tmp}"], "is a folder: name the results file"),
        ("benchmarks.__main__", ["--compile"], "--compile captures torch's step"),
        ("benchmarks.sklearn_compare", ["--repeat", "0"], "--repeat: a whole number >= 1"),
        ("benchmarks.fit_parts", ["--threads", "40000"], "at most 32768 threads, not '40000'"),
        ("benchmarks.sklearn_compare", ["--backends", "nope"], "--backends: comma-separated"),
        ("benchmarks.fit_parts", ["--repeat", "0"], "--repeat: a whole number >= 1"),
        ("benchmarks.load_checks", ["--chunks", "8,0"], "--chunks: a whole number >= 1"),
        ("benchmarks.fit_parts", ["--json", "{tmp}/a-file/r.json"], "a-file' is not a folder"),
    ],
)
def test_a_bad_option_stops_the_command_at_its_start(module, argv, told, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    parse_args = importlib.import_module(module).parse_args
    with pytest.raises(SystemExit) as stop:
        parse_args([arg.format(tmp=tmp_path) for arg in argv])
    assert stop.value.code == 2 and told in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "told"),
    [
        (["--epochs", "0"], "--epochs: a whole number >= 1"),
        (["--ranks", "x"], "--ranks: a whole number >= 1, not 'x'"),
        (["--launcher", "no-such-mpiexec -n {ranks}"], "no 'no-such-mpiexec' here"),
        (["--backend", "jax", "--launcher", "true"], "--backend: unknown backend 'jax'"),
    ],
)
def test_the_distributed_benchmark_checks_its_options_before_launching(argv, told, capsys):
    from benchmarks import distributed

    with pytest.raises(SystemExit) as stop:
        distributed.main(argv)
    assert stop.value.code == 2 and told in capsys.readouterr().err


@pytest.mark.parametrize("module", ["fit_parts", "load_checks"])
def test_a_benchmark_help_keeps_its_usage_line_apart_from_its_text(module, capsys):
    """argparse's default formatter ran the usage line into the docstring's first words."""
    with pytest.raises(SystemExit):
        importlib.import_module(f"benchmarks.{module}").parse_args(["--help"])
    first = importlib.import_module(f"benchmarks.{module}").__doc__.splitlines()[0]
    assert f"\n\n{first}\n" in capsys.readouterr().out


def test_the_option_types_take_what_they_should(tmp_path):
    assert options.count("3") == 3 and options.counts("1, 2,4") == [1, 2, 4]
    assert options.results_file(str(tmp_path / "r.json")) == tmp_path / "r.json"
    new = tmp_path / "new" / "sub" / "r.json"  # the writer makes the folders
    assert options.results_file(str(new)) == new
    from benchmarks import sklearn_compare

    for names in ("auto", "torch:cpu,numpy", "cupy:1"):  # a device after the name
        assert sklearn_compare.parse_args(["--backends", names]).backends == names


# The benchmarks' option types: a list of counts takes a trailing or doubled comma
# (empty items dropped) but refuses a list with no count at all; a results file below a
# link to nothing is refused at the parse (the writer could not make its folder), and a
# write-protected results file is refused where this user is held to its mode.


def test_counts_drop_empty_items_and_refuse_none_at_all():
    assert options.counts("1,2,") == [1, 2]
    assert options.counts("4,,8") == [4, 8]
    for empty in ("", " , ", ","):
        with pytest.raises(argparse.ArgumentTypeError, match="comma-separated whole numbers"):
            options.counts(empty)


def test_count_takes_one():
    assert options.count("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match=">= 1, not '0'"):
        options.count("0")


def test_a_results_file_below_a_link_to_nothing_is_refused(tmp_path):
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    with pytest.raises(argparse.ArgumentTypeError, match="is not a folder"):
        options.results_file(str(tmp_path / "out" / "r.json"))


def test_a_folder_named_as_the_results_file_is_refused(tmp_path):
    with pytest.raises(argparse.ArgumentTypeError, match="is a folder"):
        options.results_file(str(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes whatever its mode says")
def test_a_write_protected_results_file_is_refused(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{}")
    path.chmod(0o444)
    with pytest.raises(argparse.ArgumentTypeError, match="write-protected"):
        options.results_file(str(path))


def test_a_results_file_below_an_executable_file_is_refused(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    with pytest.raises(argparse.ArgumentTypeError, match="is not a folder"):
        options.results_file(str(script / "r.json"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes whatever its mode says")
def test_a_results_file_in_a_folder_this_user_cannot_write_into_is_refused(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)  # read and search, no write
    try:
        with pytest.raises(argparse.ArgumentTypeError, match="this user can write into"):
            options.results_file(str(folder / "r.json"))
    finally:
        folder.chmod(0o700)


def test_a_results_file_under_home_is_expanded(monkeypatch, tmp_path):
    """--json=~/r.json (no shell expands that ~) wrote into a folder named ~ here."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert options.results_file("~/out/r.json") == tmp_path / "out" / "r.json"
    with pytest.raises(argparse.ArgumentTypeError, match=r"cannot write '~no-such-user-here/r"):
        options.results_file("~no-such-user-here/r.json")


def test_the_distributed_benchmark_finds_the_launcher_beside_python(monkeypatch, tmp_path):
    """The environment's own mpiexec (the mpich wheel's), where the environment is not
    activated, was refused as not installed: PATH alone was searched."""
    from benchmarks import distributed

    fake = tmp_path / "bin" / "mpiexec"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(distributed.sys, "executable", str(fake.parent / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    launched = []

    def launch(ranks, threads, args):
        launched.append(args.launcher.format(ranks=ranks, threads=threads))
        return {"ranks": ranks, "threads": threads, "seconds_per_epoch": 1.0,
                "allreduce_seconds": 0.0, "steps_per_epoch": 1}  # fmt: skip

    monkeypatch.setattr(distributed, "launch", launch)
    distributed.main(["--ranks", "1", "--json", str(tmp_path / "r.json")])
    assert launched and launched[0].split()[0] == str(fake)


def test_the_most_threads_are_accepted():
    assert options.threads(str(options.MAX_THREADS)) == options.MAX_THREADS


def test_an_existing_results_file_is_taken(tmp_path):
    """--add reads the results file there and writes it again."""
    (tmp_path / "r.json").write_text("{}")
    assert options.results_file(str(tmp_path / "r.json")) == tmp_path / "r.json"


@pytest.mark.parametrize("name", ["r" * 300 + ".json", "new/" + "r" * 300 + "/x.json"])
def test_a_results_file_name_too_long_is_refused_at_the_parse(tmp_path, name):
    """In a folder there, is_dir raised OSError past argparse (a traceback); in one to be
    made, the name was taken and the write failed after the whole run."""
    with pytest.raises(argparse.ArgumentTypeError, match="too long"):
        options.results_file(str(tmp_path / name))
