"""Edges of the examples' shared command line (nnbackend.cli) that a mutation run of
cli.py found no test holding: each test fails under a mutant the rest of the suite let
pass (the comments name them)."""

from __future__ import annotations

import argparse
import os
import threading

import pytest

import nnbackend as nb
from nnbackend import cli
from nnbackend.backend.threads import MAX_THREADS
from nnbackend.distributed import world


def test_a_plain_parser_has_the_five_shared_flags_and_their_defaults():
    """Without epochs, data or distributed: --backend, --dtype, --threads, --seed, --out
    alone, seed 0 and float32 by default; --distributed is refused as unknown."""
    # kills cli 10 (seed's default 1) and 11 (--distributed on every parser)
    parser = cli.example_parser("x")
    assert vars(parser.parse_args([])) == {
        "backend": None, "dtype": "float32", "threads": None, "seed": 0, "out": None,
    }  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--distributed"])
    assert stop.value.code == 2


def test_epochs_data_and_distributed_come_with_their_defaults():
    """epochs=5, data="mnist", distributed=True, seed=7, dtype=None: each flag there, with
    the default it was given."""
    parser = cli.example_parser("x", epochs=5, data="mnist", distributed=True, seed=7, dtype=None)
    assert vars(parser.parse_args([])) == {
        "backend": None, "dtype": None, "threads": None, "seed": 7, "epochs": 5, "out": None,
        "data": None, "distributed": False,
    }  # fmt: skip
    args = parser.parse_args(["--epochs", "1", "--data", "here", "--distributed"])
    assert (args.epochs, args.data, args.distributed) == (1, "here", True)


def test_dtypes_help_says_the_default_or_the_programs_own_words():
    """--dtype's help: "float dtype (default float32)", or the dtype_help a program gives
    where it chooses the dtype itself (dtype=None)."""

    # kills cli 7, 8, 9 (the help dropped, or the program's words dropped)
    def dtype_help(parser):
        return next(a.help for a in parser._actions if a.dest == "dtype")

    assert dtype_help(cli.example_parser("x")) == "float dtype (default float32)"
    assert dtype_help(cli.example_parser("x", dtype="float64")) == "float dtype (default float64)"
    own = cli.example_parser("x", dtype=None, dtype_help="float64 on the digits")
    assert dtype_help(own) == "float64 on the digits"


def test_whole_numbers_take_both_ends_of_their_range():
    """--seed takes 0 and 2**32 - 1 = 4294967295, --epochs takes 1: the bounds are in."""
    # kills cli 16 (seed from 1), 46 (n <= low refused) and 52 (n >= high refused)
    parser = cli.example_parser("x", epochs=3)
    assert parser.parse_args(["--seed", "0"]).seed == 0
    assert parser.parse_args(["--seed", "4294967295"]).seed == 4294967295
    assert parser.parse_args(["--epochs", "1"]).epochs == 1
    assert cli.at_least(5)("5") == 5 and cli.at_least(-3, 3)("-3") == -3


def test_a_whole_number_that_is_not_a_number_is_refused_by_the_type():
    """ "two" and "1.5" are an argparse error naming the range, not a NameError."""
    for text in ("two", "1.5", ""):
        with pytest.raises(argparse.ArgumentTypeError, match=f"a whole number 0..9, not '{text}'"):
            cli.at_least(0, 9)(text)


def test_learning_rates_decays_and_penalties_take_their_whole_range():
    """positive: any finite x > 0; decay: (0, 1], 1 included; non_negative: 0 included."""
    # kills cli 63 (decay 1 refused), 66 (every decay refused), 76/81 (penalty 0 refused),
    # 78 (numbers below 1 refused)
    assert cli.positive("0.25") == 0.25 and cli.positive("3") == 3.0
    assert cli.decay("1") == 1.0 and cli.decay("0.5") == 0.5
    assert cli.non_negative("0") == 0.0 and cli.non_negative("0.5") == 0.5
    for kind, text in ((cli.positive, "inf"), (cli.positive, "x"), (cli.non_negative, "-0.5"),
                       (cli.non_negative, "nan"), (cli.decay, "1.0001")):  # fmt: skip
        with pytest.raises(argparse.ArgumentTypeError, match=f"not '{text}'"):
            kind(text)


