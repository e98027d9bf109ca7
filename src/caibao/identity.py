"""Organisation identity: which organisation a name means, across articles.

Three sources, in this order:

* the curated registry (``resources/organisations.yaml``, extended by the user's own files with the
  same layout): canonical name, aliases, former names, tickers, each entry with its source;
* what the articles themselves say (:func:`learn_aliases`): 奇富科技（原名“360数科”，NASDAQ:QFIN；3660.HK）,
  X股份有限公司（以下简称“X”）, OLD更名为NEW, NEW原名为OLD, tickers in brackets. The patterns are data
  (``resources/identity.yaml``);
* the name itself: a name no statement links to a registry entry gets a stable id derived from its
  normalised key (:func:`name_key`: Simplified script, half-width, legal form dropped), the same on
  every run and machine.

:class:`OrgIndex` puts the three together: ``OrgIndex.build(registry, statements).resolve(name)``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from caibao.io import InputError, bundled_yaml
from caibao.text import simplified

# Prefix of the id of an organisation the registry does not know (the rest is its name key).
NAME_ID_PREFIX = "name:"


# --- cues (resources/identity.yaml) ----------------------------------------------------------


@dataclass(frozen=True)
class IdentityCues:
    legal_suffixes: tuple[str, ...]
    group_suffixes: tuple[str, ...]
    listing_markers: tuple[str, ...]
    short_forms: dict
    name_left_boundaries: tuple[str, ...]
    name_left_prefixes: tuple[re.Pattern, ...]
    name_breaks: re.Pattern
    max_name_chars: int
    max_bare_name_chars: int
    not_name_starts: tuple[str, ...]
    generic_aliases: frozenset
    short_name_words: tuple[str, ...]
    full_name_words: tuple[str, ...]
    former_name_words: tuple[str, ...]
    former_of_inner_words: tuple[str, ...]
    rename: re.Pattern
    renamed_from: re.Pattern
    tickers: tuple[re.Pattern, ...]
    exchanges: dict  # written exchange -> its code

    @classmethod
    @functools.cache
    def load(cls) -> "IdentityCues":
        raw = bundled_yaml("identity.yaml")
        exchanges = {word: code for code, words in raw["exchanges"].items() for word in words}
        return cls(
            tuple(sorted(raw["legal_suffixes"], key=len, reverse=True)), tuple(raw["group_suffixes"]),
            tuple(sorted(raw["listing_markers"], key=len, reverse=True)),
            dict(raw["short_forms"]), tuple(raw["name_left_boundaries"]),
            tuple(re.compile(p) for p in raw["name_left_prefixes"]),
            re.compile(f"[{raw['name_breaks']}]"), int(raw["max_name_chars"]), int(raw["max_bare_name_chars"]),
            tuple(raw["not_name_starts"]),
            frozenset(raw["generic_aliases"]),
            tuple(sorted(raw["short_name_words"], key=len, reverse=True)), tuple(raw["full_name_words"]),
            tuple(sorted(raw["former_name_words"], key=len, reverse=True)),
            tuple(raw["former_of_inner_words"]),
            re.compile("|".join(raw["rename_connectors"])), re.compile("|".join(raw["renamed_from_connectors"])),
            tuple(re.compile(p) for p in raw["tickers"]), exchanges,
        )


# --- normalisation ---------------------------------------------------------------------------


def plain_text(text: str) -> str:
    """Half-width (NFKC), Simplified script, no white space: 招聯消費金融（中國） -> 招联消费金融(中国)."""
    text = unicodedata.normalize("NFKC", text)
    return simplified(re.sub(r"\s+", "", text))


def name_key(name: str, cues: IdentityCues | None = None) -> str:
    """The key under which names of one organisation meet: plain text, lower-case Latin letters, quotes,
    listing markers (-S, -W), the legal form and a group form (控股, 集团) dropped, long forms shortened
    (北银消费金融有限公司 -> 北银消金, 富途控股 -> 富途)."""
    cues = cues or IdentityCues.load()
    key = plain_text(name).strip("“”\"'「」『』")
    for marker in cues.listing_markers:
        if key.upper().endswith(marker) and len(key) > len(marker) + 1:
            key = key[: -len(marker)]
            break
    for suffixes in (cues.legal_suffixes, cues.group_suffixes):
        key = _drop_suffix(key, suffixes)
    for long, short in cues.short_forms.items():
        key = key.replace(long, short)
    return key.lower()


def _drop_suffix(key: str, suffixes: tuple[str, ...]) -> str:
    """``key`` without the first of ``suffixes`` it ends with, if at least two characters stay."""
    for suffix in suffixes:
        if key.endswith(suffix) and len(key) > len(suffix) + 1:
            return key[: -len(suffix)]
    return key


_CANONICAL_US = re.compile(r"^(NASDAQ|NYSE|US):([A-Z][A-Z.]{0,5})$")
_CANONICAL_CODE = re.compile(r"^(\d{1,6})\.(HK|SH|SZ)$")
_HK_DIGITS = 4


def ticker(exchange: str, symbol: str) -> str:
    """The canonical form of a listing: NASDAQ:QFIN, US:BABA, 3660.HK (no leading zeros below four
    digits: 03660 -> 3660, 00700 -> 0700), 601360.SH."""
    if exchange in ("HK", "SH", "SZ"):
        digits = str(int(symbol)).zfill(_HK_DIGITS) if exchange == "HK" else symbol
        return f"{digits}.{exchange}"
    return f"{exchange}:{symbol.upper()}"


def canonical_ticker(text: str) -> str:
    """A ticker as the registry writes it (NASDAQ:QFIN, US:BABA, 3660.HK, 601360.SH), canonicalised;
    ValueError when it is none of these."""
    text = text.strip()
    if m := _CANONICAL_US.match(text):
        return ticker(m.group(1), m.group(2))
    if m := _CANONICAL_CODE.match(text.upper()):
        return ticker(m.group(2), m.group(1))
    raise ValueError(f"not a ticker: {text!r} (write NASDAQ:QFIN, NYSE:FINV, US:BABA, 3660.HK, 601360.SH)")


def ticker_keys(canonical: str) -> list[str]:
    """The keys a ticker is found under: itself, and US:SYMBOL for a listing on a US exchange."""
    m = _CANONICAL_US.match(canonical)
    return [canonical, f"US:{m.group(2)}"] if m and m.group(1) != "US" else [canonical]


def find_tickers(text: str, cues: IdentityCues | None = None) -> list[tuple[str, int, int]]:
    """(canonical ticker, start, end) of every listing written in ``text``: NASDAQ:QFIN, NYSE: YRD,
    纳斯达克：QFIN, 港交所：3660, 03660.HK, 601360.SH, QFIN.US, NASDAQ|LX."""
    cues = cues or IdentityCues.load()
    found: list[tuple[str, int, int]] = []
    taken: list[tuple[int, int]] = []
    for pattern in cues.tickers:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            exchange = cues.exchanges.get(m.group("exchange"))
            symbol = m.group("symbol")
            if exchange is None or (exchange in ("HK", "SH", "SZ")) != symbol.isdigit():
                continue
            found.append((ticker(exchange, symbol), m.start(), m.end()))
            taken.append((m.start(), m.end()))
    return sorted(found, key=lambda t: t[1])


# --- the registry ----------------------------------------------------------------------------


class Organisation(BaseModel):
    """One curated organisation."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1)
    english: str | None = None
    aliases: list[str] = Field(default_factory=list)
    former_names: list[str] = Field(default_factory=list)
    tickers: list[str] = Field(default_factory=list)
    source: str = Field(min_length=1)

    @field_validator("tickers")
    @classmethod
    def _canonical_tickers(cls, value: list[str]) -> list[str]:
        return [canonical_ticker(t) for t in value]

    def names(self) -> list[str]:
        return [self.name, *self.aliases, *self.former_names, *([self.english] if self.english else [])]


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisations: list[dict]


