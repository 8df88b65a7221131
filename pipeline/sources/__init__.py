"""Readers of the LLaMA mixture's other sources (Touvron et al. 2023, section 2.1, table 1).

Each source is a reader here (Beam plumbing) and a cleaner in ``filters/`` (pure functions):
Wikipedia dumps, GitHub code, Project Gutenberg books, arXiv LaTeX, StackExchange dumps and C4
JSON lines. ``SOURCE_READERS`` registers them by ``input.format`` name; pipeline/readers.py
merges it into its own table, so ``input: {format: wikipedia, options: {...}}`` in a pipeline
config picks one. The funnel label of each reader is its single stage.
"""

from __future__ import annotations

from pipeline.readers import ReaderSpec
from pipeline.sources import arxiv, c4, github, gutenberg, stackexchange, wikipedia

SOURCE_READERS: dict[str, ReaderSpec] = {
    "wikipedia": ReaderSpec(
        (wikipedia.STAGE,), wikipedia.WikipediaOptions,
        lambda cfg, options: wikipedia.read_wikipedia(options, cfg.source),
    ),
    "github": ReaderSpec(
        (github.STAGE,), github.GitHubOptions, lambda cfg, options: github.read_github(options, cfg.source),
    ),
    "gutenberg": ReaderSpec(
        (gutenberg.STAGE,), gutenberg.GutenbergOptions,
        lambda cfg, options: gutenberg.read_gutenberg(options, cfg.source),
    ),
    "arxiv": ReaderSpec(
        (arxiv.STAGE,), arxiv.ArxivOptions, lambda cfg, options: arxiv.read_arxiv(options, cfg.source),
    ),
    "stackexchange": ReaderSpec(
        (stackexchange.STAGE,), stackexchange.StackExchangeOptions,
        lambda cfg, options: stackexchange.read_stackexchange(options, cfg.source),
    ),
    "c4": ReaderSpec((c4.STAGE,), c4.C4Options, lambda cfg, options: c4.read_c4(options, cfg.source)),
}

__all__ = ["SOURCE_READERS"]