def test_threads_that_are_not_a_number_are_refused():
    """--threads two: the argparse error, not a NameError or one thread taken."""
    # kills cli 90 (n unbound) and 91 (a word taken as 1 thread)
    assert cli.thread_count("3") == 3 and cli.thread_count("auto") == "auto"
    with pytest.raises(argparse.ArgumentTypeError, match="from 1 to 32768, or auto, not 'two'"):
        cli.thread_count("two")
    # past the library's limit: argparse's error, not a traceback after the parse
    assert cli.thread_count("32768") == 32768
    with pytest.raises(argparse.ArgumentTypeError, match="not '40000'"):
        cli.thread_count("40000")


def test_out_takes_a_folder_that_is_there_and_leaves_a_new_one_unmade(tmp_path):
    """--out gives the folder as a Path; one that is there stays, one that is not (and
    its parents) is not made by the check."""
    # kills cli 105/107/110 (a folder that is there refused) and 116 (--out read as None)
    pytest.importorskip("matplotlib")
    parser = cli.example_parser("x")
    assert parser.parse_args(["--out", str(tmp_path)]).out == tmp_path
    (tmp_path / "old").mkdir()
    new = tmp_path / "old" / "new" / "plots"
    assert parser.parse_args(["--out", str(new)]).out == new
    assert [p.name for p in tmp_path.iterdir()] == ["old"]
    assert list((tmp_path / "old").iterdir()) == []


def test_the_backend_and_dtype_flags_pick_the_backend(backend):
    """--backend NAME --dtype float64 gives that backend in float64."""
    args = cli.example_parser("x").parse_args(["--backend", backend.name, "--dtype", "float64"])
    chosen = cli.backend_from_args(args)
    assert chosen.name == backend.name
    assert chosen.dtype == chosen.xp.float64


def test_no_threads_flag_leaves_the_setting_alone():
    """Without --threads, a count set before (nb.set_num_threads) stays."""
    # kills cli 120 (set_num_threads(None) ran: back to auto)
    before = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        cli.backend_from_args(cli.example_parser("x").parse_args([]))
        assert nb.get_num_threads() == 1
    finally:
        nb.set_num_threads(before)


def test_a_parser_without_distributed_does_not_join(monkeypatch):
    """An example without --distributed never calls init: a bad $NNBACKEND_TIMEOUT,
    which init reads, does not stop it."""
    # kills cli 123 (a missing args.distributed read as True)
    monkeypatch.setenv("NNBACKEND_TIMEOUT", "abc")
    args = cli.example_parser("x").parse_args(["--backend", "numpy"])
    assert cli.backend_from_args(args).name == "numpy"
    with pytest.raises(SystemExit, match="TIMEOUT must be a positive number of seconds"):
        cli.backend_from_args(argparse.Namespace(backend="numpy", distributed=True))


def test_a_bad_switch_says_its_default(monkeypatch):
    """$NNBACKEND_FUSED and $NNBACKEND_FAST_PATHS default on, $NNBACKEND_MPI off: the
    message says so."""
    # kills cli 1, 2, 3 (a default flipped: the message named the wrong one)
    for variable, default in (("NNBACKEND_FUSED", "on"), ("NNBACKEND_FAST_PATHS", "on"),
                              ("NNBACKEND_MPI", "off")):  # fmt: skip
        with monkeypatch.context() as env:
            env.setenv(variable, "maybe")
            with pytest.raises(SystemExit, match=rf"\(default: {default}\)"):
                cli.backend_from_args(argparse.Namespace(backend="numpy"))


def test_stop_ends_every_rank_only_in_a_job_of_several(monkeypatch):
    """One rank: a SystemExit with the message; rank 1 of 2: MPI's abort first, the
    message led by the rank."""
    # kills cli 137-143 (the abort never, or always, called)
    here = world.current()
    aborted = []
    monkeypatch.setattr(here, "abort", aborted.append, raising=False)
    with pytest.raises(SystemExit, match="^error: x$"):
        cli.stop("error: x")
    assert aborted == []
    monkeypatch.setattr(here, "size", 2)
    monkeypatch.setattr(here, "rank", 1)
    with pytest.raises(SystemExit, match="^error: y$"):
        cli.stop("error: y")
    assert aborted == ["rank 1 of 2: error: y"]


