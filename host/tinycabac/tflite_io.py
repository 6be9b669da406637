"""Split a TFLite model file into its constant weight arrays and the rest.

`split_tflite` cuts the byte ranges that hold constant tensor data out of a
.tflite file, and the long index vectors of sparse tensors (which lie in
the tables): the arrays go to the codec, the remaining bytes (the
"skeleton": graph, operators, shapes, quantization parameters, metadata)
are kept verbatim.  `join_tflite` splices (possibly modified) arrays back
into the skeleton; given the original arrays it rebuilds the file
byte-for-byte, because nothing but the cut ranges is ever touched.

Only the `tflite` package (generated flatbuffer readers) is needed, not
TensorFlow.
"""

from __future__ import annotations

import bisect
import struct

import numpy as np
import tflite
from tflite.TensorType import TensorType

from .container import MAX_TENSORS, FormatError, check_shape
from .tflite_structure import overlaps, structure_ranges

# TFLite files carry this identifier at bytes 4..8 (after the root offset).
TFLITE_FILE_IDENTIFIER = b"TFL3"

# Buffers smaller than this are left in the skeleton: coding them costs more
# in per-tensor overhead than it saves, and they are mostly shapes/indices.
MIN_WEIGHT_ELEMENTS = 16

# Sparse index vectors shorter than this stay in the skeleton: a directory
# entry of their own costs more than their coding saves (measured on
# mediapipe's two sparse models: 64 to 512 bytes are within 0.1%).
MIN_INDEX_VECTOR_BYTES = 256
# The layout's tensor_type of such a vector: TFLite tables, not a tensor's data.
SPARSE_INDEX_VECTOR = "SPARSE_INDEX_VECTOR"

# A stream holds MAX_TENSORS tensors, of which the container data may take
# three (the skeleton, the places or the JSON layout, an update's base
# digest): a model with more weight buffers keeps its smallest ones in the
# skeleton, carried exactly, instead of being refused.
MAX_WEIGHT_BUFFERS = MAX_TENSORS - 3

# TFLite tensor types whose constant data the codec handles, as little-endian
# numpy dtypes.  Other types (strings, bools, int4, int64, ...) stay in the
# skeleton untouched.
CODED_TENSOR_TYPES = {
    TensorType.INT8: np.dtype("<i1"),
    TensorType.UINT8: np.dtype("<u1"),
    TensorType.INT16: np.dtype("<i2"),
    TensorType.INT32: np.dtype("<i4"),
    TensorType.FLOAT32: np.dtype("<f4"),
    TensorType.FLOAT16: np.dtype("<f2"),
}

# The members of TFLite's SparseIndexVector union, and the dtype whose bytes
# are the vector's: uint16 has no dtype in the format, so its bits are coded
# as int16, which rebuilds the same bytes (or as int8 pairs, when
# modelfile finds that codes smaller).
_INDEX_VECTORS = {
    tflite.SparseIndexVector.Int32Vector: (tflite.Int32Vector, np.dtype("<i4")),
    tflite.SparseIndexVector.Uint16Vector: (tflite.Uint16Vector, np.dtype("<i2")),
    tflite.SparseIndexVector.Uint8Vector: (tflite.Uint8Vector, np.dtype("<u1")),
}

TENSOR_TYPE_NAMES = {
    value: name for name, value in vars(TensorType).items() if not name.startswith("_")
}

# Operators whose weights have output channels: builtin operator name ->
# (input index of the filter, output-channel axis of the filter), the axis
# TFLite's per-channel quantization uses.
FILTER_INPUTS = {
    "CONV_2D": (1, 0),  # [out, h, w, in]
    "CONV_3D": (1, 4),  # [d, h, w, in, out]
    "FULLY_CONNECTED": (1, 0),  # [out, in]
    "TRANSPOSE_CONV": (1, 0),  # [out, h, w, in]; input 0 is the output shape
    "DEPTHWISE_CONV_2D": (1, 3),  # [1, h, w, out]
}
_BUILTIN_OPERATOR_NAMES = {
    code: name for name, code in vars(tflite.BuiltinOperator).items() if not name.startswith("_")
}

# Errors the generated flatbuffer readers raise on malformed input.
_FLATBUFFER_READ_ERRORS = (struct.error, IndexError, ValueError, TypeError, OverflowError)


