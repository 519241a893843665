"""The local analyzer on a few chat messages whose kind is obvious, English and French."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from pepite_classifier.analysis.base import AnalysisRequest
from pepite_classifier.analysis.local import LocalAnalyzer
from pepite_classifier.analysis.local.model import LocalModel
from pepite_contracts import Analysis, AnalyzerName, MessageKind, Sentiment
from pepite_embeddings.embedder import Embedder

K = MessageKind


LONG_PROBLEM = (
    "Since the last update the desktop app crashes every single time I open the settings"
    " page, I tried reinstalling it twice and clearing the cache folder but it still closes"
    " right away with an error about a missing configuration file"
)


class CountingEmbedder:
    """The real sentence embedder, recording what it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return LocalModel.load()


@pytest.fixture(scope="module")
def real_embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def embedder(real_embedder: Embedder) -> CountingEmbedder:
    return CountingEmbedder(real_embedder)


@pytest.fixture
def analyzer(model: LocalModel, embedder: CountingEmbedder) -> LocalAnalyzer:
    return LocalAnalyzer(model=model, embedder=embedder)


def request(text: str, *, n: int = 0, **extra: object) -> AnalysisRequest:
    return AnalysisRequest(message_id=f"m{n}", community_id="acme", text=text, **extra)  # type: ignore[arg-type]


def analyze(analyzer: LocalAnalyzer, text: str, **extra: object) -> Analysis:
    return analyzer.analyze_batch([request(text, **extra)])[0].analysis


@pytest.mark.parametrize(
    ("text", "kind", "language"),
    [
        (
            "The app crashes every time I open the settings page after the last update",
            K.PROBLEM,
            "en",
        ),
        (
            "L'application plante à chaque fois que j'ouvre les paramètres depuis la mise à jour",
            K.PROBLEM,
            "fr",
        ),
        ("It would be nice to have a dark mode option in the editor", K.FEATURE_REQUEST, "en"),
        (
            "Ce serait bien de pouvoir exporter les rapports en PDF directement",
            K.FEATURE_REQUEST,
            "fr",
        ),
        ("how do I install the nvidia drivers on ubuntu 22.04", K.QUESTION, "en"),
        ("comment je fais pour changer mon mot de passe", K.QUESTION, "fr"),
        ("Thanks a lot, that fixed it!", K.GRATITUDE, "en"),
        ("Merci beaucoup pour ton aide !", K.GRATITUDE, "fr"),
        ("good luck with the exam tomorrow, you got this", K.ENCOURAGEMENT, "en"),
        ("Bon courage pour la suite !", K.ENCOURAGEMENT, "fr"),
        (
            "FREE NITRO for everyone, claim your gift now https://dlscord-gift.com/claim",
            K.SCAM,
            "en",
        ),
        ("lol ok", K.SOCIAL, "und"),
    ],
)
def test_obvious_kinds(
    analyzer: LocalAnalyzer, text: str, kind: MessageKind, language: str
) -> None:
    analysis = analyze(analyzer, text)
    assert analysis.kind is kind, analysis.kind_scores
    assert analysis.language == language
    assert analysis.analyzer is AnalyzerName.LOCAL
    assert analysis.model == analyzer.version
    assert set(analysis.kind_scores) == set(MessageKind)
    assert all(0.0 <= score <= 1.0 for score in analysis.kind_scores.values())


def test_toxic_insults_are_flagged_in_english_and_french(analyzer: LocalAnalyzer) -> None:
    english = analyze(analyzer, "shut up you stupid bitch, nobody wants you here")
    french = analyze(analyzer, "ferme ta gueule espèce de connard")
    for analysis in (english, french):
        assert analysis.kind is K.TOXIC, analysis.kind_scores
        assert analysis.moderation.toxicity >= 0.5
        assert analysis.sentiment is not Sentiment.POSITIVE
    polite = analyze(analyzer, "Could you share the link to the documentation please?")
    assert polite.moderation.toxicity < 0.5


def test_sentiment(analyzer: LocalAnalyzer) -> None:
    happy = analyze(analyzer, "I love the new version, everything is so fast and smooth now!")
    angry = analyze(analyzer, "This update is terrible, everything is slow and I hate it")
    assert happy.sentiment is Sentiment.POSITIVE
    assert happy.sentiment_score > 0
    assert angry.sentiment is Sentiment.NEGATIVE
    assert angry.sentiment_score < 0


def test_answers_in_request_order(analyzer: LocalAnalyzer) -> None:
    texts = [
        "Thanks a lot, that fixed it!",
        "how do I install the nvidia drivers on ubuntu 22.04",
        "lol ok",
        "The app crashes every time I open the settings page after the last update",
    ]
    together = analyzer.analyze_batch([request(text, n=n) for n, text in enumerate(texts)])
    alone = [analyze(analyzer, text).kind for text in texts]
    assert [outcome.analysis.kind for outcome in together] == alone


async def test_analyze_runs_in_a_thread_with_the_same_answers(analyzer: LocalAnalyzer) -> None:
    requests = [request("Merci beaucoup pour ton aide !"), request("lol ok", n=1)]
    outcomes = await analyzer.analyze(requests)
    assert [o.analysis for o in outcomes] == [o.analysis for o in analyzer.analyze_batch(requests)]


