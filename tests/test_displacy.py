"""displaCy: the labels' colours come through spaCy's `spacy_displacy_colors`
entry point, and `spacy-hf-ner displacy` renders gold vs predicted entities."""
from importlib.metadata import entry_points

import pytest
import spacy
from spacy import displacy
from spacy.tokens import DocBin

from spacy_hf_ner.displacy import LABEL_COLORS, compare, evaluation_pages

GREY = "#ddd"


def colour_entry_points():
    eps = entry_points()
    group = eps.select(group="spacy_displacy_colors") if hasattr(eps, "select") else eps.get("spacy_displacy_colors", [])
    return {ep.name: ep for ep in group}


def doc_with(text, ents):
    nlp = spacy.blank("en")
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(s, e, label) for s, e, label in ents]
    return doc


def test_colours_are_registered_through_the_entry_point():
    eps = colour_entry_points()
    assert "spacy-hf-ner" in eps, "reinstall the package (pip install -e .) after editing setup.cfg"
    assert eps["spacy-hf-ner"].load() == LABEL_COLORS
    assert set(LABEL_COLORS) >= {"PER", "MISC"}
    assert LABEL_COLORS["PER"] != LABEL_COLORS["MISC"]


@pytest.mark.parametrize("style", ["ent", "span"])
def test_displacy_renders_per_and_misc_in_their_colours(style):
    """A plain `displacy.render` (no options) colours PER and MISC: displaCy's
    own palette has neither (grey)."""
    from spacy.displacy.render import DEFAULT_LABEL_COLORS

    assert "PER" not in DEFAULT_LABEL_COLORS and "MISC" not in DEFAULT_LABEL_COLORS
    doc = doc_with("Angela Merkel spoke German .", [(0, 13, "PER"), (20, 26, "MISC")])
    doc.spans["sc"] = list(doc.ents)
    html = displacy.render(doc, style=style)
    for label in ("PER", "MISC"):
        assert LABEL_COLORS[label] in html
    assert GREY not in html


def test_compare_counts_exact_matches():
    gold = [(0, 5, "PER"), (10, 15, "LOC"), (20, 25, "ORG")]
    predicted = [(0, 5, "PER"), (10, 15, "ORG"), (30, 35, "MISC")]
    assert compare(gold, predicted) == {"correct": 1, "missed": 2, "wrong": 2}
    assert compare(gold, gold) == {"correct": 3, "missed": 0, "wrong": 0}
    assert compare([], predicted) == {"correct": 0, "missed": 0, "wrong": 3}


def test_evaluation_pages_gold_then_predicted_and_errors_only():
    text = "Angela Merkel went to Paris ."
    gold = doc_with(text, [(0, 13, "PER"), (22, 27, "LOC")])
    right = doc_with(text, [(0, 13, "PER"), (22, 27, "LOC")])
    wrong = doc_with(text, [(0, 13, "ORG")])
    entries, totals = evaluation_pages([(gold, right), (gold, wrong)])
    assert [e["title"] for e in entries] == [
        "#0 gold: 2 entities",
        "#0 predicted: 2 correct, 0 missed, 0 wrong",
        "#1 gold: 2 entities",
        "#1 predicted: 0 correct, 2 missed, 1 wrong",
    ]
    assert entries[3]["ents"] == [{"start": 0, "end": 13, "label": "ORG"}]
    assert totals == {"docs": 2, "docs_rendered": 2, "docs_with_errors": 1, "correct": 2, "missed": 2, "wrong": 1}
    entries, totals = evaluation_pages([(gold, right), (gold, wrong)], errors_only=True)
    assert [e["title"][:2] for e in entries] == ["#1", "#1"]
    entries, totals = evaluation_pages([(gold, wrong)] * 5, limit=2)
    assert len(entries) == 4 and totals["docs"] == 5 and totals["missed"] == 10


