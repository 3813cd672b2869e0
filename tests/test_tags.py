import pytest

from spacy_hf_ner.tags import detect_scheme, entity_type, hf_get_tag, split_tag


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
