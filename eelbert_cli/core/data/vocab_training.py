"""Train a BERT-uncased-style WordPiece vocabulary on a corpus.

The hash embedding makes a large vocabulary nearly free at the input, so the vocabulary size is an
experiment knob; this trains one with the same normaliser, pre-tokeniser and ``##`` continuation
pieces as bert-base-uncased, so everything downstream treats it like the stock vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer

from eelbert_cli.core.data.tokenization import vocabulary_of
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import write_atomic

# Fixed low ids, in this order: [PAD]=0 lets padding masks be "id != 0" as in BERT.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CONTINUATION_PREFIX = "##"


def bert_uncased_pipeline() -> Tokenizer:
    """An untrained WordPiece tokenizer with bert-base-uncased's text pipeline."""
    tokenizer = Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix=CONTINUATION_PREFIX, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX)
    return tokenizer


def train_wordpiece(documents: Iterable[str], vocab_size: int, output_dir: str | Path, min_frequency: int = 2) -> Tokenizer:
    """Train on ``documents`` (streamed once), save ``tokenizer.json`` and ``vocab.txt`` into
    ``output_dir`` and return the tokenizer (padding and truncation off, like load_tokenizer)."""
    if vocab_size <= len(SPECIAL_TOKENS):
        raise EelbertError(f"vocab_size {vocab_size} is too small: it must exceed the {len(SPECIAL_TOKENS)} special tokens")
    tokenizer = bert_uncased_pipeline()
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix=CONTINUATION_PREFIX,
        limit_alphabet=1000,
        show_progress=False,
    )
    guarded = _ErrorGuard(documents)
    tokenizer.train_from_iterator(guarded, trainer=trainer)
    guarded.reraise()
    if tokenizer.get_vocab_size() <= len(SPECIAL_TOKENS):
        raise EelbertError("the corpus for vocabulary training holds no text")
    _add_bert_template(tokenizer)
    save_tokenizer(tokenizer, Path(output_dir))
    return tokenizer


def _add_bert_template(tokenizer: Tokenizer) -> None:
    """``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]`` when special tokens are requested."""
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )


def save_tokenizer(tokenizer: Tokenizer, output_dir: Path) -> None:
    """Both files written atomically, so an interrupted run never leaves a half vocabulary."""
    output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(output_dir / "tokenizer.json", tokenizer.to_str(pretty=True))
    write_atomic(output_dir / "vocab.txt", "".join(token + "\n" for token in vocabulary_of(tokenizer)))


class _ErrorGuard:
    """Iterates the documents for the Rust trainer and keeps the first EelbertError (a bad corpus
    file), which the trainer would otherwise turn into an opaque exception of its own."""

    def __init__(self, documents: Iterable[str]) -> None:
        self._documents = documents
        self._error: EelbertError | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._documents
        except EelbertError as error:
            self._error = error

    def reraise(self) -> None:
        if self._error is not None:
            raise self._error
