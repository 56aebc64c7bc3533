"""Edges of the readers of untrusted HDF5 files (nnbackend.h5safe, nnbackend.h5text)
that a mutation run of both modules found no test holding: each test fails under a
mutant the rest of the suite let pass (the comments name them)."""

from __future__ import annotations

import os
import sys
import types
import zlib

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend import h5child, h5safe, h5text
from nnbackend.datasets.catvnoncat import CatFileError
from tests.test_datasets import write_tiny_cat


def written(path, **datasets):
    """``path`` holding each keyword as a dataset, made from its (data, options)."""
    with h5py.File(path, "w") as f:
        for name, (data, options) in datasets.items():
            f.create_dataset(name, data=data, **options)
    return path


def read(path, name, **options):
    """``h5safe.dataset`` of ``name`` in the file at ``path``, its errors ValueErrors."""
    with h5safe.open_untrusted(path) as f:
        return h5safe.dataset(path, f, name, ValueError, **options)


def test_a_dataset_is_read_in_up_to_1024_small_chunks_and_no_more(tmp_path):
    """1024 one-byte chunks are read; 1025 are refused (under 4 MiB of data, the
    chunk count's cap is MAX_SMALL_CHUNKS = 1024)."""
    # kills h5safe 13 (1025 allowed), 14 and 240 (1024 refused)
    path = written(
        tmp_path / "chunks.h5",
        c1024=(np.arange(1024) % 256, {"dtype": "u1", "chunks": (1,)}),
        c1025=(np.arange(1025) % 256, {"dtype": "u1", "chunks": (1,)}),
    )
    np.testing.assert_array_equal(read(path, "c1024", kinds="u"), np.arange(1024) % 256)
    with pytest.raises(ValueError, match=r"/c1025 is stored in 1025 chunks of 1 bytes"):
        read(path, "c1025", kinds="u")


def test_a_large_dataset_may_have_one_chunk_per_4096_bytes(tmp_path):
    """Past 1024 chunks, a dataset may have one chunk per 4096 bytes it declares:
    1100 chunks of 4096 bytes are read, 1100 of 4095 bytes (1099 per 4096) refused."""
    # kills h5safe 16 (4,505,600 // 4097 = 1099 chunks allowed) and 17 (4,504,500 // 4095
    # = 1100 allowed)
    even, short = np.arange(4096 * 1100) % 251, np.arange(4095 * 1100) % 251
    path = written(
        tmp_path / "large.h5",
        even=(even, {"dtype": "u1", "chunks": (4096,)}),
        short=(short, {"dtype": "u1", "chunks": (4095,)}),
    )
    np.testing.assert_array_equal(read(path, "even", kinds="u"), even)
    with pytest.raises(ValueError, match=r"/short is stored in 1100 chunks of 4095 bytes"):
        read(path, "short", kinds="u")


def test_compressed_data_may_declare_up_to_max_ratio_times_what_it_stores(tmp_path):
    """4096 zeros deflate to 26 bytes; padded after the stream's end to 64 bytes they
    declare 64 times what is stored, which max_ratio=64 (cat images) allows; padded to
    63 bytes, they are refused."""
    # kills h5safe 256 (exactly max_ratio refused), 253 and 255 (any stored byte enough)
    stream = zlib.compress(bytes(4096), 9)
    assert len(stream) < 63
    with h5py.File(tmp_path / "packed.h5", "w") as f:
        for name, size in (("at_ratio", 64), ("past_ratio", 63)):
            x = f.create_dataset(name, (4096,), "u1", chunks=(4096,), compression="gzip")
            x.id.write_direct_chunk((0,), stream + bytes(size - len(stream)))
    path = tmp_path / "packed.h5"
    np.testing.assert_array_equal(read(path, "at_ratio", kinds="u", max_ratio=64), np.zeros(4096))
    said = r"/past_ratio declares 4096 bytes but the file stores 63 \(compressed, at most 64 "
    with pytest.raises(ValueError, match=said):
        read(path, "past_ratio", kinds="u", max_ratio=64)


def test_an_empty_compressed_dataset_reads_as_empty(tmp_path):
    """A compressed dataset of shape (0, 8) stores no byte and declares none: read."""
    # kills h5safe 260, 265 and 266 (an empty dataset refused: it stores no byte) and 230
    # (its 32-byte chunk refused as larger than its 0 bytes)
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_dataset("x", (0, 8), "f4", maxshape=(None, 8), chunks=(1, 8), compression=4)
    got = read(tmp_path / "empty.h5", "x")
    assert got.shape == (0, 8) and got.dtype == np.float32


