"""Train the bundled digit classifier and write it as float32 and int8 TFLite.

Data: scikit-learn's bundled `load_digits` (1797 8x8 images, 16 grey levels,
10 classes), split 80/20 with a fixed seed.  Network:

    input 8x8x1 -> CONV_2D 3x3, 16 filters, SAME, ReLU -> MAX_POOL_2D 2x2
    -> FULLY_CONNECTED 256->48, ReLU -> FULLY_CONNECTED 48->10 -> SOFTMAX

(about 13k weights), trained with plain numpy (Adam, cross-entropy).  The
int8 model is quantized the way the TFLite converter does full-integer
quantization: int8 weights symmetric per output channel in [-127, 127],
int32 biases with scale input_scale * weight_scale, int8 activations with
scales and zero points calibrated on the training set.

Run `python -m tinycabac.models.make_digits_model` (needs scikit-learn) to
regenerate the committed files; the output is deterministic.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding

from tinycabac.models.tflite_writer import (
    ModelSpec,
    OperatorSpec,
    TensorSpec,
    build_tflite,
    conv2d_options,
    fully_connected_options,
    pool2d_options,
    softmax_options,
)

SEED = 20240611
TEST_FRACTION = 0.2
CONV_FILTERS = 16
HIDDEN_UNITS = 48
NUM_CLASSES = 10
EPOCHS = 40
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
PIXEL_LEVELS = 16.0  # load_digits pixels are integers 0..16

MODEL_DIR = Path(__file__).resolve().parent


# ---------------------------------------------------------------- data

def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test), images as float32 NHWC in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / PIXEL_LEVELS).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(labels))
    test_count = int(round(len(labels) * TEST_FRACTION))
    test, train = order[:test_count], order[test_count:]
    return images[train], labels[train], images[test], labels[test]


# ---------------------------------------------------------------- float network

def image_patches(images: np.ndarray) -> np.ndarray:
    """3x3 SAME patches: (N, 8, 8, 9), patch index kh*3 + kw (TFLite OHWI order)."""
    padded = np.pad(images[..., 0], ((0, 0), (1, 1), (1, 1)))
    height, width = images.shape[1:3]
    return np.stack(
        [padded[:, kh : kh + height, kw : kw + width] for kh in range(3) for kw in range(3)],
        axis=-1,
    )


def init_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def he(fan_in, shape):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    pooled = 4 * 4 * CONV_FILTERS
    return {
        "conv_w": he(9, (9, CONV_FILTERS)),
        "conv_b": np.zeros(CONV_FILTERS, np.float32),
        "fc1_w": he(pooled, (HIDDEN_UNITS, pooled)),
        "fc1_b": np.zeros(HIDDEN_UNITS, np.float32),
        "fc2_w": he(HIDDEN_UNITS, (NUM_CLASSES, HIDDEN_UNITS)),
        "fc2_b": np.zeros(NUM_CLASSES, np.float32),
    }


def forward(params, images):
    """Logits and the intermediate values backprop and calibration need."""
    patches = image_patches(images)
    conv = np.maximum(patches @ params["conv_w"] + params["conv_b"], 0.0)
    n = len(images)
    windows = conv.reshape(n, 4, 2, 4, 2, CONV_FILTERS)
    pooled = windows.max(axis=(2, 4))
    flat = pooled.reshape(n, -1)
    hidden = np.maximum(flat @ params["fc1_w"].T + params["fc1_b"], 0.0)
    logits = hidden @ params["fc2_w"].T + params["fc2_b"]
    cache = {"patches": patches, "conv": conv, "windows": windows, "pooled": pooled, "flat": flat, "hidden": hidden}
    return logits, cache


def gradients(params, images, labels):
    logits, cache = forward(params, images)
    n = len(images)
    probs = softmax(logits)
    d_logits = probs
    d_logits[np.arange(n), labels] -= 1.0
    d_logits /= n
    grads = {"fc2_w": d_logits.T @ cache["hidden"], "fc2_b": d_logits.sum(0)}
    d_hidden = (d_logits @ params["fc2_w"]) * (cache["hidden"] > 0)
    grads["fc1_w"] = d_hidden.T @ cache["flat"]
    grads["fc1_b"] = d_hidden.sum(0)
    d_pooled = (d_hidden @ params["fc1_w"]).reshape(cache["pooled"].shape)
    # Max-pool routes the gradient to the window maxima; ties only occur at
    # zero, where the ReLU gradient is zero anyway.
    is_max = cache["windows"] == cache["pooled"][:, :, None, :, None, :]
    d_conv = (is_max * d_pooled[:, :, None, :, None, :]).reshape(cache["conv"].shape)
    d_conv *= cache["conv"] > 0
    grads["conv_w"] = cache["patches"].reshape(-1, 9).T @ d_conv.reshape(-1, CONV_FILTERS)
    grads["conv_b"] = d_conv.reshape(-1, CONV_FILTERS).sum(0)
    return grads


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def train(x_train, y_train) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    params = init_params(rng)
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(y_train))
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            grads = gradients(params, x_train[batch], y_train[batch])
            step += 1
            for key, grad in grads.items():
                m, v = moments[key]
                m[...] = beta1 * m + (1 - beta1) * grad
                v[...] = beta2 * v + (1 - beta2) * grad * grad
                m_hat = m / (1 - beta1**step)
                v_hat = v / (1 - beta2**step)
                params[key] = (params[key] - LEARNING_RATE * m_hat / (np.sqrt(v_hat) + eps)).astype(np.float32)
    return params


def tflite_weights(params) -> dict[str, np.ndarray]:
    """Weights in TFLite layouts: conv OHWI, fully connected [out, in]."""
    return {
        "conv_w": params["conv_w"].T.reshape(CONV_FILTERS, 3, 3, 1),
        "conv_b": params["conv_b"],
        "fc1_w": params["fc1_w"],
        "fc1_b": params["fc1_b"],
        "fc2_w": params["fc2_w"],
        "fc2_b": params["fc2_b"],
    }


# ---------------------------------------------------------------- TFLite graphs

# Tensor indices shared by the float and int8 graphs.
INPUT, CONV_W, CONV_B, CONV_OUT, POOL_OUT, FC1_W, FC1_B, HIDDEN, FC2_W, FC2_B, LOGITS, PROBS = range(12)

SHAPES = {
    INPUT: (1, 8, 8, 1),
    CONV_W: (CONV_FILTERS, 3, 3, 1),
    CONV_B: (CONV_FILTERS,),
    CONV_OUT: (1, 8, 8, CONV_FILTERS),
    POOL_OUT: (1, 4, 4, CONV_FILTERS),
    FC1_W: (HIDDEN_UNITS, 4 * 4 * CONV_FILTERS),
    FC1_B: (HIDDEN_UNITS,),
    HIDDEN: (1, HIDDEN_UNITS),
    FC2_W: (NUM_CLASSES, HIDDEN_UNITS),
    FC2_B: (NUM_CLASSES,),
    LOGITS: (1, NUM_CLASSES),
    PROBS: (1, NUM_CLASSES),
}

NAMES = {
    INPUT: "input",
    CONV_W: "conv/filter",
    CONV_B: "conv/bias",
    CONV_OUT: "conv/relu",
    POOL_OUT: "pool",
    FC1_W: "dense1/weights",
    FC1_B: "dense1/bias",
    HIDDEN: "dense1/relu",
    FC2_W: "dense2/weights",
    FC2_B: "dense2/bias",
    LOGITS: "logits",
    PROBS: "probabilities",
}

# The converter records the oldest runtime that can run the model.
MIN_RUNTIME_METADATA = {"min_runtime_version": b"2.3.0".ljust(16, b"\0")}


def graph_operators(quantized: bool) -> list[OperatorSpec]:
    # Op versions as the converter assigns them for float / int8 kernels.
    relu, none = ActivationFunctionType.RELU, ActivationFunctionType.NONE
    return [
        OperatorSpec(BuiltinOperator.CONV_2D, [INPUT, CONV_W, CONV_B], [CONV_OUT], 3 if quantized else 1,
                     BuiltinOptions.Conv2DOptions, conv2d_options(Padding.SAME, 1, relu)),
        OperatorSpec(BuiltinOperator.MAX_POOL_2D, [CONV_OUT], [POOL_OUT], 2 if quantized else 1,
                     BuiltinOptions.Pool2DOptions, pool2d_options(2, 2, Padding.VALID)),
        OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [POOL_OUT, FC1_W, FC1_B], [HIDDEN], 4 if quantized else 1,
                     BuiltinOptions.FullyConnectedOptions, fully_connected_options(relu)),
        OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [HIDDEN, FC2_W, FC2_B], [LOGITS], 4 if quantized else 1,
                     BuiltinOptions.FullyConnectedOptions, fully_connected_options(none)),
        OperatorSpec(BuiltinOperator.SOFTMAX, [LOGITS], [PROBS], 2 if quantized else 1,
                     BuiltinOptions.SoftmaxOptions, softmax_options(1.0)),
    ]


def float_model(weights) -> bytes:
    constants = {CONV_W: "conv_w", CONV_B: "conv_b", FC1_W: "fc1_w", FC1_B: "fc1_b", FC2_W: "fc2_w", FC2_B: "fc2_b"}
    tensors = [
        TensorSpec(NAMES[i], SHAPES[i], np.float32, weights[constants[i]] if i in constants else None)
        for i in range(len(SHAPES))
    ]
    spec = ModelSpec(tensors, graph_operators(quantized=False), [INPUT], [PROBS],
                     "tinycabac digits classifier (float32)", MIN_RUNTIME_METADATA)
    return build_tflite(spec)


# ---------------------------------------------------------------- int8 quantization

def activation_params(low: float, high: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero_point) covering [low, high] and 0."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0
    zero_point = int(np.clip(np.round(-128 - low / scale), -128, 127))
    return float(np.float32(scale)), zero_point


def quantize_per_channel(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 along axis 0 (the output channel) in [-127, 127]."""
    flat = weights.reshape(len(weights), -1)
    scales = (np.abs(flat).max(axis=1) / 127.0).astype(np.float32)
    scales = np.where(scales > 0, scales, np.float32(1.0))
    levels = np.clip(np.round(flat / scales[:, None]), -127, 127).astype(np.int8)
    return levels.reshape(weights.shape), scales


