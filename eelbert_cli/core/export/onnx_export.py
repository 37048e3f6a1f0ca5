"""`eelbert export`: a fine-tuned model as an ONNX graph over word vectors, plus everything a device needs.

The graph is transformers' BERT encoder, pooler and task head, exported with torch's ONNX exporter
(standard ops only), taking ``inputs_embeds`` (the word vectors), ``attention_mask`` and
``token_type_ids`` with dynamic batch and length. The word vectors are not in the graph: for
EELBERT the runtime recomputes the hash table from ``export.json``'s hash config and the tokenizer's
vocabulary; for a learned-table BERT the table ships beside it as ``word_embeddings.npy``, so sizes
compare fairly. Position rows beyond ``max_seq_len`` are trimmed. ``export.json`` also carries test
vectors (strings and the first values of their hash vectors) so a runtime in another language can
prove it hashes alike. A plain BERT WordPiece tokenizer ships as ``vocab.txt`` plus its settings in
``export.json`` (format 2: a third of ``tokenizer.json``'s bytes, and what the JavaScript runtime
reads), after the exporter has proven that the rebuilt tokenizer encodes probe texts alike; any
other tokenizer ships as its ``tokenizer.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eelbert_cli import __version__
from eelbert_cli.core.console import log
from eelbert_cli.core.data.tasks.record import check_head_matches, read_task_record
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.export.runtime import EXPORT_FILE, EXPORT_FORMAT
from eelbert_cli.core.files import (
    check_replaceable_directory,
    enclosing_run_dir,
    replacing,
    run_directory_lock,
    sibling_lock,
)
from eelbert_cli.core.model.hashing import hash_vectors_numpy
from eelbert_cli.core.model.modeling import load_model
from eelbert_runtime.wordpiece import build_tokenizer

MODEL_FILE = "model.onnx"
INT8_MODEL_FILE = "model.int8.onnx"
WORD_TABLE_FILE = "word_embeddings.npy"
VOCABULARY_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_OWNED = {MODEL_FILE, INT8_MODEL_FILE, WORD_TABLE_FILE, VOCABULARY_FILE, TOKENIZER_FILE}  # besides export.json: all an export holds
# Texts the rebuilt tokenizer must encode exactly as tokenizer.json does before vocab.txt replaces it:
# accents, case, CJK, punctuation, controls, emoji, special tokens in the text, an over-long word.
PROBE_TEXTS = (
    "A gorgeous, witty film!", "Crème brûlée à l'Élysée — naïve café", "ΟΔΟΣ straße İstanbul", "北京欢迎你 and 東京",
    "tabs\tand\nnewlines\r\n\u200b zero\u00a0width", "emoji 🎬🍿 and ♥", "[CLS] [MASK] inside [SEP] text [UNK]",
    "x" * 120 + " long", "don't won't can't", "\x00nul\ufffd replacement", "U.S.A. $100.50 #1 @home 50%",
)
INPUTS = ("inputs_embeds", "attention_mask", "token_type_ids")
TEST_STRINGS = ("[CLS]", "play", "##ing", "unbelievable", "é")
TEST_VALUES = 8


class WordVectorClassifier(nn.Module):
    """The fine-tuned model from word vectors to logits: what the ONNX graph computes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def trim_positions(model: nn.Module, length: int) -> None:
    """Keep the first ``length`` position rows: a shipped model never sees longer inputs."""
    embeddings = model.bert.embeddings
    if length > embeddings.position_embeddings.num_embeddings:
        raise EelbertError(f"--max-seq-len {length} exceeds the model's {embeddings.position_embeddings.num_embeddings} positions")
    table = embeddings.position_embeddings.weight.detach()[:length].clone()
    embeddings.position_embeddings = nn.Embedding.from_pretrained(table, freeze=True)
    for name in ("position_ids", "token_type_ids"):
        if hasattr(embeddings, name) and getattr(embeddings, name) is not None:
            embeddings.register_buffer(name, getattr(embeddings, name)[:, :length].clone(), persistent=False)
    model.config.max_position_embeddings = length


