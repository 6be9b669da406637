"""Host (x86-64) checks: the modified decoder (amsx_decoder.patch) on the amsx streams
and the unmodified decoder_c on tinycabac's streams, both linked with
bench/firmware/harness.c (the code the unicorn counts run) and host_check.c,
under AddressSanitizer and UndefinedBehaviorSanitizer."""
import subprocess
import sys

from streams import HERE, WORK, amsx_decoder_dir, load, msym_env

REPO = msym_env.REPO
BUILDS = {"amsx": amsx_decoder_dir(), "tinycabac": REPO / "decoder_c"}


def build(kind, extra=()):
    exe = WORK / f"check_host_{kind}{'_1div' if extra else ''}"
    src = BUILDS[kind]
    subprocess.run(["gcc", "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=undefined", "-DCHECK_MAIN", *extra, "-I", str(src),
                    str(HERE / "host_check.c"), str(REPO / "bench/firmware/harness.c"), str(src / "tinycabac.c"),
                    "-o", str(exe)], check=True)
    return exe


if __name__ == "__main__":
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    streams = load()
    exes = {("tinycabac", ""): build("tinycabac"), ("amsx", ""): build("amsx"),
            ("amsx", "one division (-DTC_AMSX_ONE_DIVISION=1)"): build("amsx", ["-DTC_AMSX_ONE_DIVISION=1"])}
    for label, pair in streams.items():
        for (kind, variant), exe in exes.items():
            path = WORK / f"{label.replace(' ', '_').replace(',', '')}.{kind}.tcab"
            path.write_bytes(pair[kind])
            out = subprocess.run([str(exe), str(path), str(trials)], capture_output=True, text=True)
            print(f"## {label} / {kind} {variant} (rc {out.returncode})\n{out.stdout}{out.stderr[-2000:]}", flush=True)
