"""OpenAI access for the processor: plain request in, plain stream events out."""

from openai_client.client import OpenAIClient
from openai_client.events import (
    Citation,
    Completed,
    ContainerFile,
    FunctionCall,
    ModelError,
    ModelRequest,
    Reasoning,
    StreamEvent,
    TextDelta,
    ToolActivity,
)

__all__ = [
    "Citation",
    "Completed",
    "ContainerFile",
    "FunctionCall",
    "ModelError",
    "ModelRequest",
    "OpenAIClient",
    "Reasoning",
    "StreamEvent",
    "TextDelta",
    "ToolActivity",
]
