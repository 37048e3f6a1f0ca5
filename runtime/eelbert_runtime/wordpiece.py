"""A BERT WordPiece tokenizer from the export's compact vocabulary: one token a line, its id its line.

A full ``tokenizer.json`` of the 30,522-word vocabulary is 711 KB, larger than an int8 uno-eelbert
graph; ``vocab.txt`` plus a few settings in ``export.json`` rebuild the same tokenizer (the
exporter proves it encodes alike before it drops the JSON), and the JavaScript twin
(``web/src/wordpiece.js``) reads the same two things.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

# The settings of a BERT WordPiece pipeline that `export.json`'s "wordpiece" entry carries, and their types.
SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "lowercase": (bool,),
    "strip_accents": (bool, type(None)),  # None: follow lowercase, as BERT does
    "clean_text": (bool,),
    "handle_chinese_chars": (bool,),
    "unk_token": (str,),
    "continuing_subword_prefix": (str,),
    "max_input_chars_per_word": (int,),
    "cls_token": (str,),
    "sep_token": (str,),
    "pad_token": (str,),
    "special_tokens": (list,),  # matched in the raw text before normalisation (tokenizers' added tokens)
}


def settings_problems(settings: object) -> list[str]:
    """Every way a "wordpiece" entry is unsound (empty when it is)."""
    if not isinstance(settings, Mapping):
        return ["'wordpiece' must be an object (the tokenizer's settings)"]
    problems = []
    for key, types in SETTING_TYPES.items():
        if key not in settings:
            problems.append(f"'wordpiece' lacks {key!r}")
        elif type(settings[key]) not in types:
            problems.append(f"'wordpiece.{key}' must be {' or '.join(t.__name__ for t in types)}, not {settings[key]!r}")
    if not problems and not all(isinstance(token, str) and token for token in settings["special_tokens"]):
        problems.append("'wordpiece.special_tokens' must be a list of non-empty strings")
    return problems


def read_vocabulary(path: Path) -> list[str]:
    """The tokens in id order; refuses what would shift ids (blank lines, repeats) with the line named."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is unreadable ({type(error).__name__}: {error})") from None
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    seen: dict[str, int] = {}
    for line, token in enumerate(tokens, start=1):
        if token == "" or token != token.strip():
            raise ValueError(f"{path}, line {line}: a vocabulary token is non-empty and has no surrounding spaces")
        if token in seen:
            raise ValueError(f"{path}, line {line}: {token!r} repeats line {seen[token]} (every id needs its own token)")
        seen[token] = line
    if not tokens:
        raise ValueError(f"{path} holds no tokens")
    return tokens


def build_tokenizer(vocabulary: Sequence[str], settings: Mapping):
    """The ``tokenizers`` pipeline BERT uses, from the vocabulary and the settings."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, processors

    ids = {token: index for index, token in enumerate(vocabulary)}
    for role in ("unk_token", "cls_token", "sep_token", "pad_token"):
        if settings[role] not in ids:
            raise ValueError(f"the vocabulary lacks the {role.replace('_', ' ')} {settings[role]!r}")
    tokenizer = Tokenizer(models.WordPiece(ids, unk_token=settings["unk_token"],
                                           continuing_subword_prefix=settings["continuing_subword_prefix"],
                                           max_input_chars_per_word=settings["max_input_chars_per_word"]))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=settings["clean_text"], handle_chinese_chars=settings["handle_chinese_chars"],
        strip_accents=settings["strip_accents"], lowercase=settings["lowercase"])
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = settings["cls_token"], settings["sep_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1", special_tokens=[(cls, ids[cls]), (sep, ids[sep])])
    missing = [token for token in settings["special_tokens"] if token not in ids]
    if missing:
        raise ValueError(f"the vocabulary lacks the special token {missing[0]!r}")
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in settings["special_tokens"]])
    return tokenizer
