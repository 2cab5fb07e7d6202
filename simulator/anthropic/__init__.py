"""The Anthropic dialect: the Message Batches and Models API as the real service speaks them (requests sent inline,
results as JSONL), with Anthropic's error shapes and ``x-api-key`` authentication."""

from . import batches, models  # noqa: F401  (attach their routes to bp)
from .blueprint import bp
from .messages import simulated_message

__all__ = ["bp", "simulated_message"]
