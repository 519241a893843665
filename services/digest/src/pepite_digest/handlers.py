"""What the digest service does with each consumed topic."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pepite_contracts import DigestRequested, Event, MemberConsentChanged, MemberErased
from pepite_digest.announce import announce_digest
from pepite_digest.consent import ConsentRepository
from pepite_digest.privacy import MemberDataOwner
from pepite_digest.requests_repository import DigestRequestRepository, RequestOutcome
from pepite_digest.service import DigestService, EmptyPeriodError
from pepite_kit import EventPublisher
from pepite_kit.consumer import TRANSIENT_ERRORS

logger = logging.getLogger(__name__)


class MemberEventsHandler:
    """Keeps consent flags current and carries out withdrawals and erasures.

    Data allowed by a flag that is now off is deleted at once: "no consent, no journal"
    holds for what is already stored, not only for what comes next. Events are applied
    in order; an erasure leaves every flag off as of its request, so a replayed older
    consent does not turn anything back on.
    """

    def __init__(self, consents: ConsentRepository, owners: Sequence[MemberDataOwner]) -> None:
        self._consents = consents
        self._owners = owners

    async def __call__(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, MemberConsentChanged):
                change = event.payload
                await self._consents.record([change])
                # The stored flags, not the event's: an older replayed change must not
                # delete what a newer consent allows.
                flags = await self._consents.flags(change.member_id)
                for owner in self._owners:
                    await owner.consent_withdrawn(change.community_id, change.member_id, flags)
            elif isinstance(event, MemberErased):
                erasure = event.payload
                for owner in self._owners:
                    await owner.erase(erasure)
                await self._consents.erase(erasure)
                logger.info("member erased from digests", extra={"member_id": erasure.member_id})


class DigestRequestHandler:
    """Builds the digests asked for through the API, stores and announces them.

    Each request ends ``done``, ``empty`` or ``failed``: an invalid period or a digest
    that cannot be built fails the request, not the consumer. Only the infrastructure
    being away is raised, for the loop to retry. A replayed request that already has
    its outcome is left alone; one replayed after a crash before its outcome was
    recorded is built again and announced with the same event id.
    """

    def __init__(
        self,
        service: DigestService,
        requests: DigestRequestRepository,
        publisher: EventPublisher,
        *,
        notifications_topic: str,
    ) -> None:
        self._service = service
        self._requests = requests
        self._publisher = publisher
        self._topic = notifications_topic

    async def __call__(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, DigestRequested):
                await self._build(event)

    async def _build(self, event: DigestRequested) -> None:
        request = event.payload
        if await self._requests.finished(request.request_id):
            return
        log = {"request": request.request_id, "community": event.community_id}
        try:
            digest = await self._service.community_digest(
                event.community_id, request.first, request.last
            )
        except EmptyPeriodError as empty:
            await self._requests.finish(event, RequestOutcome.EMPTY, error=str(empty))
            return
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:
            # ValueError for an invalid period; anything else is logged in full.
            if not isinstance(error, ValueError):
                logger.exception("requested digest failed", extra=log)
            await self._requests.finish(event, RequestOutcome.FAILED, error=str(error))
            return
        await announce_digest(self._publisher, self._topic, digest, cause=request.request_id)
        await self._requests.finish(event, RequestOutcome.DONE, digest_id=digest.digest_id)
        logger.info("requested digest published", extra={**log, "digest": digest.digest_id})