MIN_EXPORT_LENGTH = 8  # the graph's length is dynamic from 2 up to the export's length (torch.export needs max > its example's 5)


def export_onnx(graph: nn.Module, hidden: int, max_len: int, path: Path) -> None:
    example = (torch.randn(2, 5, hidden), torch.ones(2, 5, dtype=torch.long), torch.zeros(2, 5, dtype=torch.long))
    batch, length = torch.export.Dim("batch", min=1), torch.export.Dim("length", min=2, max=max_len)
    shapes = {name: {0: batch, 1: length} for name in INPUTS}
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # e.g. "torchvision is not installed. Skipping torchvision::nms"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, example, str(path), input_names=list(INPUTS), output_names=["logits"], dynamic_shapes=shapes,
                          dynamo=True, optimize=True, verbose=False)
    exporter_log.setLevel(level)
    compact(path)


def compact(path: Path) -> None:
    """One self-contained file without the exporter's per-node stack traces (they were ~4/5 of a
    tiny model's bytes): what ships is weights and graph only."""
    import onnx

    model = onnx.load(str(path))  # reads external weight data, if the exporter wrote any
    for node in model.graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    model.graph.doc_string = ""
    del model.metadata_props[:]
    for external_data in path.parent.glob("*.data"):
        external_data.unlink()
    onnx.save(model, str(path), save_as_external_data=False)


