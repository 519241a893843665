"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pepite_api.deps import StateDep
from pepite_api.schemas import HealthStatus
from pepite_kit.http import run_checks
from pepite_kit.mongo import ping

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthStatus)
async def healthz() -> HealthStatus:
    """The process is up and serving."""
    return HealthStatus(status="ok", service="api", checks={})


@router.get("/readyz", response_model=HealthStatus, responses={503: {"model": HealthStatus}})
async def readyz(state: StateDep) -> JSONResponse:
    """MongoDB and the Kafka broker answer: requests can be served."""

    async def mongo_ok() -> bool:
        return await ping(state.db)

    async def kafka_ok() -> bool:
        return await state.publisher.broker_reachable()

    ok, checks = await run_checks({"mongodb": mongo_ok, "kafka": kafka_ok})
    body = HealthStatus(status="ready" if ok else "not ready", service="api", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