def test_a_missing_dataset_is_called_missing(tmp_path):
    """dataset() of a name the group lacks says it is missing."""
    # kills h5safe 176 (the absent link reached the hard-link check: "not stored in the file")
    path = written(tmp_path / "one.h5", x=(np.zeros(3, "f4"), {}))
    with pytest.raises(ValueError, match=r"one.h5: /absent is missing$"):
        read(path, "absent")


def test_shuffled_data_must_be_stored_whole(tmp_path):
    """Shuffle reorders bytes and compresses nothing: a shuffled 4096-byte chunk stored
    as 4 bytes is refused as data the file does not hold, not allowed 1100:1."""
    # kills h5safe 250 (the filters' flags read as their codes: shuffle's optional flag,
    # 1, is deflate's code, so shuffled data passed as compressed)
    with h5py.File(tmp_path / "shuffled.h5", "w") as f:
        x = f.create_dataset("x", (4096,), "u1", chunks=(4096,), shuffle=True)
        x.id.write_direct_chunk((0,), bytes(4))
    with pytest.raises(ValueError, match=r"/x declares 4096 bytes but the file stores 4; it"):
        read(tmp_path / "shuffled.h5", "x", kinds="u")


def test_a_named_datatype_in_the_file_is_refused(tmp_path):
    """A link to a committed datatype is neither a group nor a dataset: refused."""
    # kills h5safe 79 (the refusal dropped: the file opened)
    path = written(tmp_path / "typed.h5", x=(np.zeros(3, "f4"), {}))
    with h5py.File(path, "a") as f:
        f["kind"] = np.dtype("f4")
    with pytest.raises(ValueError, match=r"typed.h5: 'kind' is neither a group nor a dataset"):
        read(path, "x")


def test_a_file_may_hold_max_links_links_and_no_more(tmp_path, monkeypatch):
    """With MAX_LINKS = 5, a file of exactly 5 links (x, g, g/a, g/b, g/c) opens; a
    sixth link is refused."""
    # kills h5safe 60 (the count started at 1), 70 (a file of MAX_LINKS links refused) and
    # 97 (the listing stopped at MAX_LINKS: the sixth link went unseen)
    monkeypatch.setattr(h5safe, "MAX_LINKS", 5)
    path = written(tmp_path / "links.h5", x=(np.zeros(3, "f4"), {}))
    with h5py.File(path, "a") as f:
        for name in ("g/a", "g/b", "g/c"):
            f.create_group(name)
    np.testing.assert_array_equal(read(path, "x"), np.zeros(3))
    with h5py.File(path, "a") as f:
        f.create_group("g/d")
    with pytest.raises(ValueError, match=r"links.h5 holds more than 5 links"):
        read(path, "x")


def test_shuffled_deflated_and_checksummed_data_reads_back(tmp_path):
    """h5py's shuffle, gzip and fletcher32 together (a common way to write a data set)
    read back as written: each chunk is inflated once, its checksum taken off first."""
    # kills h5safe 277 (the filters' flags read as their codes: shuffle taken for deflate)
    data = np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)
    options = {"chunks": (16, 64, 3), "compression": "gzip", "shuffle": True, "fletcher32": True}
    path = written(tmp_path / "filtered.h5", x=(data, options))
    np.testing.assert_array_equal(read(path, "x", kinds="u"), data)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_refused_fifo_gives_its_descriptor_back(tmp_path):
    """Refusing a FIFO (not a regular file) closes what was opened to look at it."""
    # kills h5safe 32 (the descriptor left open: one leaked per refusal)
    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(ValueError, match="pipe.h5: it is not a regular file"):
            read(fifo, "x")
    assert len(os.listdir("/proc/self/fd")) == before


def test_one_chunk_as_large_as_its_dataset_is_read(tmp_path):
    """A 2 MiB dataset stored as one chunk of its own size is read: a chunk may be as
    large as the data (or 1 MiB), not larger."""
    # kills h5safe 228 (a chunk of exactly the data's size refused)
    data = np.arange(512 * 1024, dtype=np.float32).reshape(512, 1024)
    path = written(tmp_path / "one-chunk.h5", x=(data, {"chunks": (512, 1024)}))
    np.testing.assert_array_equal(read(path, "x"), data)


