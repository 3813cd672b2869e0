#!/usr/bin/env python
"""The transformers Trainer recipe for NER, on the same base model and data as
`spacy train configs/hf_ner_conll.cfg`: the comparison for issue #4.

It is trained on the gold CoNLL words, as hub models are (not on spaCy's
tokenization): the stand-in for "any CoNLL-style hub model" in the raw-text
evaluation. This follows the transformers token-classification guide: `tokenize_and_align_labels`
(label the first subword of each word, -100 elsewhere),
`DataCollatorForTokenClassification`, `AutoModelForTokenClassification`, `Trainer`
with AdamW, linear warm-up/decay, and seqeval entity metrics. The data is the
same DocBins (`corpus/*.spacy`, documents of up to 8 sentences); docs longer
than the model's window are split at sentence boundaries, so no word is
truncated away. Hyper-parameters mirror the spaCy config (steps, warm-up, peak
learning rate, weight decay, about 500 words per batch).

    python -m scripts.trainer_conll BASE_MODEL corpus metrics/trainer.json
"""
import argparse
import json
import time
from pathlib import Path

import spacy
from spacy.tokens import DocBin


def load_docs(path: Path):
    nlp = spacy.blank("en")
    return list(DocBin().from_disk(path).get_docs(nlp.vocab))


def word_tags(doc):
    return [t.text for t in doc], [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ != "O" else "O" for t in doc]


def split_to_fit(tokenizer, doc, max_length):
    """The doc's (words, tags), split at sentence boundaries where it needs more
    than `max_length` model tokens."""
    pieces, words, tags = [], [], []
    for sent in doc.sents:
        w, t = word_tags(sent.as_doc())
        n = len(tokenizer(words + w, is_split_into_words=True)["input_ids"])
        if words and n > max_length:
            pieces.append((words, tags))
            words, tags = [], []
        words, tags = words + w, tags + t
    if words:
        pieces.append((words, tags))
    return pieces


def seqeval_metrics(gold, pred):
    """Entity P/R/F1 (seqeval, strict IOB2), token accuracy and per type."""
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    kwargs = dict(mode="strict", scheme=IOB2)
    report = classification_report(gold, pred, output_dict=True, **kwargs)
    return {
        "precision": round(float(precision_score(gold, pred, **kwargs)), 4),
        "recall": round(float(recall_score(gold, pred, **kwargs)), 4),
        "f1": round(float(f1_score(gold, pred, **kwargs)), 4),
        "accuracy": round(float(accuracy_score(gold, pred)), 4),
        "per_type": {
            k: {m: round(float(v[m]), 4) for m in ("precision", "recall", "f1-score", "support")}
            for k, v in report.items()
            if "avg" not in k
        },
    }


def word_level_metrics(model, tokenizer, pieces, max_length: int):
    """seqeval P/R/F1 (strict IOB2) of test words predicted from their first
    subword's argmax, as the token-classification guide evaluates."""
    import torch

    labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    model.eval()
    gold, pred = [], []
    with torch.inference_mode():
        for words, tags in pieces:
            enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length, return_tensors="pt")
            ids = model(**enc.to(model.device)).logits[0].argmax(-1).tolist()
            seen, out = set(), ["O"] * len(words)
            for i, word in enumerate(enc.word_ids()):
                if word is not None and word not in seen:
                    seen.add(word)
                    out[word] = labels[ids[i]]
            gold.append(tags)
            pred.append(out)
    return seqeval_metrics(gold, pred)


def save_pipeline(model_dir: Path, path: Path) -> None:
    """A blank English spaCy pipeline with `hf_ner` (its default config) over
    `model_dir`, so that the Trainer's model is evaluated through spaCy as a
    hub model would be, and as `spacy train`'s is."""
    import spacy_hf_ner  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(model_dir.resolve())})
    nlp.initialize()
    nlp.to_disk(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", help="base encoder: hub id or local dir")
    ap.add_argument("corpus", type=Path, help="dir with train.spacy / test.spacy")
    ap.add_argument("output", type=Path, help="metrics JSON")
    ap.add_argument("--model-dir", type=Path, default=Path("training/trainer"))
    ap.add_argument("--max-steps", type=int, default=3300)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=4, help="docs per batch (~500 words)")
    ap.add_argument("--limit", type=int, default=0, help="use only N train/test docs (smoke runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pipeline-dir", type=Path, default=None,
                    help="also save a spaCy pipeline with hf_ner over the trained model here")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="no training: BASE is a token classifier to evaluate word-level on the test split")
    args = ap.parse_args()

    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(args.base)
    max_length = min(tokenizer.model_max_length, 512)
    splits = {}
    for split in ("test",) if args.evaluate_only else ("train", "test"):
        docs = load_docs(args.corpus / f"{split}.spacy")
        if args.limit:
            docs = docs[: args.limit]
        splits[split] = [p for doc in docs for p in split_to_fit(tokenizer, doc, max_length)]
    if args.evaluate_only:
        model = AutoModelForTokenClassification.from_pretrained(args.base)
        metrics = word_level_metrics(model, tokenizer, splits["test"], max_length)
        metrics.update({"evaluation": "word level, first-subword argmax (transformers guide)", "model": args.base})
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(metrics, indent=2))
        print(json.dumps({k: metrics[k] for k in ("precision", "recall", "f1", "accuracy")}, indent=2))
        return
    types = sorted({t[2:] for _, tags in splits["train"] for t in tags if t != "O"})
    labels = ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
    label2id = {l: i for i, l in enumerate(labels)}

    def tokenize_and_align_labels(words, tags):
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
        label_ids, previous = [], None
        for word in enc.word_ids():
            if word is None or word == previous:
                label_ids.append(-100)
            else:
                label_ids.append(label2id[tags[word]])
            previous = word
        enc["labels"] = label_ids
        return enc

    train_set = [tokenize_and_align_labels(w, t) for w, t in splits["train"]]
    model = AutoModelForTokenClassification.from_pretrained(
        args.base, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id
    )
    training_args = TrainingArguments(
        output_dir=str(args.model_dir),
        learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size,
        max_steps=args.max_steps,
        warmup_steps=args.warmup_steps,
        weight_decay=0.01,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        save_strategy="no",
        report_to=[],
        logging_steps=50,
        seed=args.seed,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    start = time.time()
    trainer.train()
    train_secs = time.time() - start

    metrics = word_level_metrics(model, tokenizer, splits["test"], max_length)
    metrics.update({"recipe": "transformers Trainer", "base": args.base, "train_seconds": round(train_secs, 1),
                    "max_steps": args.max_steps, "lr": args.lr, "batch_size_docs": args.batch_size})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(metrics, indent=2))
    trainer.save_model(str(args.model_dir))
    tokenizer.save_pretrained(str(args.model_dir))
    if args.pipeline_dir is not None:
        save_pipeline(args.model_dir, args.pipeline_dir)
    print(json.dumps({k: metrics[k] for k in ("precision", "recall", "f1", "accuracy")}, indent=2))


if __name__ == "__main__":
    main()
