"""The units the Ray engine's workers read (bulk/units.py), without Ray: cut
any way, the units hold every record of the input exactly once, in order,
with the ids the local engine's reader gives."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_hf_ner.bulk.io import Corpus
from spacy_hf_ner.bulk.units import count_unit, plan, read_unit, signature, with_counts

TEXTS = st.lists(st.one_of(st.none(), st.text(max_size=40)), min_size=1, max_size=60)


def read_all(uri, text_key="text", id_key=None, rows=7):
    source, units = plan(str(uri), text_key, id_key, lambda n: rows)
    if any(u.rows < 0 for u in units) and source.id_column is None:
        units = with_counts(units, [count_unit(source, u) for u in units])
    ids, texts = [], []
    for unit in units:
        i, t = read_unit(source, unit)
        ids += i
        texts += t
    return ids, texts, units, source


@settings(max_examples=60, deadline=None)
@given(texts=TEXTS, rows=st.integers(1, 20), with_ids=st.booleans())
def test_jsonl_units_hold_every_record_once_in_order(tmp_path_factory, texts, rows, with_ids):
    path = tmp_path_factory.mktemp("u") / "c.jsonl"
    with open(path, "w", encoding="utf8") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": f"x{i}", "text": text} if with_ids else {"text": text}) + "\n")
    ids, got, _, _ = read_all(path, rows=rows)
    want = list(Corpus(path).records())
    assert list(zip(ids, got)) == want


@pytest.mark.parametrize("rows", [1, 4, 50])
def test_a_parquet_folder_is_cut_by_rows_and_numbered_across_files(tmp_path, rows):
    texts = [f"text {i}" for i in range(23)]
    pq.write_table(pa.table({"text": texts[:10]}), tmp_path / "a.parquet", row_group_size=3)
    pq.write_table(pa.table({"text": texts[10:]}), tmp_path / "b.parquet")
    ids, got, units, source = read_all(tmp_path, rows=rows)
    assert got == texts and ids == [str(i) for i in range(23)]
    assert all(0 < u.rows <= rows for u in units)
    # the same cut gives the same layout; another does not (E118 on resume)
    assert signature(source, units) == signature(*read_all(tmp_path, rows=rows)[3:1:-1])
    assert signature(source, units) != signature(*read_all(tmp_path, rows=2 if rows != 2 else 3)[3:1:-1])


def test_a_missing_text_column_is_refused_before_any_worker_starts(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(ValueError, match=r"\[E102\].*--text-key"):
        plan(str(tmp_path / "c.jsonl"), "text", None, lambda n: 5)
