"""Keywords of each topic by class-based TF-IDF over its messages' texts.

Each topic is one "class": a term scores high when many of the topic's messages use it
and few messages of other topics do. Frequency counts messages, not occurrences, so one
message repeating a word cannot name a topic. Terms are words and two-word phrases
("login error", "error 500"), stop words and chat filler in English and French removed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from pepite_classifier.topics.stopwords import STOP_WORDS

_URL = re.compile(r"https?://\S+|www\.\S+")
#: Platform mentions (<@123>, <#123>), @handles, and an IRC-style "nick:" addressing prefix.
_MENTION = re.compile(r"<[@#!&][^>]*>|@\w[\w.-]*|^\s*[\w^`|\[\]{}-]{2,30}[:,]\s")
#: French elisions (l', d', qu'...) glued to the next word.
_ELISION = re.compile(r"\b(?:[cdjlmnst]|qu)['’]", re.IGNORECASE)
#: Words: letters, digits and the inner symbols of names like c++, c#, node.js, wi-fi.
_TOKEN = re.compile(r"[^\W_](?:[\w+#.-]*[\w+#])?")
_DIGITS = re.compile(r"\d+")


def tokens(text: str) -> list[str | None]:
    """Lower-case words of ``text``; ``None`` marks a dropped word (phrases never span it)."""
    text = _ELISION.sub(" ", _MENTION.sub(" ", _URL.sub(" ", text)).lower())
    words: list[str | None] = []
    for found in _TOKEN.findall(text):
        word = found.strip(".-")
        # Short numbers are counts and times; codes like 404 or 500 name problems.
        keep = (
            len(word) > 1
            and word not in STOP_WORDS
            and not (_DIGITS.fullmatch(word) and len(word) < 3)
        )
        words.append(word if keep else None)
    return words


def terms(text: str) -> list[str]:
    """Words and adjacent two-word phrases of ``text``, each once."""
    words = tokens(text)
    found = [w for w in words if w]
    found.extend(f"{a} {b}" for a, b in itertools.pairwise(words) if a and b and a != b)
    return list(dict.fromkeys(found))


def topic_keywords(
    texts: Sequence[str], labels: Sequence[int], topics: int, *, top: int = 8
) -> list[list[str]]:
    """The best keywords of each topic, best first.

    Args:
        texts: Message texts.
        labels: Topic of each text, in ``range(topics)``, or a negative number for texts
            outside every topic (they still count as "elsewhere" for rarity).
        topics: Number of topics.
        top: Keywords per topic.
    """
    if topics == 0:
        return []
    label_array = np.asarray(labels, dtype=np.intp)
    # Texts outside topics form one more class, so their common words are not rare.
    classes = np.where(label_array < 0, topics, label_array)
    vectorizer = CountVectorizer(analyzer=terms, binary=True, min_df=2, dtype=np.float32)
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:
        # No term appears twice: nothing to name topics with.
        return [[] for _ in range(topics)]
    one_hot = sparse.csr_matrix(
        (np.ones(len(classes), dtype=np.float32), (classes, np.arange(len(classes)))),
        shape=(topics + 1, len(classes)),
    )
    # Messages of each class using each term.
    per_class = np.asarray((one_hot @ matrix).todense())
    class_sizes = np.maximum(np.bincount(classes, minlength=topics + 1), 1)
    frequency = per_class / class_sizes[:, None]
    # c-TF-IDF: log(1 + A / f_t), A the average number of messages per class.
    average = len(classes) / (topics + 1)
    idf = np.log1p(average / np.maximum(per_class.sum(axis=0), 1))
    scores = frequency * idf
    vocabulary = vectorizer.get_feature_names_out()
    return [_best(vocabulary, scores[t], per_class[t], top) for t in range(topics)]


#: A phrase stands for its words when it scores at least this share of the word's score:
#: "login error" says more than "login" and "error" side by side.
PHRASE_SHARE = 0.7
#: Candidates looked at per topic, best first.
_CANDIDATES = 200


def _best(vocabulary: np.ndarray, scores: np.ndarray, counts: np.ndarray, top: int) -> list[str]:
    """The top terms, phrases preferred to the words they contain, no word said twice."""
    # A term must be used by at least two messages of the topic to say something of it.
    ranked = [
        (str(vocabulary[i]), float(scores[i]))
        for i in np.argsort(-scores, kind="stable")[:_CANDIDATES]
        if scores[i] > 0 and counts[i] >= 2
    ]
    phrases: dict[str, list[tuple[str, float]]] = {}
    for term, score in ranked:
        if " " in term:
            for word in term.split(" "):
                phrases.setdefault(word, []).append((term, score))
    chosen: list[str] = []
    words_used: set[str] = set()
    for candidate, score in ranked:
        if len(chosen) == top:
            break
        term = candidate
        if " " not in candidate:
            # The best phrase with this word, if it is nearly as strong, speaks for it.
            term = next(
                (
                    phrase
                    for phrase, phrase_score in phrases.get(candidate, [])
                    if phrase_score >= PHRASE_SHARE * score and phrase not in chosen
                ),
                candidate,
            )
        parts = term.split(" ")
        if all(part in words_used for part in parts):
            continue
        chosen.append(term)
        words_used.update(parts)
    return chosen


def keyword_name(keywords: Sequence[str], *, words: int = 3) -> str:
    """A short name from the best keywords, e.g. ``"grub, boot menu, uefi"``."""
    return ", ".join(keywords[:words]) if keywords else "miscellaneous"
