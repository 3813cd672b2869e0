"""Error messages (the warnings' are in `warning_codes.py`, re-exported here). Each carries its code, names the component and
the config key (or file) at fault, and shows a fix.

    >>> Errors.E001.format(name="hf_ner", model="/no/dir")
    "[E001] hf_ner: config key `model` = '/no/dir' is a local path, ..."

No spaCy import (the command line reads this), so the codes are added here as
spaCy's own `ErrorsWithCodes` adds them. A coded error is raised as
`SpacyHFNerError` (a ValueError whose `code` is the message's code), so callers
tell the package's own errors apart by type, never by message text.
"""
from .exceptions import HFNerWarning, SpacyHFNerError, SpacyHFNerFileExistsError, SpacyHFNerImportError, SpacyHFNerRuntimeError, SpacyHFNerTimeoutError, WithCodes
from .warning_codes import Warnings

# the messages, and the classes they are raised and warned with
__all__ = ["Errors", "Warnings", "HFNerWarning", "SpacyHFNerError", "SpacyHFNerFileExistsError", "SpacyHFNerImportError",
           "SpacyHFNerRuntimeError", "SpacyHFNerTimeoutError"]


class Errors(metaclass=WithCodes):
    E001 = (
        "{name}: config key `model` = '{model}' is a local path, but there is no "
        "directory there. Fix: point `model` at a folder holding config.json and the "
        "weights (e.g. one written by `model.save_pretrained(...)`), or use a Hugging "
        "Face hub id such as 'dslim/bert-base-NER'."
    )
    E002 = (
        "{name}: could not load config key `model` = '{model}' (revision={revision}): "
        "{error}\nFix: check the hub id or folder. Offline, use a local directory, or a "
        "model already in the Hugging Face cache with HF_HUB_OFFLINE=1."
    )
    E003 = (
        "{name}: config key `model` = '{model}' is a {architectures} model, not a "
        "{kind} classifier (an *{suffix} architecture). Fix: use a {kind}-classification "
        "model for `{factory}`{hint}."
    )
    E004 = (
        "{name}: the tokenizer of `model` = '{model}' is not a fast tokenizer, so it "
        "gives no character offsets and entities could not be mapped to the text. "
        "Fix: use a model that ships a tokenizer.json (a fast tokenizer), or convert it "
        "with `AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(dir)`."
    )
    E005 = (
        "{name}: config key `stride` = {stride} must be smaller than the window of "
        "{window} model tokens (`max_length` {max_length} minus {special} special "
        "tokens). Fix: set `stride` to at most {limit}, e.g. {suggest}."
    )
    E007 = (
        "{name}: config key `device` = '{device}' asks for a device that torch "
        "cannot see here ({reason}). Fix: use device = 'auto' to fall back to the CPU."
    )
    E008 = (
        "{name}: config key `aggregation_strategy` = '{strategy}' does not group "
        "subwords into words, so it cannot be used with `words` = 'spacy'. Fix: set "
        "`aggregation_strategy` to 'first', 'average' or 'max', or set `words` = "
        "'model' for transformers' exact '{strategy}' behaviour."
    )
    E009 = "{name}: config key `{key}` = {value!r} {problem}. Fix: {fix}."
    E010 = (
        "{name}: the model's `id2label` has {n_labels} labels but its classifier "
        "outputs {n_out} scores. Fix: save the model with a matching "
        "`config.id2label` (and `label2id`)."
    )
    E011 = (
        "{name}: cannot train: the training examples have no {what} and no "
        "`labels` were given. Fix: check the training corpus (`spacy debug data`), "
        "or list the labels in `[initialize.components.{name}] labels`."
    )
    E012 = (
        "{name}: config key `model` = '{model}' names no model shipped with "
        "spacy-hf-ner. Fix: use one of: {available}; or a hub id or local directory."
    )
    E013 = (
        "{name}: backend 'spacy-hf-ner.onnx.v1' needs onnxruntime, which is not "
        "installed. Fix: `pip install '.[onnx]'` in the spacy-hf-ner clone (or `pip install "
        "onnxruntime`; onnxruntime-gpu for CUDA), or use the torch backend "
        "(`[components.{name}.backend] @hf_backends = \"spacy-hf-ner.torch.v1\"`)."
    )
    E014 = (
        "{name}: backend 'onnx': model '{model}' has no ONNX file at {tried} "
        "(`file` of `[components.{name}.backend]`). ONNX files found: {found}. Fix: {fix}."
    )
    E015 = (
        "{name}: the ONNX graph {path} takes inputs the engine does not provide "
        "({unknown}; it provides {known}). Fix: export the model with `spacy-hf-ner "
        "export-onnx` (python -m spacy_hf_ner.backends.export_onnx), whose graph takes only "
        "those, or use the torch backend (spacy-hf-ner.torch.v1)."
    )
    E016 = (
        "{name}: backend '{backend}' is inference-only: {what} needs a torch model. "
        "Fix: train with the torch backend (`[components.{name}.backend] @hf_backends = "
        "\"spacy-hf-ner.torch.v1\"`) and export the result with `spacy-hf-ner "
        "export-onnx` (python -m spacy_hf_ner.backends.export_onnx), or, under `spacy train`, list '{name}' in "
        "`[training] frozen_components` to use it as it is."
    )
    E017 = (
        "load: '{name}' is a spaCy pipeline, whose components keep their own settings "
        "({keys} were given). Fix: change them in its config.cfg, or serve a bare model."
    )
    E018 = (
        "load: {name!r} is neither a spaCy pipeline (folder with config.cfg, or "
        "installed package) nor a transformers model ({error}). Fix: give a pipeline "
        "folder, a package name, a hub id or a model folder."
    )
    E019 = (
        "load: the model {name!r} ({architectures}) is neither a *ForTokenClassification "
        "nor a *ForSequenceClassification model. Fix: give a token or sequence "
        "classifier, or a spaCy pipeline."
    )
    E020 = (
        "{name}: config key `backend` = '{backend}' is not a registered backend. Fix: "
        "use one of {available} in a block: `[components.{name}.backend] @hf_backends = "
        "\"spacy-hf-ner.torch.v1\"`; register yours with "
        "`@spacy.registry.hf_backends(\"my-backend.v1\")` (or the `spacy_hf_backends` "
        "entry point group)."
    )
    E021 = "{name}: config key `{key}` = {value!r} applies to {applies}. Fix: {fix}."
    E022 = (
        "{name}: `file` = '{value}' of `[components.{name}.backend]` must be a path inside the model "
        "directory. Fix: put the .onnx file in the model folder (next to config.json) "
        "and give its relative path, e.g. 'onnx/model.onnx'."
    )
    E023 = (
        "{name}: config key `device` = '{device}' {problem}. Fix: {fix}."
    )
    E024 = (
        "{name}: config key `max_length` = {max_length} is longer than model "
        "'{model}' can read ({limit} positions). Fix: set `max_length` to at most "
        "{limit}, or leave it null to use the model's own limit."
    )
    E025 = (
        "{name}: the saved pipeline's {what} '{path}' could not be read ({error}). "
        "The file is missing, truncated or not what it should be. Fix: re-save the "
        "pipeline with `nlp.to_disk(...)` from a working copy, or re-create it from "
        "the original model."
    )
    E026 = (
        "{name}: '{path}' does not match the checksum written with the pipeline "
        "(sha256 {got}, expected {want}): the file was changed or damaged after "
        "`nlp.to_disk`. Fix: restore the file, or re-save the pipeline with "
        "`nlp.to_disk(...)` from a working copy."
    )
    E027 = (
        "{name}: config key `attr` = 'pos' writes token.pos_, which holds only Universal "
        "POS tags, but the labels of model '{model}' include {shown}. Fix: set `attr` = "
        "'tag' (or 'auto') to write the labels to token.tag_, or map them to Universal "
        "POS tags with `label_map`."
    )
    E028 = (
        "{name}: config key `decoding` = '{decoding}' needs `words` = 'spacy' (`words` = "
        "'model' returns transformers' own entities). Fix: use 'auto' or 'greedy', or "
        "'viterbi' with `words` = 'spacy'."
    )
    E029 = (
        "{name}: config key `max_length` = {max_length} leaves no room for text next to "
        "the model's {special} special tokens. Fix: give at least {least} (or null for "
        "the model's own limit)."
    )
    E030 = (
        "{name}: {keys} cannot change on a created component (setting `cfg`): the "
        "model is built from them. Fix: load the pipeline again with the new value, "
        "e.g. `spacy.load(path, config={{'components': {{'{name}': {{KEY: VALUE}}}}}})`."
    )
    E031 = (
        "{name}: config key{s} {keys} belong{verb} to the backend now, and `backend` is "
        "already a block ({backend}). Fix: move {them} into `[components.{name}.backend]`"
        "{where}."
    )

    E038 = (
        "component kind `{factory}` is registered twice ({old} and {new}). Fix: give the "
        "new kind another factory name; a kind is registered once, by the module that "
        "defines its component."
    )

    # -- users: init-config, the displacy command (E140-E159) --
    E140 = (
        "init-config: `--epochs` counts passes over the training corpus, but no "
        "`--train` was given. Fix: add `--train PATH` (a .spacy file or folder), or "
        "give the number of steps with `--max-steps N`."
    )
    E141 = (
        "init-config: `--warmup-steps` = {warmup} must be smaller than the {max_steps} "
        "training steps. Fix: give fewer warm-up steps (about a tenth of the steps is "
        "usual), or more steps with `--max-steps`."
    )
    E142 = (
        "init-config: `--train` = '{path}' is neither a .spacy file nor a folder "
        "holding .spacy files, so `--epochs` cannot count its words. Fix: convert "
        "the corpus with `python -m spacy convert`, or give `--max-steps N`."
    )
    E144 = (
        "init-config: `--with` = '{value}' must list spaCy heads, each once, from: "
        "{known}; they listen to the hidden states of a token component, so "
        "`--component` {component} must be hf_ner or hf_tagger. Fix: e.g. "
        "`--component hf_ner --with tagger,parser`."
    )
    E145 = (
        "init-config: `--component` = '{component}' is not a component kind of spacy-hf-ner "
        "(known: {known}). Fix: use one of them, or install the package that registers "
        "'{component}'."
    )
    E146 = (
        "init-config: `--encoder-learn-rate` = {value} sets the rate of the component's "
        "encoder when it trains with its heads, {problem}. Fix: {fix}."
    )
    E143 = (
        "displacy: the evaluation set `DATA` = '{path}' does not exist. Fix: give a "
        ".spacy file (or a folder of them) with gold entities, e.g. one written by "
        "`python -m spacy convert`."
    )

    # -- serve (the HTTP server): E120-E139 --
    E120 = (
        "serve: --allowed-hosts = '{value}' names no host. Fix: give the names clients "
        "use to reach the server, comma-separated (e.g. 'example.com,10.0.0.5'), or '*' "
        "to accept any Host header."
    )
    # -- annotate (bulk and distributed annotation: spacy_hf_ner/bulk/) --------
    E100 = (
        "annotate: input '{path}' {problem}. Fix: give a .jsonl, .parquet or .csv file, "
        "or a folder of .txt files."
    )
    E101 = (
        "annotate: output '{path}' must end in .parquet or .jsonl. Fix: name the output "
        "e.g. 'out.parquet' (one row per document) or 'out.jsonl'."
    )
    E102 = (
        "annotate: input '{path}' has no column `{key}` (flag --{flag}; columns: "
        "{columns}). Fix: pass --{flag} with the name of the column holding the {what}."
    )
    E103 = (
        "annotate: input '{path}' has the id {id!r} twice (record {row}, column "
        "`{key}`, flag --id-key). Every document needs its own id, or resuming and "
        "joining results would mix them. Fix: make the ids unique, or pass --id-key '' "
        "to number the records instead."
    )
    E104 = "annotate: input '{path}', record {row}: {problem}. Fix: {fix}."
    E105 = (
        "annotate: output '{path}' already exists{parts}. Fix: pass --resume to keep "
        "what is written and annotate only the rest, or remove it to start afresh."
    )
    E106 = (
        "annotate: --engine ray needs Ray Data, which is not installed ({error}). Fix: "
        "`pip install '.[ray]'` in the spacy-hf-ner clone (or the wheel with `[ray]`), or use --engine local."
    )
    E107 = (
        "annotate: the Ray cluster cannot run this job without hanging: {problem}. "
        "Fix: {fix}."
    )
    E108 = (
        "annotate: no batch finished within {seconds:.0f} s (flag --stall-timeout); "
        "the job was stopped instead of hanging ({engine} engine, {done} of "
        "{total} documents written; rerun with --resume to continue). Fix: check the "
        "workers' logs, or raise --stall-timeout for very slow models or huge batches."
    )
    E109 = (
        "annotate: {engine} engine: the workers failed {failures} time(s), more than "
        "--max-retries {retries} allows ({error}). What was written is kept: fix the "
        "cause (a crashing document, memory) and rerun with --resume."
    )
    E110 = (
        "annotate: {missing} input document(s) have no output row and {extra} "
        "output row(s) match no input document (e.g. {examples}); nothing was "
        "published to '{path}'. Fix: rerun with --resume; please report this as a bug."
    )
    E111 = "annotate: `{key}` (flag --{flag}) = {value!r} {problem}. Fix: {fix}."
    E112 = (
        "annotate: --resume: '{path}' was written with pipeline '{was}' (config "
        "{was_hash}), and this run uses '{now}' ({now_hash}); resuming would mix their "
        "rows. Fix: resume with --pipeline '{was}', or write to a new output."
    )
    E117 = (
        "annotate: the job's process ended with {status} and did not say why{where}. "
        "What was finished is kept in '{parts}'. Fix: rerun with --resume to finish the job; "
        "please report this with the lines above as a bug."
    )
    E118 = (
        "annotate: '{parts}' holds parts of a run laid out as {was}, and this run lays "
        "its parts out as {now}. Fix: resume with the flags of the first run ({fix}), "
        "or remove '{parts}' to start afresh."
    )

    E121 = (
        "serve: `parameters.stride` = {stride} is above this server's limit of {limit} "
        "model tokens ({why}): with windows of {room} text tokens each text would be "
        "read {factor:.0f} times. Fix: ask for a smaller stride (the default is "
        "{default}), or start the server with a larger --max-stride."
    )
    E122 = (
        "serve: this request needs {windows} model windows ({texts} input(s), the "
        "largest {largest} window(s) of {window} tokens), more than this server's "
        "limit of {limit} per request. Fix: send fewer or shorter inputs (or a smaller "
        "`parameters.stride`), or start the server with a larger "
        "--max-windows-per-request."
    )
    E123 = (
        "serve: --{flag} = {value!r} is out of range ({why}). Fix: give a value in range "
        "(see `spacy-hf-ner serve --help` for the defaults)."
    )
    E124 = (
        "serve: --label-map = '{value}' is neither JSON nor a readable JSON file "
        "({error}). Fix: give a JSON object such as '{{\"PER\": \"PERSON\"}}', or "
        "the path of a file holding one."
    )
    E126 = (
        "serve: this server has no component for {task} (it serves {served}). Fix: send "
        "the request to a route of a served task{routes}, or serve a pipeline with a "
        "component for {task}."
    )
    E127 = (
        "serve: `parameters.{key}` = {value!r} does not apply to '{name}' ({factory}: it "
        "uses its own configured `{key}`). Fix: leave `parameters.{key}` out for this "
        "model."
    )
    E128 = (
        "serve: the pipeline ({pipes}) has no spacy-hf-ner component (kinds: {kinds}). "
        "Fix: add one, e.g. nlp.add_pipe('hf_ner'), or serve a transformers token or "
        "sequence classifier directly."
    )
    # -- onnx (export-onnx): E160-E169 --
    E160 = (
        "export-onnx: {path} differs from the torch model by {diff:.2e} in its logits, more "
        "than `--atol` {atol}: the float32 graph is not a faithful export. Fix: report the "
        "model's architecture; raise `--atol` only if that difference is acceptable."
    )
    E161 = (
        "export-onnx: `--int8-mode` blockwise needs onnxruntime's MatMulNBits quantizer, "
        "which could not be imported ({error}). Fix: `pip install '.[onnx]'` in the spacy-hf-ner clone "
        "(it brings onnx-ir), or use `--int8-mode per-channel`."
    )

    # -- transformer listeners (listeners.py): E170-E179 --
    E170 = (
        "{name}: a transformer listener reads the hidden states of this component, "
        "but its backend ({backend}) gives logits only. Fix: give the component that the "
        "listener's `upstream` names the torch backend block, `[components.{name}.backend]` "
        "`@hf_backends = \"spacy-hf-ner.torch.v1\"`."
    )
    E171 = (
        "{name}: the config asks for `{architecture}`, but {library} {problem}. "
        "Fix: {fix}"
    )
    E172 = (
        "{name}: the listener of component '{listener}' expects hidden states of width "
        "{want} (its `width`), but the model of '{name}' has width {got}. Fix: set "
        "`width` = {got} in the listener's config block."
    )
    E173 = (
        "{name}: component '{listener}' has a transformer listener with `upstream` = "
        "'{name}', but a sequence classifier (hf_textcat) keeps no per-token hidden "
        "states. Fix: point `upstream` at an hf_ner or hf_tagger component."
    )
    E174 = (
        "spacy-hf-ner.torch.v1: `learn_rate_scale` = {value!r} must be a share of the "
        "optimizer's learning rate above 0. Fix: give e.g. 0.02 (the model learns at 2% of "
        "`[training.optimizer.learn_rate]`), 1.0 (the same rate), or put the component in "
        "`[training] frozen_components` to keep its weights."
    )
    E162 = "export-onnx: `{key}` (flag --{flag}) = {value!r} {problem}. Fix: {fix}."
    E163 = (
        "export-onnx: '{path}' {problem}. Fix: {fix}."
    )

    E125 = (
        "serve: input {index} of this request needs {windows} model windows of {window} "
        "tokens, more than this server's limit of {limit} per input (an input runs in "
        "one model call, so the limit bounds how long other requests wait behind it). "
        "Fix: split the text into shorter inputs, or start the server with a larger "
        "--max-windows-per-input."
    )
    E180 = (
        "spacy-hf-ner package: `spacy package` stopped (exit {status}) on '{input_dir}', "
        "for the reason it printed above. Fix: as for spacy package, e.g. give a pipeline "
        "folder with meta.json, an existing OUTPUT_DIR, --force to overwrite a package folder."
    )
    E181 = (
        "spacy-hf-ner package: building the wheel of {what} from '{source}' failed:\n{error}\n"
        "Fix: the wheels are built without build isolation, so this environment needs "
        "setuptools>=70.1 (pip install 'setuptools>=70.1')."
    )
    E182 = (
        "spacy-hf-ner package: spacy-hf-ner is installed at '{location}' without a record "
        "of its files, so its wheel cannot be rebuilt. Fix: run the command from a "
        "clone of spacy-hf-ner (pip install -e .), or reinstall it from its wheel."
    )
    # -- annotate --engine spark (spacy_hf_ner/bulk/spark.py, spark_job.py) --
    E113 = (
        "annotate: spark engine: no Spark task finished within {seconds:.0f} s (flag "
        "--stall-timeout) while {what}; {executors} executor(s) registered with master "
        "'{master}', and {running} task(s) running. The job was cancelled instead of "
        "hanging; finished parts are kept (rerun with --resume). Fix: {fix}."
    )
    E114 = (
        "annotate: --engine spark needs pyspark, which is not installed ({error}). Fix: "
        "`pip install '.[spark]'` in the spacy-hf-ner clone (and Java 17 or later), or use "
        "--engine local."
    )
    E115 = "annotate: spark engine: input '{path}' {problem}. Fix: {fix}."
    E116 = (
        "annotate: spark engine: the Spark job failed ({error}). What was written is "
        "kept in finished parts: fix the cause and rerun with --resume."
    )
    E191 = (
        "{name}: config key `model` = '{model}' is a saved spaCy pipeline, not a "
        "transformers model folder. Fix: {fix}."
    )
