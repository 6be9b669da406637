"""Minimal TFLite flatbuffer writer (single subgraph, builtin operators).

Built on the `flatbuffers` builder and the table builders generated into the
`tflite` package, so no TensorFlow is needed to produce a model the TFLite
interpreter runs.  Used by the bundled digit-classifier generator and by the
tests, which need models with particular layouts (shared buffers, float16
data, data stored after the flatbuffer as in models over 2 GB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import flatbuffers
import numpy as np
import tflite

# TFLite aligns constant data to 16 bytes so kernels can read it in place.
BUFFER_ALIGNMENT = 16

# Stand-in for the real offsets of external buffers during the sizing pass;
# any non-zero value makes the builder emit the field, so both passes have
# the same byte layout.
_EXTERNAL_OFFSET_PLACEHOLDER = 1 << 40

NUMPY_TO_TENSOR_TYPE = {
    np.dtype("float32"): tflite.TensorType.FLOAT32,
    np.dtype("float16"): tflite.TensorType.FLOAT16,
    np.dtype("int32"): tflite.TensorType.INT32,
    np.dtype("uint8"): tflite.TensorType.UINT8,
    np.dtype("int64"): tflite.TensorType.INT64,
    np.dtype("int16"): tflite.TensorType.INT16,
    np.dtype("int8"): tflite.TensorType.INT8,
    np.dtype("bool"): tflite.TensorType.BOOL,
}


@dataclass
class TensorSpec:
    """One tensor; `data` makes it a constant.

    Tensors naming the same `shared_buffer` key use one buffer (the first
    one's data), as converters do for deduplicated constants.  A `sparse`
    2-D constant is stored in CSR form, as converters store pruned weights:
    its buffer holds the non-zero values row by row, and its sparsity
    parameters the row segments and column indices (a DENSIFY operator
    turns it back into a dense tensor).  Each index vector takes the
    narrowest of uint8, uint16 and int32 that holds it, as TFLite's
    converter chooses, unless `sparse_index_type` names one.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None = None
    scales: list[float] | None = None
    zero_points: list[int] | None = None
    quantized_dimension: int = 0
    shared_buffer: str | None = None
    sparse: bool = False
    sparse_index_type: str | None = None  # "uint8", "uint16" or "int32"


@dataclass
class OperatorSpec:
    """One builtin operator; `options` writes its options table, if any."""

    opcode: int
    inputs: list[int]
    outputs: list[int]
    version: int = 1
    options_type: int = tflite.BuiltinOptions.NONE
    options: Callable[[flatbuffers.Builder], int] | None = None


@dataclass
class ModelSpec:
    tensors: list[TensorSpec]
    operators: list[OperatorSpec]
    inputs: list[int]
    outputs: list[int]
    description: str = ""
    metadata: dict[str, bytes] = field(default_factory=dict)


def build_tflite(spec: ModelSpec, external_buffers: bool = False) -> bytes:
    """Serialise `spec` as a .tflite file.

    With external_buffers the constant data is appended after the flatbuffer
    and referenced by offset/size, the layout TFLite uses past 2 GB.
    """
    buffer_data, tensor_buffers = _assign_buffers(spec)
    if not external_buffers:
        return _build(spec, buffer_data, tensor_buffers, external=None)
    sizing = _build(spec, buffer_data, tensor_buffers, external=_placeholder_offsets(buffer_data))
    offsets, tail = _external_layout(len(sizing), buffer_data)
    flatbuffer = _build(spec, buffer_data, tensor_buffers, external=offsets)
    assert len(flatbuffer) == len(sizing)
    return flatbuffer + tail


def _assign_buffers(spec: ModelSpec) -> tuple[list[bytes], list[int]]:
    """Buffer contents (index 0 is the mandatory empty buffer) and each tensor's buffer."""
    buffer_data = [b""]
    key_to_buffer: dict[object, int] = {}
    tensor_buffers = []
    for position, tensor in enumerate(spec.tensors):
        if tensor.data is None:
            tensor_buffers.append(0)
            continue
        # Unshared tensors get a key no shared_buffer string can equal.
        key = tensor.shared_buffer or ("own", position)
        if key not in key_to_buffer:
            array = np.ascontiguousarray(tensor.data, dtype=np.dtype(tensor.dtype).newbyteorder("<"))
            assert array.shape == tuple(tensor.shape), tensor.name
            if tensor.sparse:
                array = array[array != 0]  # the stored values, in row-major order
            key_to_buffer[key] = len(buffer_data)
            buffer_data.append(array.tobytes())
        tensor_buffers.append(key_to_buffer[key])
    for payload in spec.metadata.values():
        buffer_data.append(payload)
    return buffer_data, tensor_buffers


def _placeholder_offsets(buffer_data: list[bytes]) -> list[int | None]:
    return [None if not data else _EXTERNAL_OFFSET_PLACEHOLDER for data in buffer_data]


def _external_layout(flatbuffer_size: int, buffer_data: list[bytes]) -> tuple[list[int | None], bytes]:
    offsets: list[int | None] = []
    tail = bytearray()
    for data in buffer_data:
        if not data:
            offsets.append(None)
            continue
        position = flatbuffer_size + len(tail)
        padding = -position % BUFFER_ALIGNMENT
        tail += bytes(padding)
        offsets.append(position + padding)
        tail += data
    return offsets, bytes(tail)


def _build(spec, buffer_data, tensor_buffers, external) -> bytes:
    builder = flatbuffers.Builder(1024)
    buffers = _write_buffers(builder, buffer_data, external)
    metadata = _write_metadata(builder, spec, first_buffer=len(buffer_data) - len(spec.metadata))
    opcodes, opcode_index = _write_operator_codes(builder, spec.operators)
    tensors = [_write_tensor(builder, t, b) for t, b in zip(spec.tensors, tensor_buffers)]
    operators = [_write_operator(builder, op, opcode_index) for op in spec.operators]
    subgraph = _write_subgraph(builder, spec, tensors, operators)
    description = builder.CreateString(spec.description)

    subgraphs = _offset_vector(builder, tflite.ModelStartSubgraphsVector, [subgraph])
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddOperatorCodes(builder, opcodes)
    tflite.ModelAddSubgraphs(builder, subgraphs)
    tflite.ModelAddDescription(builder, description)
    tflite.ModelAddBuffers(builder, buffers)
    if metadata is not None:
        tflite.ModelAddMetadata(builder, metadata)
    model = tflite.ModelEnd(builder)
    builder.Finish(model, file_identifier=b"TFL3")
    return bytes(builder.Output())


def _write_buffers(builder, buffer_data, external) -> int:
    tables = []
    for index, data in enumerate(buffer_data):
        vector = None
        if data and external is None:
            vector = _aligned_byte_vector(builder, data)
        tflite.BufferStart(builder)
        if vector is not None:
            tflite.BufferAddData(builder, vector)
        if data and external is not None:
            tflite.BufferAddOffset(builder, external[index])
            tflite.BufferAddSize(builder, len(data))
        tables.append(tflite.BufferEnd(builder))
    return _offset_vector(builder, tflite.ModelStartBuffersVector, tables)


def _aligned_byte_vector(builder, data: bytes) -> int:
    builder.StartVector(1, len(data), BUFFER_ALIGNMENT)
    builder.head = builder.head - len(data)
    builder.Bytes[builder.head : builder.head + len(data)] = data
    return builder.EndVector()


def _write_metadata(builder, spec, first_buffer: int) -> int | None:
    if not spec.metadata:
        return None
    tables = []
    for index, name in enumerate(spec.metadata):
        name_offset = builder.CreateString(name)
        tflite.MetadataStart(builder)
        tflite.MetadataAddName(builder, name_offset)
        tflite.MetadataAddBuffer(builder, first_buffer + index)
        tables.append(tflite.MetadataEnd(builder))
    return _offset_vector(builder, tflite.ModelStartMetadataVector, tables)


def _write_operator_codes(builder, operators) -> tuple[int, dict[tuple[int, int], int]]:
    opcode_index: dict[tuple[int, int], int] = {}
    for op in operators:
        opcode_index.setdefault((op.opcode, op.version), len(opcode_index))
    tables = []
    for opcode, version in opcode_index:
        tflite.OperatorCodeStart(builder)
        # Old readers only look at the int8 field; 127 means "see builtin_code".
        tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(opcode, 127))
        tflite.OperatorCodeAddBuiltinCode(builder, opcode)
        tflite.OperatorCodeAddVersion(builder, version)
        tables.append(tflite.OperatorCodeEnd(builder))
    return _offset_vector(builder, tflite.ModelStartOperatorCodesVector, tables), opcode_index


