"""The paper's six probing concepts (section 7) from real datasets, for full-scale runs.

The paper draws 2,000 positive and 2,000 negative examples per concept from The Pile without saying how. We use
labels that exist in the data wherever we can, and say where we use a rule instead:

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
from collections import defaultdict
from typing import Iterable, Mapping

from .probing import Concept, balanced

PILE = "monology/pile-uncopyrighted"
AG_NEWS = "fancyzhx/ag_news"
FRENCH_WORDS = frozenset("le la les des est et une un du dans que qui pour pas sur au avec ce sont nous".split())
ENGLISH_WORDS = frozenset("the and of to is in that for it with as was on are be this by".split())
PILE_SETS = {"contains_code": {"Github"}, "legal": {"FreeLaw"}, "medical": {"PubMed Abstracts", "PubMed Central"}}


def _share(words: list[str], vocabulary: frozenset[str]) -> float:
    return sum(word in vocabulary for word in words) / max(len(words), 1)


def _snippet(text: str, max_chars: int) -> str:
    return text[:max_chars].strip()


def pile_concepts(rows: Iterable[Mapping], per_class: int = 2000, max_chars: int = 1000,
                  max_documents: int = 500_000) -> dict[str, Concept]:
    """Five concepts from Pile rows (``{"text", "meta": {"pile_set_name"}}``), read once as a stream."""
    positives: dict[str, list[str]] = defaultdict(list)
    negatives: dict[str, list[str]] = defaultdict(list)
    sentence_end = re.compile(r"(?<=[.?])\s+")

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
        for sentence in sentence_end.split(text[: 4 * max_chars]):
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
