"""The C decoder on a big-endian machine and on one with a 16-bit int.

The format is little-endian (docs/FORMAT.md) and decoder_c claims portable
C99, but the other tiers run it on little-endian cores with a 32-bit int.
This tier builds it with -std=c99 -Wall -Wextra -Werror -pedantic for

- s390x (big-endian; gcc-s390x-linux-gnu, static, run by qemu-s390x):
  damage.c at -O2 and -Os decodes every golden vector to the MANIFEST's
  CRC-32s and catches a sample of its truncations and bit flips (each case
  also decoded in chunks), unit.c's streaming-API checks pass, and
  tflite_rebuild.c rebuilds the golden .tflite streams byte for byte as the
  host does and narrows float32 to float16 as numpy does;
- an ATmega1284P (8-bit AVR: 16-bit int and size_t, 16 KB RAM; gcc-avr, run
  by simavr): decoder_c/tests/avr_golden.c streams the golden vectors from
  flash through tc_decoder_run, at -Os and -O2, to the MANIFEST's CRC-32s,
  and narrows float32 samples to float16 as numpy does.  Two images hold
  them, as a 16-bit data pointer reaches only flash's first 64 KB:
  large_int8 (65536 elements, one more than a 16-bit size_t counts, in a
  54 KB stream split over two arrays, as one AVR object holds at most 32 KB)
  has one of its own.  Left out there: the .tflite rebuild (a digits model
  would not fit in the RAM).

It found bit_length64 truncating the high word of a 64-bit value to an
unsigned int: on AVR every float update (delta quantized) failed.  Debian
packages (make system-deps): gcc-s390x-linux-gnu libc6-dev-s390x-cross
qemu-user gcc-avr avr-libc simavr.  Under CI=true a missing tool is a
failure, elsewhere a skip.
"""
from __future__ import annotations

import re
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import GOLDEN_DIR, golden_manifest, require_tool
from test_c_decoder import (DECODER, ENCODER, STRICT, TESTS_C, assert_every_damage_caught,
                            assert_reference_matches_manifest, build, damage_jobs)  # fmt: skip
from test_tflite_rebuild import float16_narrowing_samples, numpy_float16_bits, rebuild
from tinycabac import modelfile

VECTORS = golden_manifest()["vectors"]
TFLITE_VECTORS = sorted(name for name, vector in VECTORS.items()  # the streams of .tflite files
                        if any(tensor["name"] == "__tflite_places__" for tensor in vector["tensors"]))

AVR_MCU = "atmega1284p"
AVR_MAX_OBJECT = 32767  # PTRDIFF_MAX: no one array may be larger
AVR_NEAR_FLASH = 60000  # the streams must lie in flash's first 64 KB, where a 16-bit pointer reaches
AVR_FLOAT16_SAMPLES = 1000


def big_endian_build(tmp_path: Path, name: str, sources: list[Path], optimization: str = "-O2") -> Path:
    return build(tmp_path, name, sources, [optimization, "-static"], compiler=require_tool("s390x-linux-gnu-gcc"))


