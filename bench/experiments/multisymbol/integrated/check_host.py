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
same; the script reports the trials that differ and exits 1 if any do."""
import subprocess
import sys
from pathlib import Path

from streams import DEFAULT_PATCH, HERE, WORK, amsx_decoder_dir, load, msym_env

REPO = msym_env.REPO


def build(kind, src, extra=()):
    exe = WORK / f"check_host_{kind}{'_1div' if extra else ''}"
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
    one_div = ["-DTC_AMSX_ONE_DIVISION=1"]
    name = "amsx" if patch == DEFAULT_PATCH else Path(patch).stem
    exes = {("tinycabac", ""): build("tinycabac", REPO / "decoder_c")}
    src = amsx_decoder_dir(patch)
    exes[(name, "")] = build(name, src)
    exes[(name, "one division (-DTC_AMSX_ONE_DIVISION=1)")] = build(name, src, one_div)
    pairs = []  # (tested, reference) builds whose corrupt-payload traces must agree
    if patch != DEFAULT_PATCH:
        ref = amsx_decoder_dir(DEFAULT_PATCH)
        exes[("amsx", "")] = build("amsx", ref)
        exes[("amsx", "one division (-DTC_AMSX_ONE_DIVISION=1)")] = build("amsx", ref, one_div)
        pairs = [((name, v), ("amsx", v)) for v in ("", "one division (-DTC_AMSX_ONE_DIVISION=1)")]
    mismatches = 0
    for label, pair in streams.items():
        traces = {}
        for (kind, variant), exe in exes.items():
            payload = "tinycabac" if kind == "tinycabac" else "amsx"
            path = WORK / f"{label.replace(' ', '_').replace(',', '')}.{payload}.tcab"
            path.write_bytes(pair[payload])
            trace = WORK / f"{label.replace(' ', '_').replace(',', '')}.{kind}{'_1div' if variant else ''}.trace"
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