def test_mnist_or_digits_flattens_unless_told_and_reads_no_digits_flag_as_off(monkeypatch, capsys):
    """--digits: 1438 training images of 64 values, or 1x8x8 with flatten=False; a parser
    without --digits reads MNIST from $NNBACKEND_DATA, and without it, says the digits
    stand in."""
    # kills cli 145 (flatten's default False) and 147 (no --digits read as --digits)
    ((X, _), _), _ = cli.mnist_or_digits(argparse.Namespace(digits=True, data=None))
    assert X.shape == (1438, 64)
    ((X, _), _), name = cli.mnist_or_digits(argparse.Namespace(digits=True), flatten=False)
    assert (X.shape, name) == ((1438, 1, 8, 8), "8x8 digits")
    monkeypatch.delenv("NNBACKEND_DATA", raising=False)
    ((X, _), _), name = cli.mnist_or_digits(argparse.Namespace(data=None))
    assert (X.shape, name) == ((1438, 64), "8x8 digits")
    assert capsys.readouterr().out.startswith("note: no MNIST files found")
    # the stand-in keeps flatten=False: mnist_cnn.py without data trains on 1x8x8 images
    ((X, _), _), name = cli.mnist_or_digits(argparse.Namespace(data=None), flatten=False)
    assert (X.shape, name) == ((1438, 1, 8, 8), "8x8 digits")


def test_a_data_setting_that_names_a_file_is_told_so(monkeypatch, capsys, tmp_path):
    """$NNBACKEND_DATA set to a file was said not to exist; --digits beside --data left
    the folder unread without a word; the note told to set a variable that was set."""
    notes = tmp_path / "README.md"
    notes.write_text("the data's notes\n")
    monkeypatch.setenv("NNBACKEND_DATA", str(notes))
    with pytest.raises(nb.datasets.DataNotFoundError) as missing:
        nb.datasets.load_catvnoncat()
    assert f"{notes}: is a file, not a folder" in str(missing.value)
    ((X, _), _), name = cli.mnist_or_digits(argparse.Namespace(data=None))
    assert name == "8x8 digits" and "or point NNBACKEND_DATA at" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--digits takes scikit-learn's digits, not a --data"):
        cli.mnist_or_digits(argparse.Namespace(digits=True, data=str(tmp_path)))


def test_max_steps_takes_one_and_spaces(monkeypatch):
    """$NNBACKEND_MAX_STEPS=1 caps at one step; " 4 " is read as 4."""
    # kills cli 168/170 (1 refused) and 159 (the spaces kept: " 4 " refused)
    monkeypatch.setenv("NNBACKEND_MAX_STEPS", "1")
    assert cli.max_steps(10) == 1
    monkeypatch.setenv("NNBACKEND_MAX_STEPS", " 4 ")
    assert cli.max_steps(10) == 4
    for odd in ("0", "²", "-3", "2.5"):  # "²" is a digit to str.isdigit, not to int()
        monkeypatch.setenv("NNBACKEND_MAX_STEPS", odd)
        with pytest.raises(SystemExit, match=r"NNBACKEND_MAX_STEPS is .*: set it to a whole"):
            cli.max_steps(10)


def test_out_checked_by_ranks_at_once_accepts_a_new_folder(tmp_path):
    """mpiexec -n 4 ... --out NEW: each rank made the folder for its check and took it
    away again, so a rank could find its probe folder gone, be refused and leave the
    others waiting in MPI's start for good."""
    pytest.importorskip("matplotlib")
    refused = []

    def rank(folder, barrier):
        barrier.wait()
        try:
            cli.plot_folder(str(folder))
        except argparse.ArgumentTypeError as exc:
            refused.append(str(exc))

    for trial in range(20):
        barrier = threading.Barrier(4)
        folder = tmp_path / f"run{trial}" / "plots"
        ranks = [threading.Thread(target=rank, args=(folder, barrier)) for _ in range(4)]
        for thread in ranks:
            thread.start()
        for thread in ranks:
            thread.join()
    assert refused == []