def _entry_error(path: Path | str, index: int, raw: object, exc: ValidationError) -> InputError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    name = raw.get("id") if isinstance(raw, dict) else None
    label = f"organisation {index + 1}" + (f" ({name})" if name else "")
    return InputError(path, f"{label}: {where + ': ' if where else ''}{first['msg']}")


def _read_registry_file(path: Path | str, text: str) -> list[Organisation]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        entries = _RegistryFile.model_validate(raw).organisations
    except ValidationError:
        raise InputError(path, "expected a mapping with a list `organisations:`") from None
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(Organisation.model_validate(entry))
        except ValidationError as exc:
            raise _entry_error(path, i, entry, exc) from None
    return out


BUNDLED_REGISTRY = "resources/organisations.yaml"


@dataclass
class Registry:
    """The curated organisations: the bundled file, then the user's files (an entry with a bundled
    entry's id replaces it). Two entries claiming one name or ticker is an error naming both."""

    organisations: dict[str, Organisation]
    by_key: dict[str, str] = field(default_factory=dict)  # name key or ticker -> id

    @classmethod
    def load(cls, extra: list[Path | str] = (), bundled: bool = True) -> "Registry":
        entries: dict[str, tuple[str, Organisation]] = {}
        if bundled:
            text = resources.files("caibao").joinpath(BUNDLED_REGISTRY).read_text("utf-8")
            for org in _read_registry_file(BUNDLED_REGISTRY, text):
                entries[org.id] = (BUNDLED_REGISTRY, org)
        for path in extra:
            try:
                text = Path(path).read_text("utf-8")
            except FileNotFoundError:
                raise InputError(path, "no such file") from None
            except UnicodeDecodeError:
                raise InputError(path, "not valid UTF-8") from None
            seen: set[str] = set()
            for org in _read_registry_file(path, text):
                if org.id in seen:
                    raise InputError(path, f"organisation {org.id}: id listed twice in this file")
                seen.add(org.id)
                entries[org.id] = (str(path), org)
        return cls._indexed(entries)

    @classmethod
    def _indexed(cls, entries: dict[str, tuple[str, Organisation]]) -> "Registry":
        registry = cls({k: org for k, (_, org) in entries.items()})
        owner: dict[str, str] = {}
        for path, org in entries.values():
            keys = [name_key(n) for n in org.names()] + [k for t in org.tickers for k in ticker_keys(t)]
            for key in dict.fromkeys(keys):
                other = registry.by_key.get(key)
                if other is not None and other != org.id:
                    raise InputError(path, f"organisation {org.id}: name or ticker {key!r} already belongs to "
                                           f"{other} ({owner[other]})")
                registry.by_key[key] = org.id
            owner[org.id] = path
        return registry

    def find(self, name_or_ticker: str) -> Organisation | None:
        """The organisation a name (any spelling, script or legal form) or a canonical ticker belongs to."""
        key = self.by_key.get(name_or_ticker) or self.by_key.get(name_key(name_or_ticker))
        return self.organisations.get(key) if key else None


