"""Corpus ingestion: raw files -> clean documents (one JSON line each).

Three layouts are recognised, by content rather than by file name:

* Jekyll posts: ``---`` front matter (title, date, categories) + HTML body.
* Sina archives: articles separated by blank lines, first line the title.
* Bilingual call transcripts: speaker lines (written twice) followed by
  alternating English / Chinese paragraphs.

Document ids are derived from the source file's numeric prefix and the
position inside it (``seed-002-0042``), so they stay stable when other
files are added. Exact and near duplicates are clustered (``meta.cluster``)
and all but the first of each cluster get ``meta.duplicate_of``.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import yaml

from caibao.io import InputError, atomic_write_text
from caibao.schema import Document


class IngestError(InputError):
    """A raw input file that cannot be read as any known layout."""


# --- boilerplate config ------------------------------------------------------


@dataclass(frozen=True)
class Boilerplate:
    drop_lines: tuple[re.Pattern, ...]
    menu_lines: frozenset[str]
    strip_prefixes: tuple[re.Pattern, ...]
    strip_suffixes: tuple[re.Pattern, ...]
    drop_jekyll_lines: tuple[re.Pattern, ...]
    shingle_size: int
    jaccard_threshold: float

    @classmethod
    def load(cls, path: Path | None = None) -> "Boilerplate":
        if path is None:
            raw = resources.files("caibao").joinpath("resources/boilerplate.yaml").read_text("utf-8")
            path_name = "caibao/resources/boilerplate.yaml"
        else:
            raw = Path(path).read_text("utf-8")
            path_name = str(path)
        try:
            cfg = yaml.safe_load(raw) or {}
            near = cfg.get("near_duplicate", {})
            return cls(
                drop_lines=tuple(re.compile(p) for p in cfg.get("drop_lines", [])),
                menu_lines=frozenset(cfg.get("menu_lines", [])),
                strip_prefixes=tuple(re.compile(p) for p in cfg.get("strip_prefixes", [])),
                strip_suffixes=tuple(re.compile(f"(?:{p})$") for p in cfg.get("strip_suffixes", [])),
                drop_jekyll_lines=tuple(re.compile(p) for p in cfg.get("drop_jekyll_lines", [])),
                shingle_size=int(near.get("shingle_size", 5)),
                jaccard_threshold=float(near.get("jaccard_threshold", 0.6)),
            )
        except (yaml.YAMLError, re.error, TypeError, ValueError) as exc:
            raise IngestError(path_name, f"invalid boilerplate config: {exc}") from exc

    def is_boilerplate(self, line: str) -> bool:
        return line in self.menu_lines or any(p.fullmatch(line) for p in self.drop_lines)

    def clean_line(self, line: str) -> str:
        """Strip the line, cut ad prefixes and editor footers; '' when the whole line is boilerplate."""
        line = line.strip()
        changed = True
        while changed and line:
            changed = False
            for prefix in self.strip_prefixes:
                m = prefix.match(line)
                if m and m.end() > 0:
                    line = line[m.end() :].strip()
                    changed = True
            for suffix in self.strip_suffixes:
                m = suffix.search(line)
                if m and m.start() < len(line):
                    line = line[: m.start()].strip()
                    changed = True
        return "" if self.is_boilerplate(line) else line


# --- language and script ----------------------------------------------------

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
# Characters that exist only in one of the two scripts, frequent in financial text.
_TRADITIONAL_ONLY = set("們這個來為國對說會時後與於實現發開經過還進貸款資產風險營運業務績財報億萬兩領導務較網戶專頭營收淨額聯數據點長務體與從")
_SIMPLIFIED_ONLY = set("们这个来为国对说会时后与于实现发开经过还进贷款资产风险营运业务绩财报亿万两领导务较网户专头营收净额联数据点长务体与从")
_TRADITIONAL_ONLY -= _SIMPLIFIED_ONLY
_SIMPLIFIED_ONLY -= _TRADITIONAL_ONLY


def detect_lang(text: str) -> str:
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    # A Chinese sentence has ~1 CJK char per word; an English one ~5 letters per word.
    return "zh" if cjk * 4 >= latin else "en"


def detect_script(text: str) -> str | None:
    trad = sum(ch in _TRADITIONAL_ONLY for ch in text)
    simp = sum(ch in _SIMPLIFIED_ONLY for ch in text)
    if trad == simp == 0:
        return None
    return "traditional" if trad > simp else "simplified"


# --- HTML -> text -------------------------------------------------------------

_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "table"}
_SKIP_TAGS = {"script", "style", "img"}


class _HtmlText(HTMLParser):
    """Collects visible text, one block element a line; hidden elements and images skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0
        self._stack: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        attrs = dict(attrs)
        hidden = "display:none" in (attrs.get("style") or "").replace(" ", "")
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")
        if tag in ("br", "img"):
            return  # void elements: no end tag follows
        self._stack.append((tag, hidden))
        if hidden or tag in _SKIP_TAGS:
            self._hidden_depth += 1

    def handle_endtag(self, tag: str) -> None:
        # Pop to the matching start tag (tolerates unclosed inline tags).
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                for t, hidden in self._stack[i:]:
                    if hidden or t in _SKIP_TAGS:
                        self._hidden_depth -= 1
                del self._stack[i:]
                break
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden_depth == 0:
            self.parts.append(data)


