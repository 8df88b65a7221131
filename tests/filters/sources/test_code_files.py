"""License detection, license-header removal and the code-file rules, on hand-written files."""

from __future__ import annotations

import pytest

from filters.code_files import (
    CodeFileRules,
    is_license_file,
    license_from_text,
    normalize_spdx,
    strip_license_header,
)
from filters.document import Document

CODE = "def area(r):\n    return 3.14159 * r * r\n"


def doc(text: str) -> Document:
    return Document(id="github:t:x.py", text=text)


@pytest.mark.parametrize(("text", "spdx"), [
    ("Permission is hereby granted, free of charge, to any person obtaining a copy", "MIT"),
    ("Apache License\n                           Version 2.0, January 2004", "Apache-2.0"),
    ("Redistribution and use in source and binary forms, with or without\nmodification, are permitted", "BSD-2-Clause"),
    ("Redistribution and use in source and binary forms, with or without modification...\n"
     "3. Neither the name of the copyright holder nor the names of its contributors may be used", "BSD-3-Clause"),
    ("GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007", "GPL"),
    ("GNU LESSER GENERAL PUBLIC LICENSE", "GPL"),
    ("All rights reserved. Do not copy.", None),
])
def test_license_from_text(text: str, spdx: str | None):
    assert license_from_text(text) == spdx


def test_license_file_names():
    assert all(is_license_file(n) for n in ("LICENSE", "repo/LICENSE.md", "COPYING", "licence.txt", "UNLICENSE"))
    assert not any(is_license_file(n) for n in ("license.py", "src/licenses.rs", "README.md"))


def test_spdx_aliases():
    assert normalize_spdx(" mit ") == "MIT"
    assert normalize_spdx("Apache License 2.0") == "Apache-2.0"
    assert normalize_spdx("bsd-3-clause") == "BSD-3-Clause"
    assert normalize_spdx("GPL-3.0-only") == "GPL-3.0-only"


def test_strips_a_c_block_license_header():
    text = "/*\n * Copyright 2024 Tide Co.\n * Licensed under the Apache License, Version 2.0.\n */\n\npackage tide;\n"
    assert strip_license_header(text) == "package tide;\n"


def test_strips_hash_comments_but_keeps_shebang_and_encoding():
    text = "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n# Copyright (c) 2024 Tide Co.\n# MIT License\n\n" + CODE
    assert strip_license_header(text) == "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n" + CODE


def test_strips_slash_comments_and_spdx_lines():
    text = "// SPDX-License-Identifier: MIT\n// (c) Tide Co.\n\nfn main() {}\n"
    assert strip_license_header(text) == "fn main() {}\n"


def test_keeps_a_leading_comment_that_is_not_about_licensing():
    text = "# Compute the area of a circle.\n" + CODE
    assert strip_license_header(text) == text


def test_only_the_leading_block_goes():
    text = "# Copyright 2024 Tide Co.\n\n# Helpers below are licensed to nobody in particular.\n" + CODE
    assert strip_license_header(text) == "# Helpers below are licensed to nobody in particular.\n" + CODE


def test_rules_keep_ordinary_code():
    assert CodeFileRules()(doc(CODE)).keep


def test_rules_drop_a_line_over_1000_characters():
    verdict = CodeFileRules()(doc(CODE + "x = '" + "a" * 1000 + "'\n"))
    assert verdict.reason == "code_files.max_line_length"
    assert CodeFileRules()(doc("x = '" + "a" * 990 + "'\n" + CODE * 40)).keep


def test_rules_drop_a_mean_line_length_over_100():
    lines = ["value_%03d = compute(" % i + "a" * 95 + ")" for i in range(20)]
    assert CodeFileRules()(doc("\n".join(lines))).reason == "code_files.mean_line_length"
    assert CodeFileRules(max_mean_line_length=None)(doc("\n".join(lines))).keep


def test_rules_drop_files_with_under_25_percent_alphanumerics():
    table = "\n".join("[ ( -.- ) , ( +.+ ) ] ," for _ in range(30))
    assert CodeFileRules()(doc(table)).reason == "code_files.alnum_fraction"


def test_rules_drop_empty_files():
    assert CodeFileRules()(doc("\n\n  \n")).reason == "code_files.empty"