def test_a_chunk_that_skipped_deflate_is_read_as_stored(tmp_path):
    """A chunk whose filter mask says deflate was skipped (HDF5 skips an optional filter
    that fails) holds its bytes as they are: read back, not inflated."""
    # kills h5safe 291, 292 and 293 (the mask misread or ignored: the raw chunk inflated)
    raw = np.arange(64, dtype=np.uint8)
    with h5py.File(tmp_path / "skipped.h5", "w") as f:
        x = f.create_dataset("x", (64,), "u1", chunks=(64,), compression="gzip")
        x.id.write_direct_chunk((0,), raw.tobytes(), filter_mask=1)
    np.testing.assert_array_equal(read(tmp_path / "skipped.h5", "x", kinds="u"), raw)


def test_json_of_exactly_the_length_cap_is_parsed():
    """parse_json takes a text of MAX_JSON_CHARS = 2**20 characters, and refuses one more."""
    # kills h5text 1 and 3 (2**21 allowed), 4 (2**19: a 1 MiB text refused) and 138 (a
    # text of the cap refused)
    text = '"' + "a" * (2**20 - 2) + '"'
    assert h5text.parse_json("f.h5", text, "text", ValueError) == "a" * (2**20 - 2)
    longer = text + " "
    with pytest.raises(ValueError, match=r"f.h5: its text is 1048577 characters long, more"):
        h5text.parse_json("f.h5", longer, "text", ValueError)


def test_json_nested_exactly_max_depth_deep_is_parsed():
    """64 nested lists are parsed; 65 are refused before json.loads. Brackets inside a
    string, even one that opens the text, nest nothing."""
    # kills h5text 102 (the scan began past the first character: the string's opening
    # quote missed, its 100 brackets counted as nesting), 113 and 115 (the same, for a
    # quote at 0), 108 (the scan stopped at depth 64, before the 65th level), 127 and 129
    # (the scan stopped at the first string), 119, 122 and 123 (an opening bracket
    # counted twice, a closing one twice or not at all)
    assert h5text.parse_json("f.h5", '"' + "[" * 100 + '"', "text", ValueError) == "[" * 100
    parsed = h5text.parse_json("f.h5", "[" * 64 + "]" * 64, "text", ValueError)
    for _ in range(63):
        (parsed,) = parsed
    assert parsed == []
    with pytest.raises(ValueError, match="f.h5: its text is nested deeper than 64 levels"):
        h5text.parse_json("f.h5", "[" * 65 + "]" * 65, "text", ValueError)
    behind_a_string = "[" * 64 + '"a", []' + "]" * 64  # 65 deep, a string at depth 64
    after_a_closed_list = "[[], " + "[" * 64 + "]" * 64 + "]"  # 65 deep
    for text in (behind_a_string, after_a_closed_list):
        with pytest.raises(ValueError, match="nested deeper than 64 levels"):
            h5text.parse_json("f.h5", text, "text", ValueError)
    assert h5text.parse_json("f.h5", "[" + "[], " * 100 + "[]]", "text", ValueError) == [[]] * 101


def test_a_fixed_length_attribute_of_exactly_the_cap_is_read(tmp_path):
    """A fixed-length string of MAX_ATTR_BYTES = 2**20 bytes is read whole; a byte more
    is refused by its stored size before it is read."""
    # kills h5text 33 (a stored size of the cap refused) and 49 (its length refused)
    path = tmp_path / "attrs.h5"
    with h5py.File(path, "w", libver="latest") as f:  # dense storage: past 64 kB
        f.attrs["at_cap"] = np.bytes_(b"x" * 2**20)
        f.attrs["past_cap"] = np.bytes_(b"x" * (2**20 + 1))
    with h5py.File(path, "r") as f:
        assert h5text.attribute(path, f, "at_cap", ValueError, "str") == "x" * 2**20
        with pytest.raises(ValueError, match=r"/@past_cap is larger than 1048576 bytes"):
            h5text.attribute(path, f, "past_cap", ValueError, "str")


def test_class_names_may_declare_up_to_max_bytes(tmp_path):
    """``max_bytes`` is the most a dataset may declare: two 2048-byte names (4096 bytes)
    pass ``max_bytes=4096``, two 2049-byte names are refused."""
    # kills h5safe 157 (a dataset of exactly max_bytes refused) and 200 (strings of over
    # 8 bytes refused as if they were numbers)
    at_cap = np.array([b"n" * 2048, b"c" * 2048], dtype="S2048")
    path = written(
        tmp_path / "names.h5",
        at_cap=(at_cap, {}),
        past_cap=(np.array([b"n", b"c"], dtype="S2049"), {}),
    )
    assert read(path, "at_cap", kinds="S", max_bytes=4096).tolist() == at_cap.tolist()
    with pytest.raises(ValueError, match=r"/past_cap declares \(2,\) \|S2049 \(4098 bytes\)"):
        read(path, "past_cap", kinds="S", max_bytes=4096)


