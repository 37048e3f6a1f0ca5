"""Built-in corpora from Debian packages: the .deb reader (pinned sha256, no dpkg) and the markup
strippers, on hand-written fixtures."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from eelbert_cli.core.data import debian_texts
from eelbert_cli.core.data.corpora import parse_corpus
from eelbert_cli.core.data.debian import PinnedDeb, deb_members
from eelbert_cli.core.data.debian_texts import (
    RepeatFilter,
    gcide_entries,
    html_paragraphs,
    rfc_prose,
    rst_prose,
    sisu_chapters,
    wordnet_glosses,
)
from eelbert_cli.core.errors import EelbertError


def make_deb(files: dict[str, bytes]) -> bytes:
    """A real .deb layout: an ar archive of debian-binary, control.tar.xz and data.tar.xz."""
    def tar_xz(entries: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:xz") as archive:
            for name, data in entries.items():
                info = tarfile.TarInfo(f"./{name}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo("./usr/share/doc/x/link.txt")
            link.type, link.linkname = tarfile.SYMTYPE, "a.txt"
            archive.addfile(link)
        return buffer.getvalue()

    out = io.BytesIO()
    out.write(b"!<arch>\n")
    members = (("debian-binary", b"2.0\n"), ("control.tar.xz", tar_xz({"control": b"Package: x\n"})), ("data.tar.xz", tar_xz(files)))
    for name, data in members:
        out.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode())
        out.write(data + (b"\n" if len(data) % 2 else b""))
    return out.getvalue()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EELBERT_DEBIAN_MIRROR", (tmp_path / "mirror").as_uri())
    deb = make_deb({"usr/share/doc/x/a.txt": b"alpha", "usr/share/doc/x/b.md": b"beta", "usr/share/other/c.txt": b"gamma"})
    (tmp_path / "mirror" / "pool" / "main" / "x").mkdir(parents=True)
    (tmp_path / "mirror" / "pool" / "main" / "x" / "x_1_all.deb").write_bytes(deb)
    return PinnedDeb("main/x/x_1_all.deb", hashlib.sha256(deb).hexdigest())


def test_deb_members_are_read_from_the_pinned_package_without_dpkg(mirror, tmp_path):
    assert list(deb_members(mirror, "usr/share/doc/x/", ".txt")) == [("usr/share/doc/x/a.txt", b"alpha")]  # the link is skipped
    assert (tmp_path / "cache" / "debs" / "x_1_all.deb").is_file()
    (tmp_path / "mirror" / "pool" / "main" / "x" / "x_1_all.deb").unlink()
    assert len(list(deb_members(mirror, "usr/"))) == 3  # from the cache now


def test_a_package_that_does_not_match_its_sha256_is_refused_and_not_kept(mirror, tmp_path):
    wrong = PinnedDeb(mirror.pool_path, "0" * 64)
    with pytest.raises(EelbertError, match="sha256"):
        list(deb_members(wrong, "usr/"))
    assert not list((tmp_path / "cache" / "debs").glob("*.deb"))
    with pytest.raises(EelbertError, match="could not download"):
        list(deb_members(PinnedDeb("main/y/missing.deb", "0" * 64), "usr/"))


def test_a_mirror_without_a_scheme_is_one_message_and_leaves_no_temp_file(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_DEBIAN_MIRROR", "deb.debian.org/debian")
    with pytest.raises(EelbertError, match="is not a URL: give its scheme"):
        list(deb_members(mirror, "usr/"))
    debs = tmp_path / "cache" / "debs"
    assert not debs.exists() or not list(debs.iterdir())


def test_gcide_entries_lose_pronunciations_citations_and_attributions():
    text = """00-database-info
     This is the GCIDE header.

Abuse \\A*buse"\\, v. t. [F. abuser.]
   1. To put to a wrong use; to {misapply}.
      [1913 Webster]

            The tellers of news abused the general.
                                                  --Macaulay.
      [1913 Webster]