def test_bots_are_never_insights(analyzer: LocalAnalyzer) -> None:
    texts = [
        "The app crashes every time I open the settings page after the last update",
        "how do I install the nvidia drivers on ubuntu 22.04",
        "Version 2.4 is now available: faster sync, dark mode and many bug fixes",
    ]
    outcomes = analyzer.analyze_batch(
        [request(text, n=n, author_is_bot=True) for n, text in enumerate(texts)]
    )
    kinds = [outcome.analysis.kind for outcome in outcomes]
    assert all(kind in (K.ANNOUNCEMENT, K.SOCIAL) for kind in kinds)
    assert kinds[2] is K.ANNOUNCEMENT
    assert all(outcome.embedding is None for outcome in outcomes)


LONG_COMPLAINT = (
    "Honestly the new interface is terrible, everything is slower and harder to find than"
    " before the redesign"
)


def test_nothing_is_embedded_inline_by_default(
    analyzer: LocalAnalyzer, embedder: CountingEmbedder
) -> None:
    outcomes = analyzer.analyze_batch(
        [
            request(LONG_COMPLAINT),
            request("lol ok", n=1),
            request("how do I install the nvidia drivers on ubuntu 22.04", n=2),
            request(LONG_PROBLEM, n=3),
        ]
    )
    # Insight messages are left to the topic placer, which embeds them when it is quiet.
    assert embedder.texts == []
    assert [outcome.embedding for outcome in outcomes] == [None] * 4
    assert [outcome.analysis.kind for outcome in outcomes] == [
        K.COMPLAINT,
        K.SOCIAL,
        K.QUESTION,
        K.PROBLEM,
    ]


def test_insights_are_embedded_inline_when_asked(
    model: LocalModel, embedder: CountingEmbedder
) -> None:
    analyzer = LocalAnalyzer(model=model, embedder=embedder, embed_inline=True)
    outcomes = analyzer.analyze_batch(
        [
            request(LONG_COMPLAINT),
            request("lol ok", n=1),
            request("Thanks a lot, that fixed it!", n=2),
            request("how do I install the nvidia drivers on ubuntu 22.04", n=3),
            request(LONG_COMPLAINT, n=4, author_is_bot=True),
            request(LONG_PROBLEM, n=5),
        ]
    )
    assert embedder.texts == [
        LONG_COMPLAINT,
        "how do I install the nvidia drivers on ubuntu 22.04",
        LONG_PROBLEM,
    ]
    assert outcomes[0].analysis.kind is K.COMPLAINT
    embedding = outcomes[0].embedding
    assert embedding is not None
    assert embedding.shape == (384,)
    assert abs(float(np.linalg.norm(embedding)) - 1.0) < 1e-3
    assert [outcome.embedding is None for outcome in outcomes] == [
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    assert outcomes[3].analysis.kind is K.QUESTION
    assert outcomes[5].analysis.kind is K.PROBLEM


def test_refining_with_known_embeddings_gives_the_inline_analysis(
    model: LocalModel, embedder: CountingEmbedder
) -> None:
    requests = [
        request(text, n=n)
        for n, text in enumerate(
            [
                LONG_COMPLAINT,
                LONG_PROBLEM,
                "lol ok",
                "It would be great if you could add dark mode to the dashboard",
                "I love the new version, everything is so fast and smooth now!",
                "is there a way to export my data",
            ]
        )
    ]
    inline = LocalAnalyzer(model=model, embedder=embedder, embed_inline=True)
    expected = inline.analyze_batch(requests)
    deferred = LocalAnalyzer(model=model, embedder=embedder)
    provisional = deferred.analyze_batch(requests)
    assert all(outcome.embedding is None for outcome in provisional)
    vectors = embedder.inner.embed([r.text for r in requests])

    refined = deferred.refine_batch(requests, vectors)

    assert [o.analysis for o in refined] == [o.analysis for o in expected]
    for got, want in zip(refined, expected, strict=True):
        assert (got.embedding is None) == (want.embedding is None)
    with pytest.raises(ValueError, match="6 requests but 2 embeddings"):
        deferred.refine_batch(requests, vectors[:2])


def test_empty_and_odd_texts(analyzer: LocalAnalyzer, embedder: CountingEmbedder) -> None:
    outcomes = analyzer.analyze_batch(
        [request(""), request("   \n", n=1), request("\0\0", n=2), request("🎉🎉🎉", n=3)]
    )
    assert [outcome.analysis.kind for outcome in outcomes[:3]] == [K.SOCIAL] * 3
    assert all(outcome.analysis.language == "und" for outcome in outcomes)
    assert embedder.texts == []
    assert analyzer.analyze_batch([]) == []


def test_reply_to_a_question_with_instructions_is_an_answer(analyzer: LocalAnalyzer) -> None:
    analysis = analyze(
        analyzer,
        "you can run sudo ubuntu-drivers autoinstall and reboot",
        context=("how do I install the nvidia drivers",),
    )
    assert analysis.kind is K.ANSWER, analysis.kind_scores
