"""`hf_ner` and `hf_tagger` as the upstream of spaCy transformer listeners: one
forward pass feeds the component's own head and every listening head.

A spaCy component whose model holds a listener of spacy-curated-transformers
(`spacy-curated-transformers.LastTransformerLayerListener.v1`,
`ScalarWeightingListener.v1`, `TransformerLayersListener.v1`) with `upstream`
set to the hf_* component's name (or "*") is found by spaCy's usual protocol
(`find_listeners`, `listener_map`, called by `nlp.add_pipe`, `spacy.load`,
`spacy train`). Each forward pass of the component then also returns the
model's hidden states (the last layer's, or every layer's when a listener
asks for them), read from the same windows as the logits, merged across
windows as the logits are, and aligned to spaCy tokens (`pieces.py`). They
are written to `doc._.trf_data` (curated's `DocTransformerOutput`), which the
listeners read at inference, and handed to the listeners during training:

* frozen encoder (the component in `frozen_components` and
  `annotating_components`): the listeners get the outputs of the annotating
  pass, with a backprop that does nothing;
* joint training: `update` runs the model once, backpropagates the component's
  own token-classification loss, and the listeners' gradients (times their
  `grad_factor`) reach the encoder through the same graph; they are applied by
  the next `finish_update`, as spacy-transformers and curated apply theirs.
  spaCy's heads sum their losses over the tokens, where the component's own
  loss is a mean over its words: their gradients are divided by the batch's
  token count, so that `grad_factor` 1.0 weighs a head's loss per token as much
  as the component's (undivided, a 200-word batch gave the tagger 200 times the
  weight of the entities, and they were lost within 150 steps).

spacy-transformers 1.4 cannot be imported next to transformers 5 (it imports
`transformers.tokenization_utils.BatchEncoding`, gone in 5.0); its listener
name resolves to a coded error (E171) that says so, as do curated's listener
names where spacy-curated-transformers is not installed.
"""
import importlib.util
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

import numpy as np
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Ragged

from .errors import Errors
from .pieces import gather, scatter, token_pieces

# curated's marks on a listener model (`ListenerStateUtils`)
SENTINEL = "_TRANSFORMER_LISTENER"
UPSTREAM = "_upstream_name"
ALL_LAYERS = "_REQUIRES_ALL_LAYER_OUTPUTS"
DOC_ATTR = "trf_data"
CURATED = "spacy-curated-transformers"
CURATED_LISTENERS = ("LastTransformerLayerListener.v1", "ScalarWeightingListener.v1", "TransformerLayersListener.v1")
# (component name, per doc: per layer a Ragged) of the last forward pass
Shared = Tuple[List[str], List[List[Any]], List[List[np.ndarray]]]


def is_listener(node: Model) -> bool:
    """Whether a model node is a (curated) transformer listener."""
    return SENTINEL in node.attrs


class ListenedMixin:
    """spaCy's `ListenedToComponent` protocol for an hf_* component: the
    listener models found downstream, by the name of their component."""

    name: str
    task: ClassVar[str]
    runtime: Any

    @property
    def listener_map(self) -> Dict[str, List[Model]]:
        return self.__dict__.setdefault("_listener_map", {})

    @listener_map.setter
    def listener_map(self, value: Dict[str, List[Model]]) -> None:
        self.__dict__["_listener_map"] = value

    @property
    def listening_components(self) -> List[str]:
        return list(self.listener_map)

    @property
    def listeners(self) -> List[Model]:
        return [m for c in self.listening_components for m in self.listener_map[c]]

    def add_listener(self, listener: Model, component_name: str) -> None:
        if not Doc.has_extension(DOC_ATTR):  # the listeners read it, also before a pass
            Doc.set_extension(DOC_ATTR, default=None)
        found = self.listener_map.setdefault(component_name, [])
        if listener not in found:
            found.append(listener)
        read_docs_in_training(listener)

    def remove_listener(self, listener: Model, component_name: str) -> bool:
        found = self.listener_map.get(component_name, [])
        if listener not in found:
            return False
        found.remove(listener)
        if not found:
            del self.listener_map[component_name]
        return True

    def find_listeners(self, component: Any) -> None:
        """Register the listeners in `component`'s model whose `upstream` is
        this component's name or "*" (a sequence classifier is skipped by "*"
        and refused by name: it has no per-token outputs in its predictions)."""
        model = getattr(component, "model", None)
        if not isinstance(model, Model):
            return
        for node in model.walk():
            if not is_listener(node) or node.attrs[UPSTREAM] not in ("*", self.name):
                continue
            if self.task != "token":
                if node.attrs[UPSTREAM] == "*":
                    continue
                raise ValueError(Errors.E173.format(name=self.name, listener=component.name))
            self.add_listener(node, component.name)

    def all_layers(self) -> bool:
        """Whether a listener needs every layer's output (not only the last)."""
        return any(bool(node.attrs.get(ALL_LAYERS)) for node in self.listeners)


