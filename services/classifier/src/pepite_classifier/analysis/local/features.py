"""Language-agnostic text features for the local analyzer's linear heads.

Every message goes through here, so the work is vectorized over a whole batch:
character n-grams are hashed with a rolling polynomial hash computed by numpy over the
concatenated batch (sklearn's analyzers loop in Python over each n-gram, several times
slower on short chat lines), words and word pairs with the same hash read off prefix
sums. Hashes are fixed functions of the text, so the same text gives the same features
in every process and a trained weight matrix stays valid without a vocabulary file.

The feature vector of a text is three blocks side by side, each scaled on its own:

- character 2..5-grams of the normalized text (spaces included, so they also see the
  start and end of words and short word pairs), sublinear counts (``1 + ln(count)``),
  L2-normalized (cross-validation found no gain from IDF weights, which would have been
  one more artifact to ship);
- words and word bigrams, same weighting, L2-normalized;
- a few dense cues (links, mentions, '?', length, capitals, emoji, code, opinion words
  from the small lexicon in ``lexicon``) in [0, 1].
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from pepite_classifier.analysis.local.lexicon import polarity_counts

#: Longer texts are cut: the opening says what a message is about and bounds the cost.
MAX_CHARS = 1000

URL_RE = re.compile(r"(?:https?://|www\.)\S+|\b[\w.-]+\.(?:com|org|net|io|gg|ly|me)/\S*", re.I)
#: A Discord/Slack mention (<@123>, <@!123>, @name) or an IRC address at the start ("nick: ").
MENTION_RE = re.compile(r"<[@#][!&]?\d+>|(?<![\w.])@[\w.-]+|^[\w\-\[\]`^{}|.]{2,32}:(?=\s)")
DIGITS_RE = re.compile(r"\d+")
SPACES_RE = re.compile(r"\s+")
WORD_RE = re.compile(r"\w+|[?!]")
CODE_RE = re.compile(r"```|`[^`\n]+`")
#: Pictographs, dingbats, flags and the like; emoticons such as ':)' are kept as characters.
EMOJI_RE = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\U0001f1e6-\U0001f1ff]|(?:^|\\s)[:;]-?[()dDpP](?=\\s|$)"
)

#: Names of the dense cue columns, in order.
DENSE_CUES: tuple[str, ...] = (
    "has_url",
    "url_count",
    "has_mention",
    "has_question_mark",
    "ends_with_question_mark",
    "has_exclamation",
    "char_length",
    "word_count",
    "caps_ratio",
    "has_emoji",
    "has_code",
    "has_digits",
    "newline_count",
    "positive_words",
    "negative_words",
)

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
#: Odd multipliers for the rolling hash and the final mix (from splitmix64).
_POLY = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_POLY_INVERSE = np.uint64(pow(0x100000001B3, -1, 2**64))
#: Separates texts in the concatenated batch; never a character of a normalized text.
_SEPARATOR = 0
_SPACE = ord(" ")


@dataclass(frozen=True)
class FeatureConfig:
    """The shape of the feature space; changing it invalidates trained weights."""

    char_min: int = 2
    char_max: int = 5
    char_buckets: int = 2**18
    word_buckets: int = 2**17
    word_bigrams: bool = True

    @property
    def dimension(self) -> int:
        return self.char_buckets + self.word_buckets + len(DENSE_CUES)

    def to_json(self) -> dict[str, int | bool]:
        return {
            "char_min": self.char_min,
            "char_max": self.char_max,
            "char_buckets": self.char_buckets,
            "word_buckets": self.word_buckets,
            "word_bigrams": self.word_bigrams,
        }


def normalize(text: str) -> str:
    """Lower-cased text with links, mentions and numbers replaced by placeholders."""
    return _prepare(text)[0]


def _prepare(text: str) -> tuple[str, int, bool]:
    """The normalized text, how many links it had and whether it mentioned someone."""
    text = text[:MAX_CHARS].replace("\0", " ")
    text, urls = URL_RE.subn(" httpurl ", text)
    text, mentions = MENTION_RE.subn(" @user ", text)
    text = DIGITS_RE.sub("0", text.lower())
    return SPACES_RE.sub(" ", text).strip(), urls, mentions > 0


def _per_text_sums(
    flags: npt.NDArray[np.bool_], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """How many flagged positions fall in each [start, end) span."""
    cumulative = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return cumulative[ends] - cumulative[starts]


def dense_cues(
    texts: Sequence[str], urls: Sequence[int], mentions: Sequence[bool]
) -> npt.NDArray[np.float32]:
    """The dense cue columns of raw texts, each in [0, 1], shape ``(len(texts), cues)``."""
    heads = [text[:MAX_CHARS] for text in texts]
    n_rows = len(heads)
    # Letters and capitals are counted over the whole batch at once: per-character
    # Python loops would cost more than every other feature together.
    joined = "".join(heads)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    lengths = np.fromiter((len(head) for head in heads), dtype=np.int64, count=n_rows)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    is_upper = (codes >= 65) & (codes <= 90) | (codes >= 0xC0) & (codes <= 0xDE)
    is_lower = (codes >= 97) & (codes <= 122) | (codes >= 0xDF) & (codes <= 0xFF)
    is_digit = (codes >= 48) & (codes <= 57)
    capitals = _per_text_sums(is_upper, starts, ends)
    letters = capitals + _per_text_sums(is_lower, starts, ends)
    digits = _per_text_sums(is_digit, starts, ends)
    cues = np.zeros((n_rows, len(DENSE_CUES)), dtype=np.float32)
    log_max_chars = math.log1p(MAX_CHARS)
    log_max_words = math.log1p(200)
    for row, head in enumerate(heads):
        url_count = urls[row]
        positive, negative = polarity_counts(head)
        stripped = head.rstrip()
        cues[row] = (
            url_count > 0,
            min(url_count, 4) / 4,
            mentions[row],
            "?" in head,
            stripped.endswith("?"),
            "!" in head,
            min(math.log1p(len(head)) / log_max_chars, 1.0),
            min(math.log1p(len(head.split())) / log_max_words, 1.0),
            capitals[row] / letters[row] if letters[row] >= 4 else 0.0,
            EMOJI_RE.search(head) is not None,
            CODE_RE.search(head) is not None,
            digits[row] > 0,
            min(head.count("\n"), 8) / 8,
            min(positive, 4) / 4,
            min(negative, 4) / 4,
        )
    return cues


def _mix(hashes: npt.NDArray[np.uint64], salt: int, buckets: int) -> npt.NDArray[np.int64]:
    """Scramble polynomial hashes (plus a salt) and map them to ``[0, buckets)``."""
    with np.errstate(over="ignore"):
        mixed = (hashes + np.uint64(salt)) * _MIX
        mixed ^= mixed >> np.uint64(29)
        mixed *= _MIX
    # The high bits: the low bits of a product mix poorly.
    return ((mixed >> np.uint64(32)) % np.uint64(buckets)).astype(np.int64)


class _Batch:
    """The normalized texts of a batch as one array of code points, texts padded with a
    space on each side and separated by NUL, with the text (row) of every position."""

    def __init__(self, normalized: Sequence[str]) -> None:
        padded = [f" {text} " for text in normalized]
        joined = "\0".join(padded)
        self.codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        lengths = np.fromiter((len(text) + 1 for text in padded), dtype=np.int64, count=len(padded))
        # A separator belongs to the text before it; it never sits inside an n-gram or word.
        self.rows = np.repeat(np.arange(len(padded), dtype=np.int64), lengths)[: self.codes.size]
        self.separators_before = np.concatenate(([0], np.cumsum(self.codes == _SEPARATOR)))


def _char_ngram_buckets(
    batch: _Batch, config: FeatureConfig
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(row, bucket) of every character n-gram of every text, by a rolling hash."""
    codes = batch.codes
    rows: list[npt.NDArray[np.int64]] = []
    buckets: list[npt.NDArray[np.int64]] = []
    rolling = codes.copy()
    with np.errstate(over="ignore"):
        for n in range(1, config.char_max + 1):
            if n > 1:
                # rolling[i] = hash of codes[i : i + n], computed from the (n-1)-gram hash.
                rolling = rolling[:-1] * _POLY + codes[n - 1 :]
            if n < config.char_min or rolling.size == 0:
                continue
            starts = np.arange(rolling.size)
            valid = batch.separators_before[starts + n] == batch.separators_before[starts]
            rows.append(batch.rows[starts[valid]])
            buckets.append(_mix(rolling[valid], n, config.char_buckets))
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(rows), np.concatenate(buckets)