def quantize_bias(bias: np.ndarray, input_scale: float, weight_scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scales = (np.float32(input_scale) * weight_scales).astype(np.float32)
    return np.round(bias / scales).astype(np.int32), scales


def quantize_input(images: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(images / scale) + zero_point, -128, 127).astype(np.int8)


def calibrate(params, x_calibration) -> dict[int, tuple[float, int]]:
    """Activation (scale, zero_point) per activation tensor, from float ranges."""
    logits, cache = forward(params, x_calibration)
    conv = activation_params(0.0, float(cache["conv"].max()))
    return {
        INPUT: activation_params(0.0, 1.0),
        CONV_OUT: conv,
        POOL_OUT: conv,  # int8 MAX_POOL_2D requires equal input/output params
        HIDDEN: activation_params(0.0, float(cache["hidden"].max())),
        LOGITS: activation_params(float(logits.min()), float(logits.max())),
        PROBS: (1.0 / 256.0, -128),  # fixed by the int8 SOFTMAX kernel
    }


def int8_model(weights, activations) -> bytes:
    tensors: dict[int, TensorSpec] = {}
    for index, (scale, zero_point) in activations.items():
        tensors[index] = TensorSpec(NAMES[index], SHAPES[index], np.int8, None, [scale], [zero_point])
    layers = [(CONV_W, CONV_B, "conv_w", "conv_b", INPUT), (FC1_W, FC1_B, "fc1_w", "fc1_b", POOL_OUT),
              (FC2_W, FC2_B, "fc2_w", "fc2_b", HIDDEN)]
    for weight_index, bias_index, weight_key, bias_key, input_index in layers:
        levels, weight_scales = quantize_per_channel(weights[weight_key])
        bias, bias_scales = quantize_bias(weights[bias_key], activations[input_index][0], weight_scales)
        channels = len(weight_scales)
        tensors[weight_index] = TensorSpec(NAMES[weight_index], SHAPES[weight_index], np.int8, levels,
                                           weight_scales.tolist(), [0] * channels, 0)
        tensors[bias_index] = TensorSpec(NAMES[bias_index], SHAPES[bias_index], np.int32, bias,
                                         bias_scales.tolist(), [0] * channels, 0)
    spec = ModelSpec([tensors[i] for i in range(len(SHAPES))], graph_operators(quantized=True), [INPUT], [PROBS],
                     "tinycabac digits classifier (int8)", MIN_RUNTIME_METADATA)
    return build_tflite(spec)


# ---------------------------------------------------------------- outputs

def build_models() -> dict[str, bytes]:
    """File name -> contents of every generated file."""
    x_train, y_train, x_test, y_test = load_split()
    params = train(x_train, y_train)
    weights = tflite_weights(params)
    activations = calibrate(params, x_train)
    input_scale, input_zero_point = activations[INPUT]
    test_split = {
        "x_float": x_test,
        "x_int8": quantize_input(x_test, input_scale, input_zero_point),
        "labels": y_test.astype(np.uint8),
        "input_scale": np.float32(input_scale),
        "input_zero_point": np.int32(input_zero_point),
    }
    return {
        "digits_float32.tflite": float_model(weights),
        "digits_int8.tflite": int8_model(weights, activations),
        "digits_test.npz": deterministic_npz(test_split),
    }


def deterministic_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz whose bytes depend only on the arrays (numpy stamps the time)."""
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return output.getvalue()


def main() -> None:
    for name, contents in build_models().items():
        (MODEL_DIR / name).write_bytes(contents)
        print(f"wrote {MODEL_DIR / name} ({len(contents)} bytes)")


if __name__ == "__main__":
    main()
