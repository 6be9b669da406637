"""tinycabac: DeepCABAC-style compression of neural-network weights for
microcontrollers, decoded bit-exactly by a portable C99 decoder.

    >>> import numpy as np, tinycabac
    >>> data = tinycabac.encode({"w": np.arange(-8, 8, dtype=np.int8)})
    >>> tinycabac.decode(data)["w"].tolist()[:4]
    [-8, -7, -6, -5]
"""
from .codec import DEFAULT_SNR_DB, EncodeReport, TensorSummary, apply, base_digest, decode, encode, info, is_update
from .container import FORMAT_VERSION, FormatError, Step
from .native import BaseMismatchError, DecodeError

__version__ = "0.1.0"

__all__ = [
    "encode",
    "decode",
    "apply",
    "is_update",
    "base_digest",
    "info",
    "BaseMismatchError",
    "FormatError",
    "DecodeError",
    "Step",
    "EncodeReport",
    "TensorSummary",
    "FORMAT_VERSION",
    "DEFAULT_SNR_DB",
    "__version__",
]
