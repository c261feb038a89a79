"""The tables, as SQLAlchemy 2 typed models. Every row belongs to one project."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hal.db.types import JSONDocument, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer(), "sqlite")
# Lower-cased search keys compared in byte order (PostgreSQL "C" collation, SQLite BINARY), so
# a prefix search is an index range scan whatever the database's default collation.
SearchKey = String(255).with_variant(String(255, collation="C"), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONDocument, list[str]: JSONDocument}  # noqa: RUF012


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    app_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    identity_secret: Mapped[str] = mapped_column(String(128))
    previous_identity_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_secret: Mapped[str] = mapped_column(String(128))
    identity_verification: Mapped[str] = mapped_column(String(16))
    stage_mode: Mapped[str] = mapped_column(String(16))
    stages: Mapped[list[str]] = mapped_column(default=list)
    allowed_origins: Mapped[list[str]] = mapped_column(default=list)
    protected_keys: Mapped[list[str]] = mapped_column(default=list)
    # "open": the widget links and writes companies as any field; "signed": only companies an
    # identity_token names in its company_ids claim.
    company_claims: Mapped[str] = mapped_column(String(8), default="open", server_default="open")
    # The id of the project's latest change: taken by a committing transaction as its last
    # statement, so change ids grow in commit order within a project.
    last_change_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The HMAC key of this project's suppressions, made with its first one (None: no
    # suppression yet, so identify has nothing to check).
    suppression_key: Mapped[str | None] = mapped_column(String(128))
    # Unset: kept for ever. Tracked events, and closed conversations, older than this many
    # days are purged (services/retention.py).
    event_retention_days: Mapped[int | None] = mapped_column(Integer)
    conversation_retention_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id", name="uq_contacts_user_id"),
        UniqueConstraint("project_id", "email_normalized", name="uq_contacts_email"),
        Index("ix_contacts_search_name", "project_id", "search_name"),
        Index("ix_contacts_search_user_id", "project_id", "search_user_id"),
        Index("ix_contacts_erased", "erased_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    email_normalized: Mapped[str | None] = mapped_column(SearchKey)
    name: Mapped[str | None] = mapped_column(String(255))
    # Case-folded copies that searches compare with (db/store/people.search_keys).
    search_name: Mapped[str | None] = mapped_column(SearchKey)
    search_user_id: Mapped[str | None] = mapped_column(SearchKey)
    search_email: Mapped[str | None] = mapped_column(SearchKey)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    search_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # `verified` speaks for the user_id (or the email of a contact without one); the email is
    # vouched for only once a proof signs it.
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Grows with every change of the contact: a change's receiver drops a stale copy by it.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Being erased: unreachable and shown nowhere while its rows are deleted in batches.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Company(Base):
    __tablename__ = "companies"
    __table_args__ = (UniqueConstraint("project_id", "external_id", name="uq_companies_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    stage: Mapped[str | None] = mapped_column(String(255))
    # Case-folded copies that searches compare with (db/store/companies.search_keys).
    search_external_id: Mapped[str | None] = mapped_column(SearchKey)
    search_name: Mapped[str | None] = mapped_column(SearchKey)
    search_stage: Mapped[str | None] = mapped_column(SearchKey)
    search_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stage_source: Mapped[str | None] = mapped_column(String(16))
    stage_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # Set once a verified contact is linked: unverified widget requests may then neither link,
    # write nor read it.
    guarded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactCompany(Base):
    __tablename__ = "contact_companies"
    __table_args__ = (Index("ix_contact_companies_company", "company_id"),)

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Visitor(Base):
    __tablename__ = "visitors"
    __table_args__ = (
        UniqueConstraint("project_id", "visitor_key", name="uq_visitors_key"),
        Index("ix_visitors_contact", "contact_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    visitor_key: Mapped[str] = mapped_column(String(255))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    active_company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL")
    )
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The binding to `contact_id` was made by a proof of that contact's identity.
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Company ids the last identity_token signed (projects with company_claims=signed).
    signed_company_ids: Mapped[list[str] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StageChange(Base):
    __tablename__ = "stage_changes"
    __table_args__ = (Index("ix_stage_changes_company", "company_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(String(255))
    previous: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (UniqueConstraint("company_id", "external_id", name="uq_deals_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(20, 4))
    currency: Mapped[str | None] = mapped_column(String(3))
    stage: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(8), default="open")
    close_date: Mapped[str | None] = mapped_column(String(10))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # event_id is an idempotency key of its caller ("c<contact id>" or "v<visitor id>").
        UniqueConstraint("project_id", "event_owner", "event_key", name="uq_events_owner_key"),
        Index("ix_events_contact", "contact_id", "id"),
        # A search's event counts (how often each contact tracked NAME since a time): one
        # range of the project's events of that name, read from the index alone.
        Index("ix_events_project_name_time", "project_id", "name", "occurred_at", "contact_id"),
        Index("ix_events_company", "company_id", "id"),
        Index("ix_events_visitor", "visitor_row_id", "id"),
        Index("ix_events_project_name", "project_id", "name", "id"),
        Index("ix_events_project_received", "project_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    visitor_row_id: Mapped[int | None] = mapped_column(
        ForeignKey("visitors.id", ondelete="SET NULL")
    )
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    event_key: Mapped[str | None] = mapped_column(String(255))
    event_owner: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    # "team": the team API; "admin": also project settings and secrets.
    scope: Mapped[str] = mapped_column(String(8), default="team", server_default="team")
    # What the admin names it by ("CI deploys"); never the token.
    label: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Written when it authenticates, at most once a minute (services/projects.py).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_visitor", "visitor_row_id", "status"),
        Index("ix_conversations_contact", "contact_id", "id"),
        Index("ix_conversations_project_activity", "project_id", "status", "last_message_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    visitor_row_id: Mapped[int | None] = mapped_column(
        ForeignKey("visitors.id", ondelete="SET NULL")
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(8), default="open")
    # The contact the starting visitor had proven to be; only its verified sessions read it.
    verified_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(8))  # visitor | agent
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    author_name: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    sender_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("project_id", "email", name="uq_agents_email"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    # "agent": the inbox; "admin": also the console (hal.domain.roles).
    role: Mapped[str] = mapped_column(String(8), default="agent", server_default="agent")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentSession(Base):
    """A signed-in inbox session; deleting the row ends it at once."""

    __tablename__ = "agent_sessions"
    __table_args__ = (Index("ix_agent_sessions_agent", "agent_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StreamTicket(Base):
    """A ticket that opens a project's stream once, where no header can be sent (a browser's
    EventSource): only its hash is kept; it is spent by its first use, worth nothing after
    `expires_at`, and vouched for by the API token that asked for it."""

    __tablename__ = "stream_tickets"
    __table_args__ = (Index("ix_stream_tickets_expires_at", "expires_at"),)

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The API token that asked for it: its project is the ticket's, and once it is revoked
    # its tickets open nothing.
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Change(Base):
    """One committed change, written in the transaction that made it (README "Change log and live
    stream"): what webhooks deliver and streams replay. `id` counts per project in the order changes
    became final; `seq` is the row's insertion key. On PostgreSQL `id` is given after commit (NULL
    until then, see db/changelog.py) and the table also has a `txid` column."""

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_created", "created_at"),
        Index("uq_changes_project_id", "project_id", "id", unique=True),
        Index("ix_changes_contact", "project_id", "contact_id"),
        Index("ix_changes_visitor", "project_id", "visitor_row_id"),
    )

    seq: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    id: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column()
    # The contact whose data this change carries, so an erasure finds every copy.
    contact_id: Mapped[int | None] = mapped_column(BigInteger)
    # ...or, written before its visitor was identified, the visitor's.
    visitor_row_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_project", "project_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(default=list)  # empty: every type but event.tracked
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last change of the project turned into messages for this endpoint.
    change_cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookMessage(Base):
    """One change (or test) to deliver to one endpoint; `id` is its `webhook-id`."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        Index("ix_webhook_messages_due", "status", "next_attempt_at"),
        Index("ix_webhook_messages_endpoint", "endpoint_id", "id"),
        UniqueConstraint("endpoint_id", "change_id", name="uq_webhook_messages_change"),
        Index("ix_webhook_messages_contact", "contact_id"),
        Index("ix_webhook_messages_visitor", "visitor_row_id"),
        Index("ix_webhook_messages_created", "created_at"),  # the delivery log's retention
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    change_id: Mapped[int | None] = mapped_column(BigInteger)  # None for webhook.test
    contact_id: Mapped[int | None] = mapped_column(BigInteger)  # as its change's
    visitor_row_id: Mapped[int | None] = mapped_column(BigInteger)  # as its change's
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column()  # {"type", "timestamp", "data"}
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportJob(Base):
    """A CSV import run as a job (README "Batch writes and imports"): its options, where it
    is (`rows_done`, committed with each chunk's rows) and what its rows did. A process runs
    it while it holds the lease (`lease_owner` until `lease_until`, renewed by each chunk);
    another process takes over a job whose lease ran out."""

    __tablename__ = "import_jobs"
    __table_args__ = (
        Index("ix_import_jobs_claimable", "status", "lease_until"),
        Index("ix_import_jobs_project", "project_id", "id"),
        Index("ix_import_jobs_finished", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # contacts | companies
    # "upload": the file is kept in import_files until the job ends; "command": `hal import`
    # reads it from its own disk (no other process can resume it).
    source: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8), default="queued")  # running, done, failed
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"map": {column: field}, "keep_unknown_columns": bool}
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rows_total: Mapped[int | None] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)  # why it stopped
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claims: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ImportUpload(Base):
    """An uploaded import's file, kept until its job ends (then deleted with its rows' data)."""

    __tablename__ = "import_files"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)


