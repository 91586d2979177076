"""The embedded English text: the Wikipedia sample that ships inside the ``gensim`` wheel.

``gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2`` holds about 100
shortened articles of the 2016 English Wikipedia dump (CC BY-SA 3.0). It is read straight from the downloaded wheel
with zipfile + bz2 (gensim itself is never installed or imported) and the wiki markup is stripped.
"""

from __future__ import annotations

import bz2
import html
import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path

WIKI_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
GENSIM_REQUIREMENT = "gensim==4.4.0"


def gensim_wheel(cache_dir: str | Path) -> Path:
    """The gensim wheel in ``cache_dir``, downloaded there (without dependencies) on first use."""
    cache_dir = Path(cache_dir)
    wheels = sorted(cache_dir.glob("gensim-*.whl"))
    if wheels:
        return wheels[-1]
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", GENSIM_REQUIREMENT,
               "-d", str(cache_dir)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(cache_dir.glob("gensim-*.whl"))
    if result.returncode != 0 or not wheels:
        raise FileNotFoundError(
            f"could not download the gensim wheel that carries the embedded corpus ({result.stderr.strip()[-300:]}). "
            f"Run `pip download --no-deps {GENSIM_REQUIREMENT} -d {cache_dir}` where a package index is reachable."
        )
    return wheels[-1]


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
