"""Cortex-M instruction counts and flash of the modified decoder (amsx_decoder.patch,
amsx payloads) next to the unmodified decoder_c (tinycabac payloads) on the
same tensors, with bench/firmware_report.py's own functions: link_harness
(bench/firmware/harness.c + the decoder's *.c; its DECODER_DIR is pointed at
one decoder, then the other), measure_speed (unicorn, instructions per
weight, the decoder checks every tensor's CRC-32), compile_objects +
object_footprint (library flash), linked_flash and struct_sizes.
Usage: measure.py [--patch FILE]... [stream labels...]; default all the
streams of streams.py and the one patch amsx_decoder.patch.  Each --patch
(amsx_decoder.patch, amsx_decoder_fast.patch, amsx_decoder_small.patch) adds
one patched decoder, which decodes its own payloads (streams.payload_key).
Writes $MULTISYMBOL_WORK/measure.json (measure_<patch stems>.json when the
patches are not the default one) and prints markdown tables."""
import json
import sys
import time
from pathlib import Path

from streams import DEFAULT_PATCH, WORK, amsx_decoder_dir, load, msym_env, payload_key  # first: puts bench/ and host/ on sys.path

import firmware_report as fr  # noqa: E402


def decoder_label(patch):
    return "amsx (integrated/decoder)" if patch == DEFAULT_PATCH else f"amsx {Path(patch).stem} (integrated/decoder_{Path(patch).stem})"


def decoders(patches):
    result = {"tinycabac (decoder_c)": ("tinycabac", "tinycabac", msym_env.REPO / "decoder_c")}
    for patch in patches:
        result[decoder_label(patch)] = (payload_key(patch), "amsx" if patch == DEFAULT_PATCH else Path(patch).stem,
                                        amsx_decoder_dir(patch))
    return result


def main(labels, patches=(DEFAULT_PATCH,)):
    streams = load()
    labels = labels or list(streams)
    res = {"speed": [], "flash": {}, "linked": {}, "structs": {}, "patches": list(patches)}
    for name, (kind, build, directory) in decoders(patches).items():
        fr.DECODER_DIR = directory
        fr._DECODER_NAMES.clear()
        out = WORK / "fw" / build
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
    stems = [Path(p).stem for p in patches]
    path = WORK / ("measure.json" if list(patches) == [DEFAULT_PATCH] else f"measure_{'+'.join(stems)}.json")
    path.write_text(json.dumps(res, indent=1))
    return res


def table(res):
    names = list(dict.fromkeys(r["decoder"] for r in res["speed"]))
    amsx = [n for n in names if not n.startswith("tinycabac")]
    rows = {}
    for r in res["speed"]:
        rows.setdefault((r["stream"], r["cpu"], r["opt"]), {})[r["decoder"]] = r["ipw"]
    if len(amsx) == 1:  # the original layout
        lines = ["| stream | core | opt | tinycabac instr/weight | amsx instr/weight | change |", "|---|---|---|---:|---:|---:|"]
    else:
        heads = " | ".join(f"{n.split(' (')[0]} | change" for n in amsx)
        lines = [f"| stream | core | opt | tinycabac instr/weight | {heads} |", "|---|---|---|---:|" + "---:|---:|" * len(amsx)]
    for (stream, cpu, opt), v in rows.items():
        a = v.get("tinycabac (decoder_c)")
        cells = " | ".join(f"{v[n]:.1f} | {100 * (v[n] / a - 1):+.1f}%" for n in amsx)
        lines.append(f"| {stream} | {cpu} | {opt} | {a:.1f} | {cells} |")
    lines += ["", "| decoder | core | opt | .text | .rodata | flash (objects) | linked | helpers |", "|---|---|---|---:|---:|---:|---:|---|"]
    for key, f in res["flash"].items():
        name, cpu, opt = key.split("|")
        total, helpers = res["linked"][key]
        lines.append(f"| {name} | {cpu} | {opt} | {f['text']} | {f['rodata']} | {f['flash']} | {total} | {', '.join(helpers) or '-'} |")
    lines += ["", "sizeof (32-bit ARM): " + "; ".join(f"{k}: {v}" for k, v in res["structs"].items())]
    return "\n".join(lines)


def parse(argv):
    patches, labels = [], []
    it = iter(argv)
    for arg in it:
        if arg == "--patch":
            patches.append(next(it))
        elif arg.startswith("--patch="):
            patches.append(arg.split("=", 1)[1])
        else:
            labels.append(arg)
    return labels, tuple(patches) or (DEFAULT_PATCH,)


if __name__ == "__main__":
    labels, patches = parse(sys.argv[1:])
    print(table(main(labels, patches)))
