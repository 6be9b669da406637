"""Issue 7 on the device: an update stream applied in place by the Cortex-M
firmware under QEMU equals the host's tinycabac.apply, and a wrong base is
refused.  Builds reuse the helpers of tests/test_firmware.py."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import tinycabac
from conftest import GOLDEN_DIR, golden_manifest
from test_firmware import FIRMWARE_HISTORY_SIZE, pio_build, predicted_rows, require_tools, run_firmware

UPDATE_ENVS = ["mps2_an386", "microbit"]


def update_vectors() -> list[tuple[str, str]]:
    return [(v["file"], golden_manifest()["vectors"][v["base"]]["file"])
            for v in golden_manifest()["vectors"].values() if "base" in v]


def host_update_digests(base_stream: bytes, update_stream: bytes) -> list[tuple[str, int, str]]:
    applied = tinycabac.apply(tinycabac.decode(base_stream), update_stream, include_reserved=True)
    digests = []
    for name, array in applied.items():
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        digests.append((name, array.size, f"{zlib.crc32(data):08x}"))
    return digests


@pytest.mark.parametrize("env_name", UPDATE_ENVS)
def test_firmware_applies_updates_like_the_host(env_name, tmp_path):
    require_tools("pio", "arm-none-eabi-gcc", "qemu-system-arm", "timeout")
    vectors = update_vectors()
    assert vectors, "no update golden vectors"
    streams = []
    for update, base in vectors:
        streams += [GOLDEN_DIR / base, GOLDEN_DIR / update]
    elf = pio_build(env_name, tmp_path / "build", streams)
    status, reports = run_firmware(env_name, elf)
    assert status == 0, reports
    for update, base in vectors:
        report = reports[update]
        assert report.verdict == "OK"
        expected = host_update_digests((GOLDEN_DIR / base).read_bytes(), (GOLDEN_DIR / update).read_bytes())
        printed = [row for row in report.tensors if row[0] != "__base_sha256__"]
        assert printed == expected


def test_firmware_finds_bases_in_another_order(tmp_path):
    """An update need not hold its tensors in the base's order, nor all of
    them: the device looks each base tensor up by name."""
    require_tools("pio", "arm-none-eabi-gcc", "qemu-system-arm", "timeout")
    old = {name: np.arange(40, dtype=np.int8) * (i + 1) for i, name in enumerate("abcdef")}
    new = {name: old[name] + 1 for name in "fbcae"}  # "d" left out, "b", "c" in the base's order
    streams = {"base.tcb": tinycabac.encode(old), "reordered.tcb": tinycabac.encode(new, base=old)}
    for name, data in streams.items():
        (tmp_path / name).write_bytes(data)
    elf = pio_build("mps2_an386", tmp_path / "build", [tmp_path / name for name in streams])
    status, reports = run_firmware("mps2_an386", elf)
    assert status == 0, reports
    printed = [row for row in reports["reordered.tcb"].tensors if row[0] != "__base_sha256__"]
    assert printed == host_update_digests(streams["base.tcb"], streams["reordered.tcb"])
    assert [row[0] for row in printed] == list("fbcae")


def test_firmware_refuses_an_update_on_the_wrong_base(tmp_path):
    require_tools("pio", "arm-none-eabi-gcc", "qemu-system-arm", "timeout")
    update, base = update_vectors()[0]
    wrong_base = tmp_path / "wrong_base.tcb"
    tensors = tinycabac.decode((GOLDEN_DIR / base).read_bytes())
    first = next(iter(tensors))
    tensors[first] = tensors[first].copy()
    tensors[first].flat[0] += 1
    wrong_base.write_bytes(tinycabac.encode(tensors, step=1e-3))
    elf = pio_build("mps2_an386", tmp_path / "build", [wrong_base, GOLDEN_DIR / update])
    status, reports = run_firmware("mps2_an386", elf)
    assert status == 1
    assert reports[update].verdict.startswith("FAIL wrong base tensor")


def test_firmware_update_paths_name_the_history_they_lack(tmp_path):
    """Prediction on the update path: an update tensor with H beyond the
    firmware's history buffer is refused with both sizes named; one within
    it applies, on a base that itself needs the whole buffer."""
    require_tools("pio", "arm-none-eabi-gcc", "qemu-system-arm", "timeout")
    h = FIRMWARE_HISTORY_SIZE["mps2_an386"]
    old = predicted_rows(2, 1024)
    new = old.copy()
    new[:, ::7] += 1
    streams = {
        "base.tcb": tinycabac.encode({"w": old}, history=h),
        "fits.tcb": tinycabac.encode({"w": new}, base={"w": old}, history=1024),
        "base_again.tcb": tinycabac.encode({"w": old}, history=0),
        "too_long.tcb": tinycabac.encode({"w": new}, base={"w": old}, history=h + 1),
    }
    for name, data in streams.items():
        (tmp_path / name).write_bytes(data)
    elf = pio_build("mps2_an386", tmp_path / "build", [tmp_path / name for name in streams])
    status, reports = run_firmware("mps2_an386", elf)
    assert status == 1
    assert reports["fits.tcb"].verdict == "OK"
    expected = host_update_digests(streams["base.tcb"], streams["fits.tcb"])
    assert [row for row in reports["fits.tcb"].tensors if row[0] != "__base_sha256__"] == expected
    assert reports["too_long.tcb"].verdict == (
        f"FAIL history buffer too small ({h + 1} > {h}) (tensor 0)"
    )
