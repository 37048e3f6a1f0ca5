"""Built-in pretraining text from pinned Debian packages, stripped of markup, as documents.

Each source as name (package): what its documents are.

- dictionary (dict-gcide 0.48.5+nmu2): the 1913 Webster (GCIDE): definitions and literary quotations, one entry per document
- wordnet (wordnet-base 3.0-37): WordNet glosses and example sentences, 8 synsets per document
- books (sisu-markup-samples 7.1.3-1, non-free): 21 books (Carroll, Swift, Doctorow, Stross, Lessig, Benkler, ...), one
  chapter per document
- python-docs (python3.11-doc 3.11.2-6+deb12u8): the Python documentation's reStructuredText, code and directives dropped,
  one page per document
- rfc (doc-rfc-* 20230121-1, 8 packages, non-free): the RFCs as plain text: page furniture, contents, tables, figures and
  code dropped, one RFC per document
- manuals (11 HTML manuals: PostgreSQL, Django, scikit-learn, SciPy, statsmodels, pandas, LilyPond, Racket, GCC, glibc,
  GDB; 3 non-free): the paragraphs and list items of each page (code, tables, navigation, signatures dropped), one page
  per document
- linux-docs (linux-doc-6.1): the kernel's documentation as reStructuredText (translations dropped), one page per document

``manuals`` and ``linux-docs`` also drop every paragraph they have already yielded (exact repeats:
navigation lines, licence footers, a section on both a split and a one-page edition).

Markup stripping is deliberately simple and line-based: what it leaves is English prose; what it
drops (pronunciations, citations, code blocks, directives) carries no language a model should learn.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser

from eelbert_cli.core.data.debian import PinnedDeb, deb_members

DEBIAN_SOURCES = {
    "dictionary": PinnedDeb("main/d/dict-gcide/dict-gcide_0.48.5+nmu2_all.deb",
                            "7b0af5cfde3cbdef5e9d6e78f92ec335ced7c2790f37a40f49bebc6f7347ac0f"),
    "wordnet": PinnedDeb("main/w/wordnet/wordnet-base_3.0-37_all.deb", "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752"),
    "books": PinnedDeb("non-free/s/sisu-markup-samples/sisu-markup-samples_7.1.3-1_all.deb",
                       "514fa1fdeb0f1a281ea3c3dd7ce90487dc7ff1f42cca360b1fd0360b420263b3"),
    "python-docs": PinnedDeb("main/p/python3.11/python3.11-doc_3.11.2-6+deb12u8_all.deb",
                             "50eb63e7f636c4281e9ce1b8f10386f1def42159eddce34fc1f41c46261df71b"),
}
RFC_PACKAGES = {  # doc-rfc-<part> 20230121-1: sha256 of its .deb
    "std-proposed": "b34f60b4bee98891524a2c2508f3d4dcb1e1468a2bd26e0a5f5aecf95806eea0",
    "informational": "143e78778eda9f187548b74028e98acf64ed42e2ea075af0774ca3bbcb0c6d01",
    "old-std": "13aa366cbed958a3decc3a89e32c058746764906e1045b5cd00425b1be0ffc8a",
    "others": "2b36a22145dd3fcb380079706d1a39afa7714499018d0a607a32325ead292500",
    "experimental": "bff38cd2d63f0f85ed7eaf954845f34bbaba56dfe3111c9e3e07624296889817",
    "misc": "395ce1db9ecbd281e162984aa6416487702cfa79f5e9d508522db55645ab20dc",
    "std": "b9bfead1a230da198ab96ce70cc9fbb64dc600d914c1504eeb4c19e29f95734b",
    "fyi-bcp": "d1db7332103b14ac2ce4e9e09188e38b3ade332bcc791990c7eb8064333a2b9e",
}
_SPACES = re.compile(r"\s+")


def _prose(lines: list[str]) -> str:
    return _SPACES.sub(" ", " ".join(lines)).strip()


_PROSE_CHARACTERS = re.compile(r"[A-Za-z ,.;:'()]")


def is_running_text(paragraph: str) -> bool:
    """At least 6 words and 75% letters and punctuation: prose, not a table row, figure or listing."""
    if "...." in paragraph or len(paragraph.split()) < 6:
        return False
    return len(_PROSE_CHARACTERS.findall(paragraph)) >= 0.75 * len(paragraph)


class RepeatFilter:
    """Remembers paragraphs (8-byte digests) so a source yields each one once."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def fresh(self, paragraphs: Iterable[str]) -> list[str]:
        kept = []
        for paragraph in paragraphs:
            digest = hashlib.blake2b(paragraph.encode("utf-8"), digest_size=8).digest()
            if digest not in self._seen:
                self._seen.add(digest)
                kept.append(paragraph)
        return kept


