"""Turn a tinycabac stream into C source, so firmware can embed it in flash.

`export_c` writes a .c file defining

    const unsigned char SYMBOL[];     (4-byte aligned, const: stays in flash)
    const unsigned long SYMBOL_len;   (its size in bytes)

and a header declaring both; given the stream's buffer sizes (the CLI
passes tinycabac.device's), the header also defines them as macros,
SYMBOL_WORK_SIZE and the like, for firmware to size its static buffers.
This module uses only the standard library:
the firmware build (firmware/scripts/embed_streams.py) loads it straight
from its file, without importing the tinycabac package and its dependencies.
"""
from __future__ import annotations

import os
import re

BYTES_PER_LINE = 12
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# The header is included from C and from C++ (extern "C"), so the array may
# be named by neither language's keywords (C23 and C++20).
_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual "
    "and and_eq asm bitand bitor catch char8_t char16_t char32_t class compl concept consteval constinit "
    "const_cast co_await co_return co_yield decltype delete dynamic_cast explicit export friend mutable namespace "
    "new noexcept not not_eq operator or or_eq private protected public reinterpret_cast requires static_cast "
    "template this throw try typeid typename using virtual wchar_t xor xor_eq".split()
)

# Alignment lets the decoder read headers from the array without faults on
# cores that trap unaligned loads; compilers spell it differently.
_ALIGN_MACRO = """#if defined(__GNUC__) || defined(__clang__)
#define TINYCABAC_EXPORT_ALIGN4 __attribute__((aligned(4)))
#elif defined(_MSC_VER)
#define TINYCABAC_EXPORT_ALIGN4 __declspec(align(4))
#else
#define TINYCABAC_EXPORT_ALIGN4
#endif"""


def export_c(
    data: bytes,
    c_path: str | os.PathLike,
    h_path: str | os.PathLike,
    symbol: str,
    source: str | None = None,
    macros: dict[str, tuple[int, str]] | None = None,
) -> None:
    """Write `data` as the C array `symbol` to c_path, declared in h_path.

    `source` names where the bytes came from (e.g. the .tcb path) in the
    files' comments.  `macros` ({suffix: (value, description)}) become
    `#define SYMBOL_SUFFIX value` lines in the header.  The .c file includes
    the header by its file name, so keep both in the same directory or on
    the include path.
    """
    c_text, h_text = c_files(data, symbol, os.path.basename(os.fspath(h_path)), source, macros)
    _write_text(h_path, h_text)
    _write_text(c_path, c_text)


def default_symbol(stem: str) -> str:
    """A valid array name from a file name: runs of characters other than
    ASCII letters and digits become one _, leading ones are dropped, and a
    name that would still be refused (a leading digit, a keyword) gets a
    tcb_ prefix."""
    symbol = re.sub(r"[^A-Za-z0-9]+", "_", stem).lstrip("_") or "tcb"
    if symbol[0].isdigit() or symbol in _KEYWORDS:
        symbol = "tcb_" + symbol
    return symbol


def c_files(data: bytes, symbol: str, header_name: str, source: str | None = None,
            macros: dict[str, tuple[int, str]] | None = None) -> tuple[str, str]:
    """The texts of the .c file and of its header `header_name`, without
    writing them (the CLI writes them atomically)."""
    if not _IDENTIFIER.match(symbol):
        raise ValueError(f"symbol {symbol!r} is not a C identifier")
    if symbol in _KEYWORDS:
        raise ValueError(f"symbol {symbol!r} is a C or C++ keyword")
    if symbol.startswith("_") or "__" in symbol:  # reserved at file scope in C, and in C++
        raise ValueError(f"symbol {symbol!r}: a leading _ or a __ is reserved for the C and C++ implementations")
    if any(c in header_name for c in '"\\\n'):  # C leaves these undefined in an #include "..."
        raise ValueError(f"header name {header_name!r}: a quote, backslash or newline cannot be #included")
    data = bytes(data)
    origin = _comment_safe(source if source is not None else "<bytes>")
    for suffix, (value, _) in (macros or {}).items():
        if not re.fullmatch(r"[A-Z0-9_]+", suffix) or not 0 <= value < 2**32:
            raise ValueError(f"macro {suffix!r} = {value!r}: a suffix of capitals and a 32-bit size expected")
    return (_source_text(data, symbol, origin, header_name),
            _header_text(symbol, origin, len(data), _macro_lines(symbol, macros or {})))


def _comment_safe(text: str) -> str:
    """Keep a name from ending the C comment it is quoted in."""
    return str(text).replace("*/", "* /").replace("\n", " ")


def _include_guard(symbol: str) -> str:
    """The symbol as it is: macros are case-sensitive, as the arrays are, so
    the headers of `ab` and `AB` can be included together."""
    return f"TINYCABAC_EXPORT_{symbol}_H"


def _macro_lines(symbol: str, macros: dict[str, tuple[int, str]]) -> str:
    """The buffer-size macros with a comment each, or nothing."""
    if not macros:
        return ""
    lines = ["/* What a device needs to decode this stream (tinycabac info): */"]
    for suffix, (value, description) in macros.items():
        lines.append(f"#define {symbol}_{suffix} {value}ul /* {_comment_safe(description)} */")
    return "\n".join(lines) + "\n\n"


def _header_text(symbol: str, origin: str, size: int, macro_lines: str = "") -> str:
    guard = _include_guard(symbol)
    return f"""/* Generated by tinycabac export-c from {origin} ({size} bytes).  Do not edit. */
#ifndef {guard}
#define {guard}

{macro_lines}#ifdef __cplusplus
extern "C" {{
#endif

extern const unsigned char {symbol}[];
extern const unsigned long {symbol}_len;

#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
"""


def _array_body(data: bytes) -> str:
    if not data:
        return "    0x00 /* empty stream: C forbids empty arrays */"
    lines = []
    for start in range(0, len(data), BYTES_PER_LINE):
        chunk = data[start : start + BYTES_PER_LINE]
        lines.append("    " + ", ".join(f"0x{byte:02x}" for byte in chunk) + ",")
    return "\n".join(lines)


def _source_text(data: bytes, symbol: str, origin: str, header_name: str) -> str:
    return f"""/* Generated by tinycabac export-c from {origin} ({len(data)} bytes).  Do not edit. */
#include "{header_name}"

{_ALIGN_MACRO}

TINYCABAC_EXPORT_ALIGN4 const unsigned char {symbol}[] = {{
{_array_body(data)}
}};

const unsigned long {symbol}_len = {len(data)}ul;
"""


def _write_text(path: str | os.PathLike, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