Halysites (h[a^]l`[i^]*s[imac]"t[=e]z), n. A genus of fossil corals.
"""
    assert list(gcide_entries(text)) == [
        "Abuse, v. t. [F. abuser.] 1. To put to a wrong use; to misapply. The tellers of news abused the general.",
        "Halysites, n. A genus of fossil corals.",
    ]


def test_wordnet_glosses_skip_the_licence_header():
    text = "  1 This software and database is being provided\n00001740 03 n 01 entity 0 003 | that which is perceived to exist\n"
    assert list(wordnet_glosses(text)) == ["that which is perceived to exist"]


def test_sisu_chapters_drop_the_header_comments_code_and_markup():
    text = """% SiSU 4.0.0
@title: A Book
 :author: Someone

1~ CHAPTER I - The Start

It was *{very}* /{dark}/ and { a link }http://example.org today.~{ a footnote }~

code{
print("not prose")
}code

1~ CHAPTER II - The End

group{
The end.
}group
"""
    assert list(sisu_chapters(text)) == ["CHAPTER I - The Start It was very dark and a link today.", "CHAPTER II - The End The end."]


def test_rst_prose_keeps_paragraphs_and_drops_directives_code_and_roles():
    text = """zipfile --- Work with ZIP archives
==================================

.. module:: zipfile
   :synopsis: Read and write ZIP files.

The module provides tools to create, read and use :func:`open` with a
:ref:`wrapped role <target>` and ``literal`` text. Example::

    import zipfile
    zipfile.ZipFile("x.zip")

After the code.
"""
    assert rst_prose(text) == ("zipfile --- Work with ZIP archives The module provides tools to create, read and use open with a "
                               "wrapped role and literal text. Example: After the code.")


def test_rfc_prose_drops_page_furniture_contents_and_figures():
    text = """RFC 2151          Internet & TCP/IP Tools & Utilities          June 1997

   1. Introduction..................................................  3

   This memo is a primer on the Internet tools and utilities
   that users can run on their own machines.

        +--------+       +--------+
        | Client |<----->| Server |
        +--------+       +--------+

Kessler &  Shepard           Informational                      [Page 1]
\f
   The protocol runs over TCP and is described in section 4 below.
"""
    assert rfc_prose(text) == ("This memo is a primer on the Internet tools and utilities that users can run on their own machines.\n"
                               "The protocol runs over TCP and is described in section 4 below.")


def test_builtin_mixtures_name_their_parts_and_are_pinned():
    prose, everything = parse_corpus([{"kind": "builtin", "name": "prose"}, {"kind": "builtin", "name": "all"}])
    assert prose.parts == ("news", "wiki", "dictionary", "wordnet", "books")
    assert everything.parts == prose.parts + ("python-docs", "rfc", "manuals", "linux-docs")
    assert len(everything.fingerprint()["sha256"]) == 9 and all(everything.fingerprint()["sha256"])
    assert everything.fingerprint()["sha256"][7].count(",") == len(debian_texts.MANUAL_PACKAGES) - 1  # every manual's package pins it


SPHINX_PAGE = """<!DOCTYPE html><html><head><title>Fitting models</title><script>var x = "<p>not text</p>";</script>
<style>p { color: red }</style></head><body>
<nav><ul><li>Home page of the whole project documentation</li></ul></nav>
<h1>Fitting models</h1>
<p>Every estimator exposes a <code>fit</code> method that learns from the training data you give it.</p>
<pre>model.fit(X, y)  # a code listing is not prose at all, whatever its words</pre>
<dl><dt>fit(X, y, sample_weight=None)</dt><dd><p>Learn the parameters of the model from the data and its labels.</p></dd></dl>
<table><tr><td>a table cell with several words of text in it</td></tr></table>
<ul><li>Short item.</li><li>Lists of steps are kept when they read as sentences of prose.</li></ul>
<p>x = 1; y = [2, 3] + {4: 5} &lt;&gt; == != ** ## $$ %% ^^</p>
<footer><p>Copyright 2007 - 2023, the developers of this library and its manuals.</p></footer>
</body></html>"""


def test_html_paragraphs_keep_sentences_and_drop_code_tables_navigation_and_signatures():
    assert html_paragraphs(SPHINX_PAGE) == [
        "Every estimator exposes a fit method that learns from the training data you give it.",
        "Learn the parameters of the model from the data and its labels.",
        "Lists of steps are kept when they read as sentences of prose.",
    ]


def test_repeat_filter_yields_each_paragraph_once_per_source():
    repeats = RepeatFilter()
    assert repeats.fresh(["a b", "c d", "a b"]) == ["a b", "c d"]
    assert repeats.fresh(["c d", "e f"]) == ["e f"]


def test_manuals_skip_one_page_editions_and_stubs_and_drop_repeats(tmp_path, monkeypatch):
    sentence = "<p>This sentence about the manual has more than six words in it, number {}.</p>"
    pages = {
        "usr/share/doc/m/html/a.html": "".join(sentence.format(i) for i in range(10)).encode(),
        "usr/share/doc/m/html/b.html": "".join(sentence.format(i) for i in range(5, 15)).encode(),  # 5-9 repeat a.html
        "usr/share/doc/m/html/manual-big-page.html": "".join(sentence.format(i) for i in range(100, 110)).encode(),
        "usr/share/doc/m/html/moved.html": b"<p>The node you are looking for is at somewhere else entirely.</p>",
    }
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EELBERT_DEBIAN_MIRROR", (tmp_path / "mirror").as_uri())
    deb = make_deb(pages)
    (tmp_path / "mirror" / "pool" / "main" / "m").mkdir(parents=True)
    (tmp_path / "mirror" / "pool" / "main" / "m" / "m_1_all.deb").write_bytes(deb)
    package = ("main/m/m_1_all.deb", hashlib.sha256(deb).hexdigest(), "usr/share/doc/m/html/")
    monkeypatch.setattr(debian_texts, "MANUAL_PACKAGES", {"m": package})
    documents = list(debian_texts.manual_documents())
    assert len(documents) == 2 and documents[0].count("\n") == 9
    assert [line[-3:] for line in documents[1].splitlines()] == [f"{i}." for i in range(10, 15)]
