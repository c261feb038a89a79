"""The `hal` command line, grouped as `hal --help` shows it.

Run:       serve, worker, migrate
Configure: projects create|update|show|rotate-secret, tokens create|revoke,
           agents create|update|list|remove|set-password, webhooks create
Data:      seed, import, contacts erase, purge
Develop:   db revision

Only `serve` and `migrate` change the schema; every other command refuses a database whose
schema is not this version's (hal.db.migrate.require_current).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from hal import cli_privacy
from hal.cli_common import DatabaseUrl, print_json, run_on_database, settings_for
from hal.config import Settings
from hal.db.engine import Database, Tx
from hal.db.migrate import head_revision, new_revision
from hal.db.models import Agent
from hal.domain.csv_import import ImportKind
from hal.domain.errors import HalError
from hal.domain.projects import CompanyClaims, TokenKind
from hal.domain.roles import Role
from hal.domain.stages import StageMode
from hal.domain.verification import VerificationMode, compute_user_hash
from hal.schemas import RECOMMENDED_IDENTIFY
from hal.services import projects as project_service
from hal.services.agents import (
    create_agent,
    list_agents,
    remove_agent,
    set_password,
    update_agent,
)
from hal.services.seed import refresh_statistics, seed

T = TypeVar("T")

app = typer.Typer(help="HAL widget identification service.", no_args_is_help=True)
projects_app = typer.Typer(help="Create and configure projects.", no_args_is_help=True)
tokens_app = typer.Typer(help="Team API tokens.", no_args_is_help=True)
RUN, CONFIGURE, DATA, DEVELOP = "Run", "Configure", "Data", "Develop"
app.add_typer(projects_app, name="projects", rich_help_panel=CONFIGURE)
agents_app = typer.Typer(help="Inbox logins.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens", rich_help_panel=CONFIGURE)
app.add_typer(agents_app, name="agents", rich_help_panel=CONFIGURE)
db_app = typer.Typer(help="Schema migrations for developers.", no_args_is_help=True)
app.add_typer(db_app, name="db", rich_help_panel=DEVELOP)


def _run(
    database_url: str | None,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    migrating: bool = False,
) -> T:
    """Run `work` in one transaction (see run_on_database)."""
    return run_on_database(database_url, lambda db: db.transaction(work), migrating=migrating)


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `24h`, `7d` (a bare number is seconds)."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text)
    if not match:
        raise typer.BadParameter("use a duration like 30m, 24h or 7d")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return timedelta(seconds=int(match.group(1)) * unit)


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


Name = Annotated[str | None, typer.Option("--name", help="Display name")]
Verification = Annotated[
    VerificationMode | None, typer.Option("--identity-verification", help="Default: enabled")
]
Mode = Annotated[StageMode | None, typer.Option("--stage-mode", help="Default: overwrite")]
Stages = Annotated[
    str | None, typer.Option("--stages", help="Ordered pipeline, comma-separated: A,B,C")
]
Origins = Annotated[
    list[str] | None,
    typer.Option("--allowed-origin", help="Browser origin allowed to call the widget routes"),
]
ProtectedKeys = Annotated[
    list[str] | None,
    typer.Option("--protected-key", help="Metadata key only signed claims or the team API write"),
]
Claims = Annotated[
    CompanyClaims | None,
    typer.Option(
        "--company-claims",
        help="open (default) or signed: link companies only from an identity_token's claim",
    ),
]


EventRetention = Annotated[
    int | None,
    typer.Option("--event-retention-days", help="Purge tracked events older than this; 0 unsets"),
]
ConversationRetention = Annotated[
    int | None,
    typer.Option(
        "--conversation-retention-days",
        help="Purge closed conversations quiet for this many days; 0 unsets",
    ),
]


def _project_settings(
    name: str | None,
    verification: VerificationMode | None,
    mode: StageMode | None,
    stages: str | None,
    origins: list[str] | None,
    protected: list[str] | None,
    company_claims: CompanyClaims | None,
    event_retention_days: int | None = None,
    conversation_retention_days: int | None = None,
) -> project_service.ProjectSettings:
    return project_service.ProjectSettings(
        event_retention_days=event_retention_days,
        conversation_retention_days=conversation_retention_days,
        name=name,
        identity_verification=verification,
        stage_mode=mode,
        stages=_split([stages]) if stages is not None else None,
        allowed_origins=_split(origins),
        protected_keys=_split(protected),
        company_claims=company_claims,
    )


@projects_app.command("create")
def projects_create(
    name: Name = None,
    app_id: Annotated[str | None, typer.Option("--app-id", help="Default: generated")] = None,
    identity_verification: Verification = None,
    stage_mode: Mode = None,
    stages: Stages = None,
    allowed_origin: Origins = None,
    protected_key: ProtectedKeys = None,
    company_claims: Claims = None,
    event_retention_days: EventRetention = None,
    conversation_retention_days: ConversationRetention = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a project and print it, identity_secret included (shown this once)."""
    changes = _project_settings(
        name, identity_verification, stage_mode, stages, allowed_origin, protected_key,
        company_claims, event_retention_days, conversation_retention_days,
    )  # fmt: skip

    async def work(session: AsyncSession) -> dict[str, Any]:
        project = await project_service.create_project(
            session=session, app_id=app_id, settings=changes
        )
        return project_service.describe_project(project, include_secret=True)

    print_json(_run(database_url, work))