def _is_word_char(codes: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    """Letters, digits and '_' (ASCII), and any code point past Latin-1 symbols except
    general punctuation: close to the regex ``\\w`` without a per-character lookup."""
    is_word: npt.NDArray[np.bool_] = (
        ((codes >= 48) & (codes <= 57))
        | ((codes >= 65) & (codes <= 90))
        | ((codes >= 97) & (codes <= 122))
        | (codes == 95)
        | (
            (codes >= 0xC0)
            & ((codes < 0x2000) | (codes > 0x2BFF))
            & (codes != 0xD7)
            & (codes != 0xF7)
        )
    )
    return is_word


def _word_buckets(
    batch: _Batch, config: FeatureConfig
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(row, bucket) of every word, '?' and '!' (and bigram of them) of every text.

    A word's hash is the polynomial hash of its characters, read off prefix sums: with
    ``G[i] = sum(c[j] * P^-j for j < i)`` (P is odd, so invertible modulo 2^64), the hash of
    ``c[s:e]`` is ``(G[e] - G[s]) * P^(e-1)``, the same wherever the word sits in the batch.
    """
    codes = batch.codes
    size = codes.size
    is_word = _is_word_char(codes)
    is_mark = (codes == ord("?")) | (codes == ord("!"))
    previous_word = np.concatenate(([False], is_word[:-1]))
    next_word = np.concatenate((is_word[1:], [False]))
    starts = np.flatnonzero((is_word & ~previous_word) | is_mark)
    ends = np.flatnonzero((is_word & ~next_word) | is_mark) + 1
    if starts.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(size + 1, _POLY, dtype=np.uint64))
        powers = np.concatenate(([np.uint64(1)], powers[:-1]))
        inverse_powers = np.cumprod(np.full(size, _POLY_INVERSE, dtype=np.uint64))
        inverse_powers = np.concatenate(([np.uint64(1)], inverse_powers[:-1]))
        prefix = np.concatenate(([np.uint64(0)], np.cumsum(codes * inverse_powers)))
        word_hashes = (prefix[ends] - prefix[starts]) * powers[ends - 1]
    word_rows = batch.rows[starts]
    rows = [word_rows]
    buckets = [_mix(word_hashes, 1, config.word_buckets)]
    if config.word_bigrams and starts.size > 1:
        same_text = word_rows[1:] == word_rows[:-1]
        with np.errstate(over="ignore"):
            pair_hashes = word_hashes[:-1][same_text] * _MIX + word_hashes[1:][same_text]
        rows.append(word_rows[1:][same_text])
        buckets.append(_mix(pair_hashes, 2, config.word_buckets))
    return np.concatenate(rows), np.concatenate(buckets)


def _weighted_block(
    rows: npt.NDArray[np.int64],
    buckets: npt.NDArray[np.int64],
    n_rows: int,
    width: int,
) -> sp.csr_matrix:
    """Sublinear counts, each row L2-normalized."""
    counts = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, buckets)), shape=(n_rows, width)
    )
    counts.sum_duplicates()
    counts.data = 1.0 + np.log(counts.data)
    norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    counts.data /= np.repeat(norms, np.diff(counts.indptr)).astype(np.float32)
    return counts


class Featurizer:
    """Turns texts into the sparse feature matrix the linear heads are trained on."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """One row per text, ``config.dimension`` columns, float32."""
        config = self.config
        prepared = [_prepare(text) for text in texts]
        batch = _Batch([text for text, _, _ in prepared])
        n_rows = len(texts)
        char_rows, char_buckets = _char_ngram_buckets(batch, config)
        word_rows, word_buckets = _word_buckets(batch, config)
        chars = _weighted_block(char_rows, char_buckets, n_rows, config.char_buckets)
        words = _weighted_block(word_rows, word_buckets, n_rows, config.word_buckets)
        cues = sp.csr_matrix(
            dense_cues(
                texts, [urls for _, urls, _ in prepared], [mention for _, _, mention in prepared]
            )
        )
        return sp.hstack([chars, words, cues], format="csr", dtype=np.float32)