def _write_tensor(builder, tensor: TensorSpec, buffer_index: int) -> int:
    name = builder.CreateString(tensor.name)
    shape = builder.CreateNumpyVector(np.asarray(tensor.shape, dtype=np.int32))
    quantization = _write_quantization(builder, tensor)
    sparsity = _write_csr_sparsity(builder, tensor.data, tensor.sparse_index_type) if tensor.sparse else None
    tflite.TensorStart(builder)
    tflite.TensorAddShape(builder, shape)
    tflite.TensorAddType(builder, NUMPY_TO_TENSOR_TYPE[np.dtype(tensor.dtype)])
    tflite.TensorAddBuffer(builder, buffer_index)
    tflite.TensorAddName(builder, name)
    if quantization is not None:
        tflite.TensorAddQuantization(builder, quantization)
    if sparsity is not None:
        tflite.TensorAddSparsity(builder, sparsity)
    return tflite.TensorEnd(builder)


def _write_csr_sparsity(builder, dense: np.ndarray, index_type: str | None) -> int:
    """Sparsity parameters of a 2-D tensor in CSR form: rows dense, columns
    sparse (segments: where each row's values start; indices: their columns)."""
    rows, columns = np.nonzero(dense)
    segments = np.searchsorted(rows, np.arange(dense.shape[0] + 1))
    dimensions = [_write_dense_dimension(builder, dense.shape[0]),
                  _write_csr_dimension(builder, segments, columns, index_type)]  # fmt: skip
    traversal = builder.CreateNumpyVector(np.array([0, 1], dtype=np.int32))
    metadata = _offset_vector(builder, tflite.SparsityParametersStartDimMetadataVector, dimensions)
    tflite.SparsityParametersStart(builder)
    tflite.SparsityParametersAddTraversalOrder(builder, traversal)
    tflite.SparsityParametersAddDimMetadata(builder, metadata)
    return tflite.SparsityParametersEnd(builder)


