"""The ``refinery`` command: thin subcommands over the Python APIs that notebooks and DAGs call.

Exit codes: 0 done (or already complete), 1 the run failed its checks (outputs written, no
_SUCCESS), 2 a usage or input mistake, reported in one line without a traceback.
Heavy modules are imported inside each subcommand so ``refinery --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Another run holds the output (pipeline/output_dir.py): not a mistake, and trying again later can
# succeed (its claim is taken over once silent for 10 minutes). 75 is EX_TEMPFAIL of sysexits.h.
EXIT_BUSY = 75

log = logging.getLogger("refinery")

# Subcommands whose module owns its own argument parser (and --help); the trainer's commands run
# without importing Beam. name -> ("module:function", one-line help)
DELEGATED: dict[str, tuple[str, str]] = {
    "train-tokenizer": ("pipeline.tokenizer_training:main", "train a LLaMA-style sentencepiece BPE on documents"),
    "catalog": ("pipeline.catalog:main", "publish a source's finished run; print the latest run of each source"),
    "mix": ("pipeline.mix:main", "build mixture.json from per-source shards and a recipe (LLaMA-1 by default)"),
    "report": ("pipeline.report:main", "write report.html and report.json for one or more runs"),
    "verify": ("pipeline.verify:main", "check token shards against their manifests"),
    "wiki-references": ("pipeline.wiki_references:main", "the URLs cited in Wikipedia articles, from a dump"),
    "ablate": ("pipeline.ablate:main", "compare curation recipes by training the same proxy model on each"),
    "pretrain": ("trainer.train:main", "pretrain a decoder on a mixture of token shards"),
    "generate": ("trainer.generate:main", "sample text from a checkpoint (KV cache, rolling buffer for windows)"),
    "eval": ("trainer.evaluate:main", "held-out loss, perplexity and bits per byte of a checkpoint, per source"),
    "eval-mc": ("trainer.multiple_choice:main", "few-shot multiple-choice accuracy of a checkpoint by log-likelihood"),
    "export-hf": ("trainer.export_hf:main", "write a checkpoint as a Hugging Face Llama/Mistral model"),
    "import-hf": ("trainer.export_hf:import_main", "turn a Hugging Face Llama/Mistral model into a checkpoint"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    if extra and not getattr(args, "accepts_beam_args", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    refuse_abbreviations(args.command_parser, extra)
    _setup_logging(args.verbose)
    try:
        return args.handler(args, extra)
    except KeyboardInterrupt:
        print("refinery: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the user errors we know get one line; others re-raise
        from pipeline.output_dir import ClaimBusy

        if isinstance(exc, ClaimBusy):
            print(f"refinery {args.command}: busy: {exc}", file=sys.stderr)
            return EXIT_BUSY
        if _is_user_error(exc):
            print(f"refinery {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        from pipeline.run import RunFailed

        if isinstance(exc, RunFailed):
            print(f"refinery {args.command}: run failed: {exc}", file=sys.stderr)
            return EXIT_FAILED
        raise


def _delegate(command: str, argv: list[str]) -> int:
    import importlib

    target, _ = DELEGATED[command]
    module_name, _, function = target.partition(":")
    return int(getattr(importlib.import_module(module_name), function)(argv) or 0)


def refuse_abbreviations(parser: argparse.ArgumentParser, beam_args: Sequence[str]) -> None:
    """Exit 2 on a Beam argument that abbreviates one of ``parser``'s own flags (``--out`` for ``--output``).

    Parsers here never expand abbreviations (allow_abbrev=False), so ``--out=/x`` would reach Beam,
    which drops flags it does not know with a warning; a mistyped flag of ours must not pass unseen.
    """
    own = [flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")]
    for arg in beam_args:
        name = arg.split("=", 1)[0]
        matches = [flag for flag in own if flag.startswith(name)] if name.startswith("--") else []
        if matches:
            parser.error(f"unrecognized arguments: {arg} (flags are never abbreviated; "
                         f"did you mean {' or '.join(matches)}?)")


def _is_user_error(exc: Exception) -> bool:
    from filters.config import ConfigError
    from pipeline.estimate import EstimateError
    from pipeline.inputs import InputError
    from pipeline.output_dir import OutputDirError

    if isinstance(exc, (ConfigError, EstimateError, InputError, OutputDirError, FileNotFoundError)):
        return True
    # Beam reports an unknown --runner as a ValueError naming it.
    return isinstance(exc, ValueError) and "runner" in str(exc).lower()


def _parser() -> argparse.ArgumentParser:
    # allow_abbrev=False everywhere: `--out` must not silently mean `--output` (issue 17).
    parser = argparse.ArgumentParser(
        prog="refinery",
        description="Curate web-scale pretraining data on Apache Beam, and pretrain on it.",
        allow_abbrev=False,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = _command(sub, "run", _cmd_run, "run the curation pipeline over WARC/ARC files", beam=True)
    run.add_argument("--config", default=None, help="pipeline YAML (default: configs/commoncrawl.yaml)")
    run.add_argument("--input", nargs="+", required=True, metavar="PATH",
                     help="WARC/ARC files, globs, gs:// or s3:// paths, or a CommonCrawl warc.paths.gz manifest")
    run.add_argument("--output", required=True, help="output directory (local, gs:// or s3://)")
    run.add_argument("--base-url", default=None,
                     help="base URL for manifest entries (default: CommonCrawl's public HTTPS endpoint)")
    run.add_argument("--limit", type=int, default=None, help="process only the first N input files")
    run.add_argument("--overwrite", action="store_true", help="replace a complete output instead of skipping")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set extract.timeout_seconds=5 (repeatable)")

    est = _command(sub, "estimate", _cmd_estimate,
                   "project a dump's core-hours, cost, documents, tokens and disk from runs on a sample of it",
                   beam=True)
    est.add_argument("--input", nargs="+", required=True, metavar="PATH",
                     help="the dump, as for `run`: files, globs, or a CommonCrawl warc.paths.gz manifest")
    est.add_argument("--output", required=True,
                     help="work directory: one run per engine and sample file, and estimate.json")
    est.add_argument("--config", default=None, help="pipeline YAML (default: configs/commoncrawl.yaml)")
    est.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, as for `run` (repeatable)")
    est.add_argument("--base-url", default=None,
                     help="base URL (or local directory) for manifest entries (default: CommonCrawl's HTTPS endpoint)")
    est.add_argument("--sample", type=int, default=3,
                     help="input files to run, spread evenly over the list; each runs on its own (default 3)")
    est.add_argument("--engines", nargs="+", default=[], metavar="ENGINE",
                     help="extraction engines to compare: trafilatura, resiliparse (default: the config's)")
    est.add_argument("--total-files", type=int, default=None,
                     help="files in the whole dump, when the inputs list only part of it (default: as listed)")
    est.add_argument("--price-per-core-hour", type=float, default=None,
                     help="USD per core-hour for the cost column (default 0.05)")
    est.add_argument("--bytes-per-token", type=float, default=None,
                     help="UTF-8 bytes per token when the config does not tokenize (default 4.2, an assumption)")

    demo = _command(sub, "demo", _cmd_demo, "generate a sample crawl and run every stage on it", beam=True)
    demo.add_argument("--output", default="demo-output", help="where the demo writes (default: ./demo-output)")
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override a key of the crawl's config, e.g. --set extract.engine=resiliparse (repeatable)")

    tq = _command(sub, "train-quality", _cmd_train_quality,
                  "train the fastText quality classifier (reference pages vs random pages)")
    tq.add_argument("--positive", nargs="+", required=True, metavar="PATH",
                    help="positive texts: .txt, .jsonl[.gz], documents .parquet, or folders of them")
    tq.add_argument("--negative", nargs="+", required=True, metavar="PATH", help="negative texts, same formats")
    tq.add_argument("--output", required=True, help="model file to write (e.g. models/quality.bin)")
    tq.add_argument("--seed", type=int, default=0)
    tq.add_argument("--epoch", type=int, default=10)
    tq.add_argument("--dim", type=int, default=64)
    tq.add_argument("--holdout", type=float, default=0.1, help="held-out fraction for the report (default 0.1)")

    qs = _command(sub, "build-quality-set", _cmd_build_quality_set,
                  "positives = documents whose URL is in a reference list; negatives = as many random others",
                  beam=True)
    qs.add_argument("--references", required=True,
                    help="text file of reference URLs, one per line, or a `refinery wiki-references` output")
    qs.add_argument("--input", nargs="+", required=True, help="documents Parquet: files, globs or run directories")
    qs.add_argument("--output", required=True, help="directory for positive*.jsonl and negative*.jsonl")
    qs.add_argument("--match", choices=("url", "domain"), default="url",
                    help="url: the page itself is cited (LLaMA); domain: any page of a cited host "
                         "(an alternative for crawls that hold few cited pages)")
    qs.add_argument("--min-positives", type=int, default=100,
                    help="exit 1 (no _SUCCESS) when fewer positives are left after --max-per-domain: "
                         "too few to train on (default 100)")
    qs.add_argument("--max-per-domain", default="20%", metavar="N|P%",
                    help="keep at most N positives per domain, or P%% of the matched documents, picked by a "
                         "stable hash of the URL so re-runs keep the same pages; 0 = no cap. Default 20%%: "
                         "relative, because the positives number hundreds on a sample and millions on a dump, "
                         "and a fifth means no one site (archive.org on the shared sample) is most of the class")

    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False, allow_abbrev=False)
    return parser


def _command(sub, name: str, handler: Callable, help_text: str, beam: bool = False) -> argparse.ArgumentParser:
    epilog = ("Any other --flags are passed to Beam as pipeline options, e.g. --runner DataflowRunner, "
              "--direct_num_workers 2 --direct_running_mode multi_processing.") if beam else None
    parser = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, allow_abbrev=False)
    parser.set_defaults(handler=handler, accepts_beam_args=beam, command_parser=parser)
    return parser


def _overrides(pairs: Sequence[str]) -> dict[str, object]:
    import yaml

    from filters.config import ConfigError

    result: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE")
        result[key.strip()] = yaml.safe_load(value)
    return result


def _cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline.config import load_config
    from pipeline.inputs import COMMONCRAWL_BASE_URL
    from pipeline.run import run

    config = load_config(args.config, _overrides(args.set))
    result = run(args.input, args.output, config=config, beam_args=beam_args, overwrite=args.overwrite,
                 base_url=args.base_url or COMMONCRAWL_BASE_URL, limit=args.limit)
    if result.skipped:
        print(f"{args.output} is already complete; nothing to do (--overwrite to redo it)")
    else:
        _print_summary(result.stats, args.output)
    return EXIT_OK


def _cmd_estimate(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline import estimate

    price = estimate.DEFAULT_PRICE_PER_CORE_HOUR if args.price_per_core_hour is None else args.price_per_core_hour
    bytes_per_token = args.bytes_per_token or estimate.DEFAULT_BYTES_PER_TOKEN
    result, projections = estimate.estimate(
        args.input, args.output, config=args.config, overrides=_overrides(args.set), engines=args.engines,
        sample=args.sample, beam_args=beam_args, base_url=args.base_url, total_files=args.total_files,
        price_per_core_hour=price, bytes_per_token=bytes_per_token)
    print(estimate.table(result, projections))
    print(f"figures: {args.output}/{estimate.ESTIMATE_FILE}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline.demo import run_demo

    run_demo(args.output, beam_args=beam_args, crawl_overrides=_overrides(args.set))
    return EXIT_OK


def _cmd_train_quality(args: argparse.Namespace, _: list[str]) -> int:
    import itertools
    import json
    from pathlib import Path

    from filters.quality_classifier import train_quality_classifier
    from filters.text_sources import read_texts

    def texts(paths: list[str]):
        return itertools.chain.from_iterable(read_texts(p) for p in paths)

    report = train_quality_classifier(texts(args.positive), texts(args.negative), Path(args.output),
                                      seed=args.seed, epoch=args.epoch, dim=args.dim,
                                      holdout_fraction=args.holdout)
    summary = report.as_dict()
    Path(args.output).with_suffix(".report.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"model: {args.output}")
    for key in ("precision", "recall", "auc"):
        print(f"  held-out {key:<9} {summary[key]:.3f}")
    print(f"  report: {Path(args.output).with_suffix('.report.json')}")
    return EXIT_OK


def _cmd_build_quality_set(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline.quality_set import build_quality_set, parse_max_per_domain

    try:
        parse_max_per_domain(args.max_per_domain)
    except ValueError as bad:
        args.command_parser.error(str(bad))
    report = build_quality_set(args.references, args.input, args.output, beam_args, match=args.match,
                               min_positives=args.min_positives, max_per_domain=args.max_per_domain)
    print(f"{report['references_matched']} of {report['references']} distinct references matched "
          f"({report['match_rate']:.2%}) -> {report['positive']} positive and {report['negative']} negative "
          f"documents in {args.output}")
    cap = report["max_per_domain"]
    if cap["cap"] is None:
        print(f"  --max-per-domain {cap['spec']}: no cap, all {report['documents_matched']} matched documents kept")
    else:
        print(f"  --max-per-domain {cap['spec']} (at most {cap['cap']} per domain) dropped "
              f"{report['capped']} of {report['documents_matched']} matched documents")
    capped = report["capped_by_domain"]
    for domain, n in list(report["matches_by_domain"].items())[:10]:
        dropped = f" ({capped[domain]} dropped by the cap)" if domain in capped else ""
        print(f"  {domain:<32} {n:>7} matched{dropped}")
    return EXIT_OK


def _print_summary(stats: dict, output: str) -> None:
    totals = stats["totals"]
    print(f"{totals['files']} file(s), {totals['records']} records -> {totals['kept']} documents kept")
    for stage in stats["funnel"]:
        top = ", ".join(f"{r} {n}" for r, n in sorted(stage["reasons"].items(), key=lambda kv: -kv[1])[:4])
        print(f"  {stage['stage']:<14} in {stage['in']:>8}  out {stage['out']:>8}  ({top})")
    print(f"outputs: {output}/documents/*.parquet, {output}/stats.json")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_beam_import_noise)
    # Beam and its dependencies are chatty at INFO; keep their warnings.
    for noisy in ("apache_beam", "absl", "urllib3", "trafilatura", "htmldate", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


def _drop_beam_import_noise(record: logging.LogRecord) -> bool:
    """Beam warns about optional GCP clients on every import; it says nothing about our run."""
    return "apitools not found" not in record.getMessage()


if __name__ == "__main__":
    sys.exit(main())