def test_displacy_command_renders_an_evaluation_set(bert_ner, tmp_path):
    """`spacy-hf-ner displacy PIPELINE DATA OUTPUT_DIR` on a saved hf_ner
    pipeline: the page holds each doc's gold and predicted entities, and the
    counts are those of the pipeline's own predictions."""
    from spacy_hf_ner.__main__ import main

    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "device": "cpu"})
    nlp.to_disk(tmp_path / "pipeline")
    golds = [
        doc_with("My name is Sarah Jessica Parker and I work at Google in New York .",
                 [(11, 31, "PER"), (46, 52, "ORG"), (56, 64, "LOC")]),
        doc_with("Angela Merkel went to Paris .", [(0, 13, "PER"), (22, 27, "LOC")]),
    ]  # fmt: skip
    DocBin(docs=golds).to_disk(tmp_path / "dev.spacy")
    out = tmp_path / "html"
    assert main(["displacy", str(tmp_path / "pipeline"), str(tmp_path / "dev.spacy"), str(out)]) == 0
    html = (out / "entities.html").read_text(encoding="utf8")
    predicted = [nlp(g.text) for g in golds]
    assert any(p.ents for p in predicted)
    for i, (gold, pred) in enumerate(zip(golds, predicted)):
        counts = compare([(e.start_char, e.end_char, e.label_) for e in gold.ents],
                         [(e.start_char, e.end_char, e.label_) for e in pred.ents])
        assert f"#{i} gold: {len(gold.ents)} entities" in html
        assert f"#{i} predicted: {counts['correct']} correct, {counts['missed']} missed, {counts['wrong']} wrong" in html
    assert LABEL_COLORS["PER"] in html
    assert main(["displacy", str(tmp_path / "pipeline"), str(tmp_path / "missing.spacy"), str(out)]) == 1


def test_server_page_entities_get_the_colours():
    """The server's page renders entities with displaCy (scores in tooltips), so
    the entry point colours it too."""
    formats = pytest.importorskip("spacy_hf_ner.serve.formats")
    text = "Angela Merkel spoke German ."
    ents = [{"start": 0, "end": 13, "label": "PER", "score": 0.99}, {"start": 20, "end": 26, "label": "MISC", "score": 0.9}]
    html = formats.render_entities(text, ents)
    assert LABEL_COLORS["PER"] in html and LABEL_COLORS["MISC"] in html


def test_server_page_palette_has_the_entry_point_colours():
    """The page colours the entities it builds itself from the palette the server
    embeds: displaCy's, entry points included (it was spaCy's defaults only, so
    PER and MISC were grey)."""
    import json
    import re

    app = pytest.importorskip("spacy_hf_ner.serve.app")
    page, _ = app._page("test", [])
    colors = json.loads(re.search(r"const COLORS = (\{.*?\});", page).group(1))
    assert colors["PER"] == LABEL_COLORS["PER"] and colors["MISC"] == LABEL_COLORS["MISC"]


def test_span_group_scores_for_displacys_span_view(bert_ner):
    """annotate="both": the span group holds every entity with its score in
    attrs["scores"] (as spancat), the scores survive a DocBin, displaCy's span
    view renders the group, and `scored_spans` shows each label with its score."""
    import warnings
    from collections import Counter

    import spacy
    from spacy import displacy
    from spacy.tokens import DocBin

    from spacy_hf_ner import HFNerWarning
    from spacy_hf_ner.displacy import scored_spans

    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "annotate": "both", "words": "model", "aggregation_strategy": "simple"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HFNerWarning)
        doc = nlp("Angela Merkel met Emmanuel Macron in Paris, and Jean-Luc Picard met Google in New York.")
    group = doc.spans["hf_ner"]
    assert len(group) >= len(doc.ents) > 0
    # spaCy keys span extensions by character offsets, so spans over the same
    # text share `span._.hf_score`: the group's own scores are in attrs
    offsets = Counter((s.start_char, s.end_char) for s in group)
    assert any(n > 1 for n in offsets.values())  # this text has such spans
    unique = [(s._.hf_score, v) for s, v in zip(group, group.attrs["scores"]) if offsets[(s.start_char, s.end_char)] == 1]
    assert unique and all(a == b for a, b in unique)
    alone = spacy.blank("en")
    alone.add_pipe("hf_ner", config={"model": str(bert_ner), "words": "model", "aggregation_strategy": "simple"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HFNerWarning)
        ents = alone(doc.text).ents
    assert [(e.start, e.end, e.label_, e._.hf_score) for e in doc.ents] == [(e.start, e.end, e.label_, e._.hf_score) for e in ents]
    again = list(DocBin(store_user_data=True, docs=[doc]).get_docs(nlp.vocab))[0]
    assert again.spans["hf_ner"].attrs["scores"] == group.attrs["scores"]
    html = displacy.render(doc, style="span", options={"spans_key": "hf_ner"})
    assert all(s.label_ in html for s in group)
    data = scored_spans(doc, "hf_ner")
    assert [(x["start_token"], x["end_token"]) for x in data["spans"]] == [(s.start, s.end) for s in group]
    assert [x["label"] for x in data["spans"]] == [f"{s.label_} {v:.2f}" for s, v in zip(group, group.attrs["scores"])]
    html = displacy.render(data, style="span", manual=True)
    assert f"{group[0].label_} {group.attrs['scores'][0]:.2f}" in html
    doc.spans["plain"] = [group[0]]
    assert scored_spans(doc, "plain")["spans"][0]["label"] == group[0].label_
