"""Consent changes and erasures, carried out around the storing of every batch.

Before a batch is stored, its erasures are recorded and carried out, its consent changes
applied, and its messages redacted for every erased member of its communities (read
from MongoDB for each batch, so what another consumer erased counts at once). After it
is stored, the erased members are read again: one erased by another consumer in
between is erased again here, which covers what this batch just wrote. Since an
erasure is recorded before it is carried out, every write of a member's data is either
seen by the erasure or followed by a check that sees the erasure.
"""

from __future__ import annotations

import logging

from pepite_classifier.analysis.llm.prompt import CacheKeys
from pepite_classifier.analysis.llm_repository import LlmRepository
from pepite_classifier.privacy import (
    AuthoredText,
    Erased,
    ErasedSet,
    carried_analysis_digest,
    forget_members,
    llm_cache_inputs,
    redact,
    texts_terms,
    topic_after_erasure,
    topic_uses,
)
from pepite_classifier.privacy_repository import NamingMessage, PrivacyRepository
from pepite_classifier.service import BatchWrites
from pepite_classifier.topics.repository import TopicRepository
from pepite_kit import Database

logger = logging.getLogger(__name__)


class PrivacyStage:
    """Applies consent changes and erasures, and keeps erased members out of every write.

    Args:
        db: The classifier's database.
        cache_keys: How the LLM analyzer keys its answer cache; answers about an erased
            member's texts are dropped from it. Without it the cache is left alone
            (nothing in it names anyone; its keys are digests of texts).
    """

    def __init__(self, db: Database, *, cache_keys: CacheKeys | None = None) -> None:
        self._store = PrivacyRepository(db)
        self._topics = TopicRepository(db)
        self._llm = LlmRepository(db)
        self._cache_keys = cache_keys

    async def before_store(self, writes: BatchWrites) -> ErasedSet:
        """Carry out the batch's erasures and consent changes, and redact its writes.

        Returns:
            The erased members known now, for :meth:`after_store`.
        """
        if writes.erasures:
            await self._store.record_erasures(writes.erasures.values())
        erased = await self._store.erased_in(writes.communities())
        redact(writes, erased)
        if writes.consents:
            await self._store.set_consents(writes.consents)
        for member_id in writes.erasures:
            who = erased.get(member_id)
            if who is not None:
                await self.erase(who)
        return erased

    async def after_store(self, writes: BatchWrites, known: ErasedSet) -> None:
        """Erase again whoever another consumer erased while this batch was stored."""
        if not writes.stores_people():
            return
        erased = await self._store.erased_in(writes.communities())
        for member_id, who in erased.members.items():
            if member_id not in known:
                await self.erase(who)

    async def erase(self, who: Erased) -> None:
        """Remove or anonymize everything stored about a member; harmless to repeat.

        What is derived from their texts goes first, their texts last: an erasure cut
        short is carried out again from the texts still there.
        """
        own, names = await self._store.authored(who)
        names |= await self._store.member_names(who.member_id)
        if own:
            await self._forget_answers(who, own)
            await self._topics.delete_embeddings([m.message_id for m in own])
            await self._relabel_topics(who, own)
            await self._store.anonymize_messages(who)
        naming = await self._store.naming(who)
        only = ErasedSet.of([who])
        rewrites = [
            NamingMessage(
                redacted,
                item.version_at,
                carried_analysis_digest(item.message, redacted, item.analysis_digest),
            )
            for item in naming
            if (redacted := forget_members(item.message, only, names=names)) is not item.message
        ]
        await self._store.rewrite(rewrites)
        await self._store.delete_member(who.member_id)
        await self._store.erasure_done(who.member_id)
        logger.info(
            "member erased",
            extra={
                "community_id": who.community_id,
                "pseudonym": who.pseudonym,
                "messages": len(own),
                "messages_naming": len(rewrites),
            },
        )

    async def _forget_answers(self, who: Erased, own: list[AuthoredText]) -> None:
        """Drop the LLM's cached answers about the member's texts."""
        if self._cache_keys is None:
            return
        parents = await self._store.texts(m.reply_to_id for m in own if m.reply_to_id)
        replies = await self._store.replies_to(who.community_id, [m.message_id for m in own])
        keys = {
            self._cache_keys.of(text, context)
            for text, context in llm_cache_inputs(own, parents, replies)
        }
        await self._llm.forget(keys)

    async def _relabel_topics(self, who: Erased, own: list[AuthoredText]) -> None:
        """Topics keep no keyword, name or sample only the member's messages gave them."""
        erased_terms = texts_terms(m.text for m in own)
        erased_messages = {m.message_id for m in own}
        topics = await self._topics.topics(who.community_id, active_only=False)
        used = [topic.id for topic in topics if topic_uses(topic, erased_terms)]
        remaining = (
            await self._topics.texts_in_topics(who.community_id, used, except_author=who.member_id)
            if used
            else {}
        )
        await self._topics.relabel(
            [
                changed
                for topic in topics
                if (
                    changed := topic_after_erasure(
                        topic,
                        erased_terms=erased_terms,
                        remaining_texts=remaining.get(topic.id, []),
                        erased_messages=erased_messages,
                    )
                )
                is not None
            ]
        )
