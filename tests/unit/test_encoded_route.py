"""EncodedRoute: a model the endpoint built is encoded once by its own serializer, in a
router included in the app as the widget routes are (FastAPI would validate it against the
route's model first, then encode it)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from hal.api.body import EncodedRoute


class Answer(BaseModel):
    count: int = Field(ge=0)


class Detailed(Answer):
    note: str


def app_with(router: APIRouter) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


async def test_an_included_routes_model_is_encoded_without_validation():
    router = APIRouter(prefix="/api", route_class=EncodedRoute)

    @router.post("/answer", response_model=Answer, status_code=202)
    async def answer(body: dict[str, int]) -> Answer:
        """Answers."""
        # FastAPI would validate it as the route's model (dropping `note`), then encode that.
        return Detailed(count=body["n"], note="built")

    async with app_with(router) as client:
        response = await client.post("/api/answer", json={"n": 3})
        assert (response.status_code, response.json()) == (202, {"count": 3, "note": "built"})
        document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/api/answer"]["post"]
    assert operation["summary"] == "Answer" and operation["description"] == "Answers."
    assert operation["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
    assert "Answer" in str(operation["responses"]["202"])


async def test_other_answers_go_on_as_fastapi_serves_them():
    router = APIRouter(prefix="/api", route_class=EncodedRoute)

    @router.post("/echo")
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    async with app_with(router) as client:
        assert (await client.post("/api/echo", json={"n": 3})).json() == {"n": 3}
