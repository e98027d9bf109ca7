"""Organisation-name swapping for training (caibao.augment) on real gold documents."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from caibao.annotations import check_document, read_gold
from caibao.augment import read_gazetteer, swap_orgs, swap_some
from caibao.io import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gold():
    return read_gold(ROOT / "annotations" / "gold")


def test_swapped_documents_keep_every_span_and_relation(gold):
    names = read_gazetteer()
    rng = random.Random(0)
    for doc in gold[:40]:
        new = swap_orgs(doc, names, rng)
        assert len(new.entities) == len(doc.entities) and new.relations == doc.relations
        assert not [p for p in check_document(new, "swapped", 1) if p.severity == "error"]
        for old_e, new_e in zip(doc.entities, new.entities):
            if old_e.label == "ORG":
                assert new.span_text(new_e) in names
            else:
                assert new.span_text(new_e) == doc.span_text(old_e)
        # the same organisation gets the same new name everywhere
        mapping = {}
        for old_e, new_e in zip(doc.entities, new.entities):
            if old_e.label == "ORG":
                assert mapping.setdefault(doc.span_text(old_e), new.span_text(new_e)) == new.span_text(new_e)


def test_swap_some_rate(gold):
    names = read_gazetteer()
    assert swap_some(gold[:10], names, 0.0, random.Random(1)) == gold[:10]
    swapped = swap_some(gold[:10], names, 1.0, random.Random(1))
    assert all(s.id.endswith("~swap") for s, d in zip(swapped, gold[:10]) if any(e.label == "ORG" for e in d.entities))


def test_gazetteer_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "g.tsv"
    bad.write_text("招联消金\tsrc\n两个 词\tsrc\n", "utf-8")
    with pytest.raises(InputError, match=r"g.tsv:2: not a name"):
        read_gazetteer(bad)
    empty = tmp_path / "e.tsv"
    empty.write_text("# nothing\n", "utf-8")
    with pytest.raises(InputError, match="names no organisation"):
        read_gazetteer(empty)


def test_gazetteer_is_the_scripts_output_and_names_no_heldout_organisation():
    import importlib.util
    import json

    from caibao.facts import org_key

    spec = importlib.util.spec_from_file_location("build_gazetteer", ROOT / "scripts" / "build_gazetteer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "src" / "caibao" / "resources" / "lexicons" / "org_gazetteer.tsv").read_text("utf-8")
    assert committed == module.HEADER + "".join(module.gazetteer_lines())
    docs = {d.id: d for d in read_gold(ROOT / "annotations" / "gold")}
    splits = json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))
    held = {org_key(docs[i].span_text(e)) for i in splits["heldout"] for e in docs[i].entities if e.label == "ORG"}
    assert not {org_key(n) for n in read_gazetteer()} & held


def test_org_swapping_with_a_cached_teacher_is_refused(tmp_path):
    from caibao.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("distill: {teacher: full}\naugment: {org_swap_rate: 0.5}\n", "utf-8")
    with pytest.raises(InputError, match="org_swap_rate cannot be combined with distill"):
        load_config(cfg)
    cfg.write_text("augment: {org_swap_rate: 1.5}\n", "utf-8")
    with pytest.raises(InputError, match="augment.org_swap_rate"):
        load_config(cfg)
