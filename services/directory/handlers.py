"""Events from the three public streams into the read model. Each handler stores the net effect
of its events with set-based statements; the inbox and `as_of`/stream order make them
idempotent, so a redelivery or a rebuild from offset 0 ends in the same read model."""

from __future__ import annotations

from collections.abc import Sequence

from services.directory.domain.read_model import latest_ratings, review_changes
from services.directory.repository import DirectoryRepository
from shared.contracts import AGENT_UPSERTED
from shared.contracts.mls import AgentUpserted
from shared.messaging import Delivery, EventDispatcher
from shared.topics import Topic
from shared.uow import UnitOfWork

dispatcher = EventDispatcher("directory")


@dispatcher.on(AGENT_UPSERTED)
async def agent_upserted(event: AgentUpserted, uow: UnitOfWork) -> None:
    await DirectoryRepository(uow.conn).save_agent(
        event.agent_id, event.name, event.office_id, event.active
    )


@dispatcher.on_batch(Topic.RATINGS)
async def ratings_updated(deliveries: Sequence[Delivery], uow: UnitOfWork) -> None:
    """A rating that is not public keeps no numbers and takes the agent off every page."""
    ratings = latest_ratings(delivery.event for delivery in deliveries)
    await DirectoryRepository(uow.conn).save_ratings(list(ratings.values()))


@dispatcher.on_batch(Topic.REVIEWS_PUBLIC)
async def public_reviews(deliveries: Sequence[Delivery], uow: UnitOfWork) -> None:
    """A republication replaces the copy shown; a withdrawal (a moderator's, or the agent's
    stopping being public) removes it."""
    changes = review_changes(
        (delivery.event, delivery.envelope.time or uow.now) for delivery in deliveries
    )
    repo = DirectoryRepository(uow.conn)
    await repo.delete_reviews(sorted(changes.deletions))
    await repo.save_reviews(list(changes.upserts.values()))
