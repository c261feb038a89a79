"""`hal contacts erase` and `hal purge`: the privacy commands, which work in many short
transactions (an erasure or a purge is bounded batches, never one long transaction)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hal.cli_common import DatabaseUrl, print_json, run_on_database, settings_for
from hal.db.engine import Database
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
        project = await database.transaction(lambda s: get_project(session=s, app_id=app_id))
        person = erasure.Person(contact_id=contact_id, user_id=user_id, email=email)
        erased = await erasure.erase(
            database, project=project, person=person, suppress=suppress, actor=CLI
        )
        started = erased.started
        return {
            "erased": started.contact_id,
            "deleted_rows": erased.deleted_rows,
            "suppression": {"user_id_hash": started.user_id_hash, "email_hash": started.email_hash}
            if started.suppressed
            else None,
        }

    print_json(run_on_database(database_url, work))


def purge_command(database_url: DatabaseUrl = None) -> None:
    """Apply every project's event and conversation retention and the webhook delivery log's
    (HAL_WEBHOOK_LOG_RETENTION) now, in bounded batches, and finish erasures a stopped server
    left half done."""
    keep = settings_for(database_url).webhook_log_retention

    async def work(database: Database) -> dict[str, int]:
        return (await retention.purge(database, webhook_log=keep)).as_dict()

    print_json(run_on_database(database_url, work))