# ----------------------------------------------------------------------------------- GCIDE
_CITATION = re.compile(r"^\s*\[[^\]]*\]\s*$")  # [1913 Webster], [PJC], [WordNet 1.5]
_PRONUNCIATION = re.compile(r"\\[^\\\n]*\\")  # \A*buse"\
_ATTRIBUTION = re.compile(r"\s--\s?[A-Z][^\n]*$")  # --Froude.
_CODED_PRONUNCIATION = re.compile(r"\s?\([^()]*\[[a-z=`^]+\][^()]*\)")  # (h[a^]l`[i^]*s[imac]"t[=e]z)


def gcide_entries(text: str) -> Iterator[str]:
    """Entries start at a line with no indentation; the database's own header entries are skipped."""
    entry: list[str] = []
    for line in text.splitlines():
        if line and not line[0].isspace() and entry:
            if cleaned := _gcide_clean(entry):
                yield cleaned
            entry = []
        if not _CITATION.match(line):
            entry.append(_ATTRIBUTION.sub("", line))
    if entry and (cleaned := _gcide_clean(entry)):
        yield cleaned


def _gcide_clean(lines: list[str]) -> str:
    text = _prose(lines)
    if text.startswith("00-database") or text.startswith("00database"):
        return ""
    text = _CODED_PRONUNCIATION.sub("", _PRONUNCIATION.sub("", text))
    return _prose([text.replace("{", "").replace("}", "")]).replace(" ,", ",")


def gcide_documents() -> Iterator[str]:
    for _, data in deb_members(DEBIAN_SOURCES["dictionary"], "usr/share/dictd/", "gcide.dict.dz"):
        yield from gcide_entries(gzip.decompress(data).decode("utf-8", errors="replace"))


# ----------------------------------------------------------------------------------- WordNet
def wordnet_glosses(text: str) -> Iterator[str]:
    """The gloss after `` | `` on each synset line (licence lines start with spaces)."""
    for line in text.splitlines():
        if line[:1].isdigit() and " | " in line:
            yield line.split(" | ", 1)[1].strip()


def wordnet_documents(per_document: int = 8) -> Iterator[str]:
    for _, data in deb_members(DEBIAN_SOURCES["wordnet"], "usr/share/wordnet/data."):
        glosses = list(wordnet_glosses(data.decode("utf-8", errors="replace")))
        for start in range(0, len(glosses), per_document):
            yield " ".join(f"{gloss}." if not gloss.endswith((".", '"')) else gloss for gloss in glosses[start : start + per_document])


# ----------------------------------------------------------------------------------- SiSU books
_SISU_HEADING = re.compile(r"^([1-6:][A-C]?~)(\S*)\s*(.*)$")
_SISU_INLINE = re.compile(r"([*/!_^,#+\-])\{(.*?)\}\1")  # *{bold}* /{italic}/ ...
_SISU_LINK = re.compile(r"\{\s*([^{}]*?)\s*\}(?:https?://\S+|\S+\.\w+)")
_SISU_FOOTNOTE = re.compile(r"~\{.*?\}~|~\[.*?\]~")
_SISU_TAGS = re.compile(r"<:?[a-z]+[^>]*>|<br>")


def sisu_chapters(text: str) -> Iterator[str]:
    """Chapters (level-1 headings) of one SiSU book: header, comments, code and markup dropped."""
    chapter: list[str] = []
    in_header, in_code = True, False
    for line in text.splitlines():
        if line.startswith("%"):
            continue
        heading = _SISU_HEADING.match(line)
        if in_header:
            if not heading:
                continue
            in_header = False
        if line.startswith("code{"):
            in_code = True
        if in_code:
            in_code = not line.startswith("}code")
            continue
        if line.strip() in ("group{", "}group", "poem{", "}poem", "block{", "}block", "quote{", "}quote", "table{", "}table"):
            continue
        if heading:
            if heading[1].startswith("1") and chapter and (done := _prose(chapter)):
                yield done
                chapter = []
            line = heading[3]
        line = _SISU_FOOTNOTE.sub("", line)
        line = _SISU_INLINE.sub(r"\2", line)
        line = _SISU_LINK.sub(r"\1", line)
        chapter.append(_SISU_TAGS.sub(" ", line))
    if chapter and (done := _prose(chapter)):
        yield done


def sisu_documents() -> Iterator[str]:
    for _, data in deb_members(DEBIAN_SOURCES["books"], "usr/share/doc/sisu-markup-samples/samples/current/en/", ".sst"):
        yield from sisu_chapters(data.decode("utf-8", errors="replace"))


