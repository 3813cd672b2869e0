import pytest

from spacy_hf_ner.tags import bio_labels, detect_scheme, entity_type, from_biluo, hf_get_tag, split_tag, transition_constraints


@pytest.mark.parametrize(
    "label,expected",
    [("B-PER", ("B", "PER")), ("I-PER", ("I", "PER")), ("PER", ("I", "PER")), ("O", ("I", "O")),
     ("S-PER", ("I", "S-PER")), ("B-WORK-OF-ART", ("B", "WORK-OF-ART"))],
)
def test_hf_get_tag(label, expected):
    assert hf_get_tag(label) == expected


@pytest.mark.parametrize(
    "label,expected",
    [("B-PER", "PER"), ("PER", "PER"), ("I-WORK-OF-ART", "WORK-OF-ART"), ("O", "O"), ("LABEL_3", "LABEL_3")],
)
def test_entity_type(label, expected):
    assert entity_type(label) == expected


def test_detect_scheme():
    assert detect_scheme(["O", "B-PER", "I-PER"]) == "bio"
    assert detect_scheme(["O", "B-PER", "I-PER", "E-PER", "S-PER"]) == "bioes"
    assert detect_scheme(["O", "B-PER", "I-PER", "L-PER", "U-PER"]) == "biluo"
    assert detect_scheme(["O", "PER", "LOC"]) == "bio"
    assert detect_scheme(["NOUN", "VERB"]) == "bio"
    # a label outside the scheme's prefixes means: not that scheme
    assert detect_scheme(["O", "B-PER", "S-PER", "L-PER"]) == "bio"


def test_split_tag_schemes():
    assert split_tag("U-PER", "biluo") == ("S", "PER")
    assert split_tag("L-PER", "biluo") == ("E", "PER")
    assert split_tag("E-PER", "bioes") == ("E", "PER")
    assert split_tag("S-PER", "bio") == ("I", "S-PER")
    assert split_tag("X", "bioes") == ("I", "X")


def _allowed_pairs(labels, scheme):
    start, allowed, end = transition_constraints(labels, scheme)
    starts = {l for l, ok in zip(labels, start) if ok}
    ends = {l for l, ok in zip(labels, end) if ok}
    pairs = {(a, b) for i, a in enumerate(labels) for j, b in enumerate(labels) if allowed[i][j]}
    return starts, pairs, ends


def test_bio_transitions_only_continue_an_open_entity():
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    starts, pairs, ends = _allowed_pairs(labels, "bio")
    assert starts == {"O", "B-PER", "B-ORG"}
    assert ends == set(labels)
    assert {b for a, b in pairs if a == "O"} == {"O", "B-PER", "B-ORG"}
    assert {a for a, b in pairs if b == "I-PER"} == {"B-PER", "I-PER"}
    assert {b for a, b in pairs if a == "I-ORG"} == {"O", "B-PER", "B-ORG", "I-ORG"}


def test_bioes_and_biluo_transitions_close_every_entity():
    for labels, close, single in (
        (["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"], "E-LOC", "S-LOC"),
        (["O", "B-LOC", "I-LOC", "L-LOC", "U-LOC"], "L-LOC", "U-LOC"),
    ):
        scheme = detect_scheme(labels)
        starts, pairs, ends = _allowed_pairs(labels, scheme)
        assert starts == {"O", "B-LOC", single}
        assert ends == {"O", close, single}
        assert {b for a, b in pairs if a == "B-LOC"} == {"I-LOC", close}
        assert {b for a, b in pairs if a == close} == {"O", "B-LOC", single}


def test_bare_labels_are_free_and_multi_hyphen_types_match():
    labels = ["O", "LABEL_1", "B-WORK-OF-ART", "I-WORK-OF-ART", "I-ART"]
    starts, pairs, ends = _allowed_pairs(labels, "bio")
    assert starts == {"O", "LABEL_1", "B-WORK-OF-ART"}
    assert ("LABEL_1", "LABEL_1") in pairs and ("I-WORK-OF-ART", "LABEL_1") in pairs
    assert ("B-WORK-OF-ART", "I-WORK-OF-ART") in pairs
    assert ("B-WORK-OF-ART", "I-ART") not in pairs


def test_from_biluo_to_each_scheme():
    tags = ["U-PER", "B-ORG", "I-ORG", "L-ORG", "O"]
    assert [from_biluo(t, "bio") for t in tags] == ["B-PER", "B-ORG", "I-ORG", "I-ORG", "O"]
    assert [from_biluo(t, "bioes") for t in tags] == ["S-PER", "B-ORG", "I-ORG", "E-ORG", "O"]
    assert [from_biluo(t, "biluo") for t in tags] == tags
    assert from_biluo("U-WORK-OF-ART", "bio") == "B-WORK-OF-ART"
    assert from_biluo("O", "bio", outside="OUT") == "OUT"


def test_bio_labels_outside_first_then_sorted_types():
    assert bio_labels(["PER", "LOC", "PER"]) == ("O", "B-LOC", "I-LOC", "B-PER", "I-PER")
