"""export_c: a stream turned into C source compiles and holds the same bytes."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import tool_missing

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
