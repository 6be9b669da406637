"""Cortex-M instruction counts and flash of the modified decoder (amsx_decoder.patch,
amsx payloads) next to the unmodified decoder_c (tinycabac payloads) on the
same tensors, with bench/firmware_report.py's own functions: link_harness
(bench/firmware/harness.c + the decoder's *.c; its DECODER_DIR is pointed at
one decoder, then the other), measure_speed (unicorn, instructions per
weight, the decoder checks every tensor's CRC-32), compile_objects +
object_footprint (library flash), linked_flash and struct_sizes.
Usage: measure.py [stream labels...]; default all five bench streams.
Writes $MULTISYMBOL_WORK/measure.json and prints markdown tables."""
import json
import sys
import time

from streams import WORK, amsx_decoder_dir, load, msym_env  # first: puts bench/ and host/ on sys.path

import firmware_report as fr  # noqa: E402

DECODERS = {"tinycabac (decoder_c)": ("tinycabac", msym_env.REPO / "decoder_c"), "amsx (integrated/decoder)": ("amsx", amsx_decoder_dir())}


def main(labels):
    streams = load()
    labels = labels or list(streams)
    res = {"speed": [], "flash": {}, "linked": {}, "structs": {}}
    for name, (kind, directory) in DECODERS.items():
        fr.DECODER_DIR = directory
        fr._DECODER_NAMES.clear()
        out = WORK / "fw" / kind
        out.mkdir(parents=True, exist_ok=True)
        for cpu in fr.SIZE_CPUS:
            for opt in fr.OPTIMIZATIONS:
                objects = fr.compile_objects(cpu, opt, out, include=directory)
                res["flash"][f"{name}|{cpu}|{opt}"] = vars(fr.object_footprint(objects)) | {"flash": fr.object_footprint(objects).flash}
                elf = fr.link_harness(cpu, opt, out)
                res["linked"][f"{name}|{cpu}|{opt}"] = fr.linked_flash(elf)
                res["structs"][name] = fr.struct_sizes(elf) if cpu == "cortex-m4" else res["structs"].get(name)
        for cpu in fr.SPEED_CPUS:
            for opt in fr.OPTIMIZATIONS:
                elf = fr.link_harness(cpu, opt, out)
                for label in labels:
                    t0 = time.time()
                    r = fr.measure_speed(elf, cpu, opt, label, streams[label][kind])
                    top = {k: v / r.weights for k, v in list(r.by_function.items())[:6]}
                    res["speed"].append(dict(decoder=name, stream=label, cpu=r.cpu, opt=opt, weights=r.weights,
                                             ipw=r.instructions_per_weight, cpw=r.cycles_per_weight, stack=r.stack, top=top))
                    print(f"{name} {label} {r.cpu} {opt}: {r.instructions_per_weight:.1f} instr/weight "
                          f"({time.time() - t0:.0f}s) top {', '.join(f'{k} {v:.1f}' for k, v in top.items())}", flush=True)
    (WORK / "measure.json").write_text(json.dumps(res, indent=1))
    return res


def table(res):
    lines = ["| stream | core | opt | tinycabac instr/weight | amsx instr/weight | change |", "|---|---|---|---:|---:|---:|"]
    rows = {}
    for r in res["speed"]:
        rows.setdefault((r["stream"], r["cpu"], r["opt"]), {})[r["decoder"].split()[0]] = r["ipw"]
    for (stream, cpu, opt), v in rows.items():
        a, b = v.get("tinycabac"), v.get("amsx")
        lines.append(f"| {stream} | {cpu} | {opt} | {a:.1f} | {b:.1f} | {100 * (b / a - 1):+.1f}% |")
    lines += ["", "| decoder | core | opt | .text | .rodata | flash (objects) | linked | helpers |", "|---|---|---|---:|---:|---:|---:|---|"]
    for key, f in res["flash"].items():
        name, cpu, opt = key.split("|")
        total, helpers = res["linked"][key]
        lines.append(f"| {name} | {cpu} | {opt} | {f['text']} | {f['rodata']} | {f['flash']} | {total} | {', '.join(helpers) or '-'} |")
    lines += ["", "sizeof (32-bit ARM): " + "; ".join(f"{k}: {v}" for k, v in res["structs"].items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(main(sys.argv[1:])))
