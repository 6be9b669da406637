# Writes amsx_info.h (next to this script) for MB=1 and MB=2: symbol index -> bitlen << 12 | nraw << 8 | base,
# nraw including the sign bit; ESC: 0xF000.
from pathlib import Path


def info(MB):
    n8 = (2 << MB) + (8 - MB - 1) * (1 << MB); out = []
    for s in range(n8):
        if s < (2 << MB): base, nraw, b = s, 0, s.bit_length()
        else:
            b = (s >> MB) + MB; top = (s & ((1 << MB) - 1)) | 1 << MB; nraw = b - 1 - MB; base = top << nraw
        out.append(b << 12 | (nraw + (s != 0)) << 8 | base)
    return out + [0xF000]


if __name__ == "__main__":
    with open(Path(__file__).resolve().parent / "amsx_info.h", "w") as f:
        for MB in (1, 2):
            t = info(MB)
            f.write(f"#if MB == {MB}\nconst uint16_t amsx_info[NSYM] = {{{', '.join(hex(x) for x in t[:-1])}\n#if ESC\n, 0xF000\n#endif\n}};\n#endif\n")
