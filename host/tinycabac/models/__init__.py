"""The bundled default model: a small digit classifier (8x8 images, 10 classes).

`digits_float32.tflite` and `digits_int8.tflite` are produced by
`make_digits_model.py` from scikit-learn's `load_digits`; `digits_test.npz`
is the held-out test split, so accuracy can be measured without
scikit-learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODEL_DIR = Path(__file__).resolve().parent

MODEL_FILES = {
    "int8": "digits_int8.tflite",
    "float32": "digits_float32.tflite",
}

TEST_SPLIT_FILE = MODEL_DIR / "digits_test.npz"


def default_model_path(kind: str = "int8") -> Path:
    """Path of the bundled digit classifier, kind "int8" or "float32"."""
    if kind not in MODEL_FILES:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(MODEL_FILES)}")
    return MODEL_DIR / MODEL_FILES[kind]


def load_test_split() -> dict[str, np.ndarray]:
    """Held-out images (x_float in [0, 1], x_int8 for the int8 model) and labels."""
    with np.load(TEST_SPLIT_FILE, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def make_interpreter(tflite_bytes: bytes):
    """A TFLite interpreter for the model bytes.

    LiteRT (`ai-edge-litert`) is tried first: it supports numpy 2, which the
    older `tflite-runtime` wheels (built against numpy 1) do not.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    return Interpreter(model_content=bytes(tflite_bytes))


def evaluate_accuracy(tflite_bytes: bytes) -> float:
    """Top-1 accuracy of a digits model on the bundled held-out split."""
    predictions = held_out_outputs(tflite_bytes).argmax(axis=1)
    return float(np.mean(predictions == load_test_split()["labels"]))


def held_out_outputs(tflite_bytes: bytes) -> np.ndarray:
    """A digits model's outputs (LiteRT), one row per held-out image."""
    images = load_test_split()["x_float"]
    interpreter = make_interpreter(tflite_bytes)
    input_detail = interpreter.get_input_details()[0]
    inputs = model_input(images, input_detail)
    interpreter.resize_tensor_input(input_detail["index"], inputs.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(input_detail["index"], inputs)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).reshape(len(images), -1)


def model_input(images: np.ndarray, input_detail: dict) -> np.ndarray:
    """Float images converted to the model's input type and quantization."""
    dtype = np.dtype(input_detail["dtype"])
    if dtype.kind == "f":
        return images.astype(dtype)
    scale, zero_point = input_detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(images / scale) + zero_point, info.min, info.max).astype(dtype)