class ImportFailedRow(Base):
    """A failed row of an import job, kept with the job (README "Batch writes and imports")."""

    __tablename__ = "import_failures"
    __table_args__ = (Index("ix_import_failures_job", "job_id", "line"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(String(255))
    row: Mapped[dict[str, Any]] = mapped_column()


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_message", "message_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("webhook_messages.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(255))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class Suppression(Base):
    """A person erased with `suppress=true`: keyed hashes of their user_id and email, which a
    later identify or batch write may not use (README "Privacy and data hygiene")."""

    __tablename__ = "suppressions"
    __table_args__ = (
        Index("ix_suppressions_user_id", "project_id", "user_id_hash"),
        Index("ix_suppressions_email", "project_id", "email_hash"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id_hash: Mapped[str | None] = mapped_column(String(64))
    email_hash: Mapped[str | None] = mapped_column(String(64))
    # The rows of one erased person (their keys, and emails merged into them) share it:
    # lifting the suppression by any of their hashes lifts them all.
    person: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactMerge(Base):
    """A contact merged into another: its id answers 410 with `merged_into`, and an email it
    had that `into` could not take still finds `into`."""

    __tablename__ = "contact_merges"
    __table_args__ = (
        Index("ix_contact_merges_into", "into_contact_id"),
        Index("ix_contact_merges_email", "project_id", "email_normalized"),
    )

    from_contact_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    into_contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    email_normalized: Mapped[str | None] = mapped_column(SearchKey)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttributeDefinition(Base):
    """A metadata key of the project's contacts or companies, with its type (README
    "Attributes"): made by the first value written, or by an admin before it; the type never
    changes."""

    __tablename__ = "attributes"
    __table_args__ = (UniqueConstraint("project_id", "model", "key", name="uq_attributes_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(8))  # contact | company
    key: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(8), default="auto")  # auto | admin
    label: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(default=list)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One agent or admin write: who (an agent, an API token, the command line), what, when,
    and the fields it changed (never a secret)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_project", "project_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    actor_type: Mapped[str] = mapped_column(String(8))  # agent | token | cli
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class View(Base):
    """A saved search of the project's team (README "Saved views"): a name, the model it lists
    and its query and sort in the search language (no query: every record)."""

    __tablename__ = "views"
    __table_args__ = (UniqueConstraint("project_id", "model", "name", name="uq_views_name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    model: Mapped[str] = mapped_column(String(16))  # contacts | companies | conversations
    query: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    sort: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InstallationCount(Base):
    """Widget calls counted by project, origin ("" when the call had none), UTC day and metric
    (`calls`, `identify.verified`, `identify.unsigned`, `identify.failed:CODE`), added up from
    every process's tally (services/installation.py)."""

    __tablename__ = "installation_counts"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    metric: Mapped[str] = mapped_column(String(80), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InstallationUser(Base):
    """An identified user seen on a day (by a hash of its user_id or email, never the value),
    and whether any of its identifies that day carried a valid proof: the enforcement
    impact."""

    __tablename__ = "installation_users"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    proven: Mapped[bool] = mapped_column(Boolean, default=False)


class Refusal(Base):
    """A refused widget call (or one answered with warnings), newest kept: its route, status,
    code, field, message, origin and visitor; never its body, a hash, a token or a secret."""

    __tablename__ = "refusals"
    __table_args__ = (Index("ix_refusals_project", "project_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    route: Mapped[str] = mapped_column(String(32))
    status: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(String(500))
    origin: Mapped[str | None] = mapped_column(String(255))
    visitor_id: Mapped[str | None] = mapped_column(String(255))


# The CRM tables: written only through hal.db.store, on a request's Tx (the ORM reads them).
CRM_MODELS = (Contact, Company, ContactCompany, Visitor, StageChange, Deal, Event, Conversation,
              Message)  # fmt: skip

# SQLite gives a deleted row's id to the next row unless the key is AUTOINCREMENT; an erased or
# merged contact's id (and a conversation's, a visitor's) must never name someone else.
for _table in Base.metadata.tables.values():
    if _table.autoincrement_column is not None:
        _table.dialect_options["sqlite"]["autoincrement"] = True

__all__ = [
    "Agent",
    "AgentSession",
    "ApiToken",
    "AttributeDefinition",
    "AuditEntry",
    "Base",
    "Change",
    "Company",
    "Contact",
    "ContactCompany",
    "ContactMerge",
    "Conversation",
    "Deal",
    "Event",
    "ImportFailedRow",
    "ImportJob",
    "ImportUpload",
    "InstallationCount",
    "InstallationUser",
    "Message",
    "Project",
    "Refusal",
    "StageChange",
    "StreamTicket",
    "Suppression",
    "View",
    "Visitor",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
]