def split_tflite(data: bytes) -> tuple[dict[str, np.ndarray], bytes, dict]:
    """Return (weights, skeleton, layout) for a .tflite file's bytes.

    weights: name -> array with the tensor's dtype and shape, in the order the
    graph first uses them, then the sparse index vectors.
    skeleton: the file with every weight's byte range removed.
    layout: JSON-serialisable description that `join_tflite` needs, plus the
    quantization parameters of each weight for the encoder.
    """
    data = bytes(data)
    model = _parse_model(data)
    try:
        records = _untangled(_collect_weight_records(model, data), model, data)
        records += _sparse_index_records(model, data, {record["name"] for record in records})
    except _FLATBUFFER_READ_ERRORS as error:
        raise ValueError(f"not a TFLite flatbuffer: corrupt tables ({error})") from error
    records = _largest_buffers(_drop_overlapping_ranges(records), MAX_WEIGHT_BUFFERS)

    weights = {}
    for record in records:
        start = record["offset"]
        array = np.frombuffer(data, dtype=record["dtype"], count=record["length"] // np.dtype(record["dtype"]).itemsize, offset=start)
        weights[record["name"]] = array.reshape(record["shape"]).copy()
    skeleton = _cut_ranges(data, [(r["offset"], r["length"]) for r in records])
    layout = {"format": "tflite", "file_size": len(data), "weights": records}
    return weights, skeleton, layout


def tflite_names_by_offset(data: bytes) -> dict[int, str]:
    """{file offset: TFLite name} of the weights split_tflite cuts out of a
    file: the first tensor that uses each buffer, the sparse tensor that
    each index vector describes."""
    _, _, layout = split_tflite(data)
    return {record["offset"]: record["tensors"][0]["name"] for record in layout["weights"]}


def join_tflite(skeleton: bytes, layout: dict, weights: dict[str, np.ndarray]) -> bytes:
    """Splice weight arrays back into a skeleton made by `split_tflite`."""
    records = layout["weights"]
    expected_names = {record["name"] for record in records}
    unexpected = sorted(set(weights) - expected_names)
    if unexpected:
        raise ValueError(f"weights not in the layout: {unexpected}")
    cut_total = sum(record["length"] for record in records)
    if len(skeleton) + cut_total != layout["file_size"]:
        raise ValueError(
            f"skeleton has {len(skeleton)} bytes, layout expects {layout['file_size'] - cut_total}"
        )

    pieces = []
    skeleton_pos = 0
    file_pos = 0
    for record in sorted(records, key=lambda r: r["offset"]):
        gap = record["offset"] - file_pos
        pieces.append(skeleton[skeleton_pos : skeleton_pos + gap])
        skeleton_pos += gap
        pieces.append(_weight_bytes(record, weights))
        file_pos = record["offset"] + record["length"]
    pieces.append(skeleton[skeleton_pos:])
    return b"".join(pieces)


def _weight_bytes(record: dict, weights: dict[str, np.ndarray]) -> bytes:
    name = record["name"]
    if name not in weights:
        raise ValueError(f"missing weight array for tensor {name!r}")
    array = np.asarray(weights[name])
    target = np.dtype(record["dtype"])
    if tuple(array.shape) != tuple(record["shape"]):
        raise ValueError(
            f"tensor {name!r}: shape {tuple(array.shape)} does not match {tuple(record['shape'])}"
        )
    if array.dtype.newbyteorder("<") != target:
        # Float16 tensors are decoded as float32 by the codec; narrowing them
        # back is the one conversion the format expects.
        if not (target.kind == "f" and target.itemsize == 2 and array.dtype == np.float32):
            raise ValueError(f"tensor {name!r}: dtype {array.dtype} does not match {target}")
    encoded = np.ascontiguousarray(array, dtype=target).tobytes()
    if len(encoded) != record["length"]:
        raise ValueError(f"tensor {name!r}: {len(encoded)} bytes, expected {record['length']}")
    return encoded


def _parse_model(data: bytes) -> tflite.Model:
    if len(data) < 8:
        raise ValueError(f"not a TFLite flatbuffer: only {len(data)} bytes")
    if data[4:8] != TFLITE_FILE_IDENTIFIER:
        raise ValueError(
            f"not a TFLite flatbuffer: file identifier is {data[4:8]!r}, expected {TFLITE_FILE_IDENTIFIER!r}"
        )
    root = struct.unpack_from("<I", data, 0)[0]
    if not 8 <= root <= len(data) - 4:
        raise ValueError(f"not a TFLite flatbuffer: root table offset {root} outside the file")
    try:
        model = tflite.Model.GetRootAs(data, 0)
        model.Version()
        model.SubgraphsLength()
        model.BuffersLength()
    except _FLATBUFFER_READ_ERRORS as error:
        raise ValueError(f"not a TFLite flatbuffer: unreadable model table ({error})") from error
    return model


def _operator_name(model: tflite.Model, operator) -> str:
    if not 0 <= operator.OpcodeIndex() < model.OperatorCodesLength():
        return ""
    code = model.OperatorCodes(operator.OpcodeIndex())
    return _BUILTIN_OPERATOR_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "")


