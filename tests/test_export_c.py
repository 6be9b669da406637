"""export_c: a stream turned into C source compiles and holds the same bytes."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import REPO, tool_missing

from tinycabac.export_c import default_symbol, export_c

CHECK_PROGRAM = r"""
#include <stdio.h>
#include <stdint.h>
#include "blob.h"
#include "blob.h" /* twice: the include guard must hold */

int main(void)
{
    if (((uintptr_t)SYMBOL) % 4u != 0u) return 2;
    fwrite(SYMBOL, 1, (size_t)SYMBOL_len, stdout);
    return 0;
}
"""


def compiler() -> str:
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return name
    tool_missing("no C compiler")


def compile_and_dump(tmp_path, data: bytes, symbol: str, source: str | None = None) -> bytes:
    export_c(data, tmp_path / "blob.c", tmp_path / "blob.h", symbol, source=source)
    program = CHECK_PROGRAM.replace("SYMBOL", symbol)
    (tmp_path / "check.c").write_text(program)
    executable = tmp_path / "check"
    subprocess.run(
        [compiler(), "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
         "-o", str(executable), str(tmp_path / "check.c"), str(tmp_path / "blob.c")],
        check=True,
    )  # fmt: skip
    return subprocess.run([str(executable)], check=True, capture_output=True).stdout


@pytest.mark.parametrize("size", [0, 1, 11, 12, 13, 4099])
def test_exported_array_holds_the_stream(tmp_path, size):
    data = bytes((i * 37 + 11) % 256 for i in range(size))
    assert compile_and_dump(tmp_path, data, "model_stream") == data


def test_files_declare_const_array_and_length_and_name_the_source(tmp_path):
    export_c(b"\x01\x02", tmp_path / "m.c", tmp_path / "m.h", "tc_model", source="models/digits */ evil.tcb")
    header = (tmp_path / "m.h").read_text()
    source = (tmp_path / "m.c").read_text()
    assert "#ifndef TINYCABAC_EXPORT_tc_model_H" in header
    assert "extern const unsigned char tc_model[];" in header
    assert "extern const unsigned long tc_model_len;" in header
    assert "models/digits * / evil.tcb" in header  # cannot close the comment early
    assert '#include "m.h"' in source
    assert "const unsigned char tc_model[] = {" in source
    assert "const unsigned long tc_model_len = 2ul;" in source
    # the comment survives compilation intact
    assert compile_and_dump(tmp_path, b"\xff", "tc_model", source="a */ b") == b"\xff"


def test_symbols_differing_in_case_have_their_own_include_guards(tmp_path):
    for symbol in ("ab", "AB"):
        export_c(symbol.encode(), tmp_path / f"{symbol}_x.c", tmp_path / f"{symbol}_x.h", symbol)
    (tmp_path / "both.c").write_text('#include "ab_x.h"\n#include "AB_x.h"\n'
                                     "int main(void) { return (int)(ab_len + AB_len) - 4; }\n")
    executable = tmp_path / "both"
    subprocess.run([compiler(), "-std=c99", "-Wall", "-Werror", "-o", str(executable), str(tmp_path / "both.c"),
                    str(tmp_path / "ab_x.c"), str(tmp_path / "AB_x.c")], check=True)  # fmt: skip
    assert subprocess.run([str(executable)]).returncode == 0


@pytest.mark.parametrize("header", ['we"ird.h', "back\\slash.h", "new\nline.h"])
def test_a_header_name_an_include_cannot_spell_is_refused(tmp_path, header):
    with pytest.raises(ValueError, match="cannot be #included"):
        export_c(b"x", tmp_path / "a.c", tmp_path / header, "blob")
    assert not (tmp_path / "a.c").exists() and not (tmp_path / header).exists()


@pytest.mark.parametrize("symbol", ["", "1abc", "a-b", "a b", "x;int y", "modèle"])
def test_rejects_symbols_that_are_not_c_identifiers(tmp_path, symbol):
    with pytest.raises(ValueError, match="not a C identifier"):
        export_c(b"x", tmp_path / "a.c", tmp_path / "a.h", symbol)


@pytest.mark.parametrize("symbol, problem", [
    ("int", "keyword"), ("restrict", "keyword"), ("class", "keyword"), ("new", "keyword"),  # C and C++
    ("_Bool", "reserved"), ("_model", "reserved"), ("model__v2", "reserved"),
])  # fmt: skip
def test_rejects_keywords_and_reserved_identifiers(tmp_path, symbol, problem):
    """They would not compile, or are the compiler's and C library's to use."""
    with pytest.raises(ValueError, match=problem):
        export_c(b"x", tmp_path / "a.c", tmp_path / "a.h", symbol)
    assert not (tmp_path / "a.c").exists()


@pytest.mark.parametrize("stem, symbol", [
    ("digits_int8", "digits_int8"), ("my model v2", "my_model_v2"), ("modèle", "mod_le"), ("9lives", "tcb_9lives"),
    ("int", "tcb_int"), ("__init__", "init_"), ("a--b", "a_b"), ("---", "tcb"),
])  # fmt: skip
def test_the_default_symbol_from_a_file_name_is_always_valid(tmp_path, stem, symbol):
    assert default_symbol(stem) == symbol
    assert compile_and_dump(tmp_path, b"\x07", symbol) == b"\x07"


BUFFERS_PROGRAM = r"""
#include <stdio.h>
#include "blob.h"
#include "tinycabac.h"
#include "tflite/tc_tflite.h"

/* Every buffer sized by the header's macros alone (+ 1: C has no empty arrays). */
static int8_t work[blob_WORK_SIZE + 1];
static uint8_t out[blob_LARGEST_TENSOR_SIZE + 1];
static uint8_t places[blob_TFLITE_PLACES_SIZE];
static uint8_t model[blob_TFLITE_SIZE];

