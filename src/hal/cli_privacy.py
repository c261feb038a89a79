"""`hal contacts erase` and `hal purge`: the privacy commands, which work in many short
transactions (an erasure or a purge is bounded batches, never one long transaction)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import select

from hal.cli_common import DatabaseUrl, print_json, run_on_database
from hal.db.engine import Database
from hal.db.models import Contact
from hal.domain.errors import InvalidInput, NotFound
from hal.domain.limits import Limits
from hal.domain.validation import parse_email
from hal.services import erasure, retention
from hal.services.audit import CLI
from hal.services.projects import get_project

contacts_app = typer.Typer(help="Contacts: erase a person.", no_args_is_help=True)


@contacts_app.command("erase")
def contacts_erase(
    app_id: Annotated[str, typer.Option("--app-id")],
    email: Annotated[str | None, typer.Option("--email")] = None,
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    contact_id: Annotated[int | None, typer.Option("--contact-id")] = None,
    suppress: Annotated[
        bool, typer.Option("--suppress", help="Refuse this user_id and email from now on")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Erase one person (by email, user_id or contact id) and everything held about them."""
    given = [v for v in (email, user_id, contact_id) if v is not None]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of --email, --user-id, --contact-id")

    async def work(database: Database) -> dict[str, Any]:
        async def find(session: Any) -> Any:
            project = await get_project(session=session, app_id=app_id)
            query = select(Contact.id).where(
                Contact.project_id == project.id, Contact.erased_at.is_(None)
            )
            if email is not None:
                try:
                    key = parse_email(email, limits=Limits()).normalized
                except InvalidInput as exc:
                    raise InvalidInput(exc.code, exc.message, field="email") from None
                query = query.where(Contact.email_normalized == key)
            elif user_id is not None:
                query = query.where(Contact.user_id == user_id)
            else:
                query = query.where(Contact.id == contact_id)
            found = (await session.execute(query)).scalar_one_or_none()
            if found is None:
                raise NotFound("unknown_contact", "no contact like this in the project")
            return await erasure.start_erasure(
                session=session, project=project, contact_id=found, suppress=suppress, actor=CLI
            )

        started = await database.transaction(find)
        deleted = await erasure.finish_erasure(
            database, project_id=started.project_id, contact_id=started.contact_id
        )
        return {
            "erased": started.contact_id,
            "deleted_rows": deleted,
            "suppression": {"user_id_hash": started.user_id_hash, "email_hash": started.email_hash}
            if started.suppressed
            else None,
        }

    print_json(run_on_database(database_url, work))


def purge_command(database_url: DatabaseUrl = None) -> None:
    """Apply every project's event and conversation retention now (bounded batches), and
    finish erasures a stopped server left half done."""

    async def work(database: Database) -> dict[str, int]:
        return (await retention.purge(database)).as_dict()

    print_json(run_on_database(database_url, work))
