"""The OpenAI dialect: the Files, Batches and Models API as the real service speaks it, errors and result files too."""

from . import batches, control, files, models  # noqa: F401  (attach their routes to bp)
from .blueprint import bp
from .outputs import is_success, simulated_output
from .responses import simulated_response

__all__ = ["bp", "is_success", "simulated_output", "simulated_response"]
