"""Typo-tolerant name search over an index held in memory while the app is unlocked.

Names are stored only encrypted, and blind indexes support nothing but exact token lookup, so
fuzzy search needs the names in the clear: the vault decrypts them into a :class:`FuzzyNameIndex`
at unlock and drops it on lock. It is never written to disk.

Matching works on tokens (:func:`contigo.names.name_tokens`), so accents, case, word order and
double surnames do not matter. Each query token is matched against the vocabulary of distinct
name tokens, not against each person: a trigram inverted index proposes candidates, a q-gram
count filter discards most, and a bit-parallel Damerau-Levenshtein distance, a prefix rule and a
Spanish/Portuguese phonetic key score the rest. Persons holding matched tokens are then scored
by how well they cover the query, with a small bonus for how much of their name the query
covers, so an exact full-name match ranks first.
"""

from __future__ import annotations

import bisect
import heapq
import re
import threading
from collections import defaultdict

from contigo.names import name_tokens

PREFIX_MIN = 3
"""Query tokens at least this long also match as a prefix ("mar" → "maria")."""
PHONETIC_SCORE = 0.9
"""Similarity of two different spellings with the same sound key ("jimenez", "gimenez")."""

_PHONETIC_RULES = [
    (re.compile(r"ll"), "y"),
    (re.compile(r"ph"), "f"),
    (re.compile(r"c(?=[ei])|z"), "s"),
    (re.compile(r"qu|k"), "c"),
    (re.compile(r"g(?=[ei])"), "j"),
    (re.compile(r"v|w"), "b"),
    (re.compile(r"(?<!c)h"), ""),
    (re.compile(r"(.)\1+"), r"\1"),
]


def phonetic_key(token: str) -> str:
    """A rough sound key for Spanish and Portuguese spellings of the same name.

    Folds ll/y, b/v, s/z/soft c, j/soft g, hard c/k/qu, silent h and doubled letters, so
    "Gimenez", "Jiménez" and "Jimenes" share a key. Used only to score, never to exclude.
    """
    for pattern, replacement in _PHONETIC_RULES:
        token = pattern.sub(replacement, token)
    return token


def max_edits(length: int) -> int:
    """Edits tolerated between tokens whose longer one has ``length`` characters."""
    if length <= 3:
        return 0
    if length <= 6:
        return 1
    if length <= 10:
        return 2
    return 3


def trigrams(token: str) -> set[str]:
    """The trigrams of ``token`` padded with one boundary mark each side (len(token) of them)."""
    padded = f"\x02{token}\x03"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def char_masks(word: str) -> dict[str, int]:
    """For each character of ``word``, a bit mask of where it occurs (bit i = position i)."""
    masks: dict[str, int] = {}
    for i, char in enumerate(word):
        masks[char] = masks.get(char, 0) | 1 << i
    return masks


def osa_distance(a: str, b: str, masks: dict[str, int] | None = None) -> int:
    """Optimal string alignment distance: Levenshtein plus swaps of adjacent letters.

    Hyyrö's bit-parallel algorithm (2003): one pass over ``b`` with integer operations on bit
    vectors as long as ``a``, several times faster in Python than the dynamic programming table.
    ``masks`` is :func:`char_masks` of ``a``, for callers comparing one word with many.
    """
    if not a:
        return len(b)
    masks = char_masks(a) if masks is None else masks
    full, top = (1 << len(a)) - 1, 1 << (len(a) - 1)
    vp, vn, d0, previous, distance = full, 0, 0, 0, len(a)
    for char in b:
        match = masks.get(char, 0)
        swap = (((~d0) & match) << 1) & previous
        d0 = (((match & vp) + vp) ^ vp) | match | vn | swap
        hp = vn | (~(d0 | vp) & full)
        hn = d0 & vp
        if hp & top:
            distance += 1
        elif hn & top:
            distance -= 1
        hp = ((hp << 1) | 1) & full
        hn = (hn << 1) & full
        vp = hn | (~(d0 | hp) & full)
        vn = hp & d0
        previous = match
    return distance


