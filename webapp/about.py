"""What the service is called, its version and where its files are: read by the app, the API and the pages."""

from pathlib import Path

__version__ = "0.1.0"
SERVICE_NAME = "ai-batch-processor"
ROOT = Path(__file__).resolve().parent.parent
