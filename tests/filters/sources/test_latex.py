"""LaTeX cleaning for arXiv: comments, macro collection and expansion, cuts, multi-file papers."""

from __future__ import annotations

from filters.latex import (
    clean_latex,
    expand_macros,
    extract_macros,
    find_main,
    inline_inputs,
    remove_bibliography,
    strip_comments,
)


def expand(tex: str) -> str:
    body, macros = extract_macros(tex)
    return expand_macros(body, macros).strip()


def test_comments_go_but_escaped_percent_stays():
    tex = "A 50\\% rise % measured at noon\n% a whole comment line\nNext line \\\\% after a line break\n"
    assert strip_comments(tex) == "A 50\\% rise\nNext line \\\\\n"


def test_comment_environment_goes():
    assert strip_comments("a\n\\begin{comment}\nhidden\n\\end{comment}\nb") == "a\n\nb"


def test_newcommand_without_arguments():
    assert expand("\\newcommand{\\R}{\\mathbb{R}}\n$x \\in \\R$ and $\\R^2$") == "$x \\in \\mathbb{R}$ and $\\mathbb{R}^2$"


def test_newcommand_forms_renew_provide_star_and_unbraced_name():
    tex = ("\\renewcommand*\\vec[1]{\\mathbf{#1}}\n\\providecommand{\\half}{\\frac12}\n"
           "$\\vec{x} + \\vec y = \\half$")
    assert expand(tex) == "$\\mathbf{x} + \\mathbf{y} = \\frac12$"


def test_arguments_are_substituted_and_optional_default_applies():
    tex = "\\newcommand{\\pair}[2][0]{(#1, #2)}\n\\pair{a} and \\pair[b]{c}"
    assert expand(tex) == "(0, a) and (b, c)"


def test_def_with_undelimited_parameters():
    assert expand("\\def\\norm#1{\\|#1\\|}\n\\def\\eps{\\varepsilon}\n$\\norm{v} < \\eps$") == "$\\|v\\| < \\varepsilon$"


def test_def_with_delimited_parameters_is_left_alone():
    tex = "\\def\\pt#1,#2.{(#1;#2)}\n\\pt 1,2."
    body, macros = extract_macros(tex)
    assert macros == {} and body == tex


def test_macros_defined_through_macros_expand_fully():
    tex = "\\newcommand{\\R}{\\mathbb{R}}\n\\newcommand{\\Rn}{\\R^n}\n$\\Rn$"
    assert expand(tex) == "$\\mathbb{R}^n$"


def test_self_reference_stops_instead_of_looping():
    out = expand("\\def\\loop{x\\loop}\n\\loop")
    assert out.startswith("xxx") and len(out) < 200


def test_macro_names_are_matched_whole():
    assert expand("\\newcommand{\\R}{X}\n\\Rightarrow \\R") == "\\Rightarrow X"


def test_declare_math_operator():
    assert expand("\\DeclareMathOperator*{\\argmax}{arg\\,max}\n$\\argmax_x f$") == "$\\operatorname*{arg\\,max}_x f$"


def test_expansion_does_not_glue_a_control_word_to_a_letter():
    assert expand("\\newcommand{\\emphx}[1]{#1\\bf}\n\\emphx{a}b") == "a\\bf b"


def test_everything_before_the_first_section_goes():
    tex = ("\\documentclass{article}\n\\begin{document}\n\\maketitle\n\\begin{abstract}A.\\end{abstract}\n"
           "\\section{Intro}\nText.\n\\end{document}\n")
    assert clean_latex(tex) == "\\section{Intro}\nText."


def test_no_section_means_no_body():
    assert clean_latex("\\begin{document}Just a note.\\end{document}") is None


def test_starred_section_and_chapter_count_as_sections():
    assert clean_latex("pre\n\\section*{Intro}\nx") == "\\section*{Intro}\nx"
    assert clean_latex("pre\n\\chapter{One}\nx") == "\\chapter{One}\nx"


def test_bibliography_goes():
    tex = ("\\section{A}\nText \\cite{k}.\n\\bibliographystyle{plain}\n\\bibliography{refs}\n"
           "\\begin{thebibliography}{9}\n\\bibitem{k} K. Author.\n\\end{thebibliography}\n"
           "\\appendix\n\\section{Proofs}\nP.\n\\end{document}\ntrailing")
    assert remove_bibliography(tex).split() == ["\\section{A}", "Text", "\\cite{k}.", "\\appendix",
                                                 "\\section{Proofs}", "P."]


def test_definitions_after_the_first_section_are_removed_too():
    assert clean_latex("\\section{A}\n\\newcommand{\\x}{y}\nValue \\x.") == "\\section{A}\n\nValue y."


def test_inline_inputs_follows_includes_and_local_packages():
    files = {
        "paper/main.tex": "\\documentclass{article}\n\\usepackage{amsmath,defs}\n\\begin{document}\n"
                          "\\input{sec/one}\n% \\input{sec/unused}\n\\include{sec/two.tex}\n\\end{document}",
        "paper/defs.sty": "\\newcommand{\\R}{\\mathbb{R}}",
        "paper/sec/one.tex": "\\section{One}\n$\\R$",
        "paper/sec/two.tex": "\\section{Two}\n\\input{sec/two}",  # a cycle stays unexpanded
    }
    joined = inline_inputs("paper/main.tex", files)
    assert "\\newcommand{\\R}{\\mathbb{R}}" in joined and "\\section{One}" in joined
    assert "unused" not in joined and joined.count("\\section{Two}") == 1
    assert clean_latex(joined).startswith("\\section{One}\n$\\mathbb{R}$")


def test_find_main_prefers_a_file_with_a_document_body():
    files = {"a.tex": "\\section{Only a part}", "b.tex": "\\documentclass{article}",
             "c.tex": "\\documentclass{article}\\begin{document}x\\end{document}"}
    assert find_main(files) == "c.tex"
    assert find_main({"a.tex": "\\section{x}"}) is None
