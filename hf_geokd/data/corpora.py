"""The embedded corpora: text that ships inside wheels of the package index, so that everything runs offline once
the wheel is downloaded (no Hub, no dataset download). The wheels are read with zipfile and never installed.

- ``wiki``: the Wikipedia sample inside the ``gensim`` wheel.
  ``gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2`` holds about 100
  shortened articles of the 2016 English Wikipedia dump (CC BY-SA 3.0), read with bz2 and stripped of wiki markup.
- ``code``: Python source code, the ``.py`` files of the ``sympy`` wheel (BSD 3-clause licence) in path order, one
  document per file, up to about as much text as the Wikipedia sample: a corpus of a different kind (code, not
  prose) for the teacher zoo.
"""

from __future__ import annotations

import bz2
import html
import io
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path

WIKI_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
GENSIM_REQUIREMENT = "gensim==4.4.0"
SYMPY_REQUIREMENT = "sympy==1.13.3"
CODE_CHARS = 3_000_000  # about the size of the Wikipedia sample's plain text
CORPORA = {
    "wiki": "English Wikipedia sample (2016 dump, about 100 shortened articles), gensim 4.4.0 wheel, CC BY-SA 3.0",
    "code": "Python source code, the .py files of the sympy 1.13.3 wheel in path order (about 3 MB), BSD 3-clause",
}


def download_wheel(requirement: str, cache_dir: str | Path) -> Path:
    """The wheel of ``requirement`` (``name==version``) in ``cache_dir``, downloaded there (without dependencies) on
    first use. The download goes to a private folder first and is moved in whole, so that processes sharing the
    cache (pytest-xdist workers, two runs) never read a wheel half written."""
    cache_dir = Path(cache_dir)
    name, version = requirement.split("==")
    wheels = sorted(cache_dir.glob(f"{name}-{version}-*.whl"))
    if wheels:
        return wheels[-1]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as private:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", requirement,
                   "-d", private]
        result = subprocess.run(command, capture_output=True, text=True)
        for wheel in Path(private).glob(f"{name}-{version}-*.whl"):
            os.replace(wheel, cache_dir / wheel.name)
    wheels = sorted(cache_dir.glob(f"{name}-{version}-*.whl"))
    if result.returncode != 0 or not wheels:
        raise FileNotFoundError(
            f"could not download the {name} wheel that carries an embedded corpus ({result.stderr.strip()[-300:]}). "
            f"Run `pip download --no-deps {requirement} -d {cache_dir}` where a package index is reachable."
        )
    return wheels[-1]


def gensim_wheel(cache_dir: str | Path) -> Path:
    """The gensim wheel (the Wikipedia sample's carrier) in ``cache_dir``, downloaded on first use."""
    return download_wheel(GENSIM_REQUIREMENT, cache_dir)


_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|.*?\|\}", re.S)
_REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.S)
_TAG = re.compile(r"<[^>]+>")
_FILE_LINK = re.compile(r"\[\[(?:File|Image|Category):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", re.I)
_LINK = re.compile(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]")
_EXTERNAL = re.compile(r"\[https?://\S+\s*([^\]]*)\]")
_HEADING = re.compile(r"^=+\s*(.*?)\s*=+\s*$", re.M)


def clean_wikitext(text: str) -> str:
    """Plain prose from wiki markup: templates, tables, references, files, tags and link syntax removed."""
    text = html.unescape(text)
    for _ in range(5):  # nested templates
        text, count = _TEMPLATE.subn("", text)
        if not count:
            break
    text = _TABLE.sub("", text)
    text = _REF.sub("", text)
    text = _FILE_LINK.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _EXTERNAL.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = _HEADING.sub(r"\1.", text)
    text = text.replace("'''", "").replace("''", "")
    lines = [line.strip() for line in text.splitlines()]
    lines = [line.lstrip("*#:; ") for line in lines if line and not line.startswith(("|", "!", "{", "}"))]
    return "\n".join(line for line in lines if len(line) > 1)


def wiki_articles(wheel: str | Path, min_chars: int = 200) -> list[str]:
    """The cleaned articles (redirects and stubs under ``min_chars`` dropped), in dump order."""
    with zipfile.ZipFile(wheel) as archive:
        xml = bz2.decompress(archive.read(WIKI_MEMBER))
    articles = []
    for _, element in ElementTree.iterparse(io.BytesIO(xml)):
        if element.tag.endswith("}text") and element.text and not element.text.lstrip().upper().startswith("#REDIRECT"):
            text = clean_wikitext(element.text)
            if len(text) >= min_chars:
                articles.append(text)
        if element.tag.endswith("}page"):
            element.clear()
    if not articles:
        raise ValueError(f"{wheel} yielded no article: is it the gensim wheel with {WIKI_MEMBER}?")
    return articles


def python_sources(wheel: str | Path, max_chars: int = CODE_CHARS) -> list[str]:
    """The ``.py`` files of a wheel in path order (empty ones skipped), one document each, until ``max_chars``."""
    documents, total = [], 0
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            if not name.endswith(".py"):
                continue
            text = archive.read(name).decode("utf-8", errors="replace").strip()
            if not text:
                continue
            documents.append(text)
            total += len(text)
            if total >= max_chars:
                break
    if not documents:
        raise ValueError(f"{wheel} holds no Python source file.")
    return documents


def corpus_documents(name: str, cache_dir: str | Path) -> list[str]:
    """The documents of an embedded corpus (:data:`CORPORA`: ``wiki`` or ``code``), in a fixed order."""
    if name == "wiki":
        return wiki_articles(gensim_wheel(cache_dir))
    if name == "code":
        return python_sources(download_wheel(SYMPY_REQUIREMENT, cache_dir))
    raise ValueError(f"unknown corpus {name!r}: choose one of {sorted(CORPORA)}.")
