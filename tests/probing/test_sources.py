import zipfile

import numpy as np
import pytest

from hf_geokd.probing.concepts import grouped_concept
from hf_geokd.probing.sources import (
    Snippet,
    comment_blocks,
    french_family,
    hpo_definitions,
    parse_po,
    question_family,
)
from hf_geokd.probing.split import group_split, resampled_interval

PO = '''msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"

#: admin.py:10
msgid "Are you sure you want to delete this object?"
msgstr "Voulez-vous vraiment supprimer cet objet ?"

#, fuzzy
msgid "This translation is not reviewed yet."
msgstr "Cette traduction n’est pas encore relue."

msgid ""
"The password is too similar "
"to the username."
msgstr ""
"Le mot de passe est trop semblable "
"au nom d’utilisateur."

msgid "One item was selected for deletion."
msgid_plural "%(count)s items were selected."
msgstr[0] "Un élément a été choisi pour suppression."
msgstr[1] "%(count)s éléments ont été choisis."
'''


def wheel(tmp_path, members: dict[str, str]):
    path = tmp_path / "fixture-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def test_po_entries_are_read_without_header_or_fuzzy_and_with_continuations():
    pairs = parse_po(PO)
    assert pairs == [
        ("Are you sure you want to delete this object?", "Voulez-vous vraiment supprimer cet objet ?"),
        ("The password is too similar to the username.", "Le mot de passe est trop semblable au nom d’utilisateur."),
        ("One item was selected for deletion.", "Un élément a été choisi pour suppression."),
    ]


def test_french_family_reads_fr_po_files_and_names_one_document_per_entry(tmp_path):
    path = wheel(tmp_path, {"pkg/locale/fr/LC_MESSAGES/django.po": PO, "pkg/locale/de/LC_MESSAGES/django.po": PO})
    french, english = french_family([path])
    assert len(french) == len(english) == 3  # the German file is not read
    assert [s.document for s in french] == [s.document for s in english]
    assert len({s.document for s in french}) == 3
    assert french[0].text.startswith("Voulez-vous") and english[0].text.startswith("Are you sure")


def test_question_family_splits_comment_sentences_by_their_end(tmp_path):
    source = ("# Is this the right place? It is the only place there is.\n# We keep this one right here.\n"
              "x = 1  # not a comment line\n")
    sentences = "Is this the right place? It is the only place there is. We keep this one right here."
    assert comment_blocks(source) == [sentences]
    questions, statements = question_family([wheel(tmp_path, {"pkg/a.py": source})])
    assert [s.text for s in questions] == ["Is this the right place"]  # the final mark would give the label away
    assert [s.text for s in statements] == ["It is the only place there is", "We keep this one right here"]
    assert {s.document for s in questions + statements} == {"fixture-1.0-py3-none-any.whl:pkg/a.py"}


def test_hpo_definitions_are_one_document_per_term():
    obo = ('format-version: 1.2\n\n[Term]\nid: HP:0000001\nname: All\n\n[Term]\nid: HP:0000002\n'
           'def: "Deviation from the norm of the height of a person." [x]\n')
    assert hpo_definitions(obo) == [Snippet("HP:0000002", "Deviation from the norm of the height of a person.")]


def test_grouped_concept_deduplicates_balances_and_refuses_too_few():
    positives = [Snippet(f"p{i}", f"positive text number {i}") for i in range(40)] + [Snippet("px", "shared text here")]
    negatives = [Snippet(f"n{i}", f"negative text number {i}") for i in range(30)]
    negatives += [Snippet("dup", "negative text number 3"), Snippet("nx", "shared  text here")]
    concept = grouped_concept(positives, negatives, per_class=30)
    assert sum(concept.labels) == 30 and len(concept.texts) == 60
    assert len(set(concept.texts)) == 60 and "shared text here" not in concept.texts
    assert all(doc.startswith("p" if label else "n") for doc, label in zip(concept.groups, concept.labels))
    with pytest.raises(ValueError, match="lower per_class"):
        grouped_concept(positives, negatives, per_class=31)


def test_group_split_keeps_documents_apart_and_both_classes_on_each_side():
    rng = np.random.default_rng(0)
    groups = [f"doc{rng.integers(60)}" for _ in range(500)]
    labels = [int(g[3:]) % 2 if i % 7 else 1 - int(g[3:]) % 2 for i, g in enumerate(groups)]  # some mixed docs
    for seed in range(5):
        train, test = group_split(groups, labels, 0.2, seed)
        assert sorted(np.concatenate([train, test])) == list(range(500))
        assert not {groups[i] for i in train} & {groups[i] for i in test}
        assert {labels[i] for i in test} == {0, 1} and 0.1 < test.size / 500 < 0.3
    assert not np.array_equal(group_split(groups, labels, 0.2, 0)[1], group_split(groups, labels, 0.2, 1)[1])
    with pytest.raises(ValueError, match="lacks a class"):
        group_split(["a", "a", "b", "b"], [1, 1, 0, 0], 0.2, 0)
    with pytest.raises(ValueError, match="test_fraction"):
        group_split(groups, labels, 1.5, 0)


def test_resampled_interval_widens_with_the_test_share():
    scores = [0.8, 0.82, 0.78, 0.81, 0.79]
    low, high = resampled_interval(scores, 0.2)
    assert low < 0.8 < high
    assert resampled_interval(scores, 0.5)[0] < low  # n_test / n_train larger: wider
    assert np.isnan(resampled_interval([0.8], 0.2)[0])
    assert resampled_interval([0.95, 1.0, 0.9], 0.2, bounds=(0.0, 1.0))[1] == 1.0