@projects_app.command("update")
def projects_update(
    app_id: str,
    name: Name = None,
    identity_verification: Verification = None,
    stage_mode: Mode = None,
    stages: Stages = None,
    allowed_origin: Origins = None,
    protected_key: ProtectedKeys = None,
    company_claims: Claims = None,
    event_retention_days: EventRetention = None,
    conversation_retention_days: ConversationRetention = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a project's settings and print it."""
    changes = _project_settings(
        name, identity_verification, stage_mode, stages, allowed_origin, protected_key,
        company_claims, event_retention_days, conversation_retention_days,
    )  # fmt: skip

    async def work(session: AsyncSession) -> dict[str, Any]:
        project = await project_service.update_project(
            session=session, app_id=app_id, settings=changes
        )
        return project_service.describe_project(project, include_secret=False)

    print_json(_run(database_url, work))


@projects_app.command("show")
def projects_show(app_id: str, database_url: DatabaseUrl = None) -> None:
    """Print a project's settings (not its secret)."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        project = await project_service.get_project(session=session, app_id=app_id)
        return project_service.describe_project(project, include_secret=False)

    print_json(_run(database_url, work))


@projects_app.command("rotate-secret")
def projects_rotate_secret(
    app_id: str,
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old secret keeps verifying")
    ] = "24h",
    revoke_sessions: Annotated[
        bool,
        typer.Option("--revoke-sessions", help="Also end every widget session token at once"),
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue a new identity secret; print it once."""
    grace_period = parse_duration(grace)

    async def work(session: AsyncSession) -> dict[str, Any]:
        project = await project_service.rotate_secret(
            session=session, app_id=app_id, grace=grace_period, revoke_sessions=revoke_sessions
        )
        return project_service.describe_project(project, include_secret=True)

    print_json(_run(database_url, work))


@tokens_app.command("create")
def tokens_create(
    app_id: Annotated[str, typer.Option("--app-id")],
    admin: Annotated[
        bool, typer.Option("--admin", help="Also project settings and secrets (admin API)")
    ] = False,
    label: Annotated[
        str | None, typer.Option("--label", help="What it is for, shown in the token list")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API token for one project and print it once."""
    kind = TokenKind.ADMIN if admin else TokenKind.TEAM

    async def work(session: AsyncSession) -> dict[str, Any]:
        issued = await project_service.create_api_token(
            session=session, app_id=app_id, kind=kind, label=label
        )
        return {"token": issued.token, "app_id": app_id, "scope": kind.value,
                "id": issued.row.id, "label": issued.row.label}  # fmt: skip

    print_json(_run(database_url, work))


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]


def _read_password(from_stdin: bool) -> str:
    """From standard input (scripts), else a hidden prompt; never from the command line."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


RoleOption = Annotated[
    Role | None, typer.Option("--role", help="agent or admin (default: the first is admin)")
]


def _agent_json(agent: Agent, app_id: str) -> dict[str, Any]:
    return {"id": agent.id, "app_id": app_id, "email": agent.email, "name": agent.name,
            "role": agent.role}  # fmt: skip


@agents_app.command("create")
def agents_create(
    app_id: Annotated[str, typer.Option("--app-id")],
    email: Annotated[str, typer.Option("--email")],
    password_stdin: PasswordStdin = False,
    name: Name = None,
    role: RoleOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add an inbox login; the password comes from standard input, never the command line."""
    password = _read_password(password_stdin)

    async def work(session: AsyncSession) -> dict[str, Any]:
        agent = await create_agent(
            session=session, app_id=app_id, email=email, password=password, name=name, role=role
        )
        return _agent_json(agent, app_id)

    print_json(_run(database_url, work))


@agents_app.command("update")
def agents_update(
    app_id: Annotated[str, typer.Option("--app-id")],
    email: Annotated[str, typer.Option("--email")],
    role: RoleOption = None,
    name: Name = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change an agent's role or name (the last admin of a project stays an admin)."""
    changes: dict[str, Any] = {"role": role, "name": name}

    async def work(session: AsyncSession) -> dict[str, Any]:
        agent = await update_agent(
            session=session,
            app_id=app_id,
            email=email,
            changes={k: v for k, v in changes.items() if v is not None},
        )
        return _agent_json(agent, app_id)

    print_json(_run(database_url, work))


@agents_app.command("list")
def agents_list(
    app_id: Annotated[str, typer.Option("--app-id")], database_url: DatabaseUrl = None
) -> None:
    """A project's inbox logins with their roles."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        return [_agent_json(a, app_id) for a in await list_agents(session=session, app_id=app_id)]

    print_json(_run(database_url, work))


@agents_app.command("remove")
def agents_remove(
    app_id: Annotated[str, typer.Option("--app-id")],
    email: Annotated[str, typer.Option("--email")],
    database_url: DatabaseUrl = None,
) -> None:
    """Remove an inbox login; its sessions end at once."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        agent = await remove_agent(session=session, app_id=app_id, email=email)
        return {"removed": True, "app_id": app_id, "email": agent.email}

    print_json(_run(database_url, work))


@agents_app.command("set-password")
def agents_set_password(
    app_id: Annotated[str, typer.Option("--app-id")],
    email: Annotated[str, typer.Option("--email")],
    password_stdin: PasswordStdin = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Give an agent a new password (from standard input); its sessions end at once."""
    password = _read_password(password_stdin)

    async def work(session: AsyncSession) -> dict[str, Any]:
        agent = await set_password(session=session, app_id=app_id, email=email, password=password)
        return {"app_id": app_id, "email": agent.email, "sessions_ended": True}

    print_json(_run(database_url, work))


DEMO_APP_ID = "demo"


@app.command("seed", rich_help_panel=DATA)
def seed_command(
    app_id: Annotated[str, typer.Option("--app-id")],
    contacts: Annotated[int, typer.Option("--contacts", min=0, help="Seeded contacts wanted")],
    events_per_contact: Annotated[int, typer.Option("--events-per-contact", min=0)] = 10,
    database_url: DatabaseUrl = None,
) -> None:
    """Bulk-load seeded contacts, companies and events (benchmarks; idempotent by count)."""

    async def work(tx: Tx) -> dict[str, int]:
        return await seed(
            tx, app_id=app_id, contacts=contacts, events_per_contact=events_per_contact
        )

    result = run_on_database(database_url, lambda db: db.run(work))
    asyncio.run(refresh_statistics(settings_for(database_url).database_url))
    print_json(result)


@tokens_app.command("revoke")
def tokens_revoke(
    app_id: Annotated[str, typer.Option("--app-id")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API token, read from standard input so it stays out of shell history."""
    token = sys.stdin.readline().strip()

    async def work(session: AsyncSession) -> None:
        await project_service.revoke_api_token(session=session, app_id=app_id, token=token)

    _run(database_url, work)
    print_json({"revoked": True, "app_id": app_id})


DEMO_AGENT = ("agent@example.com", "demo-password")


def _ensure_demo_project(database_url: str | None) -> dict[str, Any]:
    async def work(session: AsyncSession) -> dict[str, Any]:
        try:
            project = await project_service.get_project(session=session, app_id=DEMO_APP_ID)
        except HalError:
            project = await project_service.create_project(
                session=session,
                app_id=DEMO_APP_ID,
                settings=project_service.ProjectSettings(name="Demo project"),
            )
            email, password = DEMO_AGENT
            await create_agent(
                session=session,
                app_id=DEMO_APP_ID,
                email=email,
                password=password,
                name="Demo agent",
                role=Role.ADMIN,
            )
        return project_service.describe_project(project, include_secret=True)

    return _run(database_url, work, migrating=True)


def _demo_banner(project: dict[str, Any], base_url: str) -> str:
    payload = {**RECOMMENDED_IDENTIFY, "app_id": project["app_id"]}
    payload["user_hash"] = compute_user_hash(project["identity_secret"], payload["user_id"])
    curl = (
        f"curl -s -X POST {base_url}/api/widget/identify "
        f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(payload))}"
    )
    return "\n".join(
        [
            "",
            f"  HAL demo project ready: app_id={project['app_id']}",
            f"  identity secret (keep it on your backend): {project['identity_secret']}",
            f"  API docs: {base_url}/docs",
            f"  Inbox: {base_url}/inbox  (log in as {DEMO_AGENT[0]} / {DEMO_AGENT[1]})",
            f"  Admin console: {base_url}/admin  (the same login: the demo agent is an admin)",
            f"  Demo customer app with the widget: {base_url}/demo",
            "  Try an identify:",
            "",
            f"  {curl}",
            "",
        ]
    )


@app.command(rich_help_panel=RUN)
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    database_url: DatabaseUrl = None,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 1,
    demo: Annotated[bool, typer.Option("--demo", help="Create and print a demo project")] = False,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Run migrations, then serve the API (uvicorn on uvloop and httptools)."""
    from hal.server import run as run_server

    settings = settings_for(database_url)
    os.environ["HAL_DATABASE_URL"] = settings.database_url  # for worker processes
    if demo:
        os.environ["HAL_DEMO"] = "true"
        typer.echo(
            _demo_banner(_ensure_demo_project(settings.database_url), f"http://{host}:{port}")
        )
        sys.stdout.flush()  # before the server's log lines, also when stdout is a pipe or a file
    else:
        _run(settings.database_url, _noop, migrating=True)
    run_server(settings, host=host, port=port, workers=workers, log_level=log_level)


async def _noop(_: AsyncSession) -> None:
    return None


@app.command("migrate", rich_help_panel=RUN)
def migrate_command(database_url: DatabaseUrl = None) -> None:
    """Bring the database schema up to date (hal serve does this at start)."""
    _run(database_url, _noop, migrating=True)
    print_json({"schema": "current", "revision": head_revision()})


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Option("-m", "--message")]) -> None:
    """Write the migration from the newest revision to the models, autogenerated (see
    hal.db.migrate); read it before committing."""
    typer.echo(asyncio.run(new_revision(message)))


webhooks_app = typer.Typer(
    help="Webhook endpoints (the admin API has the rest).", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks", rich_help_panel=CONFIGURE)


@webhooks_app.command("create")
def webhooks_create(
    app_id: Annotated[str, typer.Option("--app-id")],
    url: Annotated[str, typer.Option("--url", help="http(s) URL that receives the POSTs")],
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event", help="Change type to deliver (repeat); none: all but event.tracked"
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a webhook endpoint and print it as JSON, its secret included (shown this once)."""
    from hal.webhooks import endpoints as webhooks

    settings = settings_for(database_url)

    async def work(database: Database) -> dict[str, Any]:
        project = await database.transaction(
            lambda s: project_service.get_project(session=s, app_id=app_id)
        )
        endpoint = await webhooks.create_endpoint(
            db=database,
            project_id=project.id,
            url=url,
            events=_split(event) or [],
            allow_private=settings.webhooks_allow_private,
        )
        return webhooks.describe_endpoint(endpoint, include_secret=True)

    print_json(run_on_database(database_url, work))


@app.command("worker", rich_help_panel=RUN)
def worker_command(
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            envvar="HAL_WORKER_METRICS_PORT",
            help="With HAL_METRICS=true: serve the metrics on this port (for a worker that "
            "does not share PROMETHEUS_MULTIPROC_DIR with a `hal serve`)",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", envvar="HAL_WORKER_METRICS_HOST")
    ] = "127.0.0.1",
) -> None:
    """Deliver webhooks and run import jobs in this process (no HTTP); run as many as needed
    beside `hal serve`."""
    from hal import metrics
    from hal.logs import configure_logging

    settings = settings_for(database_url)
    configure_logging(settings.log_format, log_level)
    if settings.metrics:
        metrics.enable()
        if metrics_port is not None:
            metrics.serve_http(metrics_port, metrics_host)
    _run(settings.database_url, _noop)
    asyncio.run(_work(settings))


async def _work(settings: Settings) -> None:
    """`hal worker`: webhook delivery and import jobs until SIGTERM or SIGINT (the chunk of
    rows in hand is finished and its job's lease let go)."""
    import signal

    from hal import metrics
    from hal.services.import_jobs import ImportWorker
    from hal.webhooks.delivery import DeliveryOptions, DeliveryWorker

    database = Database(settings.database_url)
    metrics.instrument_pool(database.engine, idle_changed=database.idle_changed)  # if metrics on
    imports = ImportWorker.of(database, settings.model_copy(update={"import_worker": True}))
    delivery = DeliveryWorker(database, DeliveryOptions.of(settings), importing=imports.importing)

    def stop() -> None:
        delivery.stop_soon()
        imports.stopping.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    imports.start()
    try:
        await delivery.run()
    finally:
        await imports.stop()
        await database.dispose()
        metrics.process_exiting()


import_app = typer.Typer(help="Import contacts or companies from a CSV file.", no_args_is_help=True)
app.add_typer(import_app, name="import", rich_help_panel=DATA)

CsvFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV with a header row")
]
ImportAppId = Annotated[str, typer.Option("--app-id")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check and count without writing")]
ErrorsFile = Annotated[
    Path | None,
    typer.Option("--errors", help="Write every failed row here, with its line and an error"),
]
ColumnMap = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="COLUMN=FIELD pairs, comma-separated (repeatable): 'User ID=user_id,"
        "Plan=metadata.plan'; 'COLUMN=' skips the column",
    ),
]
KeepUnknown = Annotated[
    bool,
    typer.Option(
        "--keep-unknown-columns",
        help="Keep columns HAL has no field for as metadata (key: the name in lower case, "
        "'_' for anything but letters and digits: 'Phone Number' -> phone_number)",
    ),
]


