"""The documented rules that turn head outputs and cues into kinds, mood and moderation.

Trained heads say what the labeled data covers: intent (bug / feature / question) of a
request, whether a text asks something, sentiment, toxicity. Every kind is then scored
on its own, in [0, 1]:

=============== ==========================================================================
kind            score
=============== ==========================================================================
question        (1 - length) x question head P(asks something) + length x intent P(question)
                (normalized over the three intents), x 0.35 when the text has neither
                '?' nor an asking word or phrase ("how", "is there", "anyone know",
                "comment", "est-ce que"...): the question head learned from meeting speech
                and issues, and reads too many chat lines unlike both as questions
problem         max(intent P(bug) (normalized) x gate, 0.6 x problem phrase x floor), where
                gate = clip(0.1 + 0.9 x length + 0.5 x problem phrase) and floor =
                (0.5 + 0.5 x substance) x (1 - length^2): on a chat line the intent head's
                guess needs a phrase ("doesn't work", "error", "ne marche pas") to back it,
                on an issue-length text it decides alone
feature_request the same with intent P(feature), a request phrase ("would be nice",
                "please add", "ce serait bien") and 0.65
satisfaction    P(positive) x (1 - question) x (0.4 + 0.6 x substance)
complaint       P(negative) x (1 - question) x (0.4 + 0.6 x substance) x (1 - 0.6 x problem)
answer          reply to a question: 0.55 (+0.3 instructive, +0.1 link); addressed to someone
                and instructive: 0.6; instructive alone: 0.5; x (1 - question)
resource        a link (or an attachment) not judged a scam: 0.55, 0.8 with words like
                "docs", "guide", "here's"; x (1 - question / 2)
encouragement   0.85 with "good luck", "keep it up", "bon courage", "bravo"...
gratitude       0.9 with "thanks", "merci"... (0.65 past 12 words; 0.1 "thanks in advance")
announcement    0.75 with "released", "now available", "@everyone", "nouvelle version"...
social          0.9 when every word is chatter ("lol", "hi all", "ok"), else
                max(0.2, 0.75 - the highest other score)
spam, scam,     the moderation scores below
self_promotion
toxic           toxicity, x 0.7 unless aimed at someone (second person, an insult) or hateful
=============== ==========================================================================

``substance`` = min(1, words / 8): a two-word line rarely carries an insight.
``length`` = min(1, words / ``ISSUE_WORDS``): how much a text reads like an issue report
(the intent head's training data) rather than a chat line.

Moderation: ``toxicity`` = 1 - P(neither) of the toxicity head and ``hate`` = P(hate); for
French, which the English-trained head reads poorly, both are halved and a French insult
or slur from ``lexicon`` sets a floor (0.8, 0.9 aimed at someone; hate 0.85 for slurs).
``scam`` = 0.95 for a look-alike link (dlscord-gift...), 0.85 for a scam phrase with a
link, 0.7 for a scam phrase alone ("dm me to earn" is one). ``spam`` = 0.6 for a spam phrase, +0.3
for three links or more, +0.2 for an invite link, +0.2 for a mass mention. ``self_promotion``
= 0.5 for a promotion phrase or an invite link, 0.75 for both or a phrase with a link.

Primary kind, in this order: bots -> ``announcement`` (score >= 0.5) else ``social`` (bots
are never an insight nor a moderation case); ``scam`` >= 0.5; otherwise the highest
score, ties broken by the order of ``PRECEDENCE`` (insights first); ``social`` when no
score reaches 0.35.

Sentiment is the argmax of the sentiment head of the message's language (French head for
``fr``, English head otherwise); mood follows from kind, sentiment and cues (see
``mood_of``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pepite_classifier.analysis.local.cues import Cues
from pepite_contracts import MessageKind, ModerationScores, Mood, Sentiment

K = MessageKind

#: Tie-break order for the primary kind.
PRECEDENCE: tuple[MessageKind, ...] = (
    K.SCAM,
    K.TOXIC,
    K.SPAM,
    K.SELF_PROMOTION,
    K.PROBLEM,
    K.FEATURE_REQUEST,
    K.QUESTION,
    K.COMPLAINT,
    K.SATISFACTION,
    K.ANSWER,
    K.RESOURCE,
    K.GRATITUDE,
    K.ENCOURAGEMENT,
    K.ANNOUNCEMENT,
    K.SOCIAL,
)
_RANK = {kind: rank for rank, kind in enumerate(PRECEDENCE)}
BOT_KINDS = frozenset({K.ANNOUNCEMENT, K.SOCIAL})
#: Below this, no kind is said with enough confidence and the message is ``social``.
PRIMARY_FLOOR = 0.35
#: Words from which a text reads like an issue report rather than a chat line: the
#: sample community's 99.9th percentile of message length is 76 words, the 25th
#: percentile of the issues the intent head learned from is 74.
ISSUE_WORDS = 80
#: Weight of the question head when a text has neither '?' nor an asking word or phrase.
UNMARKED_QUESTION_WEIGHT = 0.35
#: Weight of the toxicity head on a text without any profanity, insult or slur.
ABUSE_FREE_WEIGHT = 0.5
#: Weight of satisfaction (complaint) without a positive (negative) opinion word or cue.
OPINION_FREE_WEIGHT = 0.5


@dataclass(frozen=True)
class Signals:
    """What the heads and the cues say about one message."""

    words: int
    has_question_mark: bool
    urls: int
    attachments: int
    addressed: bool
    replies_to_question: bool
    is_bot: bool
    language: str
    cues: Cues
    #: English profanity, insults and slurs (``lexicon.ENGLISH_ABUSE``).
    abusive_words: int
    french_insults: int
    french_slurs: int
    #: Opinion words of the lexicon, negation applied.
    positive_words: int
    negative_words: int
    #: Intent probabilities normalized over (bug, feature, question).
    bug: float
    feature: float
    question_share: float
    #: P(the text asks something).
    asks: float
    #: Sentiment probabilities normalized over (negative, neutral, positive).
    negative: float
    neutral: float
    positive: float
    #: Toxicity head probabilities normalized over (hate, neither, offensive).
    hate: float
    not_toxic: float


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def moderation_of(signals: Signals) -> ModerationScores:
    """Toxicity, hate, spam, scam and self-promotion probabilities."""
    cues = signals.cues
    toxicity = 1.0 - signals.not_toxic
    hate = signals.hate
    if not signals.abusive_words:
        toxicity, hate = toxicity * ABUSE_FREE_WEIGHT, hate * ABUSE_FREE_WEIGHT
    if signals.language == "fr":
        toxicity, hate = toxicity / 2, hate / 2
        if signals.french_insults:
            toxicity = max(toxicity, 0.9 if cues.second_person else 0.8)
        if signals.french_slurs:
            hate = max(hate, 0.85)
    has_link = signals.urls > 0
    if cues.phishing_link:
        scam = 0.95
    elif cues.scam and (has_link or cues.invite_link):
        scam = 0.85
    elif cues.scam:
        scam = 0.7
    else:
        scam = 0.0
    spam = (
        (0.75 if has_link else 0.35) * cues.spam
        + 0.3 * (signals.urls >= 3)
        + 0.2 * cues.invite_link
        + 0.2 * cues.announcement * has_link
    )
    linked = has_link or cues.invite_link
    if cues.self_promotion:
        self_promotion = 0.8 if linked else 0.6
    elif cues.showcase:
        self_promotion = 0.6 if linked else 0.25
    elif cues.invite_link:
        self_promotion = 0.5
    else:
        self_promotion = 0.0
    return ModerationScores(
        toxicity=round(_clip(toxicity), 4),
        hate=round(_clip(hate), 4),
        spam=round(_clip(spam), 4),
        scam=round(scam, 4),
        self_promotion=round(self_promotion, 4),
    )


def kind_scores_of(  # noqa: PLR0912 - one documented rule per kind, kept side by side
    signals: Signals, moderation: ModerationScores
) -> dict[MessageKind, float]:
    """The probability of every kind, each on its own (see the module docstring)."""
    cues = signals.cues
    substance = min(1.0, signals.words / 8)
    length = min(1.0, signals.words / ISSUE_WORDS)
    # A long text reads like an issue report: there the intent head, trained on issues,
    # tells a request for help from a report better than the question head does.
    asks = (1.0 - length) * signals.asks + length * signals.question_share
    if not (signals.has_question_mark or cues.asking):
        asks *= UNMARKED_QUESTION_WEIGHT
    # The intent head's bug/feature split is a guess on a short chat line unless a phrase
    # backs it; on an issue-length text it decides alone (issue templates are full of
    # "error" and "would be nice", whatever the issue is about).
    problem_gate = _clip(0.1 + 0.9 * length + 0.5 * cues.problem)
    feature_gate = _clip(0.1 + 0.9 * length + 0.5 * cues.feature_request)
    cue_floor = (0.5 + 0.5 * substance) * (1.0 - length * length)
    problem = max(signals.bug * problem_gate, 0.6 * cues.problem * cue_floor)
    feature = max(signals.feature * feature_gate, 0.65 * cues.feature_request * cue_floor)
    opinion_weight = (1.0 - asks) * (0.4 + 0.6 * substance)
    praised = signals.positive_words > signals.negative_words or cues.joy
    criticized = signals.negative_words > signals.positive_words or cues.frustration
    satisfaction = signals.positive * opinion_weight * (1.0 if praised else OPINION_FREE_WEIGHT)
    complaint = (
        signals.negative
        * opinion_weight
        * (1.0 - 0.6 * problem)
        * (1.0 if criticized else OPINION_FREE_WEIGHT)
    )
    instructive = cues.instructive
    if signals.replies_to_question:
        answer = 0.55 + 0.3 * instructive + 0.1 * (signals.urls > 0)
    elif signals.addressed and instructive:
        answer = 0.6
    elif instructive:
        answer = 0.5
    else:
        answer = 0.0
    answer *= 1.0 - asks
    if (signals.urls or signals.attachments) and moderation.scam < 0.5:
        resource = (0.8 if cues.resource else 0.55) * (1.0 - asks / 2)
    else:
        resource = 0.0
    gratitude = 0.0
    if cues.thanks_in_advance:
        gratitude = 0.1
    elif cues.gratitude:
        gratitude = 0.9 if signals.words <= 12 else 0.65
    aimed = cues.second_person or signals.french_insults > 0 or moderation.hate >= 0.5
    toxic = moderation.toxicity * (1.0 if aimed else 0.7)
    scores: dict[MessageKind, float] = {
        K.QUESTION: asks,
        K.PROBLEM: problem,
        K.FEATURE_REQUEST: feature,
        K.SATISFACTION: satisfaction,
        K.COMPLAINT: complaint,
        K.ANSWER: answer,
        K.RESOURCE: resource,
        K.ENCOURAGEMENT: 0.85 if cues.encouragement else 0.0,
        K.GRATITUDE: gratitude,
        K.ANNOUNCEMENT: 0.75 if cues.announcement else 0.0,
        K.SPAM: moderation.spam,
        K.SCAM: moderation.scam,
        K.SELF_PROMOTION: moderation.self_promotion,
        K.TOXIC: toxic,
    }
    if signals.is_bot:
        for kind in scores:
            if kind not in BOT_KINDS:
                scores[kind] = 0.0
        if signals.words >= 12:
            scores[K.ANNOUNCEMENT] = max(scores[K.ANNOUNCEMENT], 0.6)
    if cues.chatter and cues.uncovered_tokens == 0:
        social = 0.9
    else:
        social = max(0.2, 0.75 - max(scores.values()))
    scores[K.SOCIAL] = social
    return {kind: round(_clip(value), 4) for kind, value in scores.items()}


def primary_kind(scores: dict[MessageKind, float], *, is_bot: bool) -> MessageKind:
    """The one kind a message is filed under (see the module docstring)."""
    if is_bot:
        return K.ANNOUNCEMENT if scores.get(K.ANNOUNCEMENT, 0.0) >= 0.5 else K.SOCIAL
    if scores.get(K.SCAM, 0.0) >= 0.5:
        return K.SCAM
    best = max(scores.items(), key=lambda item: (item[1], -_RANK[item[0]]))
    return best[0] if best[1] >= PRIMARY_FLOOR else K.SOCIAL


def sentiment_of(signals: Signals) -> Sentiment:
    ranked = max(
        (signals.negative, Sentiment.NEGATIVE),
        (signals.neutral, Sentiment.NEUTRAL),
        (signals.positive, Sentiment.POSITIVE),
        key=lambda item: item[0],
    )
    return ranked[1]


def mood_of(  # noqa: PLR0911 - the first rule that applies decides
    kind: MessageKind, sentiment: Sentiment, signals: Signals
) -> Mood:
    """The author's apparent mood, first rule that applies:

    angry (toxic, or negative with an insult), grateful (gratitude), anxious ("urgent",
    "please help", "inquiet"), confused ("I don't understand", "je comprends pas"),
    frustrated (negative problem or complaint, or "still"/"again"/"marre" when negative),
    sad (negative with "sad"/"rip"/"triste"), joyful (positive with "yay"/"finally"/
    "génial", or clearly positive), confident (an answer), curious (a question), neutral.
    """
    cues = signals.cues
    negative = sentiment is Sentiment.NEGATIVE
    if kind is K.TOXIC or (negative and signals.french_insults):
        return Mood.ANGRY
    if kind is K.GRATITUDE:
        return Mood.GRATEFUL
    if cues.anxiety:
        return Mood.ANXIOUS
    if cues.confusion:
        return Mood.CONFUSED
    if negative and (kind in (K.PROBLEM, K.COMPLAINT) or cues.frustration):
        return Mood.FRUSTRATED
    if negative and cues.sadness:
        return Mood.SAD
    if sentiment is Sentiment.POSITIVE and (cues.joy or signals.positive >= 0.6):
        return Mood.JOYFUL
    if kind is K.ANSWER:
        return Mood.CONFIDENT
    if kind is K.QUESTION:
        return Mood.CURIOUS
    return Mood.NEUTRAL
