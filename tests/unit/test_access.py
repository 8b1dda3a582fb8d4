"""Roles, tokens and PII masks (config/access.yaml, mos_pipelines/access.py)."""

import pytest

from mos_pipelines.access import (
    AccessDenied,
    authenticate,
    bearer,
    mask_email,
    mask_name,
    mask_phone,
    principal,
)
from mos_pipelines.configuration import ConfigError, load_access

ENV = {"MOS_TOKEN_ANALYST": "t-analyst", "MOS_TOKEN_PERFORMANCE_MARKETER": "t-perf"}


def test_a_token_signs_in_its_user_with_the_roles_permissions():
    analyst = authenticate("t-analyst", environ=ENV)
    assert (analyst.id, analyst.role, analyst.can("see_pii"), analyst.can("approve_copy")) == (
        "analyst",
        "analyst",
        True,
        False,
    )
    marketer = authenticate("t-perf", environ=ENV)
    assert marketer.role == "marketer" and not marketer.can("see_pii")
    assert marketer.may_give_feedback_for("performance_marketer")
    assert not marketer.may_give_feedback_for("lifecycle_marketer")
    assert principal("admin").may_give_feedback_for("lifecycle_marketer")


@pytest.mark.parametrize("token", [None, "", "t-admin", "t-analys"])
def test_no_unknown_or_unset_tokens_are_a_401(token):
    # admin's variable is unset: its user cannot sign in, whatever is sent
    with pytest.raises(AccessDenied) as denied:
        authenticate(token, environ=ENV)
    assert denied.value.status == 401


def test_a_missing_permission_is_a_403_naming_it():
    with pytest.raises(AccessDenied) as denied:
        authenticate("t-perf", environ=ENV).require("see_pii", "see raw emails")
    assert denied.value.status == 403 and "see_pii" in denied.value.message


def test_bearer_header_and_masks():
    assert bearer("Bearer abc") == "abc" and bearer("Basic abc") is None and bearer(None) is None
    assert mask_email("jane.doe@example.com") == "j***@example.com"
    assert mask_phone("+1 (555) 010-4477") == "+* (***) ***-**77"
    assert mask_name("Ada  Lovelace") == "A. L."


def test_two_users_sharing_a_token_variable_are_refused(tmp_path):
    path = tmp_path / "access.yaml"
    path.write_text("users:\n  - {id: a, role: admin, token_env: T}\n  - {id: b, role: marketer, token_env: T}\n")
    with pytest.raises(ConfigError, match="token variable"):
        load_access(path)
