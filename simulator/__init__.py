"""A simulator of LLM providers' batch APIs, served over HTTP, for the app's embedded default and for tests.

It keeps its state in a directory shared by every process serving it (``store``), moves batches along by
elapsed time, answers as the real services would (the OpenAI dialect lives in ``simulator.openai``, Anthropic's in
``simulator.anthropic``), and can be told to misbehave (``faults``, ``markers``), in either dialect alike.
``python -m simulator`` serves it alone.
"""

from .anthropic import bp as anthropic_blueprint
from .app import ANTHROPIC_URL_PREFIX, URL_PREFIX, create_app
from .openai import bp as openai_blueprint
from .openai import is_success, simulated_output, simulated_response
from .texts import prompt_tokens, simulated_text

__all__ = [
    "ANTHROPIC_URL_PREFIX",
    "URL_PREFIX",
    "anthropic_blueprint",
    "create_app",
    "is_success",
    "openai_blueprint",
    "prompt_tokens",
    "simulated_output",
    "simulated_response",
    "simulated_text",
]