def quantize_int8(source: Path, target: Path) -> None:
    """onnxruntime's dynamic quantization: int8 weights of the matrix multiplies, scales per tensor."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)


def test_vectors(hidden: int, config) -> list[dict]:
    if config.kind == "learned":
        return []
    vectors = hash_vectors_numpy(list(TEST_STRINGS), hidden, config)
    return [{"string": s, "first_values": [float(v) for v in vectors[i, :TEST_VALUES]]} for i, s in enumerate(TEST_STRINGS)]


def verify(graph: nn.Module, model_path: Path, hidden: int, max_len: int) -> float:
    """Largest |ONNX - torch| logit difference on random padded batches of several shapes."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch, length in ((1, 2), (3, min(11, max_len)), (4, max_len)):
        vectors = torch.randn(batch, length, hidden, generator=generator)
        mask = torch.ones(batch, length, dtype=torch.long)
        mask[0, max(1, length // 2) :] = 0
        types = torch.zeros(batch, length, dtype=torch.long)
        with torch.no_grad():
            expected = graph(vectors, mask, types).numpy()
        got = session.run(None, {"inputs_embeds": vectors.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def check_export_target(checkpoint: Path, output_dir: Path) -> None:
    """``output_dir`` is replaced as a whole: only a new or empty directory or an earlier export
    (export.json and the files an export writes, nothing else) may be, never the checkpoint, a run
    directory or the user's files."""
    if output_dir.exists() and checkpoint.exists() and output_dir.resolve() == checkpoint.resolve():
        raise EelbertError(f"-o {output_dir} is the checkpoint being exported; give another directory (nothing was written)")
    if output_dir.exists() and output_dir.resolve() == Path.cwd().resolve():
        raise EelbertError(f"-o {output_dir} is the current directory; give a directory inside it (nothing was written)")
    check_replaceable_directory(output_dir, "-o", EXPORT_FILE, EXPORT_OWNED, "export")


def export_model(checkpoint: Path, output_dir: Path, quantize: str | None = None, max_seq_len: int | None = None) -> dict:
    """Write ``output_dir`` (replaced as a whole: the old export stays complete until the new one is)
    and return its export.json. Inside a run directory the export holds that run's lock."""
    checkpoint, output_dir = Path(checkpoint), Path(output_dir)
    check_export_target(checkpoint, output_dir)
    with ExitStack() as locks:
        run_dir = enclosing_run_dir(output_dir)
        if run_dir is not None:
            locks.enter_context(run_directory_lock(run_dir))
        locks.enter_context(sibling_lock(output_dir))
        check_export_target(checkpoint, output_dir)  # again, under the locks: another export may just have finished
        return _export(checkpoint, output_dir.resolve() if output_dir.name in ("", "..") else output_dir, quantize, max_seq_len)


def _export(checkpoint: Path, output_dir: Path, quantize: str | None, max_seq_len: int | None) -> dict:
    record = read_task_record(checkpoint, fix="export RUN_DIR/finetuned/TASK of a run that finished")
    model = load_model(checkpoint, "sequence-classification").eval()
    check_head_matches(record, model.config.num_labels, checkpoint)
    config = model.config
    length = max_seq_len or record.get("max_seq_len") or config.max_position_embeddings
    if not MIN_EXPORT_LENGTH <= length <= config.max_position_embeddings:
        raise EelbertError(
            f"--max-seq-len {length}: an export takes {MIN_EXPORT_LENGTH} to {config.max_position_embeddings} tokens "
            f"({checkpoint.name} has {config.max_position_embeddings} positions; [CLS] and [SEP] take two)"
        )
    trim_positions(model, length)
    graph = WordVectorClassifier(model).eval()
    hash_config = config.hash_config if hasattr(config, "hash_config") else None
    uses_hash = hash_config is not None and hash_config.kind != "learned"
    if not (checkpoint / "tokenizer.json").is_file():
        raise EelbertError(f"{checkpoint} has no tokenizer.json; fine-tuned models saved by eelbert carry one")
    with replacing(output_dir, directory=True) as staging:
        fp32 = staging / MODEL_FILE
        log.info("exporting %s to ONNX", checkpoint)
        export_onnx(graph, config.hidden_size, length, fp32)
        difference = verify(graph, fp32, config.hidden_size, length)
        shipped = fp32
        if quantize == "int8":
            shipped = staging / INT8_MODEL_FILE
            quantize_int8(fp32, shipped)
            fp32.unlink()
        tokenizer_file, wordpiece = write_tokenizer(checkpoint / TOKENIZER_FILE, staging)
        if not uses_hash:
            np.save(staging / WORD_TABLE_FILE, model.bert.embeddings.word_embeddings.weight.detach().numpy().astype(np.float32))
        document = {
            "format": EXPORT_FORMAT,
            "eelbert_version": __version__,
            "task": record["task"],
            "type": record.get("type", "classification"),
            "labels": record.get("labels") or [str(i) for i in range(config.num_labels)],
            "max_seq_len": length,
            "text_inputs": record.get("text_inputs"),
            "hidden": config.hidden_size,
            "hash": hash_config.as_dict() if uses_hash else None,
            "word_table": None if uses_hash else WORD_TABLE_FILE,
            "tokenizer": tokenizer_file,
            "wordpiece": wordpiece,
            "model": shipped.name,
            "quantized": quantize,
            "inputs": list(INPUTS),
            "outputs": ["logits"],
            "fp32_max_abs_difference_vs_torch": difference,
            "test_vectors": test_vectors(config.hidden_size, hash_config) if uses_hash else [],
        }
        (staging / EXPORT_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return document


def wordpiece_settings(tokenizer_json: dict) -> dict | None:
    """The "wordpiece" settings of a plain BERT WordPiece pipeline, or None when it is anything else
    (another model, normaliser or template, added tokens that are not plain specials, ids with gaps)."""
    normalizer, model = tokenizer_json.get("normalizer") or {}, tokenizer_json.get("model") or {}
    processor = tokenizer_json.get("post_processor") or {}
    if (normalizer.get("type") != "BertNormalizer" or (tokenizer_json.get("pre_tokenizer") or {}).get("type") != "BertPreTokenizer"
            or model.get("type") != "WordPiece"):
        return None
    vocabulary = model.get("vocab") or {}
    if sorted(vocabulary.values()) != list(range(len(vocabulary))) or any(t != t.strip() or not t or "\n" in t for t in vocabulary):
        return None
    added = tokenizer_json.get("added_tokens") or []
    if any(not a.get("special") or a.get("normalized") or a.get("lstrip") or a.get("rstrip") or a.get("single_word")
           or vocabulary.get(a.get("content")) != a.get("id") for a in added):
        return None
    if processor.get("type") == "BertProcessing":  # what tokenizers' BertWordPieceTokenizer writes
        cls_token, sep_token = processor["cls"][0], processor["sep"][0]
    elif processor.get("type") == "TemplateProcessing" and len(processor.get("single") or []) == 3:
        single = processor["single"]
        if "SpecialToken" not in single[0] or "SpecialToken" not in single[2]:
            return None
        cls_token, sep_token = single[0]["SpecialToken"]["id"], single[2]["SpecialToken"]["id"]
    else:
        return None  # the rebuilt tokenizer's [CLS] A [SEP] B [SEP] template is proven on probes anyway
    specials = [a["content"] for a in added]
    return {
        "lowercase": bool(normalizer.get("lowercase", True)), "strip_accents": normalizer.get("strip_accents"),
        "clean_text": bool(normalizer.get("clean_text", True)), "handle_chinese_chars": bool(normalizer.get("handle_chinese_chars", True)),
        "unk_token": model.get("unk_token", "[UNK]"), "continuing_subword_prefix": model.get("continuing_subword_prefix", "##"),
        "max_input_chars_per_word": int(model.get("max_input_chars_per_word", 100)),
        "cls_token": cls_token, "sep_token": sep_token,
        "pad_token": "[PAD]" if "[PAD]" in vocabulary else specials[0] if specials else model.get("unk_token", "[UNK]"),
        "special_tokens": specials,
    }


def write_tokenizer(source: Path, staging: Path) -> tuple[str, dict | None]:
    """vocab.txt and its settings where they rebuild the very tokenizer (proven on PROBE_TEXTS, single
    and paired), else a copy of tokenizer.json. Returns the file's name and the settings (or None)."""
    from tokenizers import Tokenizer

    document = json.loads(source.read_text(encoding="utf-8"))
    settings = wordpiece_settings(document)
    if settings is not None:
        vocabulary = sorted(document["model"]["vocab"], key=document["model"]["vocab"].get)
        original, rebuilt = Tokenizer.from_file(str(source)), build_tokenizer(vocabulary, settings)
        pairs = list(zip(PROBE_TEXTS, PROBE_TEXTS[1:], strict=False))
        same = all(
            (a.ids, a.type_ids) == (b.ids, b.type_ids)
            for a, b in zip(original.encode_batch([*PROBE_TEXTS, *pairs]), rebuilt.encode_batch([*PROBE_TEXTS, *pairs]), strict=True)
        )
        if same:
            (staging / VOCABULARY_FILE).write_text("".join(f"{token}\n" for token in vocabulary), encoding="utf-8")
            return VOCABULARY_FILE, settings
        log.info("the tokenizer rebuilt from its vocabulary encodes differently: the export ships tokenizer.json")
    shutil.copyfile(source, staging / TOKENIZER_FILE)
    return TOKENIZER_FILE, None


def shipped_bytes(export_dir: Path) -> dict[str, int]:
    """Bytes a device downloads, by file: the graph, the config, the vocabulary (or tokenizer) and,
    for a learned-table BERT, its word table."""
    document = json.loads((export_dir / EXPORT_FILE).read_text(encoding="utf-8"))
    files = [EXPORT_FILE, document["model"], document["tokenizer"], *([document["word_table"]] if document.get("word_table") else [])]
    return {name: (export_dir / name).stat().st_size for name in files}


def gzipped_bytes(export_dir: Path) -> int:
    """The same files gzip-compressed (level 9), as a web server with compression sends them."""
    import gzip

    return sum(len(gzip.compress((export_dir / name).read_bytes(), compresslevel=9, mtime=0)) for name in shipped_bytes(export_dir))
