"""refinery mix on real shards: the LLaMA-1 recipe over seven sources cut from WikiText and Gutenberg.

The realized proportions are measured by sampling with the trainer's own MixtureLoader.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from pipeline.mix import DEFAULT_RECIPE, MixError, load_recipe, main, mix, parse_source
from tests.trainer.conftest import book_chunks, train_tokenizer, wiki_articles, write_source
from trainer.data import MixtureLoader

LLAMA_SOURCES = ["commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run-dir-like trees ``<root>/<source>/shards/`` with a tokenizer copy, as the Tokenize stage leaves them,
    plus ``<root>/cc_split/shards/{en,de}/`` for sub-sources."""
    root = tmp_path_factory.mktemp("mix")
    texts = wiki_articles() + book_chunks()
    tok = root / "tokenizer.model"
    sp = train_tokenizer(texts, tok)
    sha = hashlib.sha256(tok.read_bytes()).hexdigest()
    encoded = sp.encode(texts)
    layout = {name: encoded[i::7] for i, name in enumerate(LLAMA_SOURCES)}
    layout["cc_split/en"] = encoded[0::2]
    layout["cc_split/de"] = encoded[1::5]
    for name, docs in layout.items():
        run, _, sub = name.partition("/")
        out = root / run / "shards" / sub if sub else root / run / "shards"
        source = sub or name  # a sub-source is named by its directory: commoncrawl/<sub>
        write_source(out, source, docs, tokenizer_sha256=sha, eos_id=sp.eos_id(), target_shard_tokens=20_000)
        shutil.copyfile(tok, out / "tokenizer.model")
    return root


def llama_sources(root: Path) -> dict[str, Path]:
    return {name: root / name for name in LLAMA_SOURCES}


def test_realized_proportions_match_the_llama_recipe(tmp_path: Path, shards: Path) -> None:
    result = mix(DEFAULT_RECIPE, llama_sources(shards), tmp_path, model_params=7e9)
    recipe = load_recipe(DEFAULT_RECIPE)
    assert {s.name: s.weight for s in result.mixture.sources} == pytest.approx(recipe.weights)
    loader = MixtureLoader(result.mixture, seq_len=32, batch_size=500, seed=1, heldout_every=None)
    counts: Counter[str] = Counter()
    for _ in range(20):
        batch = loader.next_batch()
        counts.update(loader.source_names[s] for s in batch.sources)
    total = sum(counts.values())
    for name, weight in recipe.weights.items():
        assert abs(counts[name] / total - weight) < 0.02, name

    data = json.loads(result.path.read_text())
    for entry in data["sources"]:  # LLaMA's epochs column: budget * weight / tokens
        assert entry["epochs"] == pytest.approx(1.4e12 * entry["weight"] / entry["tokens"])
    assert (tmp_path / "tokenizer.model").is_file()
    # A 1.4T budget over a few hundred thousand tokens repeats every source: one warning each.
    assert len(result.warnings) == 7 and "max_epochs" in result.warnings[0]
    scaling = data["plan"]["scaling"]
    assert scaling["chinchilla_tokens"] == 140e9 and scaling["llama_tokens"] == 1e12
    assert scaling["tokens_per_param"] == pytest.approx(200.0)