# ----------------------------------------------------------------------------------- reStructuredText
_RST_ROLE = re.compile(r":[\w:.-]+:`([^`<]*?)(?:\s*<[^>]*>)?`")  # :func:`len` -> len
_RST_LITERAL = re.compile(r"``([^`]*)``|`([^`<]*?)(?:\s*<[^>]*>)?`_{0,2}")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+.:_])\1{2,}\s*$")


def rst_prose(text: str) -> str:
    """The prose paragraphs of one page: directives, literal blocks, tables and underlines dropped."""
    kept: list[str] = []
    skip_indent: int | None = None
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if not stripped or indent > skip_indent:
                continue
            skip_indent = None
        if stripped.startswith(".. ") or stripped.startswith(">>>") or stripped.startswith(("+-", "|", "=====")):
            skip_indent = indent
            continue
        if _RST_UNDERLINE.match(stripped):
            continue
        if stripped.endswith("::"):
            skip_indent = indent
            stripped = stripped[:-1] if not stripped.endswith(" ::") else stripped[:-3]
        kept.append(stripped)
    text = _RST_ROLE.sub(r"\1", _prose(kept))  # roles may wrap across lines: inline markup is stripped after joining
    return _RST_LITERAL.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text).replace("**", "")


def python_docs_documents() -> Iterator[str]:
    for _, data in deb_members(DEBIAN_SOURCES["python-docs"], "usr/share/doc/python3.11/html/_sources/", ".rst.txt"):
        if page := rst_prose(data.decode("utf-8", errors="replace")):
            yield page


# ----------------------------------------------------------------------------------- RFCs
_RFC_FURNITURE = re.compile(r"\[Page \d+\]\s*$|^RFC \d+ .*\d{4}\s*$|^\f")


def rfc_prose(text: str) -> str:
    """Paragraphs of running text: page headers/footers, contents lines, figures, tables and code
    (paragraphs under 75% letters and punctuation, or under 6 words) dropped; lines reflowed."""
    paragraphs, current = [], []
    for line in text.replace("\f", "\n").splitlines():
        if _RFC_FURNITURE.search(line):
            continue
        if line.strip():
            current.append(line.strip())
            continue
        if current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return "\n".join(paragraph for lines in paragraphs if is_running_text(paragraph := _prose(lines)))


def rfc_documents() -> Iterator[str]:
    seen: set[str] = set()
    for part, sha256 in RFC_PACKAGES.items():
        package = PinnedDeb(f"non-free/d/doc-rfc/doc-rfc-{part}_20230121-1_all.deb", sha256)
        for path, data in deb_members(package, "usr/share/doc/RFC/", ".txt.gz"):
            name = path.rsplit("/", 1)[-1]
            if name in seen:  # an RFC filed under two categories counts once
                continue
            seen.add(name)
            if prose := rfc_prose(gzip.decompress(data).decode("utf-8", errors="replace")):
                yield prose


# ----------------------------------------------------------------------------------- HTML manuals
MANUAL_PACKAGES = {  # name: (pool path, sha256, HTML directory inside the package)
    "postgresql": ("main/p/postgresql-15/postgresql-doc-15_15.18-0+deb12u1_all.deb",
                   "3c598277a463c44d672daa2c335deb8d8252e1852fb025fd4578ea2d9a1b90f0", "usr/share/doc/postgresql-doc-15/html/"),
    "django": ("main/p/python-django/python-django-doc_3.2.25-0+deb12u3_all.deb",
               "33319c8e45b95693603213442ccf9bcee933ef338488115203ad25a0e01c696f", "usr/share/doc/python-django-doc/html/"),
    "scikit-learn": ("main/s/scikit-learn/python-sklearn-doc_1.2.1+dfsg-1_all.deb",
                     "4e244556326064e87e7563e3e544c2288d44b5719db2d7b3a85c9a84ae93488d", "usr/share/doc/python-sklearn-doc/html/"),
    "scipy": ("main/s/scipy/python-scipy-doc_1.10.1-2_all.deb",
              "a237fdcef1675622f1a5d8a291c64feba140615130ee625554f94772d4ea3ad7", "usr/share/doc/python-scipy-doc/html/"),
    "statsmodels": ("main/s/statsmodels/python-statsmodels-doc_0.13.5+dfsg-7_all.deb",
                    "4167a3e13347343b9f0a6677fc804ecad80dd735d17bc051829610f6f1bc2afb", "usr/share/doc/python-statsmodels-doc/html/"),
    "pandas": ("main/p/pandas/python-pandas-doc_1.5.3+dfsg-2_all.deb",
               "4998405ff6b12432f46594963e95554ade1104705795428396345fca58d853f8", "usr/share/doc/python-pandas-doc/html/"),
    "lilypond": ("main/l/lilypond/lilypond-doc-html_2.24.1-2_all.deb",
                 "be9fb743e58bd5ad4710146fe05e7c5f447fe4559e42c6acef1916d53e4bec60", "usr/share/doc/lilypond/html/"),
    "racket": ("main/r/racket/racket-doc_8.7+dfsg1-1_all.deb",
               "d50139b4bf806cd280bd18146ca2e7579cede5da23cc7f5c663044596af4e00f", "usr/share/doc/racket/"),
    "gcc": ("non-free/g/gcc-12-doc/gcc-12-doc_12.2.0-1_all.deb",
            "64b9ec2cbe7224b8accb62e9090d339dbfd26ba5324493b3b4cdbff05d492787", "usr/share/doc/gcc-12-doc/"),
    "glibc": ("non-free/g/glibc-doc-reference/glibc-doc-reference_2.36-1_all.deb",
              "0096a2cf6e83736ab0b84132b60d0e2b3dcf39088ca4d0671d83592606f858fd", "usr/share/doc/glibc-doc-reference/html/"),
    "gdb": ("non-free/g/gdb-doc/gdb-doc_13.1-1_all.deb",
            "f04bb1f2b05ca553826fada6f3cc8600759761350502ea7a861f5ed8218d6480", "usr/share/doc/gdb-doc/html/"),
}
_SKIPPED_PAGES = re.compile(r"-big-page\.html$|_toc\.html$|/genindex|/search\.html$|/py-modindex|/_modules/")


