"""README "Agents and roles": the first agent is an admin; the last admin stays."""

from __future__ import annotations

import pytest

from hal.domain.errors import Conflict
from hal.domain.roles import Role, check_an_admin_stays, first_role


def test_a_projects_first_agent_is_its_admin_and_later_ones_are_agents():
    assert first_role(admins=0) is Role.ADMIN
    assert first_role(admins=1) is Role.AGENT


@pytest.mark.parametrize("agents_after", [1, 5])
def test_the_last_admin_cannot_be_demoted_or_removed_while_agents_remain(agents_after):
    with pytest.raises(Conflict) as refused:
        check_an_admin_stays(admins_after=0, agents_after=agents_after)
    assert refused.value.code == "last_admin"


def test_a_change_that_keeps_an_admin_or_leaves_no_agent_is_allowed():
    check_an_admin_stays(admins_after=1, agents_after=3)
    check_an_admin_stays(admins_after=0, agents_after=0)  # the only agent removed
