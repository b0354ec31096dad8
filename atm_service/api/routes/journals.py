"""Electronic journals as received: the list per ATM, and a whole day's file byte for byte."""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from atm_service.api.deps import RoleGuard, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.params import DbId
from atm_service.models.journals import JournalPublic
from atm_service.models.users import Role, User
from atm_service.services import fleet, journals

JournalReader = Annotated[User, Depends(RoleGuard(Role.ADMIN, Role.RECONCILER, Role.AUDITOR))]

router = APIRouter(
    prefix="/atms/{atm_id}/journals", tags=["journals"], responses=problems(401, 403)
)


@router.get(
    "",
    response_model=list[JournalPublic],
    summary="The ATM's journals with their size and line count",
    responses=problems(404),
)
def list_journals(atm_id: DbId, session: SessionDep, _user: JournalReader) -> list[JournalPublic]:
    return journals.list_journals(session, atm_id=atm_id)


@router.get(
    "/{name}",
    response_class=Response,
    summary="A business day's journal, exactly the bytes the ATM wrote",
    description="`Repr-Digest` carries the SHA-256 of the whole file (RFC 9530).",
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        },
        **problems(404, 422),
    },
)
def get_journal(atm_id: DbId, name: str, session: SessionDep, _user: JournalReader) -> Response:
    data = journals.get_journal(session, atm_id, name)
    atm = fleet.get_atm(session, atm_id=atm_id)
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={
            "Repr-Digest": f"sha-256=:{digest}:",
            "Content-Disposition": f'attachment; filename="{atm.terminal_id}_{name}.txt"',
        },
    )
