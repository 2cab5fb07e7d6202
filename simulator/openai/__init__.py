"""The OpenAI dialect: the Files and Batches API as the real service speaks it, with its errors and result files."""

from . import batches, control, files  # noqa: F401  (attach their routes to bp)
from .blueprint import bp
from .outputs import is_success, simulated_output
from .responses import simulated_response

__all__ = ["bp", "is_success", "simulated_output", "simulated_response"]