int main(void)
{
    tc_stream s;
    tc_tensor_info t;
    tc_decoder d;
    uint32_t i, file_size, place_count;
    size_t largest = 0, work_needed = 0;
    if (tc_stream_open(&s, blob, blob_len) != TC_OK) return 1;
    for (i = 0; i < s.tensor_count; i++) {
        size_t bytes;
        if (tc_stream_tensor(&s, i, &t) != TC_OK) return 2;
        bytes = (size_t)t.element_count * t.element_size;
        if (tc_decode_tensor(&s, &t, &d, out, bytes, work, blob_WORK_SIZE) != TC_OK) return 3;
        largest = bytes > largest ? bytes : largest;
        work_needed = t.work_size > work_needed ? t.work_size : work_needed;
    }
    if (largest != blob_LARGEST_TENSOR_SIZE || work_needed != blob_WORK_SIZE) return 4;
    if (tc_tflite_info(&s, &d, work, blob_WORK_SIZE, &file_size, &place_count) != TC_OK) return 5;
    if (file_size != blob_TFLITE_SIZE || 8u * place_count + 4u != blob_TFLITE_PLACES_SIZE) return 6;
    if (tc_tflite_rebuild(&s, &d, work, blob_WORK_SIZE, places, sizeof places, model, sizeof model) != TC_OK)
        return 7;
    fwrite(model, 1, sizeof model, stdout);
    return 0;
}
"""


def test_the_header_sizes_every_buffer_a_device_needs(tmp_path):
    """export-c's macros are exactly what the C decoder asks for: a program
    whose buffers they alone size decodes every tensor of the bundled
    model's stream and rebuilds the .tflite file byte for byte."""
    from tinycabac import cli
    from tinycabac.models import default_model_path

    original = default_model_path("int8").read_bytes()
    (tmp_path / "m.tflite").write_bytes(original)
    assert cli.main(["encode", str(tmp_path / "m.tflite"), "-o", str(tmp_path / "m.tcb")]) == 0
    assert cli.main(["export-c", str(tmp_path / "m.tcb"), "-o", str(tmp_path / "blob"), "--symbol", "blob"]) == 0
    header = (tmp_path / "blob.h").read_text()
    assert "#define blob_WORK_SIZE " in header and "#define blob_TFLITE_SIZE " in header
    (tmp_path / "check.c").write_text(BUFFERS_PROGRAM)
    decoder = REPO / "decoder_c"
    executable = tmp_path / "check"
    subprocess.run(
        [compiler(), "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{decoder}", "-o", str(executable),
         str(tmp_path / "check.c"), str(tmp_path / "blob.c"), str(decoder / "tinycabac.c"),
         str(decoder / "tflite" / "tc_tflite.c")],
        check=True,
    )  # fmt: skip
    result = subprocess.run([str(executable)], capture_output=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout == original


def test_an_array_stream_has_no_tflite_macros(tmp_path):
    import numpy as np

    import tinycabac
    from tinycabac.device import device_buffers

    stream = tinycabac.encode({"w": np.arange(-50, 50, dtype=np.int8).reshape(10, 10),
                               "h": np.linspace(-1, 1, 30).astype(np.float16)})  # fmt: skip
    buffers = device_buffers(stream)
    # 100 int8 bytes, and 30 float16 weights that the C decoder writes as float32: 120 bytes
    assert buffers.largest_tensor == 120 and buffers.tflite_file is None
    assert set(buffers.c_macros()) == {"WORK_SIZE", "LARGEST_TENSOR_SIZE"}
    export_c(stream, tmp_path / "a.c", tmp_path / "a.h", "arr", macros=buffers.c_macros())
    assert "TFLITE" not in (tmp_path / "a.h").read_text()


def test_macros_must_be_sizes_with_capital_suffixes(tmp_path):
    with pytest.raises(ValueError, match="32-bit size"):
        export_c(b"x", tmp_path / "a.c", tmp_path / "a.h", "blob", macros={"work": (1, "x")})
    with pytest.raises(ValueError, match="32-bit size"):
        export_c(b"x", tmp_path / "a.c", tmp_path / "a.h", "blob", macros={"WORK": (-1, "x")})
    assert not (tmp_path / "a.h").exists()


def test_a_stream_whose_places_do_not_decode_is_described_but_not_exported(tmp_path, capsys):
    """tc_tflite_info reads only the places table's head: the host decodes
    it whole before it states buffer sizes a device would size from it."""
    from tinycabac import cli, native

    data = bytearray((REPO / "tests" / "golden" / "digits_int8.tcb").read_bytes())
    stream = native.Stream(bytes(data))
    places = next(stream.info(i) for i in range(stream.tensor_count) if stream.info(i).name == "__tflite_places__")
    data[places.payload_offset + 1] ^= 0xFF
    (tmp_path / "bad.tcb").write_bytes(bytes(data))
    assert cli.main(["info", str(tmp_path / "bad.tcb")]) == 0
    assert "no .tflite rebuild: tensor '__tflite_places__': corrupt payload" in capsys.readouterr().out
    assert cli.main(["info", str(tmp_path / "bad.tcb"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert "corrupt payload" in document["tflite_rebuild_problem"] and "tflite_file_bytes" not in document
    assert cli.main(["export-c", str(tmp_path / "bad.tcb"), "-o", str(tmp_path / "bad")]) == 1
    assert "__tflite_places__" in capsys.readouterr().err
    assert not (tmp_path / "bad.c").exists() and not (tmp_path / "bad.h").exists()