# --- alias statements in the articles --------------------------------------------------------


@dataclass(frozen=True)
class AliasStatement:
    """An article says that ``name`` and ``alias`` are one organisation (``relation``: short_name,
    full_name, former_name, former_name_of, renamed, ticker); ``start``/``end``: the statement's characters."""

    name: str
    alias: str
    relation: str
    start: int
    end: int

    def as_dict(self) -> dict:
        return {"name": self.name, "alias": self.alias, "relation": self.relation,
                "start": self.start, "end": self.end}


_BRACKET = re.compile(r"[（(]([^（()）]{1,120})[）)]")
_QUOTED = re.compile(r"[“\"「『]([^”\"」』]{1,40})[”\"」』]")
_DATE_PREFIX = re.compile(r"^(?:[年月日号](?=\d))?(?:\d{1,4}\s*[年月日号])+(?:末|底|初|中)?")  # 3月14日360金融
_BARE_NAME = re.compile(r"^[A-Za-z0-9\u3400-\u9fff][\w\u3400-\u9fff&·\-]*$")


def name_before(text: str, end: int, cues: IdentityCues | None = None) -> str | None:
    """The name that ends at ``end``: the text back to the last punctuation mark or boundary word
    (招联消费金融交出…的招联消费金融股份有限公司 -> 招联消费金融股份有限公司); a bracket inside the name
    (汉富（北京）资本管理有限公司) is kept."""
    cues = cues or IdentityCues.load()
    window = text[max(0, end - cues.max_name_chars) : end]
    window = _keep_inner_brackets(window)
    for inner in _BRACKET.finditer(window):  # 苏农银行(603323.SH)和张家港行: the name starts after the listing
        if find_tickers(inner.group(1), cues):
            window = window[inner.end() :].lstrip("和及与、")
    cut = max((m.end() for m in cues.name_breaks.finditer(window)), default=0)
    window = window[cut:]
    for word in cues.name_left_boundaries:
        pos = window.rfind(word, 0, len(window) - 1)  # a boundary word ending the window is part of the name
        if pos >= 0:
            window = window[pos + len(word) :]
    for prefix in cues.name_left_prefixes:
        window = prefix.sub("", window)
    window = _DATE_PREFIX.sub("", window)
    window = window.strip("（()）")
    return window if len(window) >= 2 else None


