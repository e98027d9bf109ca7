"""Raw bytes and raw text in, the text the model reads out: decoding and cleaning at the reader.

* :func:`decode_bytes`: UTF-8 (a BOM dropped), UTF-16 with its BOM; otherwise the encoding
  charset-normalizer detects when it is one of the Chinese legacy encodings
  (GBK/GB18030, Big5, HZ); anything else is refused with a hint naming the
  likely encoding. NUL bytes in the first 4 KB mean a binary file.
* :func:`simplified`: Traditional characters as Simplified (opencc ``t2s``), where names and
  cue words are compared across scripts;
* :func:`clean_text`: what a terminal, an editor or a web page leaves in text
  and nobody reads removed: ANSI escape sequences, control characters (line
  breaks and tabs kept), bidirectional controls, zero-width characters, and
  lone surrogates (a JSON ``\\ud800`` escape: not a character, and not encodable).

The cleaned text *is* the document's text: facts' offsets refer to it (for a
text that needed no cleaning, that is the text as given).
"""

from __future__ import annotations

import codecs
import functools
import re

# Encodings decoded without asking: the legacy encodings of Chinese text.
CHINESE_ENCODINGS = ("gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp950", "hz", "euc_tw")
BINARY_PROBE_BYTES = 4096

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# C0 controls but tab and line breaks, DEL, C1 controls; bidi controls; zero-width characters and the BOM;
# lone surrogates.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
                        "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                        "\u200b-\u200d\u2060\ufeff\ud800-\udfff]")


# An opening bracket not closed before the end of the text searched: a span ending inside a bracket
# (服务费(扣除), a name inside a note (於|百慕达注册成立之有限公司).
OPEN_BRACKET_AT_END = re.compile(r"[（(][^）)]*$")

# Distinct texts whose Simplified form is kept: fact building asks for the same metric and
# organisation names many times per document.
SIMPLIFIED_CACHE_SIZE = 65_536


@functools.cache
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=SIMPLIFIED_CACHE_SIZE)
def simplified(text: str) -> str:
    """``text`` with Traditional characters as Simplified (興業消費金融 -> 兴业消费金融)."""
    return _t2s().convert(text)


class UndecodableError(ValueError):
    """The bytes are not text caibao can read; the message says why and what they look like."""


def decode_bytes(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a file's bytes; :class:`UndecodableError` when they are not readable text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Windows' "Unicode" text files
        try:
            return data.decode("utf-16").lstrip("\ufeff"), "utf-16"
        except UnicodeDecodeError as exc:
            raise UndecodableError(f"not valid UTF-16 ({exc.reason} at byte {exc.start})") from exc
    if b"\x00" in data[:BINARY_PROBE_BYTES]:
        raise UndecodableError("binary content (NUL bytes)")
    try:
        return data.decode("utf-8").lstrip("\ufeff"), "utf-8"
    except UnicodeDecodeError as exc:
        reason = f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise UndecodableError(f"{reason}; no text encoding fits")
    encoding = best.encoding.lower().replace("-", "_")
    if encoding not in CHINESE_ENCODINGS:
        raise UndecodableError(f"{reason}; it looks like {best.encoding}: convert it to UTF-8 "
                               f"(iconv -f {best.encoding} -t UTF-8)")
    return str(best), encoding


def clean_text(text: str) -> str:
    """``text`` without ANSI escapes, control, bidi and zero-width characters and lone surrogates;
    CRLF and CR become LF."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _INVISIBLE.sub("", _ANSI.sub("", text))