def test_sub_sources_share_their_group_weight_by_tokens(tmp_path: Path, shards: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("token_budget: 1000000\nmax_epochs: 100\nweights:\n  commoncrawl: 0.8\n  wikipedia: 0.2\n")
    sources = {"commoncrawl": shards / "cc_split", "wikipedia": shards / "wikipedia"}
    result = mix(recipe, sources, tmp_path / "out")
    by_name = {s.name: s for s in result.mixture.sources}
    assert set(by_name) == {"commoncrawl/en", "commoncrawl/de", "wikipedia"}
    en, de = by_name["commoncrawl/en"], by_name["commoncrawl/de"]
    assert en.weight + de.weight == pytest.approx(0.8)
    assert en.weight / de.weight == pytest.approx(en.tokens / de.tokens)
    # The more specific key wins: commoncrawl/de gets its own weight, /en takes the rest of the group's.
    recipe.write_text("token_budget: 1000000\nweights:\n  commoncrawl: {en: 0.5, de: 0.3}\n  wikipedia: 0.2\n")
    result = mix(recipe, sources, tmp_path / "out2")
    assert {s.name: s.weight for s in result.mixture.sources} == pytest.approx(
        {"commoncrawl/en": 0.5, "commoncrawl/de": 0.3, "wikipedia": 0.2})
    assert result.warnings == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("token_budget: 100\nweights: {wikipedia: 0.5, books: 0.6}\n", "key 'weights' sums to 1.1"),
        ("token_budget: 100\nweights: {wikipedia: 1.1, books: -0.1}\n", "key 'weights.books' is -0.1"),
        ("token_budget: 100\nweights: {wikipedia: 1}\nweight: 3\n", "unknown key 'weight'"),
        ("token_budget: 100\nweights: {wikipedia: x}\n", "key 'weights.wikipedia' must be a number"),
        ("weights: {wikipedia: 1}\n", "key 'token_budget'"),
    ],
)
def test_bad_recipes_name_the_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(body)
    with pytest.raises(MixError, match=message) as info:
        load_recipe(recipe)
    assert str(recipe) in str(info.value)


def test_a_recipe_source_without_data_fails(tmp_path: Path, shards: Path) -> None:
    sources = llama_sources(shards)
    del sources["github"]
    with pytest.raises(MixError, match=r"llama1.yaml: key 'weights.github' gives 'github' weight 0.045"):
        mix(DEFAULT_RECIPE, sources, tmp_path)
    with pytest.raises(MixError, match="source 'reddit' matches no key"):
        mix(DEFAULT_RECIPE, {**llama_sources(shards), "reddit": shards / "books"}, tmp_path)
    with pytest.raises(MixError, match="no shards found"):
        mix(DEFAULT_RECIPE, {**sources, "github": tmp_path}, tmp_path)


def test_cli_names_sources_and_reports_scaling(tmp_path: Path, shards: Path, capsys) -> None:
    args = ["--config", str(DEFAULT_RECIPE), "--output", str(tmp_path), "--model-params", "7e9"]
    for name in LLAMA_SOURCES:
        # A bare path takes its name from the manifest's source; NAME=PATH names it explicitly.
        args += ["--source", str(shards / name) if name != "books" else f"books={shards / 'books'}"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "Chinchilla-optimal" in captured.out and "1.4e+11" in captured.out
    assert "commoncrawl" in captured.out and "warning: source" in captured.err
    assert main(["--output", str(tmp_path), "--source", str(tmp_path / "nothing")]) == 2
    assert "no shards found" in capsys.readouterr().err
    assert parse_source("commoncrawl/en=/data/run") == ("commoncrawl/en", "/data/run")
    assert parse_source("/data/run") == (None, "/data/run")


def test_the_same_request_keeps_the_mixture_and_another_rewrites_it(tmp_path: Path, shards: Path, capsys) -> None:
    first = mix(DEFAULT_RECIPE, llama_sources(shards), tmp_path, model_params=7e9)
    stamp = first.path.stat().st_mtime_ns
    again = mix(DEFAULT_RECIPE, llama_sources(shards), tmp_path, model_params=7e9)
    assert again.path.stat().st_mtime_ns == stamp and "already complete" in capsys.readouterr().err
    assert again.scaling == first.scaling and len(again.warnings) == len(first.warnings)
    # Another model size is another request (and so are other shards, another recipe or budget).
    other = mix(DEFAULT_RECIPE, llama_sources(shards), tmp_path, model_params=13e9)
    assert json.loads(other.path.read_text())["plan"]["request"]["model_params"] == 13e9
    # Sub-sources (a dump published as commoncrawl/<dump-id>) take their group's weight.
    named = {**llama_sources(shards)}
    named["commoncrawl/CC-MAIN-2024-22"] = named.pop("commoncrawl")
    result = mix(DEFAULT_RECIPE, named, tmp_path / "dump")
    assert {s.name: s.weight for s in result.mixture.sources}["commoncrawl/CC-MAIN-2024-22"] == pytest.approx(0.67)
