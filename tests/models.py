"""Tiny random transformers models with local vocabularies, built for the tests.

No network: the tokenizers are made with the `tokenizers` library from a word
list, the models are randomly initialised with a fixed seed. The classifier
weights are scaled up so that predictions are decisive (no near-ties that
padding noise could flip) and varied (many entities of every kind).
"""
import string
from pathlib import Path
from typing import Dict, List, Optional, Sequence

CONLL_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

WORDS = """the a an of in on at to and or is was are were be been has have had it its
this that with for from by as not but he she they we you i my your his her their our
name work works worked live lives lived go went city company country people year day
My name Sarah Jessica Parker Google New York Angela Merkel Paris Berlin London Apple
Microsoft Germany France United States European Union Obama Barack President Minister
John Smith Mary Johnson Amazon Seattle Washington Reuters Monday Tuesday January
said says told report reports according government bank market shares percent
Hugging Face spaCy Python model text token entity . , ; : ! ? ' " ( ) - / % $ & @ #
""".split()

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _vocab() -> Dict[str, int]:
    chars = string.ascii_letters + string.digits + string.punctuation + "éèüöäßçñ東京都中国日本"
    entries: List[str] = list(SPECIAL)
    for item in WORDS + list(chars) + ["##" + c for c in chars] + ["##s", "##ing", "##ed", "##er"]:
        if item not in entries:
            entries.append(item)
    return {tok: i for i, tok in enumerate(entries)}


def wordpiece_tokenizer(lowercase: bool = False, model_max_length: int = 512):
    """A fast BERT-style WordPiece tokenizer (word-aware: "##" subwords)."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import PreTrainedTokenizerFast

    vocab = _vocab()
    if lowercase:
        vocab = {tok if tok in SPECIAL else tok.lower(): i for tok, i in vocab.items()}
        vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab))}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )


def bytelevel_tokenizer(model_max_length: int = 512):
    """A RoBERTa-style byte-level BPE tokenizer (not word-aware: transformers
    guesses words with its fallback heuristic)."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    corpus = [" ".join(WORDS)] * 3 + ["My name is Sarah Jessica Parker and I work at Google in New York."]
    bpe.train_from_iterator(
        corpus, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    backend = bpe._tokenizer
    backend.post_processor = processors.RobertaProcessing(
        ("</s>", backend.token_to_id("</s>")), ("<s>", backend.token_to_id("<s>")), trim_offsets=True
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
        model_max_length=model_max_length,
    )


def build_token_classifier(
    path: Path,
    labels: Sequence[str] = CONLL_LABELS,
    *,
    tokenizer: str = "wordpiece",
    model_max_length: int = 512,
    seed: int = 0,
    scale: float = 30.0,
    o_bias: float = 0.0,
    lowercase: bool = False,
) -> Path:
    """Save a tiny random *ForTokenClassification model + tokenizer to `path`."""
    import torch
    from transformers import BertConfig, BertForTokenClassification, RobertaConfig, RobertaForTokenClassification

    torch.manual_seed(seed)
    id2label = {i: l for i, l in enumerate(labels)}
    label2id = {l: i for i, l in id2label.items()}
    common = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=len(labels),
        id2label=id2label,
        label2id=label2id,
    )
    if tokenizer == "wordpiece":
        tok = wordpiece_tokenizer(lowercase=lowercase, model_max_length=model_max_length)
        config = BertConfig(vocab_size=len(tok), max_position_embeddings=512, **common)
        model = BertForTokenClassification(config)
    elif tokenizer == "bytelevel":
        tok = bytelevel_tokenizer(model_max_length=model_max_length)
        config = RobertaConfig(
            vocab_size=len(tok),
            max_position_embeddings=514,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            **common,
        )
        model = RobertaForTokenClassification(config)
    else:
        raise ValueError(tokenizer)
    with torch.no_grad():
        model.classifier.weight.mul_(scale)
        if o_bias and "O" in label2id:
            model.classifier.bias[label2id["O"]] += o_bias
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_sequence_classifier(
    path: Path,
    labels: Sequence[str] = ("NEGATIVE", "POSITIVE"),
    *,
    problem_type: Optional[str] = None,
    model_max_length: int = 512,
    seed: int = 0,
    scale: float = 10.0,
) -> Path:
    """Save a tiny random *ForSequenceClassification model + tokenizer to `path`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tok = wordpiece_tokenizer(model_max_length=model_max_length)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={l: i for i, l in enumerate(labels)},
        problem_type=problem_type,
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.mul_(scale)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_encoder(path: Path, *, seed: int = 0, tokenizer: str = "wordpiece") -> Path:
    """Save a tiny random plain encoder (BertModel / RobertaModel, no head) +
    tokenizer to `path`: what a user fine-tunes from."""
    import torch
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    torch.manual_seed(seed)
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    if tokenizer == "wordpiece":
        tok = wordpiece_tokenizer()
        model = BertModel(BertConfig(vocab_size=len(tok), max_position_embeddings=512, **common))
    else:
        tok = bytelevel_tokenizer()
        model = RobertaModel(
            RobertaConfig(
                vocab_size=len(tok),
                max_position_embeddings=514,
                pad_token_id=tok.pad_token_id,
                bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id,
                **common,
            )
        )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