def big_endian_run(executable: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [require_tool("qemu-s390x"), str(executable), *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("optimization", ["-O2", "-Os"], ids=["speed-build", "size-build"])
def test_big_endian_decodes_every_golden_vector_and_catches_damage(tmp_path, optimization):
    sources = [TESTS_C / "damage.c", TESTS_C / "tc_test_util.c", DECODER / "tinycabac.c"]
    executable = big_endian_build(tmp_path, "damage", sources, optimization)
    vectors = [argument for job in damage_jobs() for argument in job]
    result = big_endian_run(executable, "--max-cases", "16", "--stream-every", "1", *vectors)
    assert result.returncode == 0, result.stderr[-4000:]
    assert_reference_matches_manifest(result.stdout)
    assert_every_damage_caught(result.stdout)


def test_big_endian_streaming_api_edge_cases(tmp_path):
    sources = [TESTS_C / "unit.c", TESTS_C / "tc_test_util.c", DECODER / "tinycabac.c", ENCODER / "encoder.c"]
    result = big_endian_run(big_endian_build(tmp_path, "unit", sources))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert re.search(r"unit: \d+ checks, 0 failures", result.stdout)


@pytest.fixture(scope="module")
def big_endian_tflite_driver(tmp_path_factory) -> Path:
    sources = [TESTS_C / "tflite_rebuild.c", TESTS_C / "tc_test_util.c", DECODER / "tflite" / "tc_tflite.c",
               DECODER / "tinycabac.c"]  # fmt: skip
    return big_endian_build(tmp_path_factory.mktemp("tflite_s390x"), "tflite_rebuild", sources)


@pytest.mark.parametrize("name", TFLITE_VECTORS)
def test_big_endian_rebuilds_the_golden_tflite_files(big_endian_tflite_driver, tmp_path, name):
    stream = (GOLDEN_DIR / VECTORS[name]["file"]).read_bytes()
    emulator = (require_tool("qemu-s390x"),)
    status, rebuilt = rebuild(big_endian_tflite_driver, tmp_path, stream, emulator=emulator)
    assert status == 0 and rebuilt == modelfile.decode_model(stream).to_bytes()


def test_big_endian_float16_narrowing_matches_numpy(big_endian_tflite_driver, tmp_path):
    values = float16_narrowing_samples(20_000)
    (tmp_path / "f32.bin").write_bytes(values.astype("<f4").tobytes())
    result = big_endian_run(big_endian_tflite_driver, "float16", str(tmp_path / "f32.bin"), str(tmp_path / "f16.bin"))
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.frombuffer((tmp_path / "f16.bin").read_bytes(), "<u2"), numpy_float16_bits(values))


def avr_images() -> dict[str, list[str]]:
    """The golden vectors each AVR image holds, each base before its update:
    the streams of one AVR object's size, and those up to two objects long."""
    small = [name for name, vector in VECTORS.items() if vector["size"] <= AVR_MAX_OBJECT]
    bases = {VECTORS[name].get("base") for name in small}
    large = sorted(name for name in VECTORS if name not in small)
    assert all(VECTORS[name]["size"] <= 2 * AVR_MAX_OBJECT and not VECTORS[name].get("base") for name in large)
    return {"small": sorted(small, key=lambda name: name not in bases), "large": large}


def c_bytes(data: bytes) -> str:
    return ",".join(map(str, data))


def avr_flash_data(vectors: list[str], samples: np.ndarray) -> str:
    """golden_vectors.inc: the streams and float32 samples as PROGMEM arrays."""
    bases = {VECTORS[name].get("base") for name in vectors}
    streams = [(GOLDEN_DIR / VECTORS[name]["file"]).read_bytes() for name in vectors]
    assert sum(map(len, streams)) + samples.nbytes <= AVR_NEAR_FLASH, "split the AVR image in two"
    lines, rows = [], []
    for i, (name, data) in enumerate(zip(vectors, streams)):
        first, rest = data[:AVR_MAX_OBJECT], data[AVR_MAX_OBJECT:]
        lines.append(f"static const uint8_t vector_{i}[] PROGMEM = {{{c_bytes(first)}}};")
        if rest:
            lines.append(f"static const uint8_t vector_{i}_rest[] PROGMEM = {{{c_bytes(rest)}}};")
        rows.append(f'{{"{VECTORS[name]["file"]}", vector_{i}, {f"vector_{i}_rest" if rest else "NULL"}, '
                    f'{len(first)}u, {len(data)}u, {int(name in bases)}}}')
    lines.append(f"static const golden_vector vectors[] = {{{', '.join(rows)}}};")
    lines.append(f"static const uint8_t float32_samples[] PROGMEM = {{{c_bytes(samples.astype('<f4').tobytes())}}};")
    return "\n".join(lines) + "\n"


def simavr_console(stderr: str) -> str:
    """simavr shows UART0 output on stderr, each line colored and ending in '.'."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", stderr).splitlines()
    return "".join(line.removesuffix(".") + "\n" for line in lines)


@pytest.mark.parametrize("image", ["small", "large"])
@pytest.mark.parametrize("optimization", ["-Os", "-O2"], ids=["size-build", "speed-build"])
def test_16_bit_int_decodes_golden_vectors_under_simavr(tmp_path, optimization, image):
    simavr = require_tool("simavr")
    vectors, samples = avr_images()[image], float16_narrowing_samples(AVR_FLOAT16_SAMPLES)
    if image == "large":
        samples = samples[:64]  # the small image narrows them all; here flash is short
    (tmp_path / "golden_vectors.inc").write_text(avr_flash_data(vectors, samples))
    firmware = tmp_path / "avr_golden.elf"
    sources = [TESTS_C / "avr_golden.c", DECODER / "tinycabac.c", DECODER / "tflite" / "tc_tflite.c"]
    subprocess.run([require_tool("avr-gcc"), f"-mmcu={AVR_MCU}", *STRICT, optimization, f"-I{DECODER}",
                    f"-I{tmp_path}", "-o", str(firmware), *map(str, sources)], check=True)  # fmt: skip
    result = subprocess.run([simavr, "-m", AVR_MCU, "-f", "16000000", str(firmware)], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    console = simavr_console(result.stderr)
    assert result.returncode == 0 and console.endswith("done\n"), console[-4000:]
    assert "FAIL" not in console, console
    assert_reference_matches_manifest(console, vectors)
    expected_crc = zlib.crc32(numpy_float16_bits(samples).tobytes())
    assert f"float16 {len(samples)} {expected_crc:08x}\n" in console
