"""A simulator of LLM providers' batch APIs, served over HTTP, for the app's embedded default and for tests.

It keeps its state in a directory shared by every process serving it (``store``), moves batches along by
elapsed time, answers as the real service would (the OpenAI dialect lives in ``simulator.openai``), and can be
told to misbehave (``faults``, ``markers``). ``python -m simulator`` serves it alone.
"""

from .app import URL_PREFIX, create_app
from .openai import bp as openai_blueprint
from .openai import is_success, simulated_output, simulated_response
from .texts import prompt_tokens, simulated_text

__all__ = [
    "URL_PREFIX",
    "create_app",
    "is_success",
    "openai_blueprint",
    "prompt_tokens",
    "simulated_output",
    "simulated_response",
    "simulated_text",
]