def test_an_out_that_save_could_not_make_is_refused_at_the_parse(tmp_path):
    """A link to nothing, and a name too long below a folder not there yet, were taken
    (only what is there was looked at), and the run failed after training."""
    pytest.importorskip("matplotlib")
    dangling = tmp_path / "plots"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(argparse.ArgumentTypeError, match="plots': File exists"):
        cli.plot_folder(str(dangling))
    with pytest.raises(argparse.ArgumentTypeError, match="File name too long"):
        cli.plot_folder(str(tmp_path / "new" / ("y" * 300)))
    assert cli.plot_folder(str(tmp_path / "new" / "plots")) == tmp_path / "new" / "plots"


def test_out_expands_a_home_folder(tmp_path, monkeypatch):
    """--out=~/plots reaches the program as it is (no shell expands a ~ after =): the
    plots went to a folder named ~ in the working folder."""
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cli.plot_folder("~/plots") == tmp_path / "plots"


def test_an_empty_out_is_refused(tmp_path, monkeypatch):
    """--out "$OUT" with OUT unset wrote the plots into the working folder."""
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(argparse.ArgumentTypeError, match="an empty folder name"):
        cli.plot_folder("")


def test_an_empty_data_folder_is_refused():
    """--data "$DATA" with DATA unset skipped $NNBACKEND_DATA, and the error then said
    it was not set."""
    for blank in ("", "  "):
        with pytest.raises(argparse.ArgumentTypeError, match="an empty folder name"):
            cli.data_folder(blank)
    assert cli.data_folder("~/data") == "~/data"  # expanded by the loaders


# --threads takes every count from 1 up to the library's most, MAX_THREADS itself
# included; --out refuses a folder name of spaces alone (an unset variable's quoting
# gone wrong) as it refuses an empty one.


def test_threads_take_the_most_the_library_allows():
    assert cli.thread_count(str(MAX_THREADS)) == MAX_THREADS
    assert cli.thread_count("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match=f"from 1 to {MAX_THREADS}"):
        cli.thread_count(str(MAX_THREADS + 1))


def test_an_out_of_spaces_alone_is_refused():
    pytest.importorskip("matplotlib")
    with pytest.raises(argparse.ArgumentTypeError, match="an empty folder name"):
        cli.plot_folder("   ")


def test_an_out_naming_a_file_is_refused_as_a_file_that_is_there(tmp_path):
    pytest.importorskip("matplotlib")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    with pytest.raises(argparse.ArgumentTypeError, match="notes.txt': File exists"):
        cli.plot_folder(str(notes))
    assert notes.read_text() == "mine\n"


def test_an_out_name_one_byte_too_long_is_refused(tmp_path):
    pytest.importorskip("matplotlib")
    import os

    longest = os.pathconf(tmp_path, "PC_NAME_MAX")
    with pytest.raises(argparse.ArgumentTypeError, match="File name too long"):
        cli.plot_folder(str(tmp_path / ("y" * (longest + 1))))
    assert cli.plot_folder(str(tmp_path / ("y" * longest))) == tmp_path / ("y" * longest)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_out_in_a_folder_that_takes_no_files_is_refused():
    """/proc takes no new files, not even root's: the probe file is what tells."""
    pytest.importorskip("matplotlib")
    with pytest.raises(argparse.ArgumentTypeError, match="cannot write plots into"):
        cli.plot_folder("/proc/nnbackend-plots")


def test_an_out_of_an_unknown_users_home_is_refused_at_the_parse():
    """--out=~nobody-here/plots: expanduser's RuntimeError escaped as a traceback."""
    pytest.importorskip("matplotlib")
    with pytest.raises(argparse.ArgumentTypeError, match="cannot write plots into '~no_such"):
        cli.plot_folder("~no_such_user_here_at_all/plots")