def filter_axes(model: tflite.Model, subgraph) -> dict[int, int]:
    """tensor index -> output-channel axis, for the filters of the subgraph's
    convolution and fully-connected operators.  A float16 filter reaches its
    operator through a DEQUANTIZE, which is followed back to the constant."""
    operators = [subgraph.Operators(i) for i in range(subgraph.OperatorsLength())]
    dequantized_from = {
        op.Outputs(0): op.Inputs(0)
        for op in operators
        if _operator_name(model, op) == "DEQUANTIZE" and op.InputsLength() and op.OutputsLength()
    }
    axes = {}
    for op in operators:
        filter_input = FILTER_INPUTS.get(_operator_name(model, op))
        if filter_input is None or op.InputsLength() <= filter_input[0]:
            continue
        tensor_index = op.Inputs(filter_input[0])
        axes[dequantized_from.get(tensor_index, tensor_index)] = filter_input[1]
    return axes


def _collect_weight_records(model: tflite.Model, data: bytes) -> list[dict]:
    """One record per distinct constant buffer, in order of first use."""
    metadata_buffers = {model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
    records_by_buffer: dict[int, dict] = {}
    axes_by_buffer: dict[int, set[int]] = {}
    used_names: set[str] = set()
    last_suffix: dict[str, int] = {}
    for subgraph_index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(subgraph_index)
        filters = filter_axes(model, subgraph)
        for tensor_index in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(tensor_index)
            buffer_index = tensor.Buffer()
            reference = {
                "subgraph": subgraph_index,
                "tensor": tensor_index,
                "name": _tensor_name(tensor),
            }
            if tensor_index in filters and tensor.Sparsity() is None:  # a sparse one is coded as a vector
                axes_by_buffer.setdefault(buffer_index, set()).add(filters[tensor_index])
            if buffer_index in records_by_buffer:
                records_by_buffer[buffer_index]["tensors"].append(reference)
                continue
            if buffer_index == 0 or buffer_index in metadata_buffers:
                continue
            if buffer_index >= model.BuffersLength():
                raise ValueError(
                    f"not a TFLite flatbuffer: tensor {reference['name']!r} uses buffer "
                    f"{buffer_index} of {model.BuffersLength()}"
                )
            record = _weight_record(tensor, model.Buffers(buffer_index), data)
            if record is None:
                continue
            record["name"] = _unique_name(stream_name(reference["name"], subgraph_index, tensor_index), used_names, last_suffix)
            record["buffer"] = buffer_index
            record["tensors"] = [reference]
            records_by_buffer[buffer_index] = record
    for buffer_index, record in records_by_buffer.items():
        record["channel_axis"] = _channel_axis(record, axes_by_buffer.get(buffer_index, set()))
    return list(records_by_buffer.values())


def _sparse_index_records(model: tflite.Model, data: bytes, used_names: set[str]) -> list[dict]:
    """One record per index vector of a sparse tensor (the segments and
    indices of each compressed dimension), in order of the tensors.

    They are flatbuffer structure, not buffers, but pruned models hold most
    of their tables there (pose_detection: 1.0 of its 1.1 MB): rising column
    numbers that the skeleton's LZ77 packing barely shrinks, while coded as
    integer tensors with difference prediction they cost a few bits each.
    Integer tensors are always coded losslessly, so the tables come back
    byte for byte whatever the weights' mode."""
    records = []
    last_suffix: dict[str, int] = {}
    for subgraph_index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(subgraph_index)
        for tensor_index in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(tensor_index)
            sparsity = tensor.Sparsity()
            if sparsity is None:
                continue
            reference = {"subgraph": subgraph_index, "tensor": tensor_index, "name": _tensor_name(tensor)}
            for dimension in range(sparsity.DimMetadataLength()):
                metadata = sparsity.DimMetadata(dimension)
                vectors = (
                    ("segments", metadata.ArraySegmentsType(), metadata.ArraySegments()),
                    ("indices", metadata.ArrayIndicesType(), metadata.ArrayIndices()),
                )
                for part, member, table in vectors:
                    record = _index_vector_record(member, table, data)
                    if record is None:
                        continue
                    # short, as stream_name says why
                    base = f"{_tensor_id(subgraph_index, tensor_index)}/{dimension}/{part}"
                    record["name"] = _unique_name(base, used_names, last_suffix)
                    record["tensors"] = [reference]
                    records.append(record)
    return records


def _index_vector_record(member: int, table, data: bytes) -> dict | None:
    """Describe one SparseIndexVector's values, or None if not worth coding."""
    if table is None or member not in _INDEX_VECTORS:
        return None
    vector_class, dtype = _INDEX_VECTORS[member]
    vector = vector_class()
    vector.Init(table.Bytes, table.Pos)
    count = vector.ValuesLength()
    field_offset = vector._tab.Offset(4)
    if count * dtype.itemsize < MIN_INDEX_VECTOR_BYTES or not field_offset:
        return None
    offset = vector._tab.Vector(field_offset)
    length = count * dtype.itemsize
    if offset + length > len(data):
        raise ValueError(
            f"not a TFLite flatbuffer: sparse index vector [{offset}, {offset + length}) "
            f"past end of file ({len(data)} bytes)"
        )
    shape = [count]
    if not _codable(shape, dtype, memoryview(data)[offset : offset + length]):
        return None
    return {
        "offset": offset,
        "length": length,
        "external": False,
        "dtype": dtype.name,
        "tensor_type": SPARSE_INDEX_VECTOR,
        "shape": shape,
        **_not_quantized(),
        "channel_axis": None,
    }


def _channel_axis(record: dict, axes: set[int]) -> int | None:
    """The output-channel axis of a filter buffer: None for a buffer that is
    no filter, whose operators disagree, or whose shape lacks that axis or
    has a single channel there."""
    if len(axes) != 1:
        return None
    (axis,) = axes
    return axis if axis < len(record["shape"]) and record["shape"][axis] > 1 else None


def _weight_record(tensor, buffer, data: bytes) -> dict | None:
    """Describe a tensor's constant data, or None if it is not worth coding."""
    dtype = CODED_TENSOR_TYPES.get(tensor.Type())
    if dtype is None:
        return None
    byte_range = _buffer_byte_range(buffer, data)
    if byte_range is None:
        return None
    offset, length, external = byte_range
    shape = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    if tensor.Sparsity() is not None:
        # A sparse tensor's buffer holds its stored values, in the order of
        # its sparsity metadata (which stays in the tables): coded as a
        # vector of them.
        shape = [length // dtype.itemsize]
    if any(d < 0 for d in shape):
        return None
    count = int(np.prod(shape, dtype=np.int64))
    # Data whose size disagrees with the shape (packed or otherwise encoded
    # layouts) cannot be viewed as an array of this dtype: leave it alone.
    if count * dtype.itemsize != length or count < MIN_WEIGHT_ELEMENTS:
        return None
    if not _codable(shape, dtype, memoryview(data)[offset : offset + length]):
        return None
    return {
        "offset": offset,
        "length": length,
        "external": external,
        "dtype": dtype.name,
        "tensor_type": TENSOR_TYPE_NAMES[tensor.Type()],
        "shape": shape,
        **_quantization_params(tensor),
    }


def _codable(shape: list[int], dtype: np.dtype, raw) -> bool:
    """Whether a stream can hold the buffer: a shape within the format's
    limits (FORMAT 3.2), and for floats only finite values (an attention
    mask of -inf, say).  A buffer that fails stays in the skeleton, carried
    exactly, instead of making the whole file unencodable."""
    try:
        check_shape("", tuple(shape))
    except FormatError:
        return False
    return dtype.kind != "f" or bool(np.isfinite(np.frombuffer(raw, dtype)).all())


def _buffer_byte_range(buffer, data: bytes) -> tuple[int, int, bool] | None:
    """(offset, length, external) of a buffer's bytes in the file, None if empty."""
    byte_range = _stored_byte_range(buffer)
    if byte_range is not None and byte_range[0] + byte_range[1] > len(data):
        offset, length, _ = byte_range
        raise ValueError(
            f"not a TFLite flatbuffer: buffer data [{offset}, {offset + length}) past end of file ({len(data)} bytes)"
        )
    return byte_range


def _stored_byte_range(buffer) -> tuple[int, int, bool] | None:
    """(offset, length, external) as the buffer table states them, None if empty."""
    # Models over 2 GB keep data after the flatbuffer, addressed by
    # offset/size from the start of the file; offset 1 is a placeholder.
    if buffer.Offset() > 1:
        offset, length = buffer.Offset(), buffer.Size()
        external = True
    else:
        length = buffer.DataLength()
        if length == 0:
            return None
        vector_field = buffer._tab.Offset(4)
        offset = buffer._tab.Vector(vector_field)
        external = False
    if length == 0:
        return None
    return offset, length, external


def _not_quantized() -> dict:
    """A layout record's quantization fields for data that has none."""
    return {"scales": [], "zero_points": [], "quantized_dimension": 0}


def _quantization_params(tensor) -> dict:
    quantization = tensor.Quantization()
    if quantization is None:
        return _not_quantized()
    scales = quantization.ScaleAsNumpy() if quantization.ScaleLength() else []
    zero_points = quantization.ZeroPointAsNumpy() if quantization.ZeroPointLength() else []
    return {
        "scales": [float(s) for s in scales],
        "zero_points": [int(z) for z in zero_points],
        "quantized_dimension": int(quantization.QuantizedDimension()),
    }


def _tensor_name(tensor) -> str:
    raw = tensor.Name()
    return raw.decode("utf-8", errors="replace") if raw else ""


# A TFLite name up to this long is kept as the tensor's stream name.
_MAX_KEPT_NAME_BYTES = 16


def stream_name(tensor_name: str, subgraph_index: int, tensor_index: int) -> str:
    """The name a weight buffer is coded under: its TFLite name if short,
    else the tensor's index (`_tensor_id`).

    A directory entry's name costs its bytes, uncompressed (FORMAT 3.2),
    while the skeleton holds the TFLite name anyway, where LZ77 packs it to
    a few bytes.  Converters join the names of fused ops
    ("model_1/model/conv2d_25/BiasAdd;model_1/model/conv2d_25/BiasAdd/
    ReadVariableOp/resource;..."): on mediapipe's models those names took
    0.2-5% of the stream.  An empty name, or one with the reserved "__"
    prefix (FORMAT 3.5), gets the index too.  The layout, not the name, puts
    the weights back, so the name only has to be valid and unique; the host
    tools show the TFLite name beside it (`modelfile.tflite_names`).
    bench/bench_lossless.py names its corpus's tensors the same way."""
    fits = 0 < len(tensor_name.encode("utf-8")) <= _MAX_KEPT_NAME_BYTES
    return tensor_name if fits and not tensor_name.startswith("__") else _tensor_id(subgraph_index, tensor_index)


def _tensor_id(subgraph_index: int, tensor_index: int) -> str:
    """"t57" for tensor 57 of the main subgraph (the `index` that
    tf.lite.Interpreter.get_tensor_details() reports), "t1.57" in subgraph 1."""
    return f"t{tensor_index}" if subgraph_index == 0 else f"t{subgraph_index}.{tensor_index}"


def _unique_name(base: str, used: set[str], last_suffix: dict[str, int]) -> str:
    """`base`, or the first of base#2, base#3, ... not yet used.  The
    suffixes tried before stay used, so each base resumes from its last one:
    a model of thousands of tensors of one name is not quadratic."""
    suffix = last_suffix.get(base, 1)
    name = base if suffix == 1 else f"{base}#{suffix}"
    while name in used:
        suffix += 1
        name = f"{base}#{suffix}"
    used.add(name)
    last_suffix[base] = suffix
    return name


def _untangled(records: list[dict], model: tflite.Model, data: bytes) -> list[dict]:
    """The records whose bytes nothing else in the file reads.

    A buffer's bytes may be coded lossily only if they are read as that one
    array: not as flatbuffer tables (a crafted `Buffer.offset` may point
    into them), nor as part of another buffer, nor as another array (two
    buffers on the same bytes with another dtype or shape).  Any other
    buffer stays in the skeleton, carried exactly, so no encode, lossy or
    not, can rebuild a broken file.
    """
    structure = structure_ranges(data)
    buffers_at: dict[tuple[int, int], list[int]] = {}
    for index in range(model.BuffersLength()):
        span = _buffer_span(model.Buffers(index), data)
        if span is not None:
            buffers_at.setdefault(span, []).append(index)
    entangled = _partly_overlapping(sorted(buffers_at))
    record_of = {record["buffer"]: record for record in records}
    kept = []
    for record in records:
        span = (record["offset"], record["offset"] + record["length"])
        readers = [record_of.get(index) for index in buffers_at[span]]
        if span in entangled or overlaps(structure, *span):
            continue
        if all(reader is not None and _same_array(reader, record) for reader in readers):
            kept.append(record)
    return kept


def _buffer_span(buffer, data: bytes) -> tuple[int, int] | None:
    """[start, end) of a buffer's bytes within the file, None if it has none
    there (an unused buffer may point past the end)."""
    byte_range = _stored_byte_range(buffer)
    if byte_range is None or byte_range[0] >= len(data):
        return None
    return byte_range[0], min(byte_range[0] + byte_range[1], len(data))


def _partly_overlapping(spans: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The spans (distinct, sorted) that overlap another span."""
    found = set()
    earlier_end = 0
    for position, (start, end) in enumerate(spans):
        if start < earlier_end or (position + 1 < len(spans) and spans[position + 1][0] < end):
            found.add((start, end))
        earlier_end = max(earlier_end, end)
    return found


def _drop_overlapping_ranges(records: list[dict]) -> list[dict]:
    """Keep the first record of any two whose byte ranges overlap.

    Two buffers pointing at the same bytes (possible with offset/size
    buffers) must be cut only once; the later one's tensors are served by the
    earlier record's bytes, and are listed with it when they read the same
    array.
    """
    kept: list[dict] = []
    # the kept ranges, disjoint, by offset (so their ends are sorted too):
    # the ones a range overlaps are found by bisection, not by a scan of all,
    # and two are as many as the choice below needs
    starts: list[int] = []
    by_start: list[dict] = []
    for record in records:
        start, stop = record["offset"], record["offset"] + record["length"]
        position = bisect.bisect_left(starts, stop)  # by_start[:position] start before `stop`
        overlapping = []
        while position > 0 and len(overlapping) < 2 and by_start[position - 1]["offset"] + by_start[position - 1]["length"] > start:
            position -= 1
            overlapping.append(by_start[position])
        if not overlapping:
            kept.append(record)
            starts.insert(position, start)
            by_start.insert(position, record)
        elif len(overlapping) == 1 and _same_array(overlapping[0], record):
            overlapping[0]["tensors"].extend(record["tensors"])
    return kept


def _largest_buffers(records: list[dict], limit: int) -> list[dict]:
    """The `limit` longest records (the earlier of equal ones), in their order."""
    if len(records) <= limit:
        return records
    kept = {id(record) for record in sorted(records, key=lambda record: -record["length"])[:limit]}
    return [record for record in records if id(record) in kept]


def _same_array(first: dict, second: dict) -> bool:
    keys = ("offset", "length", "dtype", "shape")
    return all(first[key] == second[key] for key in keys)


def _cut_ranges(data: bytes, ranges: list[tuple[int, int]]) -> bytes:
    pieces = []
    position = 0
    for offset, length in sorted(ranges):
        pieces.append(data[position:offset])
        position = offset + length
    pieces.append(data[position:])
    return b"".join(pieces)
