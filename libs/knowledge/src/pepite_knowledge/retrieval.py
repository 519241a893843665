"""Finding the entries that answer a question: meaning first, shared words next, then trust.

A community's entries are held as two matrices, the embeddings of their questions and
of their answers; a question is compared with both in one product each. Its meaning
score is the mean of the two cosines: people rarely ask again in the same words, but
a new question often shares the words of the old answer (the package, the error, the
command), so matching the answer as well finds twice as many right entries on the
sample community's history (``bench/faq_eval.py``). The best ``shortlist`` are then
re-scored with the words they share with it (weighted by how rare each word is in
the knowledge base), and a small prior lifts answers the asker thanked, that drew
reactions, or that the team wrote.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pepite_embeddings import EMBEDDING_DIM, Embedding
from pepite_kit.search import search_terms
from pepite_knowledge.models import EntryOrigin, KnowledgeEntry
from pepite_knowledge.repository import StoredEntry

#: Weights of the three parts of a score (they sum to one, so a score is in [-1, 1]).
SEMANTIC_WEIGHT = 0.7
LEXICAL_WEIGHT = 0.22
PRIOR_WEIGHT = 0.08
#: Entries re-scored with words after the embedding's first pass.
SHORTLIST = 50


@dataclass(frozen=True)
class Match:
    """An entry found for a question, and why."""

    entry: KnowledgeEntry
    score: float
    semantic: float
    lexical: float


def prior(entry: KnowledgeEntry) -> float:
    """How much an answer is to be trusted before looking at the question, in [0, 1]."""
    if entry.origin is EntryOrigin.CURATED:
        return 1.0
    signals = entry.signals
    reacted = min(1.0, math.log1p(signals.reactions) / math.log(6))
    return 0.5 * signals.thanked + 0.3 * reacted + 0.2 * signals.analyzer_answer


def _matrix(vectors: Sequence[Embedding]) -> np.ndarray:
    if not vectors:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.vstack(vectors).astype(np.float32)


class KnowledgeIndex:
    """A community's entries, ready to be searched (immutable once built)."""

    def __init__(self, stored: Sequence[StoredEntry]) -> None:
        self.entries = [s.entry for s in stored]
        self._questions = _matrix([s.vectors.question for s in stored])
        self._answers = _matrix([s.vectors.answer for s in stored])
        self._terms = [frozenset(search_terms(e.question)) for e in self.entries]
        counts = Counter(term for terms in self._terms for term in terms)
        size = len(self.entries)
        self._idf = {term: math.log((size + 1) / (n + 0.5)) for term, n in counts.items()}
        #: A word no entry has weighs what the rarest one would: the question asks
        #: about something the knowledge base has never seen.
        self._unseen_idf = math.log((size + 1) / 0.5)
        self._prior = np.array([prior(e) for e in self.entries], dtype=np.float32)

    def __len__(self) -> int:
        return len(self.entries)

    def _lexical(self, query_terms: frozenset[str], index: int) -> float:
        """Share of the question's word weight that the entry's question has."""
        if not query_terms:
            return 0.0
        weights = {t: self._idf.get(t, self._unseen_idf) for t in query_terms}
        total = sum(weights.values())
        shared = sum(w for t, w in weights.items() if t in self._terms[index])
        return shared / total if total else 0.0

    def search(self, vector: Embedding, question: str, *, k: int = 3) -> list[Match]:
        """The ``k`` best entries for ``question`` (whose embedding is ``vector``)."""
        if not self.entries:
            return []
        query = np.asarray(vector, dtype=np.float32)
        semantic = (self._questions @ query + self._answers @ query) / 2
        shortlist = min(SHORTLIST, len(self.entries))
        candidates = np.argpartition(-semantic, shortlist - 1)[:shortlist]
        query_terms = frozenset(search_terms(question))
        matches = []
        for index in candidates.tolist():
            lexical = self._lexical(query_terms, index)
            score = (
                SEMANTIC_WEIGHT * float(semantic[index])
                + LEXICAL_WEIGHT * lexical
                + PRIOR_WEIGHT * float(self._prior[index])
            )
            matches.append(Match(self.entries[index], score, float(semantic[index]), lexical))
        matches.sort(key=lambda m: (-m.score, m.entry.entry_id))
        return matches[:k]
