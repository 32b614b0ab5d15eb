"""Reading an input (a file, or ``-`` for standard input) as UTF-8 text, refusing what is not text."""

from __future__ import annotations

import sys
from pathlib import Path

from dbtune.errors import UsageError

STDIN = "-"
STDIN_LABEL = "<stdin>"
_SNIFF_BYTES = 8192
_MAGIC = {
    b"\x1f\x8b": "gzip-compressed: decompress it first (zcat FILE | dbtune … -)",
    b"BZh": "bzip2-compressed: decompress it first",
    b"\xfd7zXZ\x00": "xz-compressed: decompress it first",
    b"\x28\xb5\x2f\xfd": "zstd-compressed: decompress it first",
    b"PK\x03\x04": "a zip archive, not a SQL file or a server log",
    b"PGDMP": "a pg_dump archive (custom format): use pg_restore -f - to get SQL",
}


def label_of(path_or_dash: str | Path) -> str:
    """How errors and query locations name the input: the path as given, or ``<stdin>`` for ``-``."""
    return STDIN_LABEL if str(path_or_dash) == STDIN else str(path_or_dash)


def read_text(path_or_dash: str | Path, label: str | None = None) -> str:
    """The input's text (UTF-8, a leading byte-order mark dropped).

    ``label`` names the input in errors (default: the path, or ``<stdin>``). Raises :class:`UsageError`
    naming it when the file is missing or unreadable, compressed or binary (holds NUL bytes), not UTF-8,
    or empty (nothing but white space).
    """
    label = label or label_of(path_or_dash)
    if str(path_or_dash) == STDIN:
        data = sys.stdin.buffer.read()
    else:
        path = Path(path_or_dash)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UsageError(f"{label}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"{label}: is a directory, not a file") from None
        except OSError as exc:
            raise UsageError(f"{label}: cannot read: {exc.strerror or exc}") from None
    return decode(data, label)


def decode(data: bytes, label: str) -> str:
    """:func:`read_text`'s checks on bytes already read."""
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise UsageError(f"{label}: {what}")
    head = data[:_SNIFF_BYTES]
    if b"\x00" in head:
        offset = head.index(b"\x00")
        raise UsageError(f"{label}: a binary file (NUL byte at offset {offset}), not SQL text or a server log")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{label}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}, "
                         f"line {line}); convert it first, e.g. iconv -f LATIN1 -t UTF-8") from None
    if "\x00" in text:
        raise UsageError(f"{label}: a binary file (NUL byte at offset {text.index(chr(0))}), not SQL text or a "
                         "server log")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise UsageError(f"{label}: empty file: no SQL statement or log record")
    return text
