"""The part of Helm's template language that jenkins-values.yaml uses inside the strings the Jenkins
chart renders with `tpl` (pod templates, the authorization matrix, the JCasC scripts), so that the
tests read what Jenkins will get instead of the raw template:

    {{ .Values.a.b }}   {{ required `why` .Values.a.b }}   {{ . | quote }}   {{ join "," .Values.l | quote }}
    {{- range .Values.l }} ... {{- end }}   {{- if not .Values.l }}{{ fail "why" }}{{ end }}

with Go templates' trim markers (`{{-` removes the white space before the action, `-}}` the white
space after it). Anything else is refused (TemplateError), so a construct the tests cannot read
fails them instead of passing unrendered. `required` and `fail` raise TemplateError like Helm
stops the install. Checked against `helm template` (Helm 4.1) on jenkins-values.yaml: same output."""
import json
import re
import shlex

ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


class TemplateError(Exception):
    pass


def _lookup(values, path, dot):
    if path == ".":
        return dot
    if not path.startswith(".Values."):
        raise TemplateError(f"unsupported reference {path!r}")
    node = values
    for key in path[len(".Values."):].split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _empty(value):
    return value is None or value == "" or value == [] or value == {} or value is False


def _text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _command(words, values, dot, piped):
    """One command of a pipeline: a reference, or a function applied to its arguments."""
    name, args = words[0], words[1:]
    if name.startswith("."):
        if args or piped is not None:
            raise TemplateError(f"unsupported command {' '.join(words)!r}")
        return _lookup(values, name, dot)
    resolved = [_lookup(values, a, dot) if a.startswith(".") else a for a in args]
    if piped is not None:
        resolved.append(piped)
    if name == "quote" and len(resolved) == 1:
        return json.dumps(_text(resolved[0]))
    if name == "join" and len(resolved) == 2 and isinstance(resolved[1], list):
        return resolved[0].join(_text(v) for v in resolved[1])
    if name == "required" and len(resolved) == 2:
        if _empty(resolved[1]) and resolved[1] is not False:
            raise TemplateError(f"required: {resolved[0]}")
        return resolved[1]
    if name == "fail" and len(resolved) == 1:
        raise TemplateError(f"fail: {resolved[0]}")
    raise TemplateError(f"unsupported function {' '.join(words)!r}")


def _words(command):
    lexer = shlex.shlex(command.replace("`", '"'), posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    return list(lexer)


def _pipeline(expr, values, dot):
    result = None
    for i, part in enumerate(expr.split("|")):
        words = _words(part.strip())
        if not words:
            raise TemplateError(f"empty command in {expr!r}")
        result = _command(words, values, dot, None if i == 0 else result)
    return result


def _parse(text):
    """Nested nodes: ("text", s) | ("out", expr) | ("range"|"if", expr, body)."""
    tokens, pos = [], 0
    for m in ACTION.finditer(text):
        tokens.append(["text", text[pos:m.start()]])
        tokens.append(["action", m.group(2), m.group(1) == "-", m.group(3) == "-"])
        pos = m.end()
    tokens.append(["text", text[pos:]])
    for i, tok in enumerate(tokens):
        if tok[0] == "action":
            if tok[2]:
                tokens[i - 1][1] = tokens[i - 1][1].rstrip()
            if tok[3]:
                tokens[i + 1][1] = tokens[i + 1][1].lstrip()
    root, stack = [], []
    current = root
    for tok in tokens:
        if tok[0] == "text":
            current.append(("text", tok[1]))
            continue
        expr = tok[1]
        keyword = expr.split(None, 1)
        if keyword and keyword[0] in ("range", "if"):
            node = (keyword[0], keyword[1] if len(keyword) > 1 else "", [])
            current.append(node)
            stack.append(current)
            current = node[2]
        elif expr == "end":
            if not stack:
                raise TemplateError("{{ end }} without a block")
            current = stack.pop()
        elif expr.startswith("/*") or keyword and keyword[0] in ("else", "with", "define", "template", "include"):
            raise TemplateError(f"unsupported action {expr!r}")
        else:
            current.append(("out", expr))
    if stack:
        raise TemplateError("a block without {{ end }}")
    return root


def _render(nodes, values, dot):
    out = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "out":
            out.append(_text(_pipeline(node[1], values, dot)))
        elif node[0] == "range":
            items = _pipeline(node[1], values, dot)
            if items is None:
                items = []
            if not isinstance(items, list):
                raise TemplateError(f"range over {type(items).__name__}: {node[1]!r}")
            out.extend(_render(node[2], values, item) for item in items)
        elif node[0] == "if":
            cond = node[1]
            negate = cond.startswith("not ")
            value = _pipeline(cond[4:] if negate else cond, values, dot)
            if _empty(value) == negate:
                out.append(_render(node[2], values, dot))
    return "".join(out)


def render(text, values):
    """The text as the chart's `tpl` renders it with these values."""
    return _render(_parse(text), values, None)


def with_pins(values, pins):
    """A copy of values where each empty value named in pins (dotted path -> value) takes the pin."""
    copy = json.loads(json.dumps(values))
    for path, pin in pins.items():
        node = copy
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if _empty(node.get(keys[-1])):
            node[keys[-1]] = pin
    return copy