def run_shared(component: Any, texts: Sequence[str], stride: int) -> List[List[Tuple[Any, np.ndarray]]]:
    """`runtime.run` with the hidden states kept for `share` (one pass)."""
    found, hidden = component.runtime.run_hidden(
        texts, stride, component.settings.batch_size, component.all_layers()
    )
    component._shared = (list(texts), [[w for w, _ in f] for f in found], hidden)
    return found


def share(component: Any, docs: Sequence[Doc]) -> None:
    """Write the last pass's hidden states to `doc._.trf_data`, where the
    listeners read them (at inference, and in training when this component is
    frozen and annotating: `read_docs_in_training`)."""
    if not component.listening_components:
        return
    shared: Optional[Shared] = getattr(component, "_shared", None)
    component._shared = None
    if shared is None or shared[0] != [doc.text for doc in docs]:  # no pass ran (e.g. no docs)
        if not docs:
            return
        run_shared(component, [doc.text for doc in docs], component._stride)
        shared, component._shared = component._shared, None
    _, windows, hidden = shared
    outputs, _ = doc_outputs(docs, windows, hidden)
    check_width(component, outputs)
    last_only = not component.all_layers()
    _, doc_output_cls, _ = curated_classes()
    for doc, layers in zip(docs, outputs):
        doc._.trf_data = doc_output_cls(all_outputs=layers, last_layer_only=last_only)


def read_docs_in_training(listener: Model) -> None:
    """Let a listener that was handed nothing in training (its upstream frozen
    and annotating, so not updated) read `doc._.trf_data`, as
    spacy-transformers' listener does, with a backprop that stops there.
    Curated's own listener asserts instead: its forward is wrapped once."""
    if getattr(listener._func, "reads_docs", False):
        return
    inner = listener._func

    def forward(model: Model, docs: Any, is_train: bool) -> Any:
        if is_train and docs:
            output_cls, _, utils = curated_classes()
            if utils.get_output(model) is None and all(doc._.trf_data is not None for doc in docs):
                data = [doc._.trf_data for doc in docs]
                outputs = output_cls(outputs=[list(d.all_outputs) for d in data], last_layer_only=data[0].last_layer_only)
                utils.receive(model, utils.calculate_batch_id(docs), outputs, _no_backprop)
        return inner(model, docs, is_train)

    forward.reads_docs = True  # type: ignore[attr-defined]
    listener._func = forward


def _no_backprop(d_outputs: Any, outputs_to_backprop: Any = ()) -> List[Any]:
    return []


def doc_outputs(
    docs: Sequence[Doc], windows: Sequence[Sequence[Any]], hidden: Sequence[Sequence[Any]]
) -> Tuple[List[List[Ragged]], List[np.ndarray]]:
    """Per doc, per layer, the rows of each spaCy token (a Ragged over the
    doc's tokens); and per doc the rows' sources (window, position)."""
    from .base import token_arrays

    outputs, sources = [], []
    for doc, wins, states in zip(docs, windows, hidden):
        starts, ends, space = token_arrays(doc)
        source, lengths = token_pieces(doc.text, [(w.offsets, w.special) for w in wins], starts, ends, space)
        states = [np.asarray(s) for s in states]
        layers = [Ragged(gather([s[k] for s in states], source), lengths) for k in range(states[0].shape[0])]  # type: ignore[arg-type]  # thinc's stubs take its own array aliases, not numpy's ndarray
        outputs.append(layers)
        sources.append(source)
    return outputs, sources


def check_width(component: Any, outputs: Sequence[Sequence[Ragged]]) -> None:
    """Each listener's `width` is the model's hidden size (E172)."""
    got = int(component.runtime.config.hidden_size)
    for name in component.listening_components:
        for listener in component.listener_map[name]:
            want = listener.get_dim("nO") if listener.has_dim("nO") else got
            if want != got:
                raise ValueError(Errors.E172.format(name=component.name, listener=name, want=want, got=got))


def curated_classes() -> Tuple[Any, Any, Any]:
    """curated's TransformerModelOutput, DocTransformerOutput and
    ListenerStateUtils (a listener was found, so the library is there)."""
    from spacy_curated_transformers.models.listeners import ListenerStateUtils
    from spacy_curated_transformers.models.output import DocTransformerOutput, TransformerModelOutput

    return TransformerModelOutput, DocTransformerOutput, ListenerStateUtils


# -- listener names of libraries that are not usable here --------------------------


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _major(package: str) -> Optional[int]:
    try:
        return int(version(package).split(".")[0])
    except (PackageNotFoundError, ValueError):
        return None


def _refusal(architecture: str, library: str, problem: str, fix: str) -> Callable[..., Any]:
    # every argument of the listeners it stands for, so that spaCy's config
    # validation lets the call through to the error
    def refuse(
        width: Any = None,
        pooling: Any = None,
        upstream: Any = None,
        grad_factor: Any = None,
        weighting: Any = None,
        layers: Any = None,
    ) -> Any:
        raise ValueError(
            Errors.E171.format(name="spacy-hf-ner", architecture=architecture, library=library, problem=problem, fix=fix)
        )

    return refuse


