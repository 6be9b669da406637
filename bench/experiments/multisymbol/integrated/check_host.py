"""Host (x86-64) checks: the modified decoder (amsx_decoder.patch, or the patch
given with --patch) on the amsx streams and the unmodified decoder_c on
tinycabac's streams, both linked with bench/firmware/harness.c (the code the
unicorn counts run) and host_check.c, under AddressSanitizer and
UndefinedBehaviorSanitizer.

Usage: check_host.py [--patch FILE] [trials]  (trials: corrupt payloads per
stream, default 2000).  With a patch other than amsx_decoder.patch, the
decoder built from amsx_decoder.patch runs the same corrupt payloads too
(each build also with -DTC_AMSX_ONE_DIVISION=1), and every trial's outcome
(status; for the chunked trials also a hash of all output produced, the
payload bytes consumed and the number of tc_decoder_run calls) must be the
same; the script reports the trials that differ and exits 1 if any do.
amsx_decoder_small.patch reads other payloads (streams.payload_key: its
escape differs), so its reference is itself built with -Os (the code of
size builds: no fast path, the symbol's bits computed, one raw-bits loop),
against which both its default build (fast path, generic path of speed
builds) and its generic path of speed builds alone (-DTC_AMSX_FAST=0) are
compared, each with and without -DTC_AMSX_ONE_DIVISION=1."""
import subprocess
import sys
from pathlib import Path

from streams import DEFAULT_PATCH, HERE, WORK, amsx_decoder_dir, load, msym_env, payload_key

REPO = msym_env.REPO


def suffix(extra):
    """_1div for -DTC_AMSX_ONE_DIVISION=1, _generic for -DTC_AMSX_FAST=0, _Os for -Os."""
    return (("_generic" if "-DTC_AMSX_FAST=0" in extra else "") + ("_Os" if "-Os" in extra else "")
            + ("_1div" if "-DTC_AMSX_ONE_DIVISION=1" in extra else ""))


def build(kind, src, extra=()):
    exe = WORK / f"check_host_{kind}{suffix(extra)}"
    subprocess.run(["gcc", "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=undefined", "-DCHECK_MAIN", *extra, "-I", str(src),
                    str(HERE / "host_check.c"), str(REPO / "bench/firmware/harness.c"), str(src / "tinycabac.c"),
                    "-o", str(exe)], check=True)
    return exe


def parse(argv):
    patch, rest = DEFAULT_PATCH, []
    it = iter(argv)
    for arg in it:
        if arg == "--patch":
            patch = next(it)
        elif arg.startswith("--patch="):
            patch = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return patch, int(rest[0]) if rest else 2000


if __name__ == "__main__":
    patch, trials = parse(sys.argv[1:])
    streams = load()
    one = "one division (-DTC_AMSX_ONE_DIVISION=1)"
    flags = {"": [], one: ["-DTC_AMSX_ONE_DIVISION=1"], "generic path (-DTC_AMSX_FAST=0)": ["-DTC_AMSX_FAST=0"],
             "generic path, one division": ["-DTC_AMSX_FAST=0", "-DTC_AMSX_ONE_DIVISION=1"],
             "-Os": ["-Os"], "-Os, one division": ["-Os", "-DTC_AMSX_ONE_DIVISION=1"]}
    name = "amsx" if patch == DEFAULT_PATCH else Path(patch).stem
    exes = {("tinycabac", ""): (build("tinycabac", REPO / "decoder_c"), "tinycabac", [])}
    src = amsx_decoder_dir(patch)
    for variant in ("", one):
        exes[(name, variant)] = (build(name, src, flags[variant]), payload_key(patch), flags[variant])
    pairs = []  # (tested, reference) builds whose corrupt-payload traces must agree
    if payload_key(patch) != "amsx":
        for variant in ("generic path (-DTC_AMSX_FAST=0)", "generic path, one division", "-Os", "-Os, one division"):
            exes[(name, variant)] = (build(name, src, flags[variant]), payload_key(patch), flags[variant])
        pairs = [((name, ""), (name, "-Os")), ((name, "generic path (-DTC_AMSX_FAST=0)"), (name, "-Os")),
                 ((name, one), (name, "-Os, one division")),
                 ((name, "generic path, one division"), (name, "-Os, one division"))]
    elif patch != DEFAULT_PATCH:
        ref = amsx_decoder_dir(DEFAULT_PATCH)
        for variant in ("", one):
            exes[("amsx", variant)] = (build("amsx", ref, flags[variant]), "amsx", flags[variant])
        pairs = [((name, v), ("amsx", v)) for v in ("", one)]
    mismatches = 0
    for label, pair in streams.items():
        traces = {}
        for (kind, variant), (exe, payload, extra) in exes.items():
            path = WORK / f"{label.replace(' ', '_').replace(',', '')}.{payload}.tcab"
            path.write_bytes(pair[payload])
            trace = WORK / f"{label.replace(' ', '_').replace(',', '')}.{kind}{suffix(extra)}.trace"
            args = [str(exe), str(path), str(trials)] + ([str(trace)] if pairs and kind != "tinycabac" else [])
            out = subprocess.run(args, capture_output=True, text=True)
            print(f"## {label} / {kind} {variant} (rc {out.returncode})\n{out.stdout}{out.stderr[-2000:]}", flush=True)
            if len(args) > 3:
                traces[(kind, variant)] = trace.read_text().splitlines()
        for tested, reference in pairs:
            a, b = traces[tested], traces[reference]
            differ = [(x, y) for x, y in zip(a, b) if x != y] + ([("length", f"{len(a)} vs {len(b)}")] if len(a) != len(b) else [])
            mismatches += len(differ)
            print(f"## {label}: {tested[0]} {tested[1]} against {reference[0]} {reference[1]}: {len(a)} corrupt trials, "
                  f"{len(differ)} differ" + "".join(f"\n   {x} | {y}" for x, y in differ[:10]), flush=True)
    if pairs:
        print(f"corrupt-payload comparison: {mismatches} differing trials in all")
    sys.exit(1 if mismatches else 0)
