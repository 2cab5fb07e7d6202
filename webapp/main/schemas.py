"""Response shapes of GET / and GET /health for the OpenAPI document (the views build them as plain dicts)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from webapp.api.schemas import optional

Status = Literal["ok", "degraded", "down"]
STATUS = "ok: everything works; degraded: the queue or the workers do not (jobs wait); down: no database (503)."


class ServiceOut(BaseModel):
    service: Literal["ai-batch-processor"]
    version: str


class HealthStatus(BaseModel):
    """What anyone is told: the status alone."""

    model_config = ConfigDict(extra="forbid", title="HealthStatus")

    status: Status = Field(description=STATUS)


class DatabaseHealth(BaseModel):
    ok: bool
    backend: str = Field(description="postgresql or sqlite")
    error: str = optional(description="Only when it cannot be reached.")


class QueueHealth(BaseModel):
    ok: bool
    backend: Literal["redis", "embedded"]
    queued_jobs: int = optional(description="Jobs waiting in Redis.")
    error: str = optional(description="Only when Redis cannot be reached.")


class WorkerHealth(BaseModel):
    ok: bool
    mode: Literal["redis", "embedded"]
    running: bool = optional(description="embedded: whether the in-process worker runs.")
    count: int = optional(description="redis: workers with a heartbeat in the last 2 minutes.")
    last_heartbeat: str | None = optional(description="redis: the latest heartbeat, ISO 8601 in UTC.")
    error: str = optional(description="Only when Redis cannot be reached.")


class ProviderHealth(BaseModel):
    default: Literal["openai", "anthropic", "simulator", "simulator-anthropic"]
    label: str
    base_url: str
    api_key_configured: bool
    available: list[Literal["openai", "anthropic", "simulator", "simulator-anthropic"]]


class HealthReport(BaseModel):
    """What a signed-in user or a valid API token is told: each dependency too (never a key or a password)."""

    model_config = ConfigDict(title="HealthReport")

    status: Status = Field(description=STATUS)
    database: DatabaseHealth
    queue: QueueHealth
    workers: WorkerHealth
    provider: ProviderHealth


class HealthOut(RootModel[HealthReport | HealthStatus]):
    """HealthReport for a signed-in user or an API token (`Authorization: Bearer <token>`), HealthStatus for
    anyone else."""
