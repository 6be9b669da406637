"""Model files <-> tinycabac streams: `.npz` (any dict of arrays) and
`.tflite` (weights coded, every other byte carried so that lossless decoding
rebuilds the file byte for byte)."""
from __future__ import annotations

import io
import json
import os
import stat
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import codec, native, skeleton_pack
from .container import (
    MAX_STEP_COUNT,
    ContainerTensors,
    RESERVED_NAME_PREFIX,
    TFLITE_LAYOUT_NAME,
    TFLITE_PACKED_SKELETON_NAME,
    TFLITE_PLACES_NAME,
    TFLITE_SKELETON_NAME,
    FormatError,
)
from .tflite_io import SPARSE_INDEX_VECTOR, TFLITE_FILE_IDENTIFIER, join_tflite, split_tflite, tflite_names_by_offset

SKELETON_NAME = TFLITE_SKELETON_NAME
PACKED_SKELETON_NAME = TFLITE_PACKED_SKELETON_NAME
LAYOUT_NAME = TFLITE_LAYOUT_NAME
PLACES_NAME = TFLITE_PLACES_NAME
# What join_tflite needs from each layout record; the rest (scales, ...) is in the skeleton.
_LAYOUT_KEYS = ("name", "offset", "length", "dtype", "shape")
# What numpy and zipfile raise on a damaged archive: a bad header or CRC, a
# cut member, a method, flag or encryption a mangled byte asks for (zipfile's
# RuntimeError), a broken deflate stream.
_NPZ_ERRORS = (ValueError, OSError, EOFError, NotImplementedError, RuntimeError, KeyError, struct.error, zlib.error,
               zipfile.BadZipFile)  # fmt: skip


class ModelFileError(ValueError):
    """A model file cannot be read or written."""


@dataclass
class Model:
    kind: str  # "tflite" or "npz"
    tensors: dict[str, np.ndarray]
    skeleton: bytes = b""
    layout: dict = field(default_factory=dict)
    _packed: tuple | None = field(default=None, init=False, repr=False, compare=False)  # (skeleton, packed or None)

    def stream_tensors(self, packed: bool = True) -> dict[str, np.ndarray]:
        """The tensors to encode, with the container data a .tflite needs:
        the skeleton, and where the weights go back (FORMAT 3.5).  The places
        table says that for every file under 2 GiB, together with the
        directory's names, dtypes and shapes; only larger files need the
        JSON layout.  The skeleton is packed (FORMAT 3.6) when that makes it
        smaller, unless `packed` is false: updates keep it plain, since they
        code it as a difference from the base's, and a base's digest must not
        depend on how this version of the packer parses it."""
        if self.kind != "tflite":
            return dict(self.tensors)
        tensors = ContainerTensors(self.tensors)
        packed_skeleton = self._packed_skeleton() if packed else None
        if packed_skeleton is not None:
            tensors[PACKED_SKELETON_NAME] = np.frombuffer(packed_skeleton, dtype=np.uint8)
        else:
            tensors[SKELETON_NAME] = np.frombuffer(self.skeleton, dtype=np.uint8)
        places = self._places()
        if places is not None:
            tensors[PLACES_NAME] = places
        else:
            layout = {
                "format": "tflite",
                "file_size": self.layout["file_size"],
                "weights": [{k: r[k] for k in _LAYOUT_KEYS} for r in self.layout["weights"]],
            }
            tensors[LAYOUT_NAME] = np.frombuffer(json.dumps(layout, separators=(",", ":")).encode(), dtype=np.uint8)
        return tensors

    def _packed_skeleton(self) -> bytes | None:
        """The packed skeleton if it codes smaller than the plain one and
        fits the file's room beside it (S + P <= file size, FORMAT 3.5), so
        that a device can unpack it in place; else None.  Kept, so that a
        caller that asks more than once (the benches encode one model at
        many settings) packs and trial-encodes it once."""
        if self._packed is None or self._packed[0] is not self.skeleton:
            packed = skeleton_pack.pack(self.skeleton)
            fits = len(self.skeleton) + len(packed) <= self.layout["file_size"]
            if not fits or _coded_size(packed) >= _coded_size(self.skeleton):
                packed = None
            self._packed = (self.skeleton, packed)
        return self._packed[1]

    def _places(self) -> np.ndarray | None:
        """The layout as a device reads it (FORMAT 3.5, decoder_c/tflite/):
        int32 [file size, then (directory index, file offset) of every weight
        buffer by increasing offset].  The weights come first in the stream,
        in layout order.  Files of 2 GiB or more (no device holds them) get
        none."""
        index = {name: position for position, name in enumerate(self.tensors)}
        values = _places_values(self.layout["file_size"], self.layout["weights"], index)
        if max(values) >= 2**31:
            return None
        return np.array(values, dtype=np.int32)

    def tflite_names(self) -> dict[str, str]:
        """{stream name: TFLite tensor name} of the weights of a .tflite
        file read here (split_tflite's records name the tensors that use
        each buffer); {} for an .npz archive or a model decoded from a
        stream, whose layout does not say (the stream's `tflite_names`)."""
        records = self.layout.get("weights", []) if self.kind == "tflite" else []
        return {r["name"]: r["tensors"][0]["name"] for r in records if "tensors" in r}

    def channel_axes(self) -> dict[str, int]:
        """Tensor name -> output-channel axis, for the tensors that have
        output channels: in a .tflite file the filters of convolution and
        fully-connected operators (axis 3 of a depthwise filter), in an .npz
        archive axis 0 of every array of two or more dimensions.  Biases and
        other 1-D tensors have none, nor has a tensor with more channels
        than the format has steps (FORMAT 3.4): one step serves them."""
        if self.kind == "tflite":
            axes = {r["name"]: r.get("channel_axis") for r in self.layout.get("weights", [])}
        else:
            axes = {name: 0 for name, a in self.tensors.items() if np.ndim(a) >= 2}
        return {
            name: axis for name, axis in axes.items()
            if axis is not None and 1 < np.shape(self.tensors[name])[axis] <= MAX_STEP_COUNT
        }

    def to_bytes(self) -> bytes:
        if self.kind == "tflite":
            return join_tflite(self.skeleton, self.layout, self.tensors)
        return _npz_bytes(self.tensors)


