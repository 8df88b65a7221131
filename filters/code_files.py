"""Source files from GitHub: which licenses are kept, which files read as code, and license headers.

Touvron et al. 2023, section 2.1: "We only kept projects that are distributed under the Apache,
BSD and MIT licenses. Additionally, we filtered low quality files with heuristics based on the
line length or proportion of alphanumeric characters, and removed boilerplate, such as headers,
with regular expressions." The paper gives no numbers; ours are the ones RedPajama-Data
(``data_prep/github/github_clean_dedup_local.py``) and StarCoder (Li et al. 2023, section 3.1)
use for the same rules: a file is dropped if a line is longer than 1,000 characters, if the mean
line length exceeds 100, or if fewer than 25% of its characters are alphanumeric. Those catch
minified bundles, data blobs and generated tables, which are not code a model should learn from.

A license header is the leading comment block of a file when it talks about licensing or
copyright (Apache's "Licensed under the Apache License", MIT's "Permission is hereby granted",
an SPDX line). It repeats in every file of a project, so the model would learn it by heart;
it is removed, the rest of the file is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from filters.document import Document
from filters.verdict import Verdict

# LLaMA's three license families, as SPDX ids.
PERMISSIVE_LICENSES = ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause")

LICENSE_FILE_NAMES = frozenset({"license", "licence", "copying", "license-mit", "license-apache", "unlicense"})
_LICENSE_FILE_SUFFIXES = ("", ".txt", ".md", ".rst")

# Distinctive sentences of each license text. Checked in order: GPL texts mention "BSD" and
# "MIT" nowhere, but Apache's NOTICE files quote BSD clauses, so Apache is tried first.
_LICENSE_TEXTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("GPL", re.compile(r"GNU (AFFERO |LESSER |LIBRARY )?GENERAL PUBLIC LICENSE", re.I)),
    ("Apache-2.0", re.compile(r"Apache License,?\s+Version 2\.0", re.I)),
    ("MIT", re.compile(r"Permission is hereby granted,? free of charge,? to any person", re.I)),
    ("BSD-3-Clause", re.compile(r"Neither the name of .{0,200}? nor the names of (its|their) contributors", re.I | re.S)),
    ("BSD-2-Clause", re.compile(r"Redistribution and use in source and binary forms,? with or without\s+modification", re.I)),
)

_SPDX_ALIASES = {
    "mit": "MIT", "mit license": "MIT", "expat": "MIT",
    "apache-2.0": "Apache-2.0", "apache 2.0": "Apache-2.0", "apache license 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0", "apache2": "Apache-2.0", "apache license, version 2.0": "Apache-2.0",
    "bsd-2-clause": "BSD-2-Clause", "bsd-2": "BSD-2-Clause", "bsd 2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause", "bsd-3": "BSD-3-Clause", "bsd 3-clause": "BSD-3-Clause",
    "bsd": "BSD-3-Clause", "new bsd": "BSD-3-Clause", "simplified bsd": "BSD-2-Clause",
}

# File extension -> language, for meta and for the reader's allowlist. Prose formats (.md,
# .txt) are not code and are left to other sources.
EXTENSION_LANGUAGES = {
    ".py": "python", ".pyi": "python", ".c": "c", ".h": "c", ".cc": "c++", ".cpp": "c++", ".cxx": "c++",
    ".hpp": "c++", ".hh": "c++", ".cs": "c#", ".java": "java", ".kt": "kotlin", ".scala": "scala",
    ".go": "go", ".rs": "rust", ".js": "javascript", ".mjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript", ".rb": "ruby", ".php": "php", ".pl": "perl",
    ".pm": "perl", ".swift": "swift", ".m": "objective-c", ".mm": "objective-c", ".r": "r",
    ".jl": "julia", ".lua": "lua", ".hs": "haskell", ".ml": "ocaml", ".ex": "elixir", ".exs": "elixir",
    ".erl": "erlang", ".clj": "clojure", ".dart": "dart", ".sh": "shell", ".bash": "shell",
    ".sql": "sql", ".f90": "fortran", ".vue": "vue", ".css": "css", ".html": "html", ".tex": "tex",
}

# Leading comment blocks, one pattern per comment syntax; each must start the file (after a
# shebang or encoding line) and may be followed by blank lines.
_HEADER_BLOCKS = (
    re.compile(r"\A\s*/\*.*?\*/[ \t]*\n?", re.S),  # C, Java, JS, Go, Rust, CSS ...
    re.compile(r"\A(?:[ \t]*//[^\n]*(?:\n|\Z))+"),  # C++, Go, Rust, JS line comments
    re.compile(r"\A(?:[ \t]*#(?!!)[^\n]*(?:\n|\Z))+"),  # Python, shell, Ruby, R, Perl
    re.compile(r"\A(?:[ \t]*--[^\n]*(?:\n|\Z))+"),  # SQL, Haskell, Lua
    re.compile(r"\A\s*<!--.*?-->[ \t]*\n?", re.S),  # HTML, XML
)
_HEADER_WORDS = re.compile(
    r"licen[cs]e|copyright|\(c\)|©|all rights reserved|spdx-license-identifier|permission is hereby granted"
    r"|redistribution and use|warrant",
    re.I,
)
_PREAMBLE_LINE = re.compile(r"\A(?:#![^\n]*\n|[ \t]*#[^\n]*coding[:=][^\n]*\n)")


def normalize_spdx(name: str) -> str:
    """The SPDX id of a license name as repositories and dataset rows spell it (unknown: as given)."""
    key = name.strip().lower()
    return _SPDX_ALIASES.get(key, name.strip())


def is_license_file(filename: str) -> bool:
    """Whether a file named like this states a project's license (LICENSE, COPYING.txt, ...)."""
    lowered = filename.rsplit("/", 1)[-1].lower()
    for suffix in _LICENSE_FILE_SUFFIXES:
        if suffix and not lowered.endswith(suffix):
            continue
        stem = lowered[: len(lowered) - len(suffix)] if suffix else lowered
        if stem in LICENSE_FILE_NAMES:
            return True
    return False


