"""One typed definition per config key: spaCy's config validation and direct
construction check the same types, defaults come from `default_config` only,
and every error carries its code and names the key."""
import inspect
import re
import warnings

import pytest
import spacy
from spacy.language import Language

from spacy_hf_ner import HFNer, HFNerWarning, HFTagger, HFTextcat
from spacy_hf_ner.backends.legacy import LEGACY_KEYS
from spacy_hf_ner.errors import Errors, SpacyHFNerError, Warnings
from spacy_hf_ner.ner import NerSettings, make_hf_ner


@pytest.mark.parametrize(
    "key,value",
    [
        ("annotate", "bogus"),
        ("decoding", "beam"),
        ("batch_size", 0),
        ("threshold", 1.5),
        ("stride", -1),
        ("device", "gpu0"),
        ("ignore_labels", "O"),
        ("nonsense", 1),
    ],
)
def test_direct_construction_is_validated(bert_ner, key, value):
    vocab = spacy.blank("en").vocab
    with pytest.raises(SpacyHFNerError, match=rf"^\[E009\] hf_ner: config key `{key}` = .*Fix: ") as error:
        HFNer(vocab, model=str(bert_ner), **{key: value})
    assert error.value.code == "E009"


def test_a_backend_argument_is_validated_in_its_block(bert_ner):
    """`dtype` belongs to the torch block: spaCy checks it against the block's
    signature; as a component key next to a block it is refused (E031)."""
    from confection import ConfigValidationError

    nlp = spacy.blank("en")
    with pytest.raises(ConfigValidationError, match="dtype"):
        nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "backend": {"@hf_backends": "spacy-hf-ner.torch.v1", "dtype": "int8"}})
    with pytest.raises(SpacyHFNerError, match=r"\[E031\].*`dtype`.*\[components\.hf_ner\.backend\]") as error:
        HFNer(spacy.blank("en").vocab, model=str(bert_ner), dtype="float16")
    assert error.value.code == "E031"


def test_direct_construction_takes_the_factory_defaults(bert_ner):
    vocab = spacy.blank("en").vocab
    ner = HFNer(vocab, model=str(bert_ner))
    defaults = Language.get_factory_meta("hf_ner").default_config
    for key, value in ner.cfg.items():
        if key != "model":
            assert defaults[key] == value, key
    assert ner.scorer is not None and ner.name == "hf_ner"
    assert HFTagger(vocab, model=str(bert_ner)).cfg["attr"] == "auto"
    assert HFTextcat(vocab, model=str(bert_ner)).cfg["long_text"] == "windows"


def test_cross_key_rules_hold_for_direct_construction(bert_ner):
    vocab = spacy.blank("en").vocab
    with pytest.raises(ValueError, match=r"\[E008\].*`aggregation_strategy` = 'simple'"):
        HFNer(vocab, model=str(bert_ner), aggregation_strategy="simple")
    with pytest.raises(ValueError, match=r"\[E028\].*`decoding`.*words"):
        HFNer(vocab, model=str(bert_ner), decoding="viterbi", words="model")


def test_the_factory_signature_is_the_settings(bert_ner):
    """spaCy validates the factory's signature: it lists every key of the
    settings, typed, so a config with a wrong type fails before construction."""
    params = inspect.signature(make_hf_ner).parameters
    assert list(params)[2:] == [*NerSettings.model_fields, *LEGACY_KEYS]  # the old keys, read by legacy.py
    assert set(Language.get_factory_meta("hf_ner").default_config) == set(NerSettings.model_fields)
    nlp = spacy.blank("en")
    with pytest.raises(Exception, match="words"):
        nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "words": "tokens"})


def test_every_message_carries_its_code():
    for table in (Errors, Warnings):
        for code in [k for k in vars(table) if re.fullmatch(r"[EW]\d{3}", k)]:
            assert getattr(table, code).startswith(f"[{code}] "), code


def test_a_stride_over_half_the_window_warns_with_its_cost(bert_ner_short):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner_short), "stride": 20, "device": "cpu"})
    with pytest.warns(HFNerWarning, match=r"\[W005\].*`stride` = 20.*read 3\.0 times"):
        nlp.initialize()
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner_short), "stride": 4, "device": "cpu"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", HFNerWarning)
        nlp.initialize()


def test_max_length_rules_agree_with_their_messages(bert_ner):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "max_length": 2048, "device": "cpu"})
    with pytest.raises(ValueError, match=r"\[E024\].*`max_length` = 2048.*512 positions.*at most 512"):
        nlp.initialize()
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "max_length": 2, "device": "cpu"})
    with pytest.raises(ValueError, match=r"`max_length` = 2.*at least 3"):
        nlp.initialize()
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "max_length": 3, "stride": 0, "device": "cpu"})
    nlp.initialize()
    ner, text = nlp.get_pipe("hf_ner"), "Angela Merkel visited Paris"
    n_tokens = len(ner.runtime.tokenizer(text, add_special_tokens=False)["input_ids"])
    windows = ner.runtime.encode([text], 0)
    assert len(windows) == n_tokens and all(len(w.ids) == 3 for w in windows)  # one text token each
    starts, ends, probs = ner._token_probs([text])[0]
    assert len(starts) == n_tokens and probs.shape == (n_tokens, len(ner.runtime.id2label))
    assert all(text[e.start_char : e.end_char] == e.text for e in nlp(text).ents)


def test_coded_errors_are_one_class_with_their_code():
    """Callers tell the package's errors apart by type (never by message
    text); each keeps the built-in type it had."""
    from spacy_hf_ner.errors import SpacyHFNerFileExistsError, SpacyHFNerImportError, SpacyHFNerTimeoutError

    error = SpacyHFNerError(Errors.E140)
    assert isinstance(error, ValueError) and error.code == "E140" and str(error).startswith("[E140] ")
    for cls, base in ((SpacyHFNerImportError, ImportError), (SpacyHFNerTimeoutError, TimeoutError), (SpacyHFNerFileExistsError, FileExistsError)):
        raised = cls(Errors.E141.format(warmup=5, max_steps=5))
        assert isinstance(raised, SpacyHFNerError) and isinstance(raised, base) and raised.code == "E141"
    assert SpacyHFNerError("a worker's message passed on").code == ""
