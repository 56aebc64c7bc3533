"""Which HDF5 types an untrusted file's datasets and attributes may hold, checked
before h5py turns one into a NumPy dtype: h5py's dtype of a type nested deep takes
memory growing with the square of its depth (``shallow``), and a reader takes plain
integers, floats and fixed-length strings alone (``plain_dtype``).
"""

from __future__ import annotations

import h5py

#: HDF5 type classes that hold no other type. h5py's dtype of a type that nests others
#: (variable-length of variable-length of ...) takes memory growing with the square of
#: its depth: 14 GB for an attribute of a 77 KB file. Only types nested at most
#: MAX_TYPE_DEPTH deep (a complex number is a compound of two floats) become one.
FLAT_TYPES = {
    h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.STRING, h5py.h5t.BITFIELD, h5py.h5t.OPAQUE,
    h5py.h5t.ENUM, h5py.h5t.TIME, h5py.h5t.REFERENCE,
}  # fmt: skip
MAX_TYPE_DEPTH = 3
NESTED = f"a type nested more than {MAX_TYPE_DEPTH} deep"


def shallow(type_id, room: int = MAX_TYPE_DEPTH) -> bool:
    """Whether the HDF5 type ``type_id`` nests other types at most ``room`` deep."""
    cls = type_id.get_class()
    if cls in FLAT_TYPES:
        return True
    if room == 0:
        return False
    if cls == h5py.h5t.COMPOUND:
        members = range(type_id.get_nmembers())
        return all(shallow(type_id.get_member_type(i), room - 1) for i in members)
    return cls in (h5py.h5t.ARRAY, h5py.h5t.VLEN) and shallow(type_id.get_super(), room - 1)


def plain_dtype(path, where, item, kinds: str, error):
    """The NumPy dtype of the dataset ``item`` at ``where``, once its HDF5 type is a
    plain one of ``kinds`` ("f" floats, "iu" integers, "S" fixed-length bytes)."""
    classes = {h5py.h5t.INTEGER, h5py.h5t.FLOAT}
    type_id = item.id.get_type()
    cls = type_id.get_class()
    expected = f"but {_kind_names(kinds)} are expected"
    if not shallow(type_id):  # before h5py makes its dtype
        raise error(f"{path}: {where} holds values of {NESTED}, {expected}")
    fixed_string = cls == h5py.h5t.STRING and not type_id.is_variable_str()
    dtype = item.dtype
    plain = cls in classes or fixed_string
    if not plain or dtype.kind not in kinds or dtype.itemsize > 8 and dtype.kind != "S":
        held = f"{dtype} values"
        if cls == h5py.h5t.ENUM and dtype.kind in "iu":  # h5py shows it as its integers
            held = f"HDF5 enum values (of {dtype})"
        elif variable_string(type_id):  # h5py's dtype of them: object
            held = "variable-length strings (as h5py writes a list of str)"
        raise error(f"{path}: {where} holds {held}, {expected}")
    return dtype


def _kind_names(kinds: str) -> str:
    names = {"f": "floats", "i": "integers", "u": "integers", "S": "fixed-length strings"}
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


def variable_string(type_id) -> bool:
    """Whether ``type_id`` is a variable-length string's (kept in the global heap)."""
    return type_id.get_class() == h5py.h5t.STRING and type_id.is_variable_str()