def test_printable_escapes_what_would_not_print():
    """Each unprintable character becomes its escape, backslash included: a newline
    is shown as \\n, not as the letter n."""
    # kills h5safe 51 (the backslash dropped), 52 (a quote kept), 53 and 54 (a character
    # of the escape, or all of it, dropped)
    text = "a\nb\x1b[2J\ud800 ok"
    assert h5safe.printable(text) == "a\\nb\\x1b[2J\\ud800 ok"
    assert h5safe.printable("plain text") == "plain text"


def test_a_string_read_apart_that_fails_is_named_as_damage(tmp_path):
    """A variable-length string whose reading child fails (here: no such object) is an
    error naming the file, with the child's last line, not a crash of the parent."""
    # kills h5text 63 (the child's output taken as bytes: printable(bytes) raised), 65
    # (reason deleted), 68 ("no message" always), 70 (its first line, "Traceback") and 84
    # (the failure passed over: json.loads of an empty output)
    path = tmp_path / "text.h5"
    with h5py.File(path, "w") as f:
        f.attrs["note"] = "hello"  # h5py writes a variable-length string
    said = r"cannot read the string /nope/@note, it is damaged \(KeyError: "
    with h5py.File(path, "r") as f:
        missing = types.SimpleNamespace(name="/nope", file=f)
        with pytest.raises(ValueError, match=said):
            h5text._read_apart(path, missing, "note", "/nope/@note", ValueError)
        assert h5text.attribute(path, f, "note", ValueError, "str") == "hello"


def test_the_string_reading_child_ignores_the_working_folder(tmp_path, monkeypatch):
    """The child that reads a variable-length string is not handed the working folder
    (sys.path's ""): an h5py.py planted there is not what it imports."""
    # kills h5text 58 ("" passed on: the planted module answered for the file)
    path = tmp_path / "text.h5"
    with h5py.File(path, "w") as f:
        f.attrs["note"] = "from the file"
    (tmp_path / "h5py.py").write_text("import sys\nsys.stdout.write('\"planted\"')\nsys.exit(0)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")
    with h5py.File(path, "r") as f:
        assert h5text.attribute(path, f, "note", ValueError, "str") == "from the file"


def test_a_child_that_cannot_import_h5py_is_not_blamed_on_the_file(tmp_path, monkeypatch):
    """An h5py that fails to import in the child: the string is read in this process,
    with a warning, as the structure's walk is; it was refused, the file named damaged
    (and then "not an nnbackend checkpoint" by a save over it)."""
    # kills h5text 73 (its exit code 3 not recognised) and 74 (the "did not start" dropped)
    path = tmp_path / "text.h5"
    with h5py.File(path, "w") as f:
        f.attrs["note"] = "hello"
    broken = tmp_path / "elsewhere" / "h5py"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('a broken h5py')\n")
    monkeypatch.syspath_prepend(str(broken.parent))
    monkeypatch.setattr(h5child, "_warned", [])
    with h5py.File(path, "r") as f, pytest.warns(RuntimeWarning, match=r"\(ImportError: a broken"):
        assert h5text.attribute(path, f, "note", ValueError, "str") == "hello"


@pytest.mark.parametrize("make", ["group", "empty"])
def test_cat_images_that_are_a_group_or_hold_no_data_are_named(tmp_path, make):
    """train_set_x as a group, or as a dataset of an empty dataspace, is a CatFileError
    saying so (not an AttributeError of a group's shape, nor "damaged")."""
    # kills h5safe 166 and 168 (a group's .shape: AttributeError), 167 and 171 (no
    # refusal: the empty dataspace reached tuple(None)); "empty" on dataset() kills 142
    write_tiny_cat(tmp_path)
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        del f["train_set_x"]
        if make == "group":
            f.create_group("train_set_x")
        else:
            f.create_dataset("train_set_x", data=h5py.Empty("u1"))
    with pytest.raises(CatFileError, match=r"train_catvnoncat.h5: /train_set_x is not a dataset"):
        nb.datasets.load_catvnoncat(tmp_path)
    if make == "empty":
        with pytest.raises(ValueError, match=r"/train_set_x has no data \(an empty dataspace\)"):
            read(tmp_path / "train_catvnoncat.h5", "train_set_x", kinds="u")


def shuffled_short(path):
    """Two shuffled, uncompressed 4096-byte chunks: the first stored twice over, the
    second as 4 bytes. The file holds all 8192 bytes declared, so the size check passes."""
    with h5py.File(path, "w") as f:
        x = f.create_dataset("x", (2, 4096), "u1", chunks=(1, 4096), shuffle=True)
        x.id.write_direct_chunk((0, 0), bytes(2 * 4096))
        x.id.write_direct_chunk((1, 0), bytes(4))