def _keep_inner_brackets(window: str) -> str:
    """Everything after the last unbalanced opening bracket (a bracket closed inside the window stays)."""
    depth, start = 0, 0
    for i in range(len(window) - 1, -1, -1):
        ch = window[i]
        if ch in "）)":
            depth += 1
        elif ch in "（(":
            if depth == 0:
                start = i + 1
                break
            depth -= 1
    return window[start:]


def _name_after(text: str, cues: IdentityCues) -> str | None:
    """The name at the start of ``text``: quoted, else up to the first punctuation mark."""
    text = text.lstrip(" ：:")
    if m := _QUOTED.match(text):
        return m.group(1).strip()
    m = cues.name_breaks.search(text)
    name = text[: m.start()] if m else text
    name = name[: cues.max_name_chars]
    name = name[name.rfind("的") + 1 :]  # 前身为成立于1988年的广东发展银行 -> 广东发展银行
    return name if len(name) >= 2 else None


def _bracket_statements(text: str, cues: IdentityCues) -> list[AliasStatement]:
    """Statements inside a bracket that follows a name: short names, former names, tickers."""
    out: list[AliasStatement] = []
    previous_end, previous_name, previous_start = -1, None, 0
    for m in _BRACKET.finditer(text):
        inner, end = m.group(1), m.end()
        before = text[: m.start()].rstrip()
        # A bracket right after another one speaks of the same name: X (NYSE: YRD) ("X"或"公司").
        if len(before) == previous_end:
            name, start = previous_name, previous_start
        else:
            name = name_before(text, len(before), cues)
            start = before.rfind(name) if name else m.start()
        previous_end, previous_name, previous_start = end, name, start
        if not name:
            continue
        tickers = find_tickers(inner, cues)
        for canonical, _, _ in tickers:
            out.append(AliasStatement(name, canonical, "ticker", start, end))
        rest = inner
        for _, s, e in reversed(tickers):
            rest = rest[:s] + "，" + rest[e:]
        out.extend(AliasStatement(name, alias, relation, start, end)
                   for alias, relation in _inner_names(rest, bool(tickers), cues))
    return out


def _inner_names(inner: str, has_ticker: bool, cues: IdentityCues) -> list[tuple[str, str]]:
    """(alias, relation) that one bracket's text (tickers removed) states."""
    out: list[tuple[str, str]] = []
    for piece in re.split(r"[，,；;/]", inner):
        piece = piece.strip(" 　")
        if not piece:
            continue
        word = next((w for w in cues.short_name_words + cues.full_name_words if w in piece), None)
        if word:
            after = piece[piece.index(word) + len(word) :].lstrip("：: ")
            quoted = _QUOTED.findall(after)
            names = quoted or ([_name_after(after, cues)] if _name_after(after, cues) else [])
            relation = "full_name" if word in cues.full_name_words else "short_name"
            out.extend((n, relation) for n in names)
            continue
        inner_former = next((w for w in cues.former_of_inner_words if piece.endswith(w)), None)
        if inner_former and len(piece) > len(inner_former) + 1:
            out.append((piece[: -len(inner_former)].strip("“”\""), "former_name_of"))
            continue
        word = next((w for w in cues.former_name_words if piece.startswith(w)), None)
        if word:
            name = _name_after(piece[len(word) :], cues)
            if name:
                out.append((name, "former_name"))
            continue
        quoted = _QUOTED.findall(piece)
        if quoted and _QUOTED.sub("", piece).strip(" 或和及、") == "":
            out.extend((n, "short_name") for n in quoted)  # ("宜人智科"或"公司")
        elif has_ticker and _BARE_NAME.match(piece) and 2 <= len(piece) <= cues.max_bare_name_chars:
            out.append((piece, "short_name"))  # （360数科，NASDAQ：QFIN）
    return out


