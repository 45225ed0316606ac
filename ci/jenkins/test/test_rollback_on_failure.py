"""A failed staging or production deploy (Helm upgrade or pod-health gate) still offers the rollback.

The CD stages of Jenkinsfile.infrastructure are run in Groovy against stand-ins of the library
steps and of the Declarative rules that matter here: a stage whose steps throw fails the stage and
the build and skips every later stage; catchError catches the failure, marks the build failed and
lets the next stages run, each when its `when` expression holds. The stages' own Groovy (their
`when` expressions and steps) is what runs, so the tests see the Jenkinsfile's real conditions."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from groovy_blocks import Jenkinsfile, matching_brace, strip_comments_and_strings

INFRA = Path(__file__).resolve().parent.parent / "Jenkinsfile.infrastructure"
CD_STAGES = ["Staging Cluster Setup", "Staging SQL Table Setup", "Staging Helm Deployment", "Staging Rollback",
             "Production Cluster Setup", "Production SQL Table Setup", "Production Helm Deployment",
             "Production Rollback"]

HARNESS = r'''
class Failure extends RuntimeException { Failure(String m) { super(m) } }
def fresh = { Map scenario ->
    binding.env = new Expando(HELM_PREVIOUS_REVISION: '7', GATEWAY_PREVIOUS_REVISION: '7')  // left by CI
    binding.currentBuild = new Expando(result: null)
    binding.scenario = scenario
    binding.answers = new ArrayList(scenario.answers)
    binding.log = []
}
catchError = { Map a, Closure c ->
    assert a.buildResult == 'FAILURE' && a.stageResult == 'FAILURE'
    try { c() } catch (Failure f) { currentBuild.result = 'FAILURE'; log << "caught: ${f.message}" }
}
script = { Closure c -> c() }
echo = { String s -> log << "echo: ${s}" }
error = { String s -> throw new Failure(s) }
withApproval = { Map a, Closure c ->
    String answer = answers ? answers.remove(0) : 'No'
    log << "asked ${a.environment}: ${a.message} -> ${answer}"
    if (answer != 'Yes') { return false }
    c()
    return true
}
terraformApply = { Map a -> log << "terraformApply ${a.environment}" }
sqlSetup = { Map a -> log << "sqlSetup ${a.environment}" }
releasePlan = { Map a -> log << "releasePlan ${a.environment}"; ['payments'] }
helmDeploy = { Map a ->   // as vars/helmDeploy.groovy: each revision recorded in env before its upgrade
    log << "helmDeploy ${a.environment}"
    env.HELM_PREVIOUS_REVISION = '-1'
    env.GATEWAY_PREVIOUS_REVISION = '-1'
    env.GATEWAY_PREVIOUS_REVISION = '3'
    if (scenario.fail == "gateway ${a.environment}") { throw new Failure('helm upgrade ngf failed') }
    env.HELM_PREVIOUS_REVISION = '5'
    if (scenario.fail == "helm ${a.environment}") { throw new Failure('helm upgrade fintech failed') }
    return [release: 5, gateway: 3]
}
podHealthGate = { Map a ->
    log << "podHealthGate ${a.environment}"
    if (scenario.fail == "gate ${a.environment}") { throw new Failure('pods not healthy') }
}
helmRollback = { Map a -> log << "helmRollback ${a.environment} ${a.revision} ${a.gatewayRevision}" }

def run = { List stages ->
    boolean failed = false
    stages.each { s ->
        if (failed) { log << "stage ${s.name}: skipped (earlier failure)"; return }
        if (s.when != null && !s.when()) { log << "stage ${s.name}: skipped (when)"; return }
        log << "stage ${s.name}: run"
        try { s.steps() } catch (Failure f) {
            log << "stage ${s.name}: failed: ${f.message}"
            currentBuild.result = 'FAILURE'
            failed = true
        }
    }
    log << "result: ${currentBuild.result ?: 'SUCCESS'}"
}
'''


def stage_closures(text: str):
    jf = Jenkinsfile(text)
    out = []
    for name in CD_STAGES:
        body = jf.stage(name).body
        bare = strip_comments_and_strings(body, keep_strings=False)
        when = None
        m = re.search(r"\bwhen\s*\{", bare)
        if m:
            w_end = matching_brace(bare, m.end() - 1)
            e = re.search(r"\bexpression\s*\{", bare[m.end():w_end])
            e_open = m.end() + e.end() - 1
            when = body[e_open + 1:matching_brace(bare, e_open)]
        s = re.search(r"\bsteps\s*\{", bare)
        s_open = s.end() - 1
        steps = body[s_open + 1:matching_brace(bare, s_open)]
        out.append((name, when, steps))
    return out


def simulate(scenarios: dict, text: str = None) -> dict:
    """scenarios: id -> (fail, answers). Returns id -> the log lines of that run."""
    groovy = shutil.which("groovy")
    assert groovy, "groovy is needed (scripts/check-jenkins.sh installs it)"
    stages = ",\n".join(
        f"[name: '{name}', when: {('{ -> ' + when + ' }') if when else 'null'}, steps: {{ -> {steps} }}]"
        for name, when, steps in stage_closures(text or INFRA.read_text()))
    lines = [HARNESS, f"List stages = [\n{stages}\n]"]
    for sid, (fail, answers) in scenarios.items():
        answers_lit = "[" + ", ".join(f"'{a}'" for a in answers) + "]"
        lines.append(f"fresh([fail: '{fail}', answers: {answers_lit}]); run(stages); "
                     f"log.each {{ println '{sid}|' + it }}")
    env = dict(os.environ)
    env.setdefault("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")   # as scripts/check-jenkins.sh
    result = subprocess.run([groovy, "-e", "\n".join(lines)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    logs = {sid: [] for sid in scenarios}
    for line in result.stdout.splitlines():
        sid, _, rest = line.partition("|")
        logs[sid].append(rest)
    return logs


# id -> (what fails, the approvers' answers in order)
SCENARIOS = {
    "all-pass": ("", ["Yes", "No", "Yes", "No"]),
    "staging-helm-fails-yes": ("helm staging", ["Yes", "Yes"]),
    "staging-gate-fails-no": ("gate staging", ["Yes", "No"]),
    "staging-gateway-fails-yes": ("gateway staging", ["Yes", "Yes"]),
    "production-helm-fails-yes": ("helm production", ["Yes", "No", "Yes", "Yes"]),
    "production-gate-fails-no": ("gate production", ["Yes", "No", "Yes", "No"]),
    "staging-declined": ("", ["No", "Yes", "No"]),
}


@pytest.fixture(scope="module")
def logs():
    return simulate(SCENARIOS)


def stage_status(log, name):
    found = [line.split(": ", 1)[1] for line in log if line.startswith(f"stage {name}: ")]
    return found[0] if found else None


def test_all_pass_offers_the_optional_rollback_and_succeeds(logs):
    log = logs["all-pass"]
    assert all(stage_status(log, s) == "run" for s in CD_STAGES), log
    assert "helmRollback staging 5 3" not in log and log[-1] == "result: SUCCESS"


@pytest.mark.parametrize("sid,env", [("staging-helm-fails-yes", "staging"), ("staging-gate-fails-no", "staging"),
                                     ("staging-gateway-fails-yes", "staging"),
                                     ("production-helm-fails-yes", "production"),
                                     ("production-gate-fails-no", "production")])
def test_failed_deploy_or_gate_still_offers_the_rollback_and_fails_the_build(logs, sid, env):
    log = logs[sid]
    Env = env.capitalize()
    assert stage_status(log, f"{Env} Rollback") == "run", log
    asked = [line for line in log if line.startswith(f"asked {env}: The {env} deployment failed. Roll")]
    assert len(asked) == 1, log
    rolled = [line for line in log if line.startswith(f"helmRollback {env}")]
    if asked[0].endswith("-> Yes"):
        # only the releases this run changed: the gateway alone when its own upgrade failed
        expected = f"helmRollback {env} -1 3" if sid.startswith(f"{env}-gateway") else f"helmRollback {env} 5 3"
        assert rolled == [expected], log
    else:
        assert rolled == [], "No leaves the failed release in place"
    assert log[-1] == "result: FAILURE", log


@pytest.mark.parametrize("sid", ["staging-helm-fails-yes", "staging-gate-fails-no", "staging-gateway-fails-yes"])
def test_no_production_stage_after_a_failed_staging_deploy(logs, sid):
    log = logs[sid]
    for name in CD_STAGES[4:]:
        assert stage_status(log, name) != "run", (name, log)
    assert not [line for line in log if "production" in line and not line.startswith("stage ")], log


def test_staging_declined_does_not_roll_back_with_ci_revisions(logs):
    log = logs["staging-declined"]
    # No to staging: nothing deployed there, no rollback question (CI's recorded revisions are not staging's)
    assert stage_status(log, "Staging Rollback").startswith("skipped"), log
    assert stage_status(log, "Production Helm Deployment") == "run"
    assert log[-1] == "result: SUCCESS", log


def test_harness_catches_a_deploy_without_catch_error():
    # the deploy's failure propagating as an exception (the seed's shape): the rollback is skipped
    catch = "catchError(buildResult: 'FAILURE', stageResult: 'FAILURE', catchInterruptions: false) {"
    text = INFRA.read_text()
    assert text.count(catch) == 2
    log = simulate({"seed": ("gate staging", ["Yes", "Yes"])}, text.replace(catch, "script {"))["seed"]
    assert stage_status(log, "Staging Rollback") == "skipped (earlier failure)", log
    assert log[-1] == "result: FAILURE"
