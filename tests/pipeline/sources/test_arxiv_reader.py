"""ReadArxiv on a fixture paper: as arXiv serves it (tar.gz), inside a bulk tarball, and as .tex."""

from __future__ import annotations

import gzip
import io
import tarfile

from pipeline.sources.arxiv import ArxivOptions, abstract_url, paper_id, read_arxiv
from tests.pipeline.sources.harness import FIXTURES, run_reader

PAPER = FIXTURES / "arxiv" / "2301.00001"
NO_SECTION = FIXTURES / "arxiv" / "2302.00002.tex"
EXPECTED = (
    "\\section{Introduction}\nHarbour tides follow the moon \\cite{darwin}; over $\\mathbb{R}$ they look periodic.\n\n"
    "\\section{Model}\nLet $h(t) \\in \\mathbb{R}$ be the water level and $g(t)$ its gauge reading,\n"
    "with error at most $\\varepsilon$ and amplitude $A_0$.\nWe observe a 50\\% rise within $T_{\\mathrm{lunar}}$ hours."
)


def paper_tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(PAPER.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(PAPER)))
    return buffer.getvalue()


def test_paper_source_is_joined_and_cleaned(tmp_path):
    source = tmp_path / "2301.00001.tar.gz"
    source.write_bytes(paper_tarball())
    output = run_reader(read_arxiv(ArxivOptions()), [str(source), str(NO_SECTION)], tmp_path / "out")
    output.check_accounting()
    paper = output.by_id()["arxiv:2301.00001"]
    assert paper.text == EXPECTED
    assert (paper.url, paper.lang, paper.meta["main_file"]) == ("https://arxiv.org/abs/2301.00001", "en", "main.tex")
    assert output.drop_reasons() == {"arxiv:2302.00002": "latex.no_section"}


def test_bulk_tarball_is_read_paper_by_paper(tmp_path):
    bulk = tmp_path / "arXiv_src_2301_001.tar"
    with tarfile.open(bulk, "w") as tar:
        members = {
            "2301/2301.00001.gz": paper_tarball(),
            "2301/2301.00003.gz": gzip.compress(NO_SECTION.read_bytes().replace(b"This note", b"\\section{S}\nThis note")),
            "2301/2301.00004.pdf": b"%PDF-1.4 not a source",
        }
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    output = run_reader(read_arxiv(ArxivOptions()), [str(bulk)], tmp_path / "out")
    output.check_accounting()
    assert output.records() == 3
    assert sorted(output.by_id()) == ["arxiv:2301.00001", "arxiv:2301.00003"]
    assert output.by_id()["arxiv:2301.00001"].text == EXPECTED
    assert output.by_id()["arxiv:2301.00003"].text.startswith("\\section{S}\nThis note has no sections")
    assert output.skipped() == {"arxiv.no_source": 1}


def test_a_corrupt_source_is_an_error_not_a_crash(tmp_path):
    broken = tmp_path / "arXiv_src_2301_002.tar"
    broken.write_bytes(paper_tarball()[:10])
    output = run_reader(read_arxiv(ArxivOptions()), [str(broken)], tmp_path / "out")
    output.check_accounting()
    assert output.kept == [] and len(output.errors) == 1


def test_ids_and_urls():
    assert paper_id("src/2301.00001v2.tar.gz") == "2301.00001v2"
    assert abstract_url("2301.00001v2") == "https://arxiv.org/abs/2301.00001v2"
    assert paper_id("hep-th0101001.gz") == "hep-th0101001"
    assert abstract_url("hep-th0101001") == "https://arxiv.org/abs/hep-th/0101001"
    assert abstract_url("my-paper") == ""
