"""Every `fintech <subcommand> ...` the Jenkins library and Jenkinsfiles run, checked against the
real command-line surface of the binary: the subcommand exists, every `--flag` exists, required
options are given (or their environment variable is set by the step), literal values are among the
allowed ones, and the number of positional arguments fits.

The surface is `fintech-cli.json` next to this file. It is generated from the clap definition by
`fintech/tests/cli_surface.rs`, which fails `cargo test` whenever the file no longer matches the
binary (regenerate: `FINTECH_UPDATE_CLI_SNAPSHOT=1 cargo test -p fintech --test cli_surface`). So
these checks need no Rust build, and still cannot drift from the CLI."""
import json
import re
import shlex
from pathlib import Path

import pytest

from groovy_blocks import strip_comments_and_strings

JENKINS = Path(__file__).resolve().parent.parent
SURFACE = json.loads((Path(__file__).resolve().parent / "fintech-cli.json").read_text())["commands"]
GROOVY = sorted(JENKINS.glob("vars/*.groovy")) + sorted(JENKINS.glob("Jenkinsfile.*"))

# The binary as the steps name it: `fintech` on the ops image's PATH, or the one just built.
INVOCATION = re.compile(r'(?:(?<![\w./-])fintech|"\$FINTECH"|\$FINTECH)[ \t]+[a-z]')
# Commands the pipelines must run (README "fintech commands the pipelines need").
EXPECTED = {"migrate", "image build", "image push", "release-plan", "verify-rollout", "notify bitbucket",
            "notify email"}


def invocations(text):
    """(line number, tokens) of each fintech command in the code of a Groovy file: comments are
    dropped, shell line continuations joined, the command ends at a shell operator."""
    code = strip_comments_and_strings(text)
    found = []
    for m in INVOCATION.finditer(code):
        line = code.count("\n", 0, m.start()) + 1
        rest = code[m.start():]
        # one shell command: join `\`-continued lines, stop at the end of the line
        joined = re.sub(r"\\\n", " ", rest).split("\n", 1)[0]
        lexer = shlex.shlex(joined, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = []
        try:
            for token in lexer:
                if token and set(token) <= set("|&;()<>"):
                    break
                tokens.append(token)
        except ValueError:  # an unterminated quote: the command continues in Groovy code
            tokens = shlex.split(joined.split("'''")[0].split('"""')[0], posix=True)
        found.append((line, tokens))
    return found


def check(tokens, env_names=frozenset()):
    """Problems of one invocation (tokens[0] is the binary) against the CLI surface."""
    words = tokens[1:]
    if len(words) >= 2 and f"{words[0]} {words[1]}" in SURFACE:
        name, args = f"{words[0]} {words[1]}", words[2:]
    elif words and words[0] in SURFACE:
        name, args = words[0], words[1:]
    else:
        return [f"`fintech {' '.join(words[:2])}`: no such subcommand"]
    spec = SURFACE[name]
    options, problems, given, positionals = spec["options"], [], set(), 0
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            flag, _, inline = arg.partition("=")
            opt = options.get(flag)
            if opt is None:
                problems.append(f"fintech {name}: unknown option {flag} (known: {', '.join(sorted(options))})")
                i += 1
                continue
            given.add(flag)
            value = None
            if "=" in arg:
                value = inline
            elif opt["takes_value"] and not opt["value_optional"]:
                if i + 1 >= len(args):
                    problems.append(f"fintech {name}: {flag} needs a value")
                else:
                    value = args[i + 1]
                    i += 1
            if value is not None and "$" not in value and opt["possible_values"]:
                allowed = [v.lower() for v in opt["possible_values"]]
                if value.lower() not in allowed:
                    problems.append(f"fintech {name}: {flag} {value!r} is not one of {opt['possible_values']}")
        else:
            positionals += 1
        i += 1
    for flag, opt in options.items():
        if opt["required"] and flag not in given and not (opt["env"] and opt["env"] in env_names):
            problems.append(f"fintech {name}: required option {flag} missing")
    wanted = spec["positionals"]
    low, high = sum(1 for p in wanted if p["required"]), len(wanted)
    if not low <= positionals <= high:
        problems.append(f"fintech {name}: {positionals} positional arguments, expected {low}..{high}")
    return problems


def env_set_by(text):
    """Environment variable names a step sets for its shell (withEnv, withCredentials, export)."""
    names = set(re.findall(r"[\"'](\w+)=", text))
    names |= set(re.findall(r"[vV]ariable: '(\w+)'", text))
    for group in re.findall(r"\bexport\s+([\w ]+)", text):
        names |= set(group.split())
    return names


@pytest.mark.parametrize("path", GROOVY, ids=lambda p: p.name)
def test_fintech_calls_match_the_cli(path):
    text = path.read_text()
    env_names = env_set_by(text)
    problems = []
    for line, tokens in invocations(text):
        problems += [f"{path.name}:{line}: {p}" for p in check(tokens, env_names)]
    assert not problems, "\n".join(problems)


def test_the_pipelines_run_every_ops_command():
    used = set()
    for path in GROOVY:
        for _, tokens in invocations(path.read_text()):
            words = tokens[1:]
            used.add(f"{words[0]} {words[1]}" if len(words) >= 2 and f"{words[0]} {words[1]}" in SURFACE
                     else words[0])
    assert EXPECTED <= used, f"not called by any step: {sorted(EXPECTED - used)}"


def test_every_subcommand_of_the_surface_is_described():
    for name in EXPECTED:
        assert name in SURFACE, f"fintech {name} missing from fintech-cli.json"
        assert SURFACE[name]["options"], name


# --- the checker itself finds what it must find --------------------------------------------------

def _tokens(command):
    return invocations(command)[0][1]


def test_checker_accepts_a_correct_call():
    ok = ('fintech notify bitbucket --state INPROGRESS --commit "$GIT_COMMIT" --repository r/s '
          '--key k --name "n #1" --url "$BUILD_URL" || failed=1')
    assert check(_tokens(ok)) == []


@pytest.mark.parametrize("command, expected", [
    ("fintech verify-rollout --selector app=x --max-restart 1", "unknown option --max-restart"),
    ("fintech notify bitbucket --state DONE --commit c --key k --name n --url u", "'DONE' is not one of"),
    ("fintech notify email --to a@example.com --from f --body-file b", "required option --subject missing"),
    ("fintech release-plan --registry r", "required option --environment missing"),
    ('"$FINTECH" image build --registry r --tag t', "0 positional arguments, expected 1..1"),
    ("fintech notify sms --to x", "no such subcommand"),
])
def test_checker_catches_a_wrong_call(command, expected):
    problems = check(_tokens(command))
    assert any(expected in p for p in problems), problems


def test_required_option_given_by_environment():
    call = _tokens("fintech notify email --to a@example.com --subject s --body-file b")
    assert any("--from" in p for p in check(call))
    assert not check(call, {"FINTECH_SMTP_FROM"})


def test_continued_lines_are_one_command():
    text = "sh '''\n    fintech verify-rollout --namespace \"$NS\" \\\n      --selector a=b --timeout 5m\n'''\n"
    [(line, tokens)] = invocations(text)
    assert line == 2 and tokens[-2:] == ["--timeout", "5m"]
    assert check(tokens) == []
