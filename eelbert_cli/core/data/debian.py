"""Real text out of pinned Debian packages, fetched from the Debian archive (a package registry, so it
works where model hubs do not) and read without dpkg: a .deb is an ``ar`` archive whose
``data.tar.*`` holds the files. Each package is pinned by version and sha256; the text is never
committed (several licences forbid redistribution) and is read at run time from the user cache.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from eelbert_cli.core.console import log
from eelbert_cli.core.data.resources import cache_dir, sha256_of
from eelbert_cli.core.errors import EelbertError

DEFAULT_ARCHIVE = "https://deb.debian.org/debian"  # $EELBERT_DEBIAN_MIRROR: another mirror (any URL urllib opens, file:// too)


@dataclass(frozen=True)
class PinnedDeb:
    pool_path: str  # e.g. main/d/dict-gcide/dict-gcide_0.48.5+nmu2_all.deb
    sha256: str

    @property
    def file_name(self) -> str:
        return self.pool_path.rsplit("/", 1)[-1]


def fetch_deb(package: PinnedDeb) -> Path:
    """The pinned .deb in the cache, downloaded once and checked against its sha256."""
    target = cache_dir() / "debs" / package.file_name
    if target.is_file() and sha256_of(target) == package.sha256:
        return target
    mirror = os.environ.get("EELBERT_DEBIAN_MIRROR", DEFAULT_ARCHIVE).rstrip("/")
    if urllib.parse.urlsplit(mirror).scheme not in ("http", "https", "ftp", "file"):
        raise EelbertError(f"EELBERT_DEBIAN_MIRROR={mirror!r} is not a URL: give its scheme, e.g. https://deb.debian.org/debian "
                           "or file:///srv/debian")
    target.parent.mkdir(parents=True, exist_ok=True)
    url = f"{mirror}/pool/{package.pool_path}"
    log.info("fetching %s from the Debian archive into %s (once)", package.file_name, target.parent)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                while block := response.read(1 << 20):
                    partial.write(block)
        except (urllib.error.URLError, OSError, ValueError) as error:  # ValueError: a URL urllib cannot open
            partial.close()
            os.unlink(partial.name)
            raise EelbertError(f"could not download {url} ({error}); put the file at {target} yourself, "
                               "or point pretrain.corpus at local files") from None
    if sha256_of(Path(partial.name)) != package.sha256:
        os.unlink(partial.name)
        raise EelbertError(f"{url} does not match its pinned sha256 (the archive may have replaced it); nothing was kept")
    os.replace(partial.name, target)
    return target


class _Member(io.RawIOBase):
    """A bounded view of one ar member, so a large data.tar.xz streams instead of sitting in memory."""

    def __init__(self, handle, size: int) -> None:
        self.handle, self.left = handle, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.handle.read(min(len(buffer), self.left))
        self.left -= len(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)


def deb_members(package: PinnedDeb, prefix: str, suffix: str = "") -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every regular file under ``prefix`` ending in ``suffix``, in archive order
    (links are skipped: they would count a file twice)."""
    deb = fetch_deb(package)
    with open(deb, "rb") as handle:
        if handle.read(8) != b"!<arch>\n":
            raise EelbertError(f"{deb} is not a Debian package (no ar header)")
        while header := handle.read(60):
            name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
            if not name.startswith("data.tar"):
                handle.seek(size + size % 2, os.SEEK_CUR)  # members are 2-byte aligned
                continue
            mode = {".xz": "r|xz", ".gz": "r|gz", ".bz2": "r|bz2", ".tar": "r|"}.get(Path(name).suffix)
            if mode is None:
                raise EelbertError(f"{deb}: {name} is compressed in a way this reader does not know")
            with tarfile.open(fileobj=io.BufferedReader(_Member(handle, size)), mode=mode) as archive:
                for member in archive:
                    path = member.name.removeprefix("./")
                    if member.isfile() and path.startswith(prefix) and path.endswith(suffix):
                        yield path, archive.extractfile(member).read()
            return
    raise EelbertError(f"{deb} has no data.tar member")
