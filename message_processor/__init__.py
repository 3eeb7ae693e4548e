"""Platform-neutral answering: locks, context, model calls, errors."""

from message_processor.base import MessageProcessor

__all__ = ["MessageProcessor"]
