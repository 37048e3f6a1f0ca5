"""MediaWiki XML dumps -> plain prose: streamed page by page, markup stripped without a parser."""

from __future__ import annotations

import bz2
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from eelbert_cli.core.errors import EelbertError


def mediawiki_documents(path: Path) -> Iterator[str]:
    """Plain prose of every article (namespace 0, no redirects) of a ``.xml.bz2`` dump."""
    with bz2.open(path, "rb") as binary:
        yield from mediawiki_documents_from(binary, path)


def mediawiki_documents_from(binary: IO[bytes], path: Path) -> Iterator[str]:
    """Streams pages with iterparse and frees each one, so dump size does not matter."""
    try:
        for _, element in ElementTree.iterparse(binary, events=("end",)):
            if _local_name(element.tag) != "page":
                continue
            fields = {_local_name(child.tag): child for child in element.iter()}
            text = fields["text"].text if "text" in fields else None
            if fields.get("ns") is not None and fields["ns"].text == "0" and "redirect" not in fields and text:
                yield strip_wikitext(text)
            element.clear()
    except ElementTree.ParseError as error:
        raise EelbertError(f"{path} is not a MediaWiki XML dump ({error})") from None


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


_COMMENT = re.compile(r"<!--.*?-->", re.S)
_REF = re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref\s*>", re.S | re.I)
_DROPPED_TAGS = re.compile(r"<(math|gallery|timeline|score|syntaxhighlight|source|imagemap|chem)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.S)
# Innermost links: no "[[" or "]]" inside, except a "]" right before the closing "]]" (a caption
# ending in a [bracket]).
_WIKILINK = re.compile(r"\[\[((?:[^\[\]]|\[(?!\[)|\](?!\])|\](?=\]\]))*)\]\]")
_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]+(?:\s+([^\]]*))?\]")
_HEADING = re.compile(r"^=+.*=+[ \t]*$", re.M)
_QUOTES = re.compile(r"'{2,}")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_LIST_MARKER = re.compile(r"^[*#:;]+[ \t]*", re.M)
_DROPPED_LINK_NAMESPACES = ("file:", "image:", "media:", "category:")
_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z]+)*:")


def strip_wikitext(text: str) -> str:
    """Wikitext -> plain prose: drops comments, refs, templates, tables, files, categories and
    headings; keeps link text; removes bold/italic quotes and HTML tags; unescapes entities."""
    for pattern in (_COMMENT, _REF, _DROPPED_TAGS):
        text = pattern.sub("", text)
    text = _remove_nested(_TEMPLATE, text)
    text = _remove_nested(_TABLE, text)
    text = _EXTERNAL_LINK.sub(lambda match: match.group(1) or "", text)
    text = _replace_nested(_WIKILINK, _link_text, text)
    for pattern in (_HEADING, _QUOTES, _TAG, _MAGIC_WORD, _LIST_MARKER):
        text = pattern.sub("", text)
    return _tidy(html.unescape(text))


def _remove_nested(pattern: re.Pattern[str], text: str) -> str:
    return _replace_nested(pattern, lambda match: "", text)


def _replace_nested(pattern: re.Pattern[str], replace: Any, text: str) -> str:
    """Innermost first, until nothing matches: handles nesting without a parser."""
    while True:
        text, count = pattern.subn(replace, text)
        if not count:
            return text


def _link_text(match: re.Match[str]) -> str:
    target, *labels = match.group(1).split("|")
    lowered = target.strip().lower()
    if lowered.startswith(_DROPPED_LINK_NAMESPACES) or (not labels and _INTERLANGUAGE.match(lowered)):
        return ""
    label = labels[-1] if labels and labels[-1].strip() else target.lstrip(":")
    return label.strip()


def _tidy(text: str) -> str:
    """Collapse the whitespace and stray punctuation spaces that removals leave behind."""
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" +([,.;:!?)])", r"\1", text)
    text = re.sub(r"\( *[,;]? *\)", "", text)
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
