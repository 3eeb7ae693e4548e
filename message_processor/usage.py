"""What model calls cost: recorded per person and thread, and settled against the budget."""

from __future__ import annotations

from base_client import Message
from database import Database
from message_processor.fair_share import BudgetLedger, Reservation
from observability import Stats


class UsageMixin:
    db: Database
    stats: Stats
    budget: BudgetLedger | None
    reservations: dict[tuple[str, str], Reservation]

    def hold_for_request(self, message: Message, input_estimate: int) -> None:
        """The request is built: its reservation now holds what the request will cost."""
        reservation = self.reservations.get((message.channel_id, message.message_id))
        if reservation is not None and self.budget is not None:
            self.budget.adjust(reservation, input_estimate)

    async def record_usage(
        self, message: Message, model: str, kind: str, input_tokens: int, output_tokens: int
    ) -> None:
        """Tokens as the API reported them, for the person's usage and budget (the answer's
        reservation settles by what was spent)."""
        self.stats.tokens(model, kind, input_tokens, output_tokens)
        await self.db.record_usage(
            message.user_id, message.channel_id, message.thread_id, model, kind, input_tokens, output_tokens
        )
        if self.budget is not None:
            reservation = self.reservations.get((message.channel_id, message.message_id))
            self.budget.spent(message.user_id, reservation, input_tokens + output_tokens)