def html_to_lines(markup: str) -> list[str]:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.parts))
    return [line.strip() for line in text.split("\n") if line.strip()]


# --- layouts -------------------------------------------------------------------


@dataclass
class RawDoc:
    position: int
    title: str | None
    body_lines: list[str]
    meta: dict = field(default_factory=dict)


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise IngestError(path, "binary file (NUL bytes), expected UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IngestError(path, f"not valid UTF-8 ({exc.reason} at byte {exc.start})", line) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def _parse_front_matter(path: Path, text: str) -> tuple[dict, str]:
    lines = text.split("\n")
    try:
        end = lines.index("---", 1)
    except ValueError:
        raise IngestError(path, "front matter opened with '---' is never closed", 1) from None
    try:
        front = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise IngestError(path, f"front matter is not valid YAML: {getattr(exc, 'problem', exc)}",
                          (mark.line + 2) if mark else None) from exc
    if not isinstance(front, dict):
        raise IngestError(path, "front matter is not a mapping", 2)
    return front, "\n".join(lines[end + 1 :])


def _iso_date(value) -> str | None:
    if value is None:
        return None
    if hasattr(value, "date") and callable(value.date):
        return value.date().isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    s = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(s, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def parse_jekyll(path: Path, text: str, bp: Boilerplate) -> list[RawDoc]:
    front, body = _parse_front_matter(path, text)
    if "title" not in front:
        raise IngestError(path, "front matter has no 'title'", 2)
    lines = [
        line for line in html_to_lines(body)
        if not any(p.fullmatch(line) for p in bp.drop_jekyll_lines)
    ]
    lines = [c for c in (bp.clean_line(line) for line in lines) if c]
    categories = front.get("categories")
    if isinstance(categories, str):
        categories = categories.split()
    meta = {"date": _iso_date(front.get("date")), "categories": categories or []}
    return [RawDoc(0, str(front["title"]).strip(), lines, meta)]


def parse_blocks(path: Path, text: str, bp: Boilerplate) -> list[RawDoc]:
    """Blank-line separated articles; the first non-boilerplate line is the title."""
    docs = []
    blocks = re.split(r"\n[ \t\u3000]*\n", text)
    for position, block in enumerate(b for b in blocks if b.strip()):
        lines = [c for c in (bp.clean_line(line) for line in block.split("\n")) if c]
        if not lines:
            docs.append(RawDoc(position, None, [], {"empty_after_cleaning": True}))
            continue
        docs.append(RawDoc(position, lines[0], lines[1:], {"date": None}))
    return docs


def parse_transcript(path: Path, text: str, bp: Boilerplate) -> list[RawDoc]:
    """Speaker turns; each turn gives a Chinese and an English document.

    A speaker line is written twice in a row (English header, then its
    'translation', which is identical); the paragraphs of a turn then
    alternate English / Chinese.
    """
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    turns: list[tuple[str, list[str]]] = []
    i = 0
    # Lines before the first speaker (a translation disclaimer) are not part of the call.
    while i + 1 < len(lines) and lines[i] != lines[i + 1]:
        i += 1
    if i + 1 >= len(lines):
        raise IngestError(path, "no speaker line (a line written twice in a row) found")
    while i < len(lines):
        if i + 1 < len(lines) and lines[i] == lines[i + 1]:
            turns.append((lines[i], []))
            i += 2
            continue
        turns[-1][1].append(lines[i])
        i += 1
    docs = []
    for k, (speaker, paragraphs) in enumerate(turns):
        by_lang: dict[str, list[str]] = {"zh": [], "en": []}
        for paragraph in paragraphs:
            cleaned = bp.clean_line(paragraph)
            if cleaned:
                by_lang[detect_lang(cleaned)].append(cleaned)
        for offset, lang in ((0, "zh"), (1, "en")):
            if by_lang[lang]:
                docs.append(RawDoc(2 * k + offset, None, by_lang[lang],
                                   {"date": None, "speaker": speaker, "turn": k}))
    return docs


def detect_layout(path: Path, text: str) -> str:
    if text.startswith("---\n"):
        return "jekyll"
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise IngestError(path, "empty file")
    if re.search(r"\n[ \t\u3000]*\n", text.strip()):
        return "blocks"
    doubled = sum(1 for a, b in zip(lines, lines[1:]) if a == b)
    english = sum(1 for line in lines if detect_lang(line) == "en")
    if doubled >= 1 and english >= len(lines) // 4:
        return "transcript"
    raise IngestError(path, "unrecognised layout: not a Jekyll post, blank-line separated articles, "
                            "or a bilingual transcript")


_PARSERS = {"jekyll": parse_jekyll, "blocks": parse_blocks, "transcript": parse_transcript}


def source_prefix(path: Path) -> str:
    m = re.match(r"(\d+)", path.name)
    return m.group(1) if m else re.sub(r"[^A-Za-z0-9]+", "-", path.stem).strip("-")


def ingest_file(path: Path, bp: Boilerplate, id_prefix: str = "seed") -> tuple[list[Document], dict]:
    text = _read_text(path)
    layout = detect_layout(path, text)
    raw_docs = _PARSERS[layout](path, text, bp)
    documents, empty = [], 0
    for raw in raw_docs:
        if raw.meta.get("empty_after_cleaning"):
            empty += 1
            continue
        lines = ([raw.title] if raw.title else []) + raw.body_lines
        body = "\n".join(lines)
        meta = {
            "title": raw.title,
            "date": raw.meta.get("date"),
            "source": path.name,
            "layout": layout,
            "lang": detect_lang(body),
            "script": detect_script(body),
        }
        meta.update({k: v for k, v in raw.meta.items() if k not in meta})
        doc_id = f"{id_prefix}-{source_prefix(path)}-{raw.position:04d}"
        documents.append(Document(id=doc_id, text=body, meta=meta))
    return documents, {"layout": layout, "documents": len(documents), "empty_after_cleaning": empty}


# --- duplicates -----------------------------------------------------------------


def _shingles(text: str, k: int) -> set[str]:
    compact = re.sub(r"\s+", "", text)
    return {compact[i : i + k] for i in range(max(1, len(compact) - k + 1))}


def cluster_duplicates(documents: list[Document], shingle_size: int, threshold: float) -> dict[str, str]:
    """Map each document id to its cluster representative (the first member in order).

    Exact duplicates (same text) and near duplicates (Jaccard of character
    shingles >= threshold, same language) end up in the same cluster.
    """
    parent = {d.id: d.id for d in documents}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            # The earlier document stays the representative.
            first, second = sorted((ra, rb), key=order.__getitem__)
            parent[second] = first

    order = {d.id: i for i, d in enumerate(documents)}
    by_hash: dict[str, str] = {}
    for d in documents:
        h = hashlib.sha256(d.text.encode()).hexdigest()
        if h in by_hash:
            union(by_hash[h], d.id)
        else:
            by_hash[h] = d.id
    sh = [(d, _shingles(d.text, shingle_size)) for d in documents]
    for i, (a, sa) in enumerate(sh):
        for b, sb in sh[i + 1 :]:
            if a.meta.get("lang") != b.meta.get("lang"):
                continue
            small, big = sorted((len(sa), len(sb)))
            if small < threshold * big:  # Jaccard <= small/big: cannot reach the threshold
                continue
            if len(sa & sb) / len(sa | sb) >= threshold:
                union(a.id, b.id)
    return {d.id: find(d.id) for d in documents}


# --- whole corpus ----------------------------------------------------------------


def input_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")))
        elif p.is_file():
            files.append(p)
        else:
            raise IngestError(p, "no such file or directory")
    return files


def ingest(paths: list[Path], bp: Boilerplate | None = None, id_prefix: str = "seed") -> tuple[list[Document], dict]:
    """Read every file, clean, deduplicate. Returns documents (file order) and a report."""
    bp = bp or Boilerplate.load()
    documents: list[Document] = []
    per_source: dict[str, dict] = {}
    for f in input_files(paths):
        docs, info = ingest_file(f, bp, id_prefix)
        per_source[f.name] = info
        documents.extend(docs)
    ids = Counter(d.id for d in documents)
    clash = [i for i, n in ids.items() if n > 1]
    if clash:
        raise IngestError(paths[0], f"two input files give the same document ids (e.g. {clash[0]}): "
                                    "their numeric prefixes must differ")
    clusters = cluster_duplicates(documents, bp.shingle_size, bp.jaccard_threshold)
    exact = near = 0
    text_of = {d.id: d.text for d in documents}
    for d in documents:
        rep = clusters[d.id]
        d.meta["cluster"] = rep
        if rep != d.id:
            d.meta["duplicate_of"] = rep
            if text_of[rep] == d.text:
                exact += 1
            else:
                near += 1
    for name, info in per_source.items():
        info["duplicates"] = sum(1 for d in documents if d.meta["source"] == name and "duplicate_of" in d.meta)
    report = {
        "documents": len(documents),
        "distinct": sum(1 for d in documents if "duplicate_of" not in d.meta),
        "exact_duplicates": exact,
        "near_duplicates": near,
        "clusters_with_duplicates": len({clusters[d.id] for d in documents if "duplicate_of" in d.meta}),
        "per_source": per_source,
    }
    return documents, report


def documents_to_jsonl(documents: list[Document]) -> str:
    # Raw documents carry no annotations yet: id, text and meta only.
    return "".join(
        json.dumps({"id": d.id, "text": d.text, "meta": d.meta}, ensure_ascii=False) + "\n" for d in documents
    )


def write_documents(documents: list[Document], out: Path) -> None:
    atomic_write_text(out, documents_to_jsonl(documents))
