"""The demo customer app at /demo (only with `hal serve --demo`): sample users whose
`user_hash` the server computes, as a customer's backend would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from hal.api.deps import DatabaseDep
from hal.domain.errors import NotFound
from hal.domain.verification import compute_user_hash
from hal.services.projects import get_project

DEMO_APP_ID = "demo"
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent.parent / "web" / "templates")
router = APIRouter(prefix="/demo", include_in_schema=False)

USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "user_id": "demo-alice",
        "email": "alice@acme.com",
        "name": "Alice Martin",
        "metadata": {"plan": "pro", "role": "admin"},
        "companies": [{"id": "acme", "name": "Acme Inc", "stage": "Trial"}],
    },
    "bob": {
        "user_id": "demo-bob",
        "email": "bob@globex.com",
        "name": "Bob Chen",
        "metadata": {"plan": "starter", "role": "developer"},
        "companies": [{"id": "globex", "name": "Globex", "stage": "Qualified"}],
    },
    "carol": {
        "user_id": "demo-carol",
        "email": "carol@initech.com",
        "name": "Carol Diaz",
        "metadata": {"plan": "pro", "role": "consultant"},
        "companies": [
            {"id": "initech", "name": "Initech", "stage": "Trial"},
            {"id": "umbrella", "name": "Umbrella Corp", "stage": "Lead"},
        ],
    },
}


@router.get("")
async def demo_page(request: Request) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "demo.html", {"app_id": DEMO_APP_ID, "users": USERS})


@router.get("/identity/{user}")
async def demo_identity(user: str, db: DatabaseDep) -> dict[str, Any]:
    """What the customer's backend would render into the page for a signed-in user."""
    sample = USERS.get(user)
    if sample is None:
        raise NotFound("unknown_user", f"no sample user {user!r}", field="user")
    project = await db.transaction(lambda s: get_project(session=s, app_id=DEMO_APP_ID))
    first = sample["companies"][0]
    return {
        "identify": {
            "user_id": sample["user_id"],
            "email": sample["email"],
            "name": sample["name"],
            "metadata": sample["metadata"],
            "company": {"id": first["id"], "name": first["name"], "stage": first["stage"]},
            "company_ids": [c["id"] for c in sample["companies"]],
            "user_hash": compute_user_hash(project.identity_secret, sample["user_id"]),
            "stage_mode": "if_empty",
        },
        "companies": sample["companies"],
    }