def _write_dense_dimension(builder, size: int) -> int:
    tflite.DimensionMetadataStart(builder)
    tflite.DimensionMetadataAddFormat(builder, tflite.DimensionType.DENSE)
    tflite.DimensionMetadataAddDenseSize(builder, size)
    return tflite.DimensionMetadataEnd(builder)


# SparseIndexVector members: numpy type, union code, table writers.
_INDEX_VECTOR_WRITERS = {
    "uint8": (np.uint8, tflite.SparseIndexVector.Uint8Vector, tflite.Uint8VectorStart,
              tflite.Uint8VectorAddValues, tflite.Uint8VectorEnd),
    "uint16": (np.uint16, tflite.SparseIndexVector.Uint16Vector, tflite.Uint16VectorStart,
               tflite.Uint16VectorAddValues, tflite.Uint16VectorEnd),
    "int32": (np.int32, tflite.SparseIndexVector.Int32Vector, tflite.Int32VectorStart,
              tflite.Int32VectorAddValues, tflite.Int32VectorEnd),
}  # fmt: skip


def _write_index_vector(builder, values: np.ndarray, index_type: str | None) -> tuple[int, int]:
    """(union code, table) of one SparseIndexVector."""
    if index_type is None:
        largest = int(values.max(initial=0))
        index_type = "uint8" if largest <= 0xFF else "uint16" if largest <= 0xFFFF else "int32"
    numpy_type, code, start, add_values, end = _INDEX_VECTOR_WRITERS[index_type]
    data = builder.CreateNumpyVector(values.astype(numpy_type))
    start(builder)
    add_values(builder, data)
    return code, end(builder)


def _write_csr_dimension(builder, segments: np.ndarray, indices: np.ndarray, index_type: str | None) -> int:
    segments_type, segments_table = _write_index_vector(builder, segments, index_type)
    indices_type, indices_table = _write_index_vector(builder, indices, index_type)
    tflite.DimensionMetadataStart(builder)
    tflite.DimensionMetadataAddFormat(builder, tflite.DimensionType.SPARSE_CSR)
    tflite.DimensionMetadataAddArraySegmentsType(builder, segments_type)
    tflite.DimensionMetadataAddArraySegments(builder, segments_table)
    tflite.DimensionMetadataAddArrayIndicesType(builder, indices_type)
    tflite.DimensionMetadataAddArrayIndices(builder, indices_table)
    return tflite.DimensionMetadataEnd(builder)


