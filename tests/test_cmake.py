"""The C decoder as a CMake library (decoder_c/CMakeLists.txt), as CMake-based
firmware builds (the Raspberry Pi Pico SDK, STM32CubeMX's CMake projects) use
it: built on the host with its example, examples/tcdecode.c, which must print
every golden vector's digests as the manifest has them; added to another
project with add_subdirectory; and cross-built for a Cortex-M0+."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN_DIR, REPO, golden_manifest, require_tool

import tinycabac

DECODER = REPO / "decoder_c"
STRICT_FLAGS = "-Wall -Wextra -Werror -pedantic"


def cmake_build(source: Path, build: Path, *options: str) -> None:
    cmake = require_tool("cmake")
    configure = subprocess.run([cmake, "-S", str(source), "-B", str(build), *options], capture_output=True, text=True,
                               timeout=300)  # fmt: skip
    assert configure.returncode == 0, configure.stdout + configure.stderr
    built = subprocess.run([cmake, "--build", str(build)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr


@pytest.fixture(scope="module")
def tcdecode(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("cmake-host")
    cmake_build(DECODER, build, f"-DCMAKE_C_FLAGS={STRICT_FLAGS}")
    return build / "tcdecode"


def run(tool: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("vector", sorted(golden_manifest()["vectors"]))
def test_the_example_prints_every_golden_digest(tcdecode, vector):
    entry = golden_manifest()["vectors"][vector]
    base = ["--base", GOLDEN_DIR / golden_manifest()["vectors"][entry["base"]]["file"]] if "base" in entry else []
    result = run(tcdecode, GOLDEN_DIR / entry["file"], *base)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = [f"tensor {t['name']} {int(np.prod(t['shape'], dtype=np.int64))} crc32={t['crc32']}"
                for t in entry["tensors"]]  # fmt: skip
    assert result.stdout.splitlines() == expected + ["OK"]


def test_the_example_rebuilds_the_bundled_tflite(tcdecode, tmp_path):
    rebuilt = tmp_path / "digits_int8.tflite"
    result = run(tcdecode, GOLDEN_DIR / "digits_int8.tcb", "--tflite", rebuilt)
    assert result.returncode == 0, result.stdout + result.stderr
    original = (REPO / "host/tinycabac/models/digits_int8.tflite").read_bytes()
    assert rebuilt.read_bytes() == original
    assert result.stdout.splitlines()[-2].startswith(f"tflite {len(original)} crc32=")


def test_the_example_reports_damage_and_a_missing_base(tcdecode, tmp_path):
    damaged = bytearray((GOLDEN_DIR / "lossless_int8.tcb").read_bytes())
    damaged[-5] ^= 0x40  # inside the last tensor's payload
    (tmp_path / "damaged.tcb").write_bytes(bytes(damaged))
    result = run(tcdecode, tmp_path / "damaged.tcb")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith("FAIL ")
    assert "OK" not in result.stdout.splitlines()
    result = run(tcdecode, GOLDEN_DIR / "update_delta.tcb")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["FAIL an update: give the stream of its base with --base (tensor 0)"]
    result = run(tcdecode, tmp_path / "missing.tcb")
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_a_project_adds_the_decoder_with_add_subdirectory(tmp_path):
    """The README's three lines in a project of its own: the library builds
    with that project's flags and decodes a stream it encodes."""
    stream = tinycabac.encode({"w": np.arange(-60, 60, dtype=np.int8).reshape(8, 15)})
    (tmp_path / "stream.h").write_text("static const unsigned char stream[] = {" +
                                       ",".join(str(b) for b in stream) + "};\n")  # fmt: skip
    (tmp_path / "main.c").write_text("""#include <stdio.h>
#include "stream.h"
#include "tinycabac.h"
int main(void)
{
    static tc_decoder d;
    static int8_t work[256]; /* prediction's working memory: t.work_size bytes */
    tc_stream s;
    tc_tensor_info t;
    uint8_t out[120];
    if (tc_stream_open(&s, stream, sizeof stream) != TC_OK || tc_stream_tensor(&s, 0, &t) != TC_OK ||
        tc_decode_tensor(&s, &t, &d, out, sizeof out, work, sizeof work) != TC_OK)
        return 1;
    printf("%d %d\\n", (signed char)out[0], (signed char)out[119]);
    return 0;
}
""")
    (tmp_path / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.13)
project(app C)
add_subdirectory({DECODER.as_posix()} tinycabac)
add_executable(app main.c)
target_link_libraries(app tinycabac)
""")
    cmake_build(tmp_path, tmp_path / "build", f"-DCMAKE_C_FLAGS={STRICT_FLAGS}")
    assert not (tmp_path / "build" / "tinycabac" / "tcdecode").exists()  # examples only at the top level
    result = run(tmp_path / "build" / "app")
    assert (result.returncode, result.stdout) == (0, "-60 59\n")


def test_the_libraries_cross_build_for_a_cortex_m0plus(tmp_path):
    """What the Pico SDK does: the target's compiler, no hosted library."""
    gcc = require_tool("arm-none-eabi-gcc")
    toolchain = tmp_path / "cortex_m0plus.cmake"
    toolchain.write_text(f"""set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER {gcc})
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m0plus -mthumb -Os {STRICT_FLAGS}")
""")
    build = tmp_path / "build"
    cmake_build(DECODER, build, f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", "-DTINYCABAC_EXAMPLES=OFF")
    readelf = require_tool("arm-none-eabi-readelf")
    for library, symbol in (("libtinycabac.a", "tc_decoder_run"), ("libtinycabac_tflite.a", "tc_tflite_rebuild")):
        symbols = subprocess.run([readelf, "-s", str(build / library)], capture_output=True, text=True).stdout
        assert any(line.split()[-1] == symbol and " FUNC " in line for line in symbols.splitlines() if line.split())
        attributes = subprocess.run([readelf, "-A", str(build / library)], capture_output=True, text=True).stdout
        assert "Tag_CPU_arch: v6S-M" in attributes
