"""A built-in simulator of OpenAI's Files and Batches HTTP API, used when no OpenAI key is configured.

The app mounts ``bp`` at ``/simulator/v1``; the engine reaches it with the official SDK over HTTP.
"""

from . import batches, control, files  # noqa: F401  (attach their routes to bp)
from .blueprint import bp
from .outputs import is_success, simulated_output
from .responses import simulated_response
from .standalone import create_simulator_app
from .texts import prompt_tokens, simulated_text

__all__ = ["bp", "create_simulator_app", "is_success", "prompt_tokens", "simulated_output",
           "simulated_response", "simulated_text"]