def _write_quantization(builder, tensor: TensorSpec) -> int | None:
    if tensor.scales is None:
        return None
    scales = builder.CreateNumpyVector(np.asarray(tensor.scales, dtype=np.float32))
    zero_points = builder.CreateNumpyVector(np.asarray(tensor.zero_points, dtype=np.int64))
    tflite.QuantizationParametersStart(builder)
    tflite.QuantizationParametersAddScale(builder, scales)
    tflite.QuantizationParametersAddZeroPoint(builder, zero_points)
    tflite.QuantizationParametersAddQuantizedDimension(builder, tensor.quantized_dimension)
    return tflite.QuantizationParametersEnd(builder)


def _write_operator(builder, op: OperatorSpec, opcode_index) -> int:
    inputs = builder.CreateNumpyVector(np.asarray(op.inputs, dtype=np.int32))
    outputs = builder.CreateNumpyVector(np.asarray(op.outputs, dtype=np.int32))
    options = op.options(builder) if op.options is not None else None
    tflite.OperatorStart(builder)
    tflite.OperatorAddOpcodeIndex(builder, opcode_index[(op.opcode, op.version)])
    tflite.OperatorAddInputs(builder, inputs)
    tflite.OperatorAddOutputs(builder, outputs)
    if options is not None:
        tflite.OperatorAddBuiltinOptionsType(builder, op.options_type)
        tflite.OperatorAddBuiltinOptions(builder, options)
    return tflite.OperatorEnd(builder)


def _write_subgraph(builder, spec: ModelSpec, tensors, operators) -> int:
    tensor_vector = _offset_vector(builder, tflite.SubGraphStartTensorsVector, tensors)
    operator_vector = _offset_vector(builder, tflite.SubGraphStartOperatorsVector, operators)
    inputs = builder.CreateNumpyVector(np.asarray(spec.inputs, dtype=np.int32))
    outputs = builder.CreateNumpyVector(np.asarray(spec.outputs, dtype=np.int32))
    name = builder.CreateString("main")
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensor_vector)
    tflite.SubGraphAddInputs(builder, inputs)
    tflite.SubGraphAddOutputs(builder, outputs)
    tflite.SubGraphAddOperators(builder, operator_vector)
    tflite.SubGraphAddName(builder, name)
    return tflite.SubGraphEnd(builder)


def _offset_vector(builder, start_vector, offsets: list[int]) -> int:
    start_vector(builder, len(offsets))
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


# Options tables for the operators the bundled models use.

def conv2d_options(padding: int, stride: int, activation: int) -> Callable[[flatbuffers.Builder], int]:
    def write(builder):
        tflite.Conv2DOptionsStart(builder)
        tflite.Conv2DOptionsAddPadding(builder, padding)
        tflite.Conv2DOptionsAddStrideW(builder, stride)
        tflite.Conv2DOptionsAddStrideH(builder, stride)
        tflite.Conv2DOptionsAddFusedActivationFunction(builder, activation)
        tflite.Conv2DOptionsAddDilationWFactor(builder, 1)
        tflite.Conv2DOptionsAddDilationHFactor(builder, 1)
        return tflite.Conv2DOptionsEnd(builder)

    return write


def pool2d_options(size: int, stride: int, padding: int) -> Callable[[flatbuffers.Builder], int]:
    def write(builder):
        tflite.Pool2DOptionsStart(builder)
        tflite.Pool2DOptionsAddPadding(builder, padding)
        tflite.Pool2DOptionsAddStrideW(builder, stride)
        tflite.Pool2DOptionsAddStrideH(builder, stride)
        tflite.Pool2DOptionsAddFilterWidth(builder, size)
        tflite.Pool2DOptionsAddFilterHeight(builder, size)
        return tflite.Pool2DOptionsEnd(builder)

    return write


def fully_connected_options(activation: int) -> Callable[[flatbuffers.Builder], int]:
    def write(builder):
        tflite.FullyConnectedOptionsStart(builder)
        tflite.FullyConnectedOptionsAddFusedActivationFunction(builder, activation)
        return tflite.FullyConnectedOptionsEnd(builder)

    return write


def softmax_options(beta: float = 1.0) -> Callable[[flatbuffers.Builder], int]:
    def write(builder):
        tflite.SoftmaxOptionsStart(builder)
        tflite.SoftmaxOptionsAddBeta(builder, beta)
        return tflite.SoftmaxOptionsEnd(builder)

    return write
