"""Components that fail on purpose, for the annotate tests (imported with
`code=` / `--code`, in every worker, as a user's custom components are).

* `annotate_test_poison`: raises on a doc containing "POISON".
* `annotate_test_crash_once`: kills its process (os._exit) on a doc containing
  "CRASH", once: only while the file named by $ANNOTATE_CRASH_FLAG does not
  exist (it creates it first). Without that variable it does nothing.
* `annotate_test_slow`: sleeps $ANNOTATE_SLEEP seconds per doc (default 0),
  and 60 s on a doc containing "HANG" (unless the file named by
  $ANNOTATE_HANG_OFF exists: a resumed run then finishes).
"""
import os
import time

from spacy.language import Language


@Language.component("annotate_test_poison")
def poison(doc):
    if "POISON" in doc.text:
        raise ValueError("poisoned document")
    return doc


@Language.component("annotate_test_crash_once")
def crash_once(doc):
    flag = os.environ.get("ANNOTATE_CRASH_FLAG")
    if flag and "CRASH" in doc.text:
        try:
            fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return doc
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os._exit(3)
    return doc


@Language.component("annotate_test_slow")
def slow(doc):
    off = os.environ.get("ANNOTATE_HANG_OFF")
    if "HANG" in doc.text and not (off and os.path.exists(off)):
        time.sleep(60)
    time.sleep(float(os.environ.get("ANNOTATE_SLEEP", "0")))
    return doc


def faulty_pipeline(model, path, components=("annotate_test_poison", "annotate_test_crash_once", "annotate_test_slow")):
    """Save a pipeline: hf_ner on `model`, then the faulty components."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(model), "device": "cpu"})
    for name in components:
        nlp.add_pipe(name)
    nlp.initialize()
    nlp.to_disk(path)
    return path
