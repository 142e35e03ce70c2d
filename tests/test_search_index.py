"""The in-memory name index finds people despite accents, word order, double surnames and typos."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contigo.search_index import (
    FuzzyNameIndex,
    char_masks,
    max_edits,
    osa_distance,
    phonetic_key,
    token_similarity,
)


def _reference_osa(a: str, b: str) -> int:
    """The textbook dynamic-programming optimal string alignment distance."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = int(a[i - 1] != b[j - 1])
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


@pytest.fixture
def index() -> FuzzyNameIndex:
    names = {
        "target": "María José Pérez-García",
        "longer": "Maria Jose Perez Garcia Lopez",
        "mario": "Mario Gómez",
        "jose": "José García",
        "ana": "Ana de la Cruz",
        "jimena": "Jimena Giménez Quispe",
    }
    idx = FuzzyNameIndex()
    for person_id, name in names.items():
        idx.add(person_id, name)
    return idx


def _ids(results: list[tuple[str, float]]) -> list[str]:
    return [person_id for person_id, _ in results]


@pytest.mark.parametrize(
    "query",
    ["maria perez", "perez garcia maria", "Mariá Peres", "garcia", "MARIA JOSE", "Garsia Peres"],
)
def test_finds_the_person_from_partial_reordered_or_misspelt_queries(
    index: FuzzyNameIndex, query: str
) -> None:
    assert "target" in _ids(index.search(query))


def test_exact_full_name_ranks_first(index: FuzzyNameIndex) -> None:
    results = index.search("Maria Jose Perez Garcia")
    assert results[0] == ("target", 1.0)
    assert _ids(results)[1] == "longer"
    assert all(a[1] >= b[1] for a, b in pairwise(results))


def test_unrelated_people_are_left_out(index: FuzzyNameIndex) -> None:
    assert "mario" not in _ids(index.search("maria perez"))
    assert index.search("Wilmer Contreras") == []
    assert index.search("   ") == []
    assert index.search("maria", limit=0) == []


def test_limit_keeps_the_best(index: FuzzyNameIndex) -> None:
    results = index.search("maria jose perez garcia", limit=2)
    assert _ids(results) == ["target", "longer"]


def test_prefix_and_sound_alike_queries(index: FuzzyNameIndex) -> None:
    assert "jimena" in _ids(index.search("Jimenez"))
    assert "jimena" in _ids(index.search("Kispe"))
    assert "ana" in _ids(index.search("cruz"))
    assert _ids(index.search("qui"))[0] == "jimena"


def test_add_replaces_and_remove_forgets(index: FuzzyNameIndex) -> None:
    index.add("mario", "Mario Villalobos")
    assert "mario" not in _ids(index.search("gomez"))
    assert "mario" in _ids(index.search("villalobos"))
    index.remove("mario")
    index.remove("never-added")
    assert index.search("villalobos") == []
    assert len(index) == 5
    index.add("new", "Mario Villalobos")
    assert _ids(index.search("villalobos")) == ["new"]
    assert _ids(index.search("maria jose perez garcia"))[:2] == ["target", "longer"]


def test_cache_forgets_matches_when_the_vocabulary_changes() -> None:
    idx = FuzzyNameIndex()
    idx.add("a", "Rosa Parra")
    assert idx.search("Yoselin") == []
    idx.add("b", "Yoselin Parra")
    assert _ids(idx.search("Yoselin")) == ["b"]
    idx.remove("b")
    assert idx.search("Yoselin") == []


def test_results_are_the_same_with_and_without_the_cache() -> None:
    rng = random.Random(7)
    words = ["maria", "jose", "perez", "garcia", "gimenez", "quispe", "rosa", "luis", "chavez"]
    cached, uncached = FuzzyNameIndex(), FuzzyNameIndex(match_cache_size=0)
    for i in range(300):
        name = " ".join(rng.sample(words, 3))
        cached.add(str(i), name)
        uncached.add(str(i), name)
    for query in ["maria perez", "jimenez", "perz garsia", "qui", "rosa luis chavez"] * 2:
        assert cached.search(query) == uncached.search(query)


def test_token_similarity_scale() -> None:
    assert token_similarity("perez", "perez") == 1.0
    assert token_similarity("peres", "perez") >= 0.8
    assert token_similarity("ana", "ama") == 0.0
    assert token_similarity("rosa", "rasa") == 0.75
    assert token_similarity("ana", "anna") == 0.9
    assert 0.6 < token_similarity("mar", "mariana") < token_similarity("mar", "maria") < 0.9
    assert token_similarity("gimenez", "jimenes") >= 0.9


def test_max_edits_grows_with_length() -> None:
    assert [max_edits(n) for n in (3, 4, 6, 7, 10, 11)] == [0, 1, 1, 2, 2, 3]


def test_phonetic_key_folds_spanish_spellings() -> None:
    assert phonetic_key("gimenez") == phonetic_key("jimenes")
    assert phonetic_key("villalobos") == phonetic_key("biyalobos")
    assert phonetic_key("quispe") == phonetic_key("kispe")
    assert phonetic_key("chavez") != phonetic_key("cavez")


@given(st.text("abcd", max_size=9), st.text("abcd", max_size=9))
def test_bit_parallel_distance_equals_the_textbook_one(a: str, b: str) -> None:
    assert osa_distance(a, b) == _reference_osa(a, b)
    assert osa_distance(a, b, char_masks(a)) == osa_distance(a, b)


def test_distance_counts_a_swap_as_one_edit() -> None:
    assert osa_distance("garcia", "gracia") == 1
    assert osa_distance("perez", "") == 5
    assert osa_distance("", "") == 0