def _coded_size(data: bytes | np.ndarray) -> int:
    """The size of a stream of one tensor: an array, or bytes as uint8."""
    array = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    return len(codec.encode({"tensor": array}))


def _index_vector_views(weights: dict[str, np.ndarray], layout: dict) -> dict[str, np.ndarray]:
    """Each uint16 sparse index vector (split_tflite gives it as int16) as
    int8 pairs, its low and high bytes, when that codes smaller.  Difference
    prediction clamps the level it remembers to int8 (FORMAT 5.7), so
    column numbers above 127 gain little as int16; as pairs nothing is
    clamped, but the high bytes dilute the low ones' statistics, so which
    view wins depends on the vector (pose_detection: pairs 12% smaller,
    face_detection_full_range_sparse: int16 17% smaller).  Either view
    rebuilds the same bytes; the layout records the one chosen."""
    weights = dict(weights)
    for record in layout["weights"]:
        if record["tensor_type"] != SPARSE_INDEX_VECTOR or record["dtype"] != "int16":
            continue
        values = weights[record["name"]]
        pairs = values.view(np.int8).reshape(-1, 2)
        if _coded_size(pairs) < _coded_size(values):
            weights[record["name"]] = pairs
            record.update(dtype=pairs.dtype.name, shape=list(pairs.shape))
    return weights