def _import(
    kind: ImportKind,
    file: Path,
    app_id: str,
    dry_run: bool,
    errors: Path | None,
    database_url: str | None,
    column_map: list[str] | None = None,
    keep_unknown: bool = False,
) -> None:
    """Stream the file in chunks of rows; print one JSON line with the counts."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    from hal.domain.csv_header import parse_mapping
    from hal.services import import_jobs, imports

    settings = settings_for(database_url)
    options = import_jobs.ImportOptions(parse_mapping(column_map or []), keep_unknown)

    size = file.stat().st_size

    async def work(database: Database) -> dict[str, int]:
        with contextlib.ExitStack() as stack:
            binary = stack.enter_context(file.open("rb"))
            text = stack.enter_context(imports.open_text(binary))
            loaded = imports.read_import(
                kind, text, settings.limits, mapping=options.mapping,
                keep_unknown=options.keep_unknown,
            )  # fmt: skip
            on_failure = None
            if errors is not None:
                out = stack.enter_context(errors.open("w", newline="", encoding="utf-8"))
                on_failure = imports.failures_writer(out, loaded.header.columns)
            on_chunk = None
            if sys.stderr.isatty():
                progress = stack.enter_context(
                    Progress(
                        "[progress.description]{task.description}",
                        BarColumn(),
                        TaskProgressColumn(),
                        TimeRemainingColumn(),
                        console=Console(stderr=True),
                        transient=True,
                    )
                )
                task = progress.add_task(f"importing {kind}", total=size)

                def on_chunk() -> None:
                    progress.update(task, completed=binary.tell())

            counts = await import_jobs.import_file(
                database, app_id=app_id, file=loaded, dry_run=dry_run, limits=settings.limits,
                options=options, lease=timedelta(seconds=settings.import_lease_seconds),
                chunk_rows=settings.import_chunk_rows, on_failure=on_failure, on_chunk=on_chunk,
            )  # fmt: skip
        return counts.as_dict()

    typer.echo(json.dumps(run_on_database(database_url, work)))


@import_app.command("contacts")
def import_contacts(
    file: CsvFile,
    app_id: ImportAppId,
    dry_run: DryRun = False,
    errors: ErrorsFile = None,
    column_map: ColumnMap = None,
    keep_unknown: KeepUnknown = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Columns: user_id, email, name, company_id, company_name, stage, metadata.KEY, or
    their usual names in CRM exports (User ID, Email Address, Full Name, Company ID, ...)."""
    _import(ImportKind.CONTACTS, file, app_id, dry_run, errors, database_url, column_map,
            keep_unknown)  # fmt: skip


@import_app.command("companies")
def import_companies(
    file: CsvFile,
    app_id: ImportAppId,
    dry_run: DryRun = False,
    errors: ErrorsFile = None,
    column_map: ColumnMap = None,
    keep_unknown: KeepUnknown = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Columns: id, name, stage, metadata.KEY, or their usual names in CRM exports (Company
    ID, Company Name, Lifecycle Stage, ...)."""
    _import(ImportKind.COMPANIES, file, app_id, dry_run, errors, database_url, column_map,
            keep_unknown)  # fmt: skip


def main() -> None:
    app()


app.add_typer(cli_privacy.contacts_app, name="contacts", rich_help_panel=DATA)
app.command("purge", rich_help_panel=DATA)(cli_privacy.purge_command)
