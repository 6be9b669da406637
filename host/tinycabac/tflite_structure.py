"""Which bytes of a .tflite file are flatbuffer structure, not weight data.

A valid flatbuffer never lets a buffer's data share bytes with a table, a
vector or a string, but a crafted file can: an offset/size buffer
(`Buffer.offset`, the layout past 2 GB) may point anywhere in the file, into
the model's own tables included.  Coded losslessly such a buffer comes back
byte for byte, and nothing is lost; coded lossily it would overwrite the
tables it overlaps and rebuild a broken model.  `structure_ranges` walks
every table the `tflite` package's schema knows, reachable from the root,
and returns the byte ranges it occupies, so `split_tflite` can leave a
buffer that overlaps them in the skeleton, carried exactly.

The walk is generic over the generated reader classes: each accessor of a
table is called (every element of a vector), and a table subclass records
every byte range the calls read, plus each table's whole inline part and
vtable, so fields newer than the installed schema still count when they are
stored inline.  Of the weights themselves (`Buffer.data`) only the length
word is read.
"""

from __future__ import annotations

import bisect
import inspect
from functools import lru_cache

import flatbuffers
import tflite
from flatbuffers import encode
from flatbuffers import number_types as N

# Union fields: accessor name -> the enum naming the union's member tables.
_UNION_ENUMS = {
    "BuiltinOptions": tflite.BuiltinOptions,
    "BuiltinOptions2": tflite.BuiltinOptions2,
    "Details": tflite.QuantizationDetails,
    "ArraySegments": tflite.SparseIndexVector,
    "ArrayIndices": tflite.SparseIndexVector,
}
_UOFFSET = N.UOffsetTFlags


class _RecordingTable(flatbuffers.table.Table):
    """A flatbuffers Table that appends every range it reads to `ranges`."""

    __slots__ = ("ranges",)

    def __init__(self, buf, pos: int, ranges: list[tuple[int, int]]):
        super().__init__(buf, pos)
        self.ranges = ranges
        vtable = pos - encode.Get(N.SOffsetTFlags.packer_type, buf, pos)
        vtable_size = encode.Get(N.VOffsetTFlags.packer_type, buf, vtable)
        table_size = encode.Get(N.VOffsetTFlags.packer_type, buf, vtable + 2)
        ranges.append((vtable, vtable + max(vtable_size, 4)))
        ranges.append((pos, pos + max(table_size, 4)))

    def _uoffset(self, off: int) -> int:
        self.ranges.append((off, off + _UOFFSET.bytewidth))
        return encode.Get(_UOFFSET.packer_type, self.Bytes, off)

    def Get(self, flags, off):
        self.ranges.append((off, off + flags.bytewidth))
        return super().Get(flags, off)

    def Indirect(self, off):
        return off + self._uoffset(off)

    def String(self, off):
        start = off + self._uoffset(off)
        length = self._uoffset(start)
        self.ranges.append((start, start + _UOFFSET.bytewidth + length + 1))  # with its NUL
        return bytes(self.Bytes[start + _UOFFSET.bytewidth : start + _UOFFSET.bytewidth + length])

    def VectorLen(self, off):
        off += self.Pos
        return self._uoffset(off + self._uoffset(off))

    def Vector(self, off):
        off += self.Pos
        return off + self._uoffset(off) + _UOFFSET.bytewidth

    def GetVectorAsNumpy(self, flags, off):
        start, length = self.Vector(off), self.VectorLen(off)
        self.ranges.append((start, start + length * flags.bytewidth))
        return encode.GetVectorAsNumpy(N.to_numpy_type(flags), self.Bytes, length, start)

    def Union(self, t2, off):
        self._uoffset(off + self.Pos)
        super().Union(t2, off)


def structure_ranges(data: bytes) -> list[tuple[int, int]]:
    """Sorted, merged [start, end) ranges of every table, vtable, vector and
    string reachable from the root of a .tflite file, weights excluded.

    Raises what the flatbuffer readers raise on corrupt tables (struct.error,
    IndexError, ...)."""
    ranges: list[tuple[int, int]] = [(0, 8)]  # the root offset and the file identifier
    model = tflite.Model.GetRootAs(data, 0)
    _walk(model, ranges, set())
    return _merged(ranges)


def _walk(table, ranges: list[tuple[int, int]], seen: set[tuple[type, int]]) -> None:
    key = (type(table), table._tab.Pos)
    if key in seen:  # shared tables, and cycles in a crafted file
        return
    seen.add(key)
    table._tab = _RecordingTable(table._tab.Bytes, table._tab.Pos, ranges)
    for name, kind in _accessors(type(table)):
        accessor = getattr(table, name)
        if kind == "vector":
            values = (accessor(j) for j in range(getattr(table, name + "Length")()))
        elif kind == "scalar vector":
            values = (getattr(table, name + "AsNumpy")(),)
        else:
            values = (accessor(),)
        for value in values:
            _visit(table, name, value, ranges, seen)


def _visit(parent, name: str, value, ranges, seen) -> None:
    if isinstance(value, flatbuffers.table.Table):  # a union's member
        member = _union_member(_UNION_ENUMS.get(name), getattr(parent, name + "Type")())
        if member is None:
            _RecordingTable(value.Bytes, value.Pos, ranges)  # unknown member: its table at least
            return
        value, table = member(), value
        value.Init(table.Bytes, table.Pos)
    if hasattr(value, "_tab"):
        _walk(value, ranges, seen)


def _union_member(enum, code: int):
    if enum is None:
        return None
    for member_name, member_code in vars(enum).items():
        if member_code == code and not member_name.startswith("_"):
            return getattr(tflite, member_name, None)
    return None


@lru_cache(maxsize=None)
def _accessors(cls: type) -> tuple[tuple[str, str], ...]:
    """(name, kind) of the field accessors of a generated table class: kind is
    "one" (a scalar, string, table or union), "vector" (read element by
    element) or "scalar vector" (read at once with its AsNumpy form)."""
    members = vars(cls)
    found = []
    for name, member in members.items():
        if name.startswith("_") or name == "Init" or not inspect.isfunction(member):
            continue
        if name.endswith(("Length", "IsNone", "AsNumpy")) or (name.endswith("Type") and name[:-4] in members):
            continue  # read through the field's own accessor
        if cls is tflite.Buffer and name == "Data":
            found.append(("DataLength", "one"))  # the weights' length word, not the weights
            continue
        if member.__code__.co_argcount == 1:
            found.append((name, "one"))
        else:
            found.append((name, "scalar vector" if name + "AsNumpy" in members else "vector"))
    return tuple(found)


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def overlaps(ranges: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) meets one of the sorted, merged `ranges`."""
    position = bisect.bisect_left(ranges, (end,))  # ranges[:position] start before `end`
    return position > 0 and ranges[position - 1][1] > start
