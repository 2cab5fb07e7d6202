"""The data model; importing this package registers every table on the metadata."""

from webapp.models.batch import PROVIDER_RUNNING, PROVIDER_TERMINAL, BatchStatus, ProviderBatch
from webapp.models.installation import Installation
from webapp.models.job import (
    ACTIVE_JOB_STATUSES,
    DEFAULT_ENDPOINT,
    ENDPOINTS,
    TERMINAL_JOB_STATUSES,
    BatchJob,
    EventKind,
    JobEvent,
    JobStatus,
)
from webapp.models.request import BatchRequest, BatchResponse, RequestStatus, request_rows, request_states
from webapp.models.user import ApiToken, Role, User, UserSession

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "DEFAULT_ENDPOINT",
    "ENDPOINTS",
    "PROVIDER_RUNNING",
    "PROVIDER_TERMINAL",
    "TERMINAL_JOB_STATUSES",
    "BatchJob",
    "BatchRequest",
    "BatchResponse",
    "BatchStatus",
    "EventKind",
    "Installation",
    "JobEvent",
    "JobStatus",
    "ProviderBatch",
    "RequestStatus",
    "ApiToken",
    "Role",
    "User",
    "UserSession",
    "request_rows",
    "request_states",
]
