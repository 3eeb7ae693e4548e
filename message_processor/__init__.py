"""Platform-neutral answering: locks, context, model calls, errors."""

from message_processor.base import MessageProcessor, StopOutcome

__all__ = ["MessageProcessor", "StopOutcome"]