def license_from_text(text: str) -> str | None:
    """SPDX id (or "GPL") of a license file's text, None when it is none we recognize."""
    for spdx, pattern in _LICENSE_TEXTS:
        if pattern.search(text):
            return spdx
    return None


def strip_license_header(text: str) -> str:
    """``text`` without a leading comment block that is about licensing or copyright.

    A shebang or an encoding line above the block stays: the file must still run.
    """
    preamble = ""
    match = _PREAMBLE_LINE.match(text)
    while match:
        preamble += match.group(0)
        text = text[match.end():]
        match = _PREAMBLE_LINE.match(text)
    for block in _HEADER_BLOCKS:
        found = block.match(text)
        if found and _HEADER_WORDS.search(found.group(0)):
            return preamble + text[found.end():].lstrip("\n")
    return preamble + text


@dataclass(frozen=True)
class CodeFileRules:
    """Drops files that read as data or minified code (LLaMA's line-length and alnum heuristics)."""

    name: ClassVar[str] = "code_files"

    # RedPajama-Data github_clean_dedup_local.py and StarCoder (Li et al. 2023) section 3.1.
    max_line_length: int | None = 1000
    max_mean_line_length: float | None = 100.0
    min_alnum_fraction: float | None = 0.25

    def __call__(self, doc: Document) -> Verdict:
        text = doc.text
        if not text.strip():
            return Verdict.drop(f"{self.name}.empty")
        lines = text.splitlines()
        lengths = [len(line) for line in lines]
        if self.max_line_length is not None and max(lengths) > self.max_line_length:
            return Verdict.drop(f"{self.name}.max_line_length")
        if self.max_mean_line_length is not None and sum(lengths) / len(lengths) > self.max_mean_line_length:
            return Verdict.drop(f"{self.name}.mean_line_length")
        if self.min_alnum_fraction is not None:
            alnum = sum(ch.isalnum() for ch in text)
            if alnum / len(text) < self.min_alnum_fraction:
                return Verdict.drop(f"{self.name}.alnum_fraction")
        return Verdict.KEEP
