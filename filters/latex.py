"""arXiv LaTeX sources -> the body of the paper, as LLaMA prepared its arXiv share.

Touvron et al. 2023, section 2.1: "We removed everything before the first section, as well as
the bibliography. We also removed the comments from the .tex files, and inline-expanded
definitions and macros written by users to increase consistency across papers." The result is
still LaTeX (the model learns to write it); in order:

1. ``%`` comments (not ``\\%``) are removed, and lines that held only a comment disappear with
   them; so are ``comment`` environments.
2. User macros are collected from ``\\newcommand``, ``\\renewcommand``, ``\\providecommand``
   (starred or not, with ``[n]`` arguments and an optional ``[default]`` for the first) and
   ``\\def``/``\\gdef`` with undelimited ``#1..#9`` parameters, and ``\\DeclareMathOperator``;
   their definitions are removed.
   ``\\def`` with delimited parameters (``\\def\\a#1.#2{}``) is TeX's pattern matching and is left
   alone, unexpanded.
3. Everything before the first ``\\section`` (or ``\\chapter``) goes; a source without one has
   no paper body we can find and is reported as such (``None``).
4. The bibliography goes: ``thebibliography`` environments, ``\\bibliography{...}``,
   ``\\bibliographystyle``, ``\\printbibliography``, and whatever follows ``\\end{document}``.
5. Macros are expanded where used, arguments substituted; expansions are re-scanned so macros
   defined through other macros expand fully, up to ``max_passes`` (a self-referencing
   ``\\def\\a{\\a}`` stops there) and a growth cap that keeps a macro bomb from filling memory.

Multi-file papers are joined first by :func:`inline_inputs`, which replaces ``\\input{x}`` and
``\\include{x}`` with the file's text and pulls in local ``.sty`` packages (where authors keep
their macros) so that step 2 sees every definition.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

_COMMENT_ENV = re.compile(r"\\begin\{comment\}.*?\\end\{comment\}", re.S)
_SECTION = re.compile(r"\\(?:chapter|section)\*?\s*[\[{]")
_BIB_ENV = re.compile(r"\\begin\{thebibliography\}.*?(?:\\end\{thebibliography\}|\Z)", re.S)
_BIB_COMMANDS = re.compile(r"\\(?:bibliography|bibliographystyle|nocite)\s*\{[^}]*\}|\\printbibliography(?:\[[^\]]*\])?")
_END_DOCUMENT = re.compile(r"\\end\{document\}")
_NEWCOMMAND = re.compile(r"\\(?:re)?newcommand\*?|\\providecommand\*?")
_DEF = re.compile(r"\\[gex]?def(?![a-zA-Z])")
_CONTROL_WORD = re.compile(r"\\([a-zA-Z]+)")
_PARAM = re.compile(r"#([1-9])")
_TRAILING_CONTROL_WORD = re.compile(r"\\[a-zA-Z]+\Z")
_OPERATOR = re.compile(r"\\DeclareMathOperator(\*?)")
_INPUT = re.compile(r"\\(?:input|include)\s*\{([^}]+)\}|\\input\s+([^\s{}\\]+)")
_USEPACKAGE = re.compile(r"\\usepackage\s*(?:\[[^\]]*\])?\s*\{([^}]+)\}")
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


@dataclass(frozen=True)
class Macro:
    """A user macro: its number of arguments, the default of an optional first one, its body."""

    nargs: int
    body: str
    default: str | None = None


def strip_comments(tex: str) -> str:
    """``tex`` without ``%`` comments and ``comment`` environments (``\\%`` is kept)."""
    out = []
    for line in tex.split("\n"):
        cut = _comment_start(line)
        if cut is None:
            out.append(line)
        elif line[:cut].strip():
            out.append(line[:cut].rstrip())
        # else: the whole line was a comment, and it disappears with its line end
    return _COMMENT_ENV.sub("", "\n".join(out))


def _comment_start(line: str) -> int | None:
    i = line.find("%")
    while i != -1:
        backslashes = 0
        j = i - 1
        while j >= 0 and line[j] == "\\":
            backslashes += 1
            j -= 1
        if backslashes % 2 == 0:
            return i
        i = line.find("%", i + 1)
    return None


def _group(tex: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at ``tex[start]`` and the index after it."""
    if start >= len(tex) or tex[start] != "{":
        return None
    depth = 0
    i = start
    while i < len(tex):
        ch = tex[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return tex[start + 1 : i], i + 1
        i += 1
    return None


def _skip_space(tex: str, i: int) -> int:
    while i < len(tex) and tex[i] in " \t\n":
        i += 1
    return i


def _bracket(tex: str, i: int) -> tuple[str, int] | None:
    """The content of ``[...]`` at ``tex[i]`` (braces inside are respected) and the index after."""
    if i >= len(tex) or tex[i] != "[":
        return None
    depth = 0
    j = i + 1
    while j < len(tex):
        ch = tex[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "]" and depth == 0:
            return tex[i + 1 : j], j + 1
        j += 1
    return None


def _macro_name(tex: str, i: int) -> tuple[str, int] | None:
    """``\\name`` or ``{\\name}`` at ``i``: the name without backslash and the index after."""
    i = _skip_space(tex, i)
    braced = i < len(tex) and tex[i] == "{"
    if braced:
        i = _skip_space(tex, i + 1)
    match = _CONTROL_WORD.match(tex, i)
    if not match:
        return None
    end = match.end()
    if braced:
        end = _skip_space(tex, end)
        if end >= len(tex) or tex[end] != "}":
            return None
        end += 1
    return match.group(1), end


def extract_macros(tex: str) -> tuple[str, dict[str, Macro]]:
    """(``tex`` without the definitions it could parse, the macros they define; later wins)."""
    macros: dict[str, Macro] = {}
    out: list[str] = []
    pos = 0
    for match in _definitions(tex):
        start = match.start()
        if start < pos:
            continue  # inside a definition already consumed
        kind = match.group(0).lstrip("\\")[0]
        if kind in "rnp":
            parsed = _parse_newcommand(tex, match.end())
        elif kind == "D":
            parsed = _parse_operator(tex, match.end(), starred=bool(match.group(1)))
        else:
            parsed = _parse_def(tex, match.end())
        if parsed is None:
            continue
        name, macro, end = parsed
        macros[name] = macro
        out.append(tex[pos:start])
        pos = end
    out.append(tex[pos:])
    return "".join(out), macros


def _definitions(tex: str):
    found = [*_NEWCOMMAND.finditer(tex), *_DEF.finditer(tex), *_OPERATOR.finditer(tex)]
    return sorted(found, key=lambda m: m.start())


def _parse_newcommand(tex: str, i: int) -> tuple[str, Macro, int] | None:
    named = _macro_name(tex, i)
    if named is None:
        return None
    name, i = named
    nargs = 0
    default = None
    i = _skip_space(tex, i)
    count = _bracket(tex, i)
    if count is not None:
        if not count[0].strip().isdigit():
            return None
        nargs, i = int(count[0].strip()), _skip_space(tex, count[1])
        optional = _bracket(tex, i)
        if optional is not None:
            default, i = optional[0], _skip_space(tex, optional[1])
    body = _group(tex, i)
    if body is None or nargs > 9:
        return None
    return name, Macro(nargs, body[0], default), body[1]


def _parse_operator(tex: str, i: int, starred: bool) -> tuple[str, Macro, int] | None:
    named = _macro_name(tex, i)
    if named is None:
        return None
    name, i = named
    body = _group(tex, _skip_space(tex, i))
    if body is None:
        return None
    return name, Macro(0, f"\\operatorname{'*' if starred else ''}{{{body[0]}}}"), body[1]


def _parse_def(tex: str, i: int) -> tuple[str, Macro, int] | None:
    match = _CONTROL_WORD.match(tex, _skip_space(tex, i))
    if not match:
        return None
    name = match.group(1)
    j = match.end()
    params = ""
    while j < len(tex) and tex[j] != "{":
        params += tex[j]
        j += 1
    expected = "".join(f"#{k}" for k in range(1, len(params) // 2 + 1))
    if params.strip() and params.replace(" ", "") != expected:
        return None  # delimited parameters: TeX pattern matching, not expanded here
    body = _group(tex, j)
    if body is None:
        return None
    return name, Macro(len(params.replace(" ", "")) // 2, body[0]), body[1]


def _argument(tex: str, i: int) -> tuple[str, int] | None:
    """One undelimited argument at ``i``: a brace group, a control word or a single character."""
    i = _skip_space(tex, i)
    if i >= len(tex):
        return None
    if tex[i] == "{":
        return _group(tex, i)
    if tex[i] == "}":
        return None
    match = _CONTROL_WORD.match(tex, i)
    if match:
        return match.group(0), match.end()
    if tex[i] == "\\" and i + 1 < len(tex):
        return tex[i : i + 2], i + 2
    return tex[i], i + 1


def _expand_once(tex: str, macros: dict[str, Macro]) -> tuple[str, bool]:
    out: list[str] = []
    pos = 0
    changed = False
    for match in _CONTROL_WORD.finditer(tex):
        if match.start() < pos:
            continue
        # An escaped backslash (\\name) is a line break followed by text, not a macro.
        backslashes = len(tex[: match.start()]) - len(tex[: match.start()].rstrip("\\"))
        if backslashes % 2 == 1:
            continue
        macro = macros.get(match.group(1))
        if macro is None:
            continue
        args: list[str] = []
        i = match.end()
        if macro.nargs and macro.default is not None:
            optional = _bracket(tex, _skip_space(tex, i))
            if optional is not None:
                args.append(optional[0])
                i = optional[1]
            else:
                args.append(macro.default)
        while len(args) < macro.nargs:
            found = _argument(tex, i)
            if found is None:
                break
            args.append(found[0])
            i = found[1]
        if len(args) < macro.nargs:
            continue  # used without its arguments (e.g. inside another definition): leave it
        body = _substitute(macro.body, args)
        out.append(tex[pos : match.start()])
        # A body ending in a control word must not glue onto a letter that follows (\bf + x).
        glue = i < len(tex) and tex[i].isalpha() and _TRAILING_CONTROL_WORD.search(body)
        out.append(body + " " if glue else body)
        pos = i
        changed = True
    out.append(tex[pos:])
    return "".join(out), changed


def _substitute(body: str, args: list[str]) -> str:
    return _PARAM.sub(lambda m: args[int(m.group(1)) - 1] if int(m.group(1)) <= len(args) else m.group(0), body)


def expand_macros(tex: str, macros: dict[str, Macro], max_passes: int = 10, max_growth: float = 10.0) -> str:
    """``tex`` with every use of ``macros`` replaced by its body (see the module docstring)."""
    if not macros:
        return tex
    limit = max(len(tex) * max_growth, 10_000)
    for _ in range(max_passes):
        expanded, changed = _expand_once(tex, macros)
        if not changed or len(expanded) > limit:
            break
        tex = expanded
    return tex


def remove_bibliography(tex: str) -> str:
    """``tex`` without the bibliography and without anything after ``\\end{document}``."""
    end = _END_DOCUMENT.search(tex)
    if end:
        tex = tex[: end.start()]
    return _BIB_COMMANDS.sub("", _BIB_ENV.sub("", tex))


def clean_latex(tex: str) -> str | None:
    """The paper body with macros expanded, or None when it has no section to start from."""
    tex = strip_comments(tex.replace("\r\n", "\n").replace("\r", "\n"))
    tex, macros = extract_macros(tex)
    first = _SECTION.search(tex)
    if first is None:
        return None
    tex = remove_bibliography(tex[first.start():])
    tex = expand_macros(tex, macros)
    return _BLANK_LINES.sub("\n\n", tex).strip()


def inline_inputs(main: str, files: dict[str, str], max_depth: int = 8) -> str:
    """``files[main]`` with ``\\input``/``\\include`` and local ``\\usepackage`` files inlined.

    ``files`` maps paths inside the paper's archive to their text. Names resolve relative to the
    main file's folder, with or without ``.tex``; missing files and cycles are left as they are.
    """
    base = posixpath.dirname(main)

    def resolve(name: str, suffix: str) -> str | None:
        name = name.strip()
        for candidate in (name, name + suffix):
            for path in (posixpath.normpath(posixpath.join(base, candidate)), posixpath.normpath(candidate)):
                if path in files:
                    return path
        return None

    def inline(path: str, depth: int, seen: frozenset[str]) -> str:
        text = strip_comments(files[path])  # a commented-out \input must not be followed

        def replace_input(match: re.Match[str]) -> str:
            target = resolve(match.group(1) or match.group(2), ".tex")
            if target is None or target in seen or depth >= max_depth:
                return match.group(0)
            return inline(target, depth + 1, seen | {target})

        def replace_package(match: re.Match[str]) -> str:
            local = [resolve(name, ".sty") for name in match.group(1).split(",")]
            found = [p for p in local if p is not None and p not in seen and p.endswith(".sty")]
            if not found or depth >= max_depth:
                return match.group(0)
            return match.group(0) + "\n" + "\n".join(inline(p, depth + 1, seen | {p}) for p in found)

        return _USEPACKAGE.sub(replace_package, _INPUT.sub(replace_input, text))

    return inline(main, 0, frozenset({main}))


def find_main(files: dict[str, str]) -> str | None:
    """The main file of a multi-file paper: the one with ``\\documentclass`` and a document body.

    Several candidates (a paper and its supplement): the one with the most text wins, and ties
    go to the first path, so the choice is stable.
    """
    candidates = [p for p, t in files.items() if p.endswith(".tex") and "\\documentclass" in t]
    with_body = [p for p in candidates if "\\begin{document}" in files[p]]
    pool = with_body or candidates
    if not pool:
        return None
    return min(pool, key=lambda p: (-len(files[p]), p))