def _npz_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    """The arrays as an .npz archive that np.load reads back as the same
    names, written member by member as np.savez does, but not through its
    keyword arguments, which a tensor named "file" or "allow_pickle" would
    collide with."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in tensors.items():
            if "\0" in name:  # zipfile ends a member name at its first NUL
                raise ModelFileError(f"tensor {name!r}: an .npz member name cannot hold a NUL character")
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def _check_npz_members(archive: zipfile.ZipFile) -> None:
    """Refuse what np.load would get wrong: a member name twice (it keeps one
    array), or an array header claiming more bytes than its member holds
    (it would allocate that much before finding the data short)."""
    names = archive.namelist()
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"member {twice[:40]!r} appears twice")
    for info in archive.infolist():
        with archive.open(info) as member:
            if member.read(6) != b"\x93NUMPY":
                continue  # not an array: np.load and the dtype check say so
            member.seek(0)
            version = np.lib.format.read_magic(member)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)  # fmt: skip
            if read_header is None:
                continue  # np.load refuses other versions itself
            shape, _, dtype = read_header(member)
            claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if claimed > info.file_size - member.tell():
                raise ValueError(f"member {info.filename[:40]!r} claims {claimed} bytes of data "
                                 f"but holds {info.file_size - member.tell()}")


def _looks_like_tflite(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == TFLITE_FILE_IDENTIFIER


def model_from_bytes(data: bytes, source: str = "input") -> Model:
    """Recognise a .tflite flatbuffer or an .npz archive by content."""
    if _looks_like_tflite(data):
        try:
            weights, skeleton, layout = split_tflite(data)
        except ValueError as error:
            raise ModelFileError(f"{source}: {error}") from error
        return Model("tflite", _index_vector_views(weights, layout), skeleton, layout)
    if data[:4] == b"PK\x05\x06":  # a zip archive's end record first: nothing in it
        raise ModelFileError(f"{source}: an empty .npz archive (no arrays)")
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as members:
                _check_npz_members(members)
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                tensors = {name: archive[name] for name in archive.files}
        except _NPZ_ERRORS as error:
            reason = str(error) or type(error).__name__
            raise ModelFileError(f"{source}: not a readable .npz archive ({reason})") from error
        reserved = [name for name in tensors if name.startswith(RESERVED_NAME_PREFIX)]
        if reserved:
            raise ModelFileError(f"{source}: array {reserved[0][:40]!r}: names starting with "
                                 f"{RESERVED_NAME_PREFIX!r} are reserved for container data; rename it")
        return Model("npz", tensors)
    raise ModelFileError(f"{source}: neither a .tflite flatbuffer nor an .npz archive")


def read_model(path: str | os.PathLike) -> Model:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelFileError(f"cannot read {path}: {error.strerror or error}") from error
    return model_from_bytes(data, str(path))


def encode_model(model: Model, **options) -> bytes:
    """Encode a model; options as for tinycabac.encode (per-tensor mappings
    may name tensors of the model)."""
    return codec.encode(model.stream_tensors(), **options)


def encode_update(model: Model, base: Model, **options) -> bytes:
    """An update stream turning `base` (as the receiver holds it) into `model`."""
    if model.kind != base.kind:
        raise ModelFileError(f"cannot code a {model.kind} model as an update of a {base.kind} model")
    return codec.encode(model.stream_tensors(packed=False), base=base.stream_tensors(packed=False), **options)


def apply_update(base: Model, stream: bytes) -> Model:
    """The model an update stream makes of `base` (refuses a wrong base)."""
    tensors = codec.apply(base.stream_tensors(packed=False), stream, include_reserved=True)
    return _model_from_tensors(tensors, stream)


def decode_model(stream: bytes) -> Model:
    """Rebuild the model a stream came from (float weights as decoded)."""
    return _model_from_tensors(codec.decode(stream, include_reserved=True), stream)


def packed_skeleton_sizes(stream: bytes) -> tuple[int, int] | None:
    """(skeleton bytes S, packed bytes P) of a stream whose .tflite skeleton
    is packed (FORMAT 3.6), or None: what `info` reports beside the packed
    tensor, whose own ratio is that of the packed bytes."""
    for index, entry in enumerate(codec.info(stream)):
        if entry.name == PACKED_SKELETON_NAME and entry.elements >= skeleton_pack.HEADER.size:
            header = native.Stream(stream).decode(index)[: skeleton_pack.HEADER.size].tobytes()
            return skeleton_pack.HEADER.unpack(header)[0], entry.elements
    return None


# tflite_names rebuilds the file, twice its size in memory: a few bytes of
# stream can declare a file of up to 2 GiB of zeros.
_MAX_NAMED_FILE_SIZE = 256 << 20


def tflite_names(stream: bytes) -> dict[str, str]:
    """{stream name: TFLite tensor name} of each weight of a .tflite stream,
    {} for any other stream, one whose container data does not decode, or
    one of a file over 256 MiB.

    The encoder codes a weight with a long TFLite name under the tensor's
    index (tflite_io.stream_name); this finds the name again from the
    skeleton and the places alone, without decoding any weight: the file is
    rebuilt with zero weights, which gives the same tables, and each place
    is matched with the buffer or index vector that starts there."""
    entries = codec.info(stream)
    container = {PACKED_SKELETON_NAME, SKELETON_NAME, PLACES_NAME}
    try:
        decoder = native.Stream(stream)
        tensors = {entry.name: decoder.decode(index) for index, entry in enumerate(entries) if entry.name in container}
        # Not asked for LAYOUT_NAME: a file of 2 GiB or more is refused here
        # as having no places, as any stream that is not of a .tflite file.
        model = _model_from_tensors(tensors, stream)
        if model.kind != "tflite" or model.layout["file_size"] > _MAX_NAMED_FILE_SIZE:
            return {}
        records = model.layout["weights"]
        zeros = {record["name"]: np.zeros(record["shape"], record["dtype"]) for record in records}
        names_at = tflite_names_by_offset(join_tflite(model.skeleton, model.layout, zeros))
    except ValueError:  # FormatError too: info still lists a stream whose tensors do not decode
        return {}
    return {record["name"]: names_at[record["offset"]] for record in records if record["offset"] in names_at}


def _model_from_tensors(tensors: dict[str, np.ndarray], stream: bytes) -> Model:
    if SKELETON_NAME not in tensors and PACKED_SKELETON_NAME not in tensors:
        return Model("npz", tensors)
    entries = codec.info(stream)
    try:
        _check_container_tensors(entries)
        packed = tensors.pop(PACKED_SKELETON_NAME, None)
        skeleton = skeleton_pack.unpack(packed.tobytes()) if packed is not None else tensors.pop(SKELETON_NAME).tobytes()
        if LAYOUT_NAME in tensors:  # a file of 2 GiB or more
            layout = _layout_from_json(tensors.pop(LAYOUT_NAME).tobytes(), entries, len(skeleton))
        else:
            layout = _layout_from_places(tensors.pop(PLACES_NAME), entries, len(skeleton))
        if packed is not None and len(skeleton) + packed.size > layout["file_size"]:
            raise ValueError(f"{PACKED_SKELETON_NAME} and the skeleton it holds exceed the file's size together")
    except (KeyError, ValueError) as error:
        raise FormatError(f"stream's .tflite container data is damaged: {error}") from error
    return Model("tflite", tensors, skeleton, layout)


# The container tensors of a .tflite stream and their dtypes (FORMAT 3.5):
# coded exactly, as the device helper and tcdec require.
_CONTAINER_DTYPES = {SKELETON_NAME: "uint8", PACKED_SKELETON_NAME: "uint8", PLACES_NAME: "int32", LAYOUT_NAME: "uint8"}


def _check_container_tensors(entries: list) -> None:
    names = {entry.name for entry in entries}
    if PLACES_NAME in names and LAYOUT_NAME in names:
        raise ValueError(f"both {PLACES_NAME} and {LAYOUT_NAME}: which one says where the weights go?")
    if SKELETON_NAME in names and PACKED_SKELETON_NAME in names:
        raise ValueError(f"both {SKELETON_NAME} and {PACKED_SKELETON_NAME}: which one is the file's skeleton?")
    for entry in entries:
        dtype = _CONTAINER_DTYPES.get(entry.name)
        if dtype is not None and (entry.dtype != dtype or not entry.mode.endswith("lossless")):
            raise ValueError(f"{entry.name} is a {entry.mode} {entry.dtype} tensor, not a lossless {dtype} one")


def _places_values(file_size: int, records: list[dict], index: dict[str, int]) -> list[int]:
    """The places table (FORMAT 3.5) of layout records: the file size, then
    (tensor index, offset) of each weight buffer by increasing offset."""
    values = [file_size]
    for record in sorted(records, key=lambda record: record["offset"]):
        values += [index[record["name"]], record["offset"]]
    return values


def _layout_from_places(places: np.ndarray, entries: list, skeleton_size: int) -> dict:
    """join_tflite's layout from __tflite_places__ and the directory
    (FORMAT 3.5): each weight buffer is its tensor's elements in the
    tensor's dtype, buffers by increasing offset, and buffers and skeleton
    fill the file exactly."""
    values = [int(value) for value in np.asarray(places).reshape(-1)]
    if len(values) % 2 != 1:
        raise ValueError("places table of even length")
    file_size, weights, end = values[0], [], 0
    for index, offset in zip(values[1::2], values[2::2]):
        if not 0 <= index < len(entries) or entries[index].name.startswith(RESERVED_NAME_PREFIX):
            raise ValueError(f"places name directory entry {index}, which is not a weight tensor")
        entry = entries[index]
        length = entry.elements * np.dtype(entry.dtype).itemsize
        if offset < end or offset + length > file_size:
            raise ValueError(f"weight {entry.name!r} placed at {offset}, outside the file or over another")
        end = offset + length
        weights.append({"name": entry.name, "offset": offset, "length": length, "dtype": entry.dtype,
                        "shape": list(entry.shape)})  # fmt: skip
    if skeleton_size + sum(weight["length"] for weight in weights) != file_size:
        raise ValueError(f"weights and skeleton do not fill the {file_size}-byte file")
    return {"format": "tflite", "file_size": file_size, "weights": weights}


def _layout_from_json(text: bytes, entries: list, skeleton_size: int) -> dict:
    """The JSON layout of a file of 2 GiB or more (FORMAT 3.5), held to the
    places' rules: records (in any order) for weight tensors of the
    directory, each with the tensor's own length, dtype and shape."""
    try:
        layout = json.loads(text)
    except RecursionError as error:  # hostile nesting
        raise ValueError("JSON layout nested too deeply") from error
    index = {entry.name: position for position, entry in enumerate(entries)}
    try:
        records = [{key: record[key] for key in _LAYOUT_KEYS} for record in layout["weights"]]
        file_size = layout["file_size"]
    except (TypeError, KeyError) as error:
        raise ValueError("JSON layout is not a file_size and weight records of " + ", ".join(_LAYOUT_KEYS)) from error
    if not all(type(value) is int for value in [file_size] + [record["offset"] for record in records]):
        raise ValueError("JSON layout with a size or offset that is not an integer")
    for record in records:
        if not isinstance(record["name"], str) or record["name"] not in index:
            raise ValueError(f"JSON layout names {str(record['name'])[:60]!r}, which is not in the directory")
    values = _places_values(file_size, records, index)
    derived = _layout_from_places(np.array(values, dtype=object), entries, skeleton_size)
    if derived["weights"] != sorted(records, key=lambda record: record["offset"]):
        raise ValueError("JSON layout disagrees with the directory on a weight's length, dtype or shape")
    return derived


def _new_file_mode(path: Path) -> int:
    """The permissions a plain open() would give: the replaced file's, or
    0o666 less the umask (mkstemp's own 0o600 would hide the output from
    the other users and services that read models)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def writes_in_place(path: str | os.PathLike) -> bool:
    """A path to write in place: an existing device, pipe or socket, or
    anything under /dev or /proc (/dev/stdout redirected to a file is still
    the shell's file, not ours to replace)."""
    if str(path).startswith(("/dev/", "/proc/")):
        return True
    try:
        mode = os.stat(path).st_mode  # through symlinks: /dev/fd/N, a link to a pipe
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temporary file and rename: a failure never leaves a
    half-written file, and never destroys an existing one.  A symbolic link
    keeps pointing where it did (its target is replaced), and a device or
    pipe (/dev/stdout) is written to, never replaced by a file."""
    if writes_in_place(path):
        with open(path, "wb") as handle:  # nothing to replace
            handle.write(data)
        return
    path = Path(os.path.realpath(path))
    directory = path.parent if str(path.parent) else Path(".")
    mode = _new_file_mode(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(temporary, mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
