"""Dependencies injected into routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pepite_api.identities import IdentityRepository
from pepite_api.repository import StatusRepository
from pepite_kit import Database


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


DbDep = Annotated[Database, Depends(get_db)]


def get_status_repository(db: DbDep) -> StatusRepository:
    return StatusRepository(db)


StatusRepositoryDep = Annotated[StatusRepository, Depends(get_status_repository)]


def get_identity_repository(db: DbDep) -> IdentityRepository:
    return IdentityRepository(db)


IdentityRepositoryDep = Annotated[IdentityRepository, Depends(get_identity_repository)]
