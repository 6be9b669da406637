"""The buffers a device sets aside to decode a stream, from its directory.

`tinycabac info` prints them and `tinycabac export-c` writes them into the
header next to the array, so firmware can size its static buffers at
compile time instead of guessing (or taking the firmware demo's 16 KiB).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import codec, native
from .container import FormatError


@dataclass(frozen=True)
class DeviceBuffers:
    work_size: int  # the largest tc_tensor_info.work_size: working memory for tensors coded with prediction
    largest_tensor: int  # bytes of the largest decoded tensor (an output buffer for tc_decode_tensor)
    tflite_file: int | None = None  # a stream of a .tflite file: the file tc_tflite_rebuild rebuilds
    tflite_places: int | None = None  # and the place table it needs
    tflite_problem: str | None = None  # why a stream with a places table cannot be rebuilt

    def c_macros(self) -> dict[str, tuple[int, str]]:
        """{macro suffix: (value, what it is)} for export-c's header."""
        macros = {
            "WORK_SIZE": (self.work_size, "working memory for the tensors coded with prediction "
                          "(the largest tc_tensor_info.work_size; 0: none needed)"),
            "LARGEST_TENSOR_SIZE": (self.largest_tensor, "bytes of the largest decoded tensor"),
        }
        if self.tflite_file is not None:
            macros["TFLITE_SIZE"] = (self.tflite_file, "bytes of the .tflite file tc_tflite_rebuild rebuilds")
            macros["TFLITE_PLACES_SIZE"] = (self.tflite_places, "bytes of the place table tc_tflite_rebuild needs")
        return macros

    def summary(self) -> str:
        """One line for `tinycabac info`."""
        line = f"device buffers: working memory {self.work_size} B, largest tensor {self.largest_tensor} B"
        if self.tflite_file is not None:
            line += f"; .tflite rebuild {self.tflite_file} B with a {self.tflite_places} B place table"
        elif self.tflite_problem is not None:
            line += f"; no .tflite rebuild: {self.tflite_problem}"
        return line


def device_buffers(data: bytes) -> DeviceBuffers:
    """The buffer sizes for `data`; a stream the decoder refuses raises as
    tinycabac.info does."""
    # codec.is_update makes the whole-stream checks the host tools make;
    # an update carries a .tflite file's places but is no whole model to rebuild
    tflite, problem = None, None
    if not codec.is_update(data):
        try:
            tflite = native.tflite_buffer_sizes(data)
        except FormatError as error:  # the table does not decode: info still describes the stream
            problem = str(error)
    stream = native.Stream(data)
    tensors = [stream.info(i) for i in range(stream.tensor_count)]
    return DeviceBuffers(
        work_size=max((t.work_size for t in tensors), default=0),
        # as the C decoder writes them: float16 tensors decode to float32
        largest_tensor=max((t.element_count * t.element_size for t in tensors), default=0),
        tflite_file=None if tflite is None else tflite[0],
        tflite_places=None if tflite is None else tflite[1],
        tflite_problem=problem,
    )
