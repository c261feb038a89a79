"""Who may read and write what through the widget, beyond matching (README "Who may read and write
what"): the session rule, guarded companies, signed company claims."""

from __future__ import annotations

from hal.domain.errors import Forbidden, Unauthorized
from hal.domain.projects import CompanyClaims, ProjectConfig


def require_session(
    *, project: ProjectConfig, bound_verified: bool, session: bool, proven: bool, bearer: bool
) -> None:
    """A visitor bound to a verified contact needs its session token or a valid proof."""
    if project.protects(bound_verified) and not session and not proven:
        reason = "is invalid, expired or not this visitor's" if bearer else "is missing"
        raise Unauthorized(
            "session_token_required",
            "this visitor is bound to a verified contact: send its session_token as "
            f"'Authorization: Bearer ...' or a valid user_hash (the token {reason})",
            field="authorization",
        )


def company_visible(*, project: ProjectConfig, guarded: bool, verified_call: bool) -> bool:
    """Whether a widget answer may show a company's name, stage and metadata."""
    return verified_call or not guarded or not project.verifies


def check_company_access(
    *,
    project: ProjectConfig,
    company_id: str,
    guarded: bool,
    verified_call: bool,
    signed_company_ids: frozenset[str] | None,
    field: str,
) -> None:
    """Refuse linking or writing a company the call may not touch: a guarded company (one with
    a verified contact) from an unverified call, or, under `company_claims: signed`, a company
    no identity_token named."""
    if not company_visible(project=project, guarded=guarded, verified_call=verified_call):
        raise Forbidden(
            "verification_required",
            f"company {company_id!r} has verified contacts: only a verified request may link "
            "or write it",
            field=field,
        )
    if project.company_claims is CompanyClaims.SIGNED and (
        signed_company_ids is None or company_id not in signed_company_ids
    ):
        raise Forbidden(
            "verification_required",
            f"company {company_id!r} is not named in the identity_token's company_ids claim "
            "(this project links companies from signed claims only)",
            field=field,
        )