def token_similarity(
    query: str,
    token: str,
    *,
    masks: dict[str, int] | None = None,
    same_sound: bool | None = None,
) -> float:
    """How well a query token matches a name token, 0 (no match) to 1 (equal).

    Within the tolerated edits: 1 − edits / longer length. Same sound key: at least
    :data:`PHONETIC_SCORE`. The query a prefix of the token: 0.6 to 0.9 by length covered.
    ``masks`` (:func:`char_masks` of the query) and ``same_sound`` spare recomputing what a
    caller comparing one query with many tokens already holds.
    """
    if query == token:
        return 1.0
    longer = max(len(query), len(token))
    limit = max_edits(longer)
    score = 0.0
    if limit and abs(len(query) - len(token)) <= limit:
        edits = osa_distance(query, token, masks)
        if edits <= limit:
            score = 1.0 - edits / longer
    if len(query) >= PREFIX_MIN and token.startswith(query):
        score = max(score, 0.6 + 0.3 * len(query) / len(token))
    if same_sound is None:
        same_sound = phonetic_key(query) == phonetic_key(token)
    if same_sound:
        score = max(score, PHONETIC_SCORE)
    return score


class FuzzyNameIndex:
    """Persons' name tokens in memory, searchable by similarity; thread-safe.

    Persons are held by dense integer slots internally; the vocabulary maps each distinct token
    to the slots holding it, and trigrams and sound keys map to vocabulary tokens.
    """

    def __init__(self, *, min_score: float = 0.5, match_cache_size: int = 4096) -> None:
        """``min_score``: the least share of the query a result must match.
        ``match_cache_size``: how many query words keep their vocabulary matches (type-ahead
        repeats the same words); emptied whenever the vocabulary changes; 0 disables it."""
        self.min_score = min_score
        self.match_cache_size = match_cache_size
        self._lock = threading.Lock()
        self._slot_of: dict[str, int] = {}
        self._ids: list[str | None] = []
        self._tokens: list[tuple[str, ...]] = []
        self._free: list[int] = []
        self._postings: dict[str, set[int]] = {}
        self._by_trigram: defaultdict[str, set[str]] = defaultdict(set)
        self._by_sound: defaultdict[str, set[str]] = defaultdict(set)
        self._sound_of: dict[str, str] = {}
        self._sorted_vocab: list[str] | None = None
        self._match_cache: dict[str, dict[str, float]] = {}

    def __len__(self) -> int:
        return len(self._slot_of)

    @property
    def vocabulary_size(self) -> int:
        """How many distinct name tokens are indexed."""
        return len(self._postings)

    def add(self, person_id: str, name: str) -> None:
        """Index ``name`` (all of a person's names in one string) under ``person_id``,
        replacing what was indexed for that person before."""
        tokens = tuple(name_tokens(name))
        with self._lock:
            self._remove(person_id)
            if self._free:
                slot = self._free.pop()
                self._ids[slot], self._tokens[slot] = person_id, tokens
            else:
                slot = len(self._ids)
                self._ids.append(person_id)
                self._tokens.append(tokens)
            self._slot_of[person_id] = slot
            for token in tokens:
                holders = self._postings.get(token)
                if holders is None:
                    holders = self._postings[token] = set()
                    self._add_vocab(token)
                holders.add(slot)

    def remove(self, person_id: str) -> None:
        """Forget a person (merged, shredded or out of scope); unknown ids are ignored."""
        with self._lock:
            self._remove(person_id)

    def search(self, query: str, limit: int = 20) -> list[tuple[str, float]]:
        """Up to ``limit`` ``(person_id, score)`` pairs, best first, scores in (0, 1].

        Order of words, accents, case, hyphens and typos within :func:`max_edits` do not
        prevent a match; persons covering less than ``min_score`` of the query are left out.
        """
        wanted = name_tokens(query)
        if not wanted or limit <= 0:
            return []
        with self._lock:
            totals: defaultdict[int, float] = defaultdict(float)
            for word in wanted:
                best: dict[int, float] = {}
                for token, similarity in self._matches(word).items():
                    for slot in self._postings[token]:
                        if similarity > best.get(slot, 0.0):
                            best[slot] = similarity
                for slot, similarity in best.items():
                    totals[slot] += similarity
            ranked = self._rank(totals, len(wanted), limit)
            return [(self._id(slot), score) for slot, score in ranked]

    def _rank(self, totals: dict[int, float], n_wanted: int, limit: int) -> list[tuple[int, float]]:
        scored: list[tuple[float, int]] = []
        for slot, total in totals.items():
            coverage = total / n_wanted
            if coverage < self.min_score:
                continue
            own = len(self._tokens[slot])
            completeness = min(1.0, n_wanted / own) if own else 0.0
            scored.append((0.9 * coverage + 0.1 * completeness, slot))
        top = heapq.nlargest(limit, scored, key=lambda item: (item[0], -item[1]))
        return [(slot, round(score, 4)) for score, slot in top]

    def _matches(self, word: str) -> dict[str, float]:
        """Vocabulary tokens similar to ``word``, with their similarity (cached)."""
        found = self._match_cache.get(word)
        if found is None:
            found = self._find_matches(word)
            if len(self._match_cache) >= self.match_cache_size:
                self._match_cache.clear()
            if self.match_cache_size:
                self._match_cache[word] = found
        return found

    def _find_matches(self, word: str) -> dict[str, float]:
        sound = phonetic_key(word)
        candidates: set[str] = set(self._by_sound.get(sound, ()))
        if word in self._postings:
            candidates.add(word)
        grams = trigrams(word)
        if max_edits(len(word) + 1):
            shared: defaultdict[str, int] = defaultdict(int)
            for gram in grams:
                for token in self._by_trigram.get(gram, ()):
                    shared[token] += 1
            for token, count in shared.items():
                # q-gram lemma: an edit removes at most 3 of the word's distinct trigrams, a
                # transposition at most 4, so fewer shared ones rule the token out.
                if count >= len(grams) - 4 * max_edits(max(len(word), len(token))):
                    candidates.add(token)
        if len(word) >= PREFIX_MIN:
            candidates.update(self._with_prefix(word))
        found: dict[str, float] = {}
        masks = char_masks(word)
        for token in candidates:
            same_sound = self._sound_of[token] == sound
            similarity = token_similarity(word, token, masks=masks, same_sound=same_sound)
            if similarity > 0.0:
                found[token] = similarity
        return found

    def _with_prefix(self, prefix: str) -> list[str]:
        if self._sorted_vocab is None:
            self._sorted_vocab = sorted(self._postings)
        vocab = self._sorted_vocab
        start = bisect.bisect_left(vocab, prefix)
        end = start
        while end < len(vocab) and vocab[end].startswith(prefix):
            end += 1
        return vocab[start:end]

    def _add_vocab(self, token: str) -> None:
        for gram in trigrams(token):
            self._by_trigram[gram].add(token)
        sound = self._sound_of[token] = phonetic_key(token)
        self._by_sound[sound].add(token)
        self._vocab_changed()

    def _drop_vocab(self, token: str) -> None:
        del self._postings[token]
        for gram in trigrams(token):
            self._by_trigram[gram].discard(token)
        self._by_sound[self._sound_of.pop(token)].discard(token)
        self._vocab_changed()

    def _vocab_changed(self) -> None:
        self._sorted_vocab = None
        self._match_cache.clear()

    def _remove(self, person_id: str) -> None:
        slot = self._slot_of.pop(person_id, None)
        if slot is None:
            return
        for token in self._tokens[slot]:
            holders = self._postings[token]
            holders.discard(slot)
            if not holders:
                self._drop_vocab(token)
        self._ids[slot] = None
        self._tokens[slot] = ()
        self._free.append(slot)

    def _id(self, slot: int) -> str:
        person_id = self._ids[slot]
        assert person_id is not None
        return person_id