def _rename_statements(text: str, cues: IdentityCues) -> list[AliasStatement]:
    """OLD更名为NEW, 从“OLD”更名为“NEW”, NEW原名为OLD."""
    out: list[AliasStatement] = []
    for pattern, relation in ((cues.rename, "renamed"), (cues.renamed_from, "former_name")):
        for m in pattern.finditer(text):
            before = text[max(0, m.start() - cues.max_name_chars) : m.start()]
            if q := re.search(r"从[“\"「]?([^“”\"「」，,。]{2,40}?)[”\"」]?(?:正式)?$", before):
                old = q.group(1)
            else:
                old = name_before(text, m.start(), cues)
            after = text[m.end() : m.end() + cues.max_name_chars + 2]
            new = _name_after(after, cues)
            listed = new is not None and after.lstrip(" ：:“\"").startswith(new + "、")  # a list of founders, not a name
            if old and new and not listed:
                out.append(AliasStatement(old, new, relation, m.start() - len(old), m.end() + len(new)))
    return out


def learn_aliases(text: str, cues: IdentityCues | None = None) -> list[AliasStatement]:
    """Every alias statement of an article, in text order; generic aliases (公司, 本行) and statements
    that link a name to itself are left out."""
    cues = cues or IdentityCues.load()
    found = _bracket_statements(text, cues) + _rename_statements(text, cues)
    kept = []
    for s in found:
        if plain_text(s.alias) in cues.generic_aliases or plain_text(s.name) in cues.generic_aliases:
            continue
        if s.name.endswith("的") or s.name.startswith(cues.not_name_starts):
            continue
        if s.relation != "ticker" and name_key(s.name, cues) == name_key(s.alias, cues):
            continue
        kept.append(s)
    return sorted(dict.fromkeys(kept), key=lambda s: (s.start, s.end))


# --- resolution ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrgIdentity:
    """The canonical organisation of a name: ``id`` (a registry id, or ``name:KEY``), ``name`` (the
    canonical name) and ``how``: registry (the name is in it), alias (statements lead to a registry
    entry), learned (statements group it with other names), name (only the name itself)."""

    id: str
    name: str
    how: str


def _is_ticker(key: str) -> bool:
    return bool(_CANONICAL_US.match(key) or _CANONICAL_CODE.match(key))


class OrgIndex:
    """Names grouped by the registry and by alias statements (a union-find over name keys and tickers)."""

    def __init__(self, registry: Registry, cues: IdentityCues | None = None):
        self.registry = registry
        self.cues = cues or IdentityCues.load()
        self._parent: dict[str, str] = {}
        self._display: dict[str, str] = {}  # key -> a name as written

    @classmethod
    def build(cls, registry: Registry, statements: list[AliasStatement] = ()) -> "OrgIndex":
        index = cls(registry)
        for s in statements:
            index.add(s)
        return index

    def _key(self, name: str) -> str:
        return name if _is_ticker(name) else name_key(name, self.cues)

    def _find(self, key: str) -> str:
        root = key
        while self._parent.get(root, root) != root:
            root = self._parent[root]
        while key != root:
            self._parent[key], key = root, self._parent[key]
        return root

    def add(self, statement: AliasStatement) -> None:
        a, b = self._key(statement.name), self._key(statement.alias)
        for key, text in ((a, statement.name), (b, statement.alias)):
            self._parent.setdefault(key, key)
            self._display.setdefault(key, text)
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)

    def group(self, name: str) -> list[str]:
        """The keys of every name (and ticker) statements link to ``name``, sorted."""
        key = self._key(name)
        if key not in self._parent:
            return [key]
        root = self._find(key)
        return sorted(k for k in self._parent if self._find(k) == root)

    def resolve(self, name: str) -> OrgIdentity:
        """The canonical organisation of ``name``: the registry entry of the name, else of a name or ticker
        linked to it, else ``name:KEY`` with the key of the group's shortest name (the one articles use;
        ties: the first in code-point order), so the id does not depend on the order of the articles."""
        direct = self.registry.find(name)
        if direct:
            return OrgIdentity(direct.id, direct.name, "registry")
        group = self.group(name)
        for key in group:
            org = self.registry.find(key) if not _is_ticker(key) else self._by_ticker(key)
            if org:
                return OrgIdentity(org.id, org.name, "alias")
        names = [k for k in group if not _is_ticker(k)] or [self._key(name)]
        chosen = min(names, key=lambda k: (len(k), k))
        shown = self._display.get(chosen, name)
        return OrgIdentity(NAME_ID_PREFIX + chosen, shown, "learned" if len(group) > 1 else "name")

    def _by_ticker(self, canonical: str) -> Organisation | None:
        for key in ticker_keys(canonical):
            if key in self.registry.by_key:
                return self.registry.organisations[self.registry.by_key[key]]
        return None
