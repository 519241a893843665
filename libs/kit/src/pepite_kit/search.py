"""Word search over messages: the terms stored with each message, and queries over them.

A message keeps its distinct search terms (lower-cased, accents folded, English stop
words left out, English-stemmed) in ``search_terms``, indexed with the community and the
time. A search newest first then reads index entries in time order and stops at the
page's end, whatever the number of matching messages; a MongoDB text index would fetch
and sort every match first, which costs tens of milliseconds for a common word in a
large community. Writers store :func:`search_terms` of the text, the API turns a
query into the same terms with :func:`parse_query`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

#: The stored field.
SEARCH_TERMS = "search_terms"

#: A long message indexes this many distinct terms at most (its first ones), so one
#: message never costs the index thousands of entries.
MAX_TERMS = 256
#: Longer "words" are hashes, keys or URLs: not what anyone types to search.
MAX_TERM_LENGTH = 40

_WORD = re.compile(r"\w+")
_PHRASE = re.compile(r'"([^"]*)"')

_STOP_WORDS_TEXT = """
a about above after again against all am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in
into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their
theirs them themselves then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your
yours yourself yourselves
"""
#: Words too common to tell messages apart (MongoDB's English text-search list, trimmed).
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def _fold(text: str) -> str:
    """Lower-case without accents: "Café" and "cafe" are one word to a searcher."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _is_term(word: str) -> bool:
    if word in STOP_WORDS:
        return False
    if word.isdigit():
        # Years and versions are searched for; long numbers are ids (mention markup).
        return len(word) <= 8
    return len(word) <= MAX_TERM_LENGTH


def _words(text: str) -> list[str]:
    return [word for word in _WORD.findall(_fold(text)) if _is_term(word)]


def search_terms(text: str) -> list[str]:
    """The distinct terms of ``text`` as stored and indexed, in order of appearance."""
    if not text:
        return []
    stems = _stemmer().stemWords(_words(text))
    return list(dict.fromkeys(stems))[:MAX_TERMS]


@dataclass(frozen=True)
class SearchQuery:
    """A query in terms: a message matches if it has any of ``any_of`` (when given),
    all the terms and the exact words of each phrase, and none of ``none_of``."""

    any_of: tuple[str, ...]
    phrases: tuple[str, ...]
    phrase_terms: tuple[str, ...]
    none_of: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        """Nothing to look up in the index: only stop words or excluded words."""
        return not self.any_of and not self.phrase_terms


def parse_query(query: str) -> SearchQuery:
    """Read ``word word "a phrase" -excluded``.

    Words are alternatives, phrases are all required (as written, in any case), and
    a word after ``-`` excludes the messages that have it.
    """
    phrases = tuple(p.strip() for p in _PHRASE.findall(query) if p.strip())
    rest = _PHRASE.sub(" ", query)
    wanted: list[str] = []
    unwanted: list[str] = []
    for token in rest.split():
        (unwanted if token.startswith("-") else wanted).append(token.lstrip("-"))
    phrase_terms = [term for phrase in phrases for term in search_terms(phrase)]
    return SearchQuery(
        any_of=tuple(dict.fromkeys(search_terms(" ".join(wanted)))),
        phrases=phrases,
        phrase_terms=tuple(dict.fromkeys(phrase_terms)),
        none_of=tuple(dict.fromkeys(search_terms(" ".join(unwanted)))),
    )


def phrase_pattern(phrase: str) -> str:
    """A regular expression for ``phrase`` in a text, whatever the spacing between words."""
    return r"\s+".join(re.escape(word) for word in phrase.split())