class _ParagraphParser(HTMLParser):
    """Text of ``<p>``, ``<li>`` and ``<dd>`` blocks (inline code kept: it is part of the sentence);
    code listings, tables, navigation, headers, footers, scripts, styles and definition terms (API
    signatures) are dropped."""

    SKIP = frozenset({"script", "style", "pre", "table", "nav", "header", "footer", "head", "dt", "svg", "math", "form", "button"})
    BLOCKS = frozenset({"p", "li", "dd", "div", "blockquote", "ul", "ol", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "section"})
    PROSE = frozenset({"p", "li", "dd"})
    VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "base", "source"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._text: list[str] = []
        self._skip = 0
        self._prose = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.VOID:
            if tag == "br":
                self._flush()
            return
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCKS:
            self._flush()
            self._prose += tag in self.PROSE

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self._flush()
            if tag in self.PROSE:
                self._prose = max(0, self._prose - 1)

    def handle_data(self, data: str) -> None:
        if self._prose and not self._skip:
            self._text.append(data)

    def _flush(self) -> None:
        if self._text:
            self.paragraphs.append(_prose(self._text))
            self._text = []


def html_paragraphs(html: str) -> list[str]:
    """The running-text paragraphs of one HTML page, in order."""
    parser = _ParagraphParser()
    parser.feed(html)
    parser.close()
    parser._flush()
    return [paragraph for paragraph in parser.paragraphs if is_running_text(paragraph)]


MIN_PAGE_WORDS = 50  # shorter pages are redirects ("The node you are looking for is at ...") and stubs


def manual_documents() -> Iterator[str]:
    for pool_path, sha256, directory in MANUAL_PACKAGES.values():
        repeats = RepeatFilter()
        for path, data in deb_members(PinnedDeb(pool_path, sha256), directory, ".html"):
            if _SKIPPED_PAGES.search(path):
                continue
            paragraphs = html_paragraphs(data.decode("utf-8", errors="replace"))
            if sum(len(paragraph.split()) for paragraph in paragraphs) >= MIN_PAGE_WORDS and (page := repeats.fresh(paragraphs)):
                yield "\n".join(page)


LINUX_DOC = PinnedDeb("main/l/linux/linux-doc-6.1_6.1.176-1_all.deb", "0d843674607703b9ef8c1db5e715c38ed52ff23574feabfe0d961d552126859f")


def linux_doc_documents() -> Iterator[str]:
    repeats = RepeatFilter()
    for path, data in deb_members(LINUX_DOC, "usr/share/doc/linux-doc-6.1/html/_sources/", ".rst.txt"):
        if "/translations/" in path:
            continue
        page = rst_prose(data.decode("utf-8", errors="replace")).replace("|copy|", "(c)")
        if len(page.split()) >= MIN_PAGE_WORDS and repeats.fresh([page]):
            yield page


DEBIAN_DOCUMENTS = {
    "dictionary": gcide_documents,
    "wordnet": wordnet_documents,
    "books": sisu_documents,
    "python-docs": python_docs_documents,
    "rfc": rfc_documents,
    "manuals": manual_documents,
    "linux-docs": linux_doc_documents,
}
