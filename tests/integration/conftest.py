"""Integration fixtures: the real app on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from hal.app import create_app
from hal.config import Settings
from hal.db.engine import Database
from hal.db.models import (
    Company,
    Contact,
    ContactCompany,
    Deal,
    Event,
    Project,
    StageChange,
    Visitor,
)
from tests.factories import TestProject, identify_payload, make_project, make_token


class WidgetClient:
    """The widget routes over the ASGI app, with one helper per route."""

    def __init__(self, http: httpx.AsyncClient, app: FastAPI) -> None:
        self.http, self.app = http, app

    async def post(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return await self.http.post(f"/api/widget/{path}", json=body, headers=headers)

    async def identify(
        self, project: TestProject, token: str | None = None, **fields: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.post("identify", identify_payload(project, **fields), **headers)

    async def set_properties(
        self, project: TestProject, visitor_id: str, properties: Any, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = {"app_id": project.app_id, "visitor_id": visitor_id, "properties": properties}
        return await self.post("set-properties", body, **headers)

    async def call(
        self, route: str, project: TestProject, visitor_id: str, token: str | None = None, **body
    ) -> httpx.Response:
        """Any widget route: `app_id` and `visitor_id` added to `body`."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        payload = {"app_id": project.app_id, "visitor_id": visitor_id, **body}
        return await self.post(route, payload, **headers)


@pytest.fixture(scope="session")
async def widget(database: Database) -> AsyncIterator[WidgetClient]:
    app = create_app(Settings(database_url=database.url), database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hal.test") as http:
        yield WidgetClient(http, app)


@pytest.fixture
def new_project(database: Database) -> Callable[..., Awaitable[TestProject]]:
    async def factory(**settings: Any) -> TestProject:
        return await make_project(database, **settings)

    return factory


@pytest.fixture
async def project(new_project: Callable[..., Awaitable[TestProject]]) -> TestProject:
    return await new_project()


class Inspector:
    """Read-only look at what a project holds, for assertions (no HTTP, no domain code)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def _rows(self, query: Any) -> list[Any]:
        async with self.database.sessionmaker() as session:
            return list((await session.execute(query)).scalars())

    async def contacts(self, app_id: str) -> list[Any]:
        return await self._rows(
            select(Contact).join(Project).where(Project.app_id == app_id).order_by(Contact.id)
        )

    async def companies(self, app_id: str) -> list[Any]:
        return await self._rows(
            select(Company).join(Project).where(Project.app_id == app_id).order_by(Company.id)
        )

    async def links(self, app_id: str) -> list[tuple[int, str]]:
        async with self.database.sessionmaker() as session:
            rows = await session.execute(
                select(ContactCompany.contact_id, Company.external_id)
                .join(Company, Company.id == ContactCompany.company_id)
                .join(Project, Project.id == Company.project_id)
                .where(Project.app_id == app_id)
                .order_by(ContactCompany.contact_id, Company.external_id)
            )
            return [(contact_id, company) for contact_id, company in rows]

    async def visitor(self, app_id: str, visitor_id: str) -> Any:
        rows = await self._rows(
            select(Visitor)
            .join(Project)
            .where(Project.app_id == app_id, Visitor.visitor_key == visitor_id)
        )
        return rows[0] if rows else None

    async def stage_history(self, app_id: str, company_id: str) -> list[Any]:
        return await self._rows(
            select(StageChange)
            .join(Company, Company.id == StageChange.company_id)
            .join(Project, Project.id == Company.project_id)
            .where(Project.app_id == app_id, Company.external_id == company_id)
            .order_by(StageChange.id)
        )

    async def events(self, app_id: str, name: str | None = None) -> list[Any]:
        query = select(Event).join(Project).where(Project.app_id == app_id).order_by(Event.id)
        if name is not None:
            query = query.where(Event.name == name)
        return await self._rows(query)

    async def deals(self, app_id: str) -> list[Any]:
        return await self._rows(
            select(Deal)
            .join(Company, Company.id == Deal.company_id)
            .join(Project, Project.id == Company.project_id)
            .where(Project.app_id == app_id)
            .order_by(Deal.id)
        )


@pytest.fixture(scope="session")
def inspect(database: Database) -> Inspector:
    return Inspector(database)


class TeamClient:
    """The team API of one project, with its bearer token."""

    def __init__(self, http: httpx.AsyncClient, project: TestProject, token: str) -> None:
        self.http, self.project, self.token = http, project, token

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        url = f"/api/projects/{self.project.app_id}{path}"
        clean = {k: v for k, v in params.items() if v is not None}
        return await self.http.get(url, params=clean, headers=self._headers(token))

    async def post(self, path: str, body: Any = None, token: str | None = None) -> httpx.Response:
        url = f"/api/projects/{self.project.app_id}{path}"
        return await self.http.post(url, json=body, headers=self._headers(token))

    async def patch(self, path: str, body: Any, token: str | None = None) -> httpx.Response:
        url = f"/api/projects/{self.project.app_id}{path}"
        return await self.http.patch(url, json=body, headers=self._headers(token))


@pytest.fixture
async def team(widget: WidgetClient, database: Database, project: TestProject) -> TeamClient:
    return TeamClient(widget.http, project, await make_token(database, project))


@pytest.fixture
def team_for(widget: WidgetClient, database: Database):
    async def factory(project: TestProject) -> TeamClient:
        return TeamClient(widget.http, project, await make_token(database, project))

    return factory
