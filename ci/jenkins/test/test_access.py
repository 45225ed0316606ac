"""Who may answer the pipelines' Yes/No questions. Sign-in is Google's OpenID Connect, whose ID
tokens carry no group claim, so the authorization matrix grants named users (Google account
e-mails) from fintechAccess in jenkins-values.yaml, and the `input` steps' submitter list comes
from the same list (FINTECH_RELEASE_APPROVERS, set by Configuration as Code). The tests render the
values as the chart does and check that the people who may answer are exactly the approvers the
matrix grants, with any list of approvers."""
import re
from pathlib import Path

import pytest

from chart_tpl import TemplateError
from groovy_blocks import strip_comments_and_strings
from jenkins_values import PINS, authorization, casc_scripts, load_values, security_realm

JENKINS = Path(__file__).resolve().parent.parent
VARS = JENKINS / "vars"
GROOVY = sorted(VARS.glob("*.groovy")) + sorted(JENKINS.glob("Jenkinsfile.*"))
EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}")
# what answering an input of a build takes: seeing Jenkins, the job and the build
ANSWER = {"Overall/Read", "Job/Read"}
LISTS = ["admins", "developers", "releaseApprovers"]


@pytest.fixture(scope="module")
def values():
    return load_values()


def matrix(values, pins=None):
    """user -> permissions, and the group entries, of the rendered authorization matrix."""
    entries = authorization(values, pins)["globalMatrix"]["entries"]
    users, groups = {}, []
    for entry in entries:
        (kind, spec), = entry.items()
        if kind == "user":
            users.setdefault(spec["name"], set()).update(spec["permissions"])
        else:
            groups.append(entry)
    return users, groups


def submitters(values, pins=None):
    """The `input` submitters Jenkins gets: FINTECH_RELEASE_APPROVERS of the global properties."""
    props = casc_scripts(values, pins)["jenkins"]["globalNodeProperties"]
    env = {e["key"]: e["value"] for p in props for e in p["envVars"]["env"]}
    return env["FINTECH_RELEASE_APPROVERS"].split(",")


OTHER_PINS = dict(PINS, **{"fintechAccess.releaseApprovers": ["solo.approver@fintech.example"],
                           "fintechAccess.developers": []})


@pytest.mark.parametrize("pins", [PINS, OTHER_PINS], ids=["two approvers", "one approver, no developers"])
def test_input_submitters_are_the_approvers_the_matrix_grants(values, pins):
    approvers = pins["fintechAccess.releaseApprovers"]
    assert submitters(values, pins) == approvers
    users, _ = matrix(values, pins)
    for person in approvers:
        assert ANSWER | {"Job/Build"} <= users.get(person, set()), person
    # and nobody else is granted anything beyond the three lists
    granted = {p for name in LISTS for p in pins[f"fintechAccess.{name}"]}
    assert set(users) == granted


def test_matrix_grants_users_not_groups(values):
    # Google's ID tokens have no group claim: a group entry would match nobody
    users, groups = matrix(values)
    assert groups == [] and users
    realm = security_realm(values)["oic"]
    assert "groupsFieldName" not in realm
    assert realm["userNameField"] == "email"
    assert "accounts.google.com" in realm["serverConfiguration"]["wellKnown"]["wellKnownOpenIDConfigurationUrl"]
    admins = PINS["fintechAccess.admins"]
    assert all(users[a] == {"Overall/Administer"} for a in admins)


def test_install_stops_without_admins_or_approvers(values):
    for name in ["admins", "releaseApprovers"]:
        pins = dict(PINS, **{f"fintechAccess.{name}": []})
        with pytest.raises(TemplateError, match=f"fintechAccess.{name}"):
            authorization(values, pins)
    # developers may be empty
    assert matrix(values, dict(PINS, **{"fintechAccess.developers": []}))[0]


@pytest.mark.parametrize("source", ["committed", "pins"])
def test_access_lists_are_lowercase_emails_each_named_once(values, source):
    lists = {name: (values["fintechAccess"][name] if source == "committed" else PINS[f"fintechAccess.{name}"])
             for name in LISTS}
    seen = []
    for name, people in lists.items():
        assert isinstance(people, list), name
        for person in people:
            # the realm's user IDs are the Google e-mails, which Google gives in lower case
            assert EMAIL.fullmatch(person), f"fintechAccess.{name}: {person!r} is not a lowercase e-mail"
        seen += people
    assert len(seen) == len(set(seen)), "a person in two lists: name each once, where they need the most"


def test_the_library_asks_only_those_approvers():
    approval = strip_comments_and_strings((VARS / "approval.groovy").read_text())
    assert "submitter: env.FINTECH_RELEASE_APPROVERS," in approval
    # no approvers: fail rather than ask an `input` anyone who may build could answer
    assert approval.index("if (!cfg.submitter?.trim())") < approval.index("error(") < approval.index("input(")
    assert "submitter: cfg.submitter" in approval
    for step, key in [("withApproval", "submitter"), ("terraformApply", "approvers")]:
        assert f"{key}: env.FINTECH_RELEASE_APPROVERS," in (VARS / f"{step}.groovy").read_text(), step
    for path in GROOVY:
        code = strip_comments_and_strings(path.read_text())
        # every question goes through approval, and no caller names other submitters
        if path.stem != "approval":
            assert not re.search(r"\binput\s*\(", code), f"{path.name}: an input outside vars/approval.groovy"
        assert not re.search(r"\b(submitter|approvers):\s*['\"]", code), f"{path.name}: a literal submitter list"
