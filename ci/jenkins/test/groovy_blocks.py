"""A small reader of Jenkinsfiles: finds `name(...) { ... }` blocks by matching braces, skipping
strings and comments, so tests can ask which stages exist, in which order, inside which blocks,
and which steps each one calls. It does not evaluate Groovy."""
import re
from dataclasses import dataclass, field

STAGE_RE = re.compile(r"\bstage\s*\(\s*'([^']+)'\s*\)\s*\{")


def strip_comments_and_strings(text: str, keep_strings: bool = True) -> str:
    """Blank out comments (same length, newlines kept). Strings are kept unless keep_strings is
    False, in which case their content is blanked too (quotes kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        two, three = text[i:i + 2], text[i:i + 3]
        if two == "//":
            j = text.find("\n", i)
            j = n if j == -1 else j
            out.append(" " * (j - i))
            i = j
        elif two == "/*":
            j = text.find("*/", i + 2)
            j = n if j == -1 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif three in ("'''", '"""'):
            j = text.find(three, i + 3)
            j = n if j == -1 else j + 3
            chunk = text[i:j]
            out.append(chunk if keep_strings else three + re.sub(r"[^\n]", " ", chunk[3:-3]) + three)
            i = j
        elif text[i] in "'\"":
            q = text[i]
            j = i + 1
            while j < n and text[j] != q and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            chunk = text[i:j]
            out.append(chunk if keep_strings else q + " " * (len(chunk) - 2) + q)
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def matching_brace(code: str, open_index: int) -> int:
    """Index of the brace closing the one at open_index, in code without strings/comments."""
    depth = 0
    for i in range(open_index, len(code)):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced brace at {open_index}")


@dataclass
class Stage:
    name: str
    start: int
    end: int
    body: str
    ancestors: list = field(default_factory=list)   # enclosing block keywords, outermost first


class Jenkinsfile:
    def __init__(self, text: str):
        self.text = strip_comments_and_strings(text)
        self.bare = strip_comments_and_strings(text, keep_strings=False)
        if self.bare.count("{") != self.bare.count("}"):
            raise ValueError("unbalanced braces")

    def blocks(self):
        """Every `word {` or `word(...) {` block: (keyword, start, end)."""
        found = []
        for m in re.finditer(r"\b([A-Za-z_]\w*)\s*(\([^{}]*?\))?\s*\{", self.bare):
            brace = m.end() - 1
            found.append((m.group(1), m.start(), matching_brace(self.bare, brace)))
        return found

    def ancestors(self, index: int):
        return [kw for kw, s, e in sorted(self.blocks(), key=lambda b: b[1]) if s < index < e]

    def stages(self):
        result = []
        for m in STAGE_RE.finditer(self.text):
            brace = m.end() - 1
            end = matching_brace(self.bare, brace)
            result.append(Stage(m.group(1), m.start(), end, self.text[brace:end + 1], self.ancestors(m.start())))
        return result

    def leaf_stages(self):
        """Stages that do work (not only group other stages), in file order."""
        all_stages = self.stages()
        return [s for s in all_stages
                if not any(o is not s and s.start < o.start < s.end for o in all_stages)]

    def stage(self, name: str) -> Stage:
        matches = [s for s in self.stages() if s.name == name]
        if len(matches) != 1:
            raise KeyError(f"stage {name!r} found {len(matches)} times")
        return matches[0]

    def calls(self, body: str):
        """Names called as steps in a piece of code: `name(` or `name ` followed by an argument."""
        bare = strip_comments_and_strings(body, keep_strings=False)
        return re.findall(r"(?<![.\w])([a-z]\w*)\s*\(", bare) + re.findall(r"(?m)^\s*([a-z]\w*)\s+['\"\[]", bare)


def in_post_always(stage: Stage) -> bool:
    anc = stage.ancestors
    return "post" in anc and "always" in anc and anc.index("post") < anc.index("always")


def single_quoted_scripts(text: str):
    """The contents of the '''...''' strings of a Groovy file (the `sh` scripts of a step), as the
    shell receives them: Groovy's escapes applied (\\\\ is one backslash, a backslash before a
    newline joins the lines)."""
    escapes = {"\\": "\\", "'": "'", '"': '"', "$": "$", "n": "\n", "t": "\t", "\n": ""}

    def unescape(m):
        return escapes.get(m.group(1), m.group(0))

    return [re.sub(r"\\(.)", unescape, body, flags=re.S)
            for body in re.findall(r"'''(.*?)'''", strip_comments_and_strings(text), re.S)]
