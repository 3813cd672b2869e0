"""Error and warning messages. Each names the config key at fault and shows a fix."""


class HFNerWarning(UserWarning):
    """Warnings of spacy-hf-ner; filter them with
    `warnings.filterwarnings("ignore", category=HFNerWarning)`."""


class Errors:
    E001 = (
        "[{name}] config key `model` = '{model}' is a local path, but there is no "
        "directory there. Fix: point `model` at a folder holding config.json and the "
        "weights (e.g. one written by `model.save_pretrained(...)`), or use a Hugging "
        "Face hub id such as 'dslim/bert-base-NER'."
    )
    E002 = (
        "[{name}] could not load config key `model` = '{model}' (revision={revision}): "
        "{error}\nFix: check the hub id or folder. Offline, use a local directory, or a "
        "model already in the Hugging Face cache with HF_HUB_OFFLINE=1."
    )
    E003 = (
        "[{name}] config key `model` = '{model}' is a {architectures} model, not a "
        "token classifier (an *ForTokenClassification architecture). Fix: use a "
        "token-classification model for `{factory}`{hint}."
    )
    E004 = (
        "[{name}] the tokenizer of `model` = '{model}' is not a fast tokenizer, so it "
        "gives no character offsets and entities could not be mapped to the text. "
        "Fix: use a model that ships a tokenizer.json (a fast tokenizer), or convert it "
        "with `AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(dir)`."
    )
    E005 = (
        "[{name}] config key `stride` = {stride} must be smaller than the window of "
        "{window} model tokens (`max_length` {max_length} minus {special} special "
        "tokens). Fix: set `stride` to at most {limit}, e.g. {suggest}."
    )
    E006 = (
        "[{name}] config key `device` = '{device}' is not a device. Fix: use 'auto', "
        "'cpu', 'cuda', 'cuda:N' or 'mps'."
    )
    E007 = (
        "[{name}] config key `device` = '{device}' asks for a device that torch "
        "cannot see here ({reason}). Fix: use device = 'auto' to fall back to the CPU."
    )
    E008 = (
        "[{name}] config key `aggregation_strategy` = '{strategy}' does not group "
        "subwords into words, so it cannot be used with `words` = 'spacy'. Fix: set "
        "`aggregation_strategy` to 'first', 'average' or 'max', or set `words` = "
        "'model' for transformers' exact '{strategy}' behaviour."
    )
    E009 = "[{name}] config key `{key}` = {value!r} {problem}. Fix: {fix}"
    E010 = (
        "[{name}] the model's `id2label` has {n_labels} labels but its classifier "
        "outputs {n_out} scores. Fix: save the model with a matching "
        "`config.id2label` (and `label2id`)."
    )
    E011 = (
        "[{name}] cannot train: the training examples have no {what} and no "
        "`labels` were given. Fix: check the training corpus (`spacy debug data`), "
        "or list the labels in `[initialize.components.{name}] labels`."
    )
    E012 = (
        "[{name}] config key `model` = '{model}' names no model shipped with "
        "spacy-hf-ner. Fix: use one of: {available}; or a hub id or local directory."
    )
    E013 = (
        "[{name}] config key `backend` = 'onnx' needs onnxruntime, which is not "
        "installed. Fix: `pip install spacy-hf-ner[onnx]` (or `pip install "
        "onnxruntime`; onnxruntime-gpu for CUDA), or set `backend` = 'torch'."
    )
    E014 = (
        "[{name}] backend 'onnx': model '{model}' has no ONNX file at {tried} "
        "(config key `onnx_file`). ONNX files found: {found}. Fix: {fix}."
    )
    E015 = (
        "[{name}] the ONNX graph {path} takes inputs the engine does not provide "
        "({unknown}; it provides {known}). Fix: export the model with `python -m "
        "spacy_hf_ner.export_onnx`, whose graph takes only those, or use backend = 'torch'."
    )
    E016 = (
        "[{name}] backend 'onnx' is inference-only: {what} needs a torch model. "
        "Fix: train with `backend` = 'torch' and export the result with `python -m "
        "spacy_hf_ner.export_onnx`, or, under `spacy train`, list '{name}' in "
        "`[training] frozen_components` to use it as it is."
    )


class Warnings:
    W001 = (
        "[{name}] {count} predicted entit{ies} could not be written to `doc.ents` "
        "({reasons}). Examples: {examples}. Counts so far are in "
        "`nlp.get_pipe('{name}').stats`{hint}."
    )
    W002 = (
        "[{name}] the tokenizer of '{model}' does not mark subwords, so words are "
        "guessed with transformers' fallback heuristic (a token is a new word only "
        "after a space). With `words` = 'spacy' (the default) spaCy's tokens are used "
        "instead."
    )
    W003 = (
        "[{name}] the classification head of '{model}' lacks labels of the "
        "training data ({missing}): it is replaced by a new, randomly initialized "
        "head over the data's labels. To keep a pretrained head, map the data's "
        "labels onto the model's with `label_map`."
    )