def register_refusals() -> None:
    """Make the listener names of a library that is missing (or cannot be
    imported) resolve to E171, instead of spaCy's "could not find function"."""
    if not _installed("spacy_curated_transformers"):
        for name in CURATED_LISTENERS:
            arch = f"{CURATED}.{name}"
            fix = "pip install 'spacy-hf-ner[curated]' (spacy-curated-transformers 0.3)."
            registry.architectures.register(arch, func=_refusal(arch, CURATED, "is not installed", fix))
    arch = "spacy-transformers.TransformerListener.v1"
    if not _installed("spacy_transformers"):
        problem = "is not installed"
    elif (_major("transformers") or 0) >= 5:
        problem = f"1.4 cannot be imported with transformers {version('transformers')} (it needs transformers<4.53.3)"
    else:
        return
    fix = (
        "use spacy-curated-transformers' listeners (`spacy-curated-transformers.LastTransformerLayerListener.v1`, "
        "`upstream` = the hf_* component), installed by `pip install 'spacy-hf-ner[curated]'`."
    )
    registry.architectures.register(arch, func=_refusal(arch, "spacy-transformers", problem, fix))


register_refusals()


# -- joint training ------------------------------------------------------------------


def shared_update(component: Any, examples: Sequence[Any]) -> float:
    """One training pass of `component` that also feeds its listeners: the
    model runs once over the examples' windows (train mode), the component's
    own loss is backpropagated (keeping the graph), and the listeners receive
    the hidden states with a backprop into the same graph. Returns the
    component's loss."""
    import torch

    from .alignment import IGNORE_INDEX
    from .batching import plan_batches
    from .training import _padded

    docs = [eg.predicted for eg in examples]
    windows, targets = component._training_windows(examples)
    total = int(sum((t != IGNORE_INDEX).sum() for t in targets))
    module = component.runtime.model
    module.train()
    all_layers = component.all_layers()
    lengths = [len(w.ids) for w in windows]
    tensors: List[Any] = [None] * len(windows)
    loss = 0.0
    for batch in plan_batches(np.array(lengths), component.settings.batch_size):
        rows = batch.tolist()
        out = module(**component.torch_inputs([windows[i] for i in rows]), output_hidden_states=True)
        states = torch.stack(out.hidden_states if all_layers else out.hidden_states[-1:])
        gold = _padded([targets[i] for i in rows])
        if total and not (gold == IGNORE_INDEX).all():
            part, d_logits = component.get_loss(examples, (out.logits, gold), normalizer=total)
            torch.autograd.backward(out.logits, d_logits, retain_graph=True)
            loss += part
        for r, i in enumerate(rows):
            tensors[i] = states[:, r, : lengths[i]]
    by_doc = [[i for i, w in enumerate(windows) if w.doc == d] for d in range(len(docs))]
    hidden = [[tensors[i].detach().float().cpu().numpy() for i in mine] for mine in by_doc]
    outputs, sources = doc_outputs(docs, [[windows[i] for i in mine] for mine in by_doc], hidden)
    check_width(component, outputs)
    per_token = 1.0 / max(sum(len(doc) for doc in docs), 1)  # the heads' summed losses as means
    backprops = _listener_backprops(outputs, sources, by_doc, tensors, lengths, per_token)
    output_cls, _, utils = curated_classes()
    result = output_cls(outputs=outputs, last_layer_only=not all_layers)
    batch_id = utils.calculate_batch_id(docs)
    listeners = component.listeners
    for k, listener in enumerate(listeners):
        utils.receive(listener, batch_id, result, backprops[k == len(listeners) - 1])
    return loss


def _listener_backprops(
    outputs: List[List[Ragged]],
    sources: List[np.ndarray],
    by_doc: List[List[int]],
    tensors: List[Any],
    lengths: List[int],
    scale: float,
) -> Tuple[Callable[..., Any], Callable[..., Any]]:
    """(accumulate, backprop) in curated's protocol: every listener but the
    last adds its gradient to a buffer; the last one adds its own and runs the
    backward pass, times `scale`, from the hidden states into the encoder."""
    import torch

    d_outputs = [[np.zeros_like(layer.dataXd) for layer in doc] for doc in outputs]

    def accumulate(one: List[List[Ragged]], outputs_to_backprop: Sequence[int] = ()) -> None:
        for i, doc in enumerate(one):
            for j in outputs_to_backprop:
                d_outputs[i][j] += np.asarray(doc[j].dataXd, dtype=np.float32)

    def backprop(one: List[List[Ragged]], outputs_to_backprop: Sequence[int] = ()) -> List[Any]:
        accumulate(one, outputs_to_backprop)
        grads: List[Any] = [None] * len(tensors)
        for d, mine in enumerate(by_doc):
            n_layers = len(d_outputs[d])
            per_layer = [scatter(scale * d_outputs[d][k], sources[d], [lengths[i] for i in mine]) for k in range(n_layers)]
            for w, i in enumerate(mine):
                grads[i] = np.stack([per_layer[k][w] for k in range(n_layers)])
        pairs = [(t, torch.from_numpy(g).to(t.device, t.dtype)) for t, g in zip(tensors, grads) if t is not None]
        torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
        return []

    return accumulate, backprop
