"""The warnings' messages (re-exported by `errors.py`): each carries its code,
names the component and key, and shows a fix. Warned with `HFNerWarning`, so
`warnings.filterwarnings("ignore", category=HFNerWarning)` silences them all and
`message=r"\\[W005\\]"` one of them. No imports beyond the package's own."""
from .exceptions import WithCodes


class Warnings(metaclass=WithCodes):
    W001 = (
        "{name}: {count} predicted entit{ies} could not be written to `doc.ents` "
        "({reasons}). Examples: {examples}. Counts so far are in "
        "`nlp.get_pipe('{name}').stats`{hint}."
    )
    W002 = (
        "{name}: the tokenizer of '{model}' does not mark subwords, so words are "
        "guessed with transformers' fallback heuristic (a token is a new word only "
        "after a space). With `words` = 'spacy' (the default) spaCy's tokens are used "
        "instead."
    )
    W003 = (
        "{name}: the classification head of '{model}' lacks labels of the "
        "training data ({missing}; the head has {have}), so it is replaced by a new, "
        "randomly initialized head over the data's labels. To fine-tune the pretrained "
        "head instead, give each model label the data's name for it with `label_map` = "
        "{{model label: data label}}, e.g. {{\"PER\": \"PERSON\"}} for a model that "
        "says PER where the data says PERSON."
    )
    W004 = (
        "{name}: {count} doc(s) were longer than the model's window of {window} tokens "
        "and were truncated ({why}). Examples: {examples}. Fix: {fix}."
    )
    W005 = (
        "{name}: config key `stride` = {stride} overlaps windows of {window} tokens by "
        "more than half: each text is read {factor:.1f} times (stride {default}: "
        "{default_factor:.2f} times). Fix: use a smaller `stride`, e.g. {default}, "
        "unless the extra context is worth that cost."
    )
    W006 = (
        "{name}: `doc.spans['{key}']` already held {count} span(s) on {docs} doc(s); "
        "they were replaced (config key `existing_ents` = '{policy}' applies to spans "
        "too). Fix: set `spans_key` to another key to keep both."
    )
    W007 = (
        "{name}: config key{s} {keys} {is_are} the old form of the backend (still read, "
        "same behaviour). Fix: set `onnx_file` and `dtype` to null (or remove them) and write "
        "the backend as a block:\n{block}"
    )
    # -- serve (the HTTP server): W120-W129 --
    W120 = (
        "serve: listening on {bind} (every interface) accepts any Host header, so a "
        "web page can reach this server through DNS rebinding. Fix: pass "
        "--allowed-hosts with the names clients use (e.g. --allowed-hosts "
        "example.com,10.0.0.5), or --allowed-hosts '*' to accept any on purpose."
    )
    # -- annotate (spacy_hf_ner/bulk/) --------------------------------------------
    W100 = (
        "annotate: {failed} of {total} document(s) failed and were written with an "
        "`error` (e.g. {examples}). Find them with the `error` column; they are not "
        "retried by --resume."
    )

    # -- users: the training schedule (W140-W149) --
    W140 = (
        "{name}: `[training.optimizer] learn_rate` = {rate} is a constant rate (what "
        "`spacy init config` writes for spaCy's CNN pipelines). Fine-tuning a "
        "transformer wants a lower rate (about 1e-4) with a warm-up and a decay. Fix: "
        "write a fine-tuning config with `spacy-hf-ner init-config CONFIG --component "
        "{factory} --model BASE_MODEL --train TRAIN --dev DEV`."
    )
    W141 = (
        "{name}: the learning rate schedule ends at step {total} (`[training.optimizer."
        "learn_rate] total_steps`) but training runs {max_steps} steps (`[training] "
        "max_steps`), so {consequence}. Fix: give both the same number "
        "(`--training.max_steps N --training.optimizer.learn_rate.total_steps N`), or "
        "write the config again with `spacy-hf-ner init-config ... --max-steps N`."
    )
    # -- onnx (export-onnx): W160-W169 --
    W160 = (
        "export-onnx: {file} agrees with the torch model at F1 {f1:.4f} ({run}) on {texts} "
        "varied texts: {differing} of them get other predictions, scores up to {diff:.2f} "
        "apart; that is below 1 - `--max-disagreement` {tolerance} = {floor:.4f}. Fix: use the "
        "float32 file where these differences matter, try another `--int8-mode`, or raise "
        "`--max-disagreement` to accept them."
    )