def deflated_short(path):
    """A (2, 8) float32 chunk (64 bytes) whose deflate stream inflates to 4 bytes."""
    with h5py.File(path, "w") as f:
        x = f.create_dataset("x", (2, 8), "f4", chunks=(2, 8), compression="gzip")
        x.id.write_direct_chunk((0, 0), zlib.compress(bytes(4), 9))


@pytest.mark.parametrize(
    ("write", "says"),
    [(shuffled_short, "a chunk of 8192 bytes where its size is 4096"),
     (deflated_short, "a chunk of 4 bytes where its size is 64")],
)  # fmt: skip
def test_a_filtered_chunk_short_of_its_size_is_refused(tmp_path, write, says):
    """HDF5 does not check the length a filter gives back: the rest of the chunk would
    be whatever memory held before (pointers, other arrays), different at each read.
    Every chunk's length is checked, a long one's as a short one's."""
    path = tmp_path / "short.h5"
    write(path)
    with pytest.raises(ValueError, match=f"has {says}; it is damaged or crafted"):
        read(path, "x", kinds="fu")


def test_a_checkpoint_whose_weights_chunk_comes_back_short_is_refused(tmp_path):
    """Through nb.load: a gzip chunk of 0.W that inflates to 4 of its 64 bytes loaded as
    weights of stale memory, different at each load."""
    path = tmp_path / "short.h5"
    nb.save(nb.Sequential([nb.layers.Dense(2, 8)], seed=0), path)
    with h5py.File(path, "r+") as f:
        del f["weights/0.W"]
        w = f.create_dataset("weights/0.W", (2, 8), "f4", chunks=(2, 8), compression="gzip")
        w.id.write_direct_chunk((0, 0), zlib.compress(bytes(4), 9))
    with pytest.raises(nb.CheckpointError, match=r"/weights/0.W has a chunk of 4 bytes where"):
        nb.load(path)


def older_checkpoint(tmp_path):
    """A checkpoint whose architecture is a variable-length string, as files saved before
    nb.save wrote fixed-length ones hold: read by a child of h5text."""
    path = nb.save(nb.Sequential([nb.layers.Dense(2, 3)], seed=0), tmp_path / "older.h5")
    with h5py.File(path, "a") as f:
        f.attrs["architecture"] = f.attrs["architecture"].decode()
    return path


def test_an_older_checkpoint_loads_while_another_handle_writes_it(tmp_path):
    """The string's child opened the file by name again, which HDF5 refuses while a
    writer holds it ("already open for write"): the file was called damaged."""
    path = older_checkpoint(tmp_path)
    with h5py.File(path, "a"):
        assert nb.load(path).layers[0].n_out == 3


def test_a_program_without_a_child_python_loads_an_older_checkpoint(tmp_path, monkeypatch):
    """A frozen app walked the structure in-process, as the README says, but refused
    every variable-length string, and a save over such a file called it not a checkpoint."""
    path = older_checkpoint(tmp_path)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(h5child, "_warned", [])
    with pytest.warns(RuntimeWarning, match="cannot start a child Python"):
        model = nb.load(path)
    assert model.layers[0].n_out == 3
    nb.save(model, path)


def test_the_readers_handle_fills_each_read_whole(tmp_path):
    """An unbuffered read may come back short (a pipe, a network file system, 2 GiB on
    Linux), and h5py's driver zeroes the rest of what it asked for: the handle asks on."""
    import threading

    read_end, write_end = os.pipe()
    os.write(write_end, b"abc")
    later = threading.Timer(0.2, lambda: (os.write(write_end, b"def"), os.close(write_end)))
    later.start()
    handle = h5safe._WholeReads(read_end, "r")
    buffer = bytearray(8)
    assert handle.readinto(buffer) == 6 and bytes(buffer[:6]) == b"abcdef"  # then its end
    handle.close()
    later.join()


@pytest.mark.slow
def test_a_contiguous_dataset_past_2_gib_is_read_whole(tmp_path):
    """One read(2) gives at most 2 GiB - 4 KiB on Linux: the unbuffered handle's short
    read became zeros at the end of a 2 GiB cat file's images, without an error."""
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:  # sparse: only the last byte is written
        f.create_dataset("x", shape=(2**31,), dtype="u1")[-1] = 7
    with h5safe.open_untrusted(path) as f:
        x = h5safe.dataset(path, f, "x", ValueError, kinds="u", shape=(2**31,))
    assert x[-1] == 7
