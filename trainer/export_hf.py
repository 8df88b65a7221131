"""Hugging Face interchange: ``refinery export-hf`` writes a checkpoint ``transformers`` loads from disk,
``refinery import-hf`` turns one back into a checkpoint our trainer resumes and ``generate`` loads.

Export layout (what ``LlamaForCausalLM``/``MistralForCausalLM.from_pretrained(dir)`` reads)::

    config.json               Llama without a sliding window, Mistral with one
    model.safetensors         weights renamed by trainer.hf_keys (a rename only, no permutation)
    generation_config.json    bos/eos ids
    tokenizer.model           the sentencepiece model, unchanged
    tokenizer.json            the same tokenizer for the ``tokenizers`` library (see below)
    tokenizer_config.json, special_tokens_map.json

Why a tokenizer.json. transformers 5 builds its tokenizers with the ``tokenizers`` library; from a bare
tokenizer.model it must parse the sentencepiece protobuf, and the protobuf runtime Beam pins (< 7) is
older than the generated code transformers and sentencepiece ship, so that conversion fails. We write
tokenizer.json ourselves: the BPE vocabulary and merges from sentencepiece's own API (a merge's rank is
the score of the piece it makes), its normalization (the precompiled NFKC charsmap, whitespace trimming
and collapsing, the dummy-prefix "▁") read from the model file with a few lines of protobuf wire-format
decoding. ``tokenizer_config.json`` names the generic ``PreTrainedTokenizerFast`` class: transformers 5's
``LlamaTokenizer`` rebuilds its own pipeline without a normalizer, which differs from sentencepiece on
text that NFKC or whitespace collapsing changes. BOS is not added automatically (``add_bos_token``
false) because refinery shards carry BOS only when their manifest's ``bos_id`` is set.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
import yaml

from filters.config import ConfigError, load_yaml
from trainer.checkpoint import latest_checkpoint, save_checkpoint
from trainer.config import ModelConfig
from trainer.guard import LossGuard
from trainer.hf_keys import from_hf_state_dict, hf_config_kwargs, to_hf_state_dict
from trainer.load import (
    TOKENIZER_NAME,
    LoadError,
    add_checkpoint_arguments,
    build_empty,
    dump_json,
    load_trained,
    sha256_file,
)
from trainer.mixture import MixtureError, load_mixture
from trainer.train_config import TrainConfig

log = logging.getLogger("trainer")
ARCHITECTURES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM"}
WEIGHTS_NAME = "model.safetensors"


class HFError(ValueError):
    """A Hugging Face directory or export request that cannot be served; the message names the path."""


# -- export -----------------------------------------------------------------------------------------


def hf_config(cfg: ModelConfig, sp: spm.SentencePieceProcessor) -> dict[str, Any]:
    """config.json contents; ``rope_theta`` is repeated at top level for transformers 4.x readers."""
    model_type = "llama" if cfg.sliding_window is None else "mistral"
    kwargs = hf_config_kwargs(cfg)
    return {
        "architectures": [ARCHITECTURES[model_type]],
        "model_type": model_type,
        **kwargs,
        "rope_theta": cfg.rope_theta,
        "attention_bias": False,
        "attention_dropout": 0.0,
        **({"mlp_bias": False} if model_type == "llama" else {}),
        "bos_token_id": _id_or_none(sp.bos_id()),
        "eos_token_id": _id_or_none(sp.eos_id()),
        "pad_token_id": _id_or_none(sp.pad_id()),
        "dtype": "float32",
        "use_cache": True,
    }


def export_hf(ckpt: str | Path, out: str | Path, *, tokenizer: str | Path | None = None) -> Path:
    """Write ``ckpt``'s model and tokenizer to ``out`` in Hugging Face's layout; returns ``out``."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise HFError("export-hf needs the safetensors package (pip install -e '.[dev]')") from None
    loaded = load_trained(ckpt, tokenizer=tokenizer)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise HFError(f"{out}: directory is not empty; choose a new --out")
    cfg, sp = loaded.config, loaded.tokenizer
    tensors = to_hf_state_dict(loaded.model.state_dict(), cfg)
    if cfg.tie_embeddings:  # safetensors refuses shared storage; from_pretrained re-ties from the config
        tensors.pop("lm_head.weight")
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(out / WEIGHTS_NAME),
              metadata={"format": "pt"})  # fmt: skip
    dump_json(out / "config.json", hf_config(cfg, sp))
    dump_json(out / "generation_config.json", {
        "bos_token_id": _id_or_none(sp.bos_id()), "eos_token_id": _id_or_none(sp.eos_id()),
    })  # fmt: skip
    write_tokenizer(loaded.tokenizer_path, out, model_max_length=cfg.max_seq_len)
    log.info("exported %s (step %d) to %s", loaded.checkpoint, loaded.step, out)
    return out


def write_tokenizer(sp_path: Path, out: Path, *, model_max_length: int) -> None:
    """tokenizer.model, tokenizer.json, tokenizer_config.json and special_tokens_map.json."""
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    shutil.copyfile(sp_path, out / TOKENIZER_NAME)
    fast_tokenizer(sp_path, sp).save(str(out / "tokenizer.json"))
    special = {
        name: sp.id_to_piece(i)
        for name, i in (("bos_token", sp.bos_id()), ("eos_token", sp.eos_id()), ("unk_token", sp.unk_id()),
                        ("pad_token", sp.pad_id()))
        if i >= 0
    }  # fmt: skip
    dump_json(out / "special_tokens_map.json", special)
    dump_json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
    })  # fmt: skip


def fast_tokenizer(sp_path: Path, sp: spm.SentencePieceProcessor):  # -> tokenizers.Tokenizer
    """The sentencepiece model as a ``tokenizers.Tokenizer`` that encodes to the same ids."""
    try:
        from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
        from tokenizers.models import BPE, Unigram
    except ImportError:
        raise HFError("export-hf needs the tokenizers package (installed with transformers)") from None
    spec = sentencepiece_spec(sp_path.read_bytes())
    n = sp.vocab_size()
    special = [i for i in range(n) if sp.is_control(i) or sp.is_unknown(i)]
    if spec["model_type"] == _BPE:
        vocab = {sp.id_to_piece(i): i for i in range(n)}
        mergeable = {sp.id_to_piece(i): sp.get_score(i) for i in range(n) if _is_normal(sp, i)}
        merges = []  # (score of the merged piece, ids of its halves, halves); higher score merges first
        for piece, score in mergeable.items():
            for cut in range(1, len(piece)):
                left, right = piece[:cut], piece[cut:]
                if left in mergeable and right in mergeable:
                    merges.append((-score, vocab[left], vocab[right], left, right))
        merges.sort()
        model = BPE(vocab=vocab, merges=[(m[3], m[4]) for m in merges], unk_token=sp.id_to_piece(sp.unk_id()),
                    fuse_unk=True, byte_fallback=spec["byte_fallback"])  # fmt: skip
    elif spec["model_type"] == _UNIGRAM:
        pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(n)]
        model = Unigram(pieces, unk_id=sp.unk_id(), byte_fallback=spec["byte_fallback"])
    else:
        raise HFError(f"{sp_path}: only BPE and unigram sentencepiece models can be exported")
    tok = Tokenizer(model)
    steps = [normalizers.Precompiled(spec["charsmap"])] if spec["charsmap"] else []
    if spec["remove_extra_whitespaces"]:  # sentencepiece trims both ends and collapses inner runs
        steps += [normalizers.Strip(left=True, right=True), normalizers.Replace(Regex(" {2,}"), " ")]
    if steps:
        tok.normalizer = normalizers.Sequence(steps)
    prepend = "always" if spec["add_dummy_prefix"] else "never"
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=prepend, split=False)
    undo = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if spec["add_dummy_prefix"]:
        undo.append(decoders.Strip(content=" ", left=1, right=0))
    tok.decoder = decoders.Sequence(undo)
    tok.add_special_tokens([AddedToken(sp.id_to_piece(i), special=True, normalized=False) for i in special])
    return tok


_UNIGRAM, _BPE = 1, 2


def sentencepiece_spec(model: bytes) -> dict[str, Any]:
    """The few ModelProto fields the Python API does not expose, decoded from the wire format.

    Field numbers from sentencepiece's ``sentencepiece_model.proto``: ModelProto.trainer_spec = 2,
    .normalizer_spec = 3; TrainerSpec.model_type = 3 (UNIGRAM 1, BPE 2), .byte_fallback = 35;
    NormalizerSpec.precompiled_charsmap = 2, .add_dummy_prefix = 3, .remove_extra_whitespaces = 4.
    Absent fields take the proto2 defaults given there.
    """
    top = _fields(model)
    trainer = _fields(top.get(2, b""))
    norm = _fields(top.get(3, b""))
    return {
        "model_type": trainer.get(3, _UNIGRAM),
        "byte_fallback": bool(trainer.get(35, 0)),
        "charsmap": norm.get(2, b""),
        "add_dummy_prefix": bool(norm.get(3, 1)),
        "remove_extra_whitespaces": bool(norm.get(4, 1)),
    }


def _fields(buf: bytes) -> dict[int, Any]:
    """Last value of each field of one protobuf message (repeated fields are not needed here)."""
    out: dict[int, Any] = {}
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            out[number], i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            out[number], i = buf[i : i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out[number], i = buf[i : i + size], i + size
        else:
            raise HFError(f"not a sentencepiece model (protobuf wire type {wire})")
    return out


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _is_normal(sp: spm.SentencePieceProcessor, i: int) -> bool:
    return not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) or sp.is_unused(i))


def _id_or_none(i: int) -> int | None:
    return i if i >= 0 else None


# -- import -----------------------------------------------------------------------------------------


def model_config_from_hf(raw: dict[str, Any], where: Path) -> ModelConfig:
    """Our config for a Llama/Mistral config.json; anything our decoder does not implement is refused."""
    model_type = raw.get("model_type")
    arch = (raw.get("architectures") or [None])[0]
    if model_type not in ARCHITECTURES or arch not in (None, ARCHITECTURES[model_type]):
        raise HFError(
            f"{where}: a {arch or model_type} checkpoint; import-hf reads LlamaForCausalLM and "
            "MistralForCausalLM only"
        )
    rope = raw.get("rope_parameters") or raw.get("rope_scaling") or {}
    problems = [
        f"{key}={raw[key]!r}" for key in ("attention_bias", "mlp_bias") if raw.get(key)
    ] + ([f"hidden_act={raw.get('hidden_act')!r}"] if raw.get("hidden_act", "silu") != "silu" else [])
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        problems.append(f"rope_type={rope.get('rope_type', rope.get('type'))!r}")
    hidden, heads = raw.get("hidden_size"), raw.get("num_attention_heads")
    if raw.get("head_dim") not in (None, hidden // heads if hidden and heads else None):
        problems.append(f"head_dim={raw['head_dim']} (ours is hidden_size / num_attention_heads)")
    if problems:
        raise HFError(f"{where}: features this decoder does not implement: {', '.join(problems)}")
    try:
        return ModelConfig(
            dim=hidden, n_layers=raw["num_hidden_layers"], n_heads=heads,
            n_kv_heads=raw.get("num_key_value_heads"), vocab_size=raw["vocab_size"],
            ffn_hidden=raw["intermediate_size"], norm_eps=raw.get("rms_norm_eps", 1e-6),
            rope_theta=rope.get("rope_theta", raw.get("rope_theta", 10000.0)),
            max_seq_len=raw.get("max_position_embeddings", 2048),
            sliding_window=raw.get("sliding_window") if model_type == "mistral" else None,
            tie_embeddings=bool(raw.get("tie_word_embeddings", False)),
            init_std=raw.get("initializer_range", 0.02),
        )  # fmt: skip
    except KeyError as exc:
        raise HFError(f"{where}: missing key {exc}") from None
    except (TypeError, ValueError) as exc:
        raise HFError(f"{where}: not a usable decoder shape: {exc}") from None


def _read_hf_weights(hf_dir: Path, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    files = sorted(hf_dir.glob("*.safetensors"))
    if not files:
        raise HFError(f"{hf_dir}: no *.safetensors weights (pytorch_model.bin is not read: it is a pickle)")
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(load_file(str(f)))
    try:
        return {k: v.float() for k, v in from_hf_state_dict(tensors, cfg).items()}
    except KeyError as exc:
        raise HFError(f"{hf_dir}: weights do not match config.json: {exc.args[0]}") from None


def import_hf(
    hf_dir: str | Path,
    out: str | Path,
    *,
    data: str | Path | None = None,
    train_config: str | Path | TrainConfig | None = None,
) -> Path:
    """Write a step-0 trainer checkpoint of ``hf_dir``'s model under ``out``; returns its step directory.

    ``out`` gets ``checkpoints/step-00000000`` (weights, a fresh AdamW state, loss-guard state),
    ``model.yaml`` (pass it to ``refinery pretrain --model``) and ``tokenizer.model``. Continuing
    training with ``refinery pretrain --model OUT/model.yaml --data MIX --out OUT --resume`` also needs
    the data loader's starting position, which depends on the mixture and on the train config's seed,
    seq_len, micro_batch_size and heldout_every: give ``data`` (and the same ``train_config``) here.
    Without ``data`` the checkpoint serves generate/eval/export, and a resume stops with a message.
    """
    import json

    from trainer.data import MixtureLoader
    from trainer.train import build_optimizer  # the trainer's exact parameter groups, so its resume finds them

    hf_dir, out = Path(hf_dir), Path(out)
    config_path = hf_dir / "config.json"
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HFError(f"{config_path}: cannot read a Hugging Face config: {exc}") from None
    cfg = model_config_from_hf(raw, config_path)
    if isinstance(train_config, TrainConfig) or train_config is None:
        tcfg = train_config or TrainConfig()
    else:
        tcfg = load_yaml(TrainConfig, train_config)
    if latest_checkpoint(out / "checkpoints") is not None:
        raise HFError(f"{out}: already holds checkpoints; choose a new --out")
    sp_path = hf_dir / TOKENIZER_NAME
    if sp_path.is_file():
        sp = spm.SentencePieceProcessor(model_file=str(sp_path))
        if sp.vocab_size() != cfg.vocab_size:
            raise HFError(
                f"{sp_path}: {sp.vocab_size()} ids but config.json's vocab_size is {cfg.vocab_size}"
            )
    data_state: dict[str, Any] = {"seed": "none (imported without --data; re-run import-hf with --data)"}
    if data is not None:
        mixture = load_mixture(data)
        if mixture.vocab_size != cfg.vocab_size:
            raise HFError(f"{data}: vocab_size {mixture.vocab_size}, the model's is {cfg.vocab_size}")
        if sp_path.is_file() and sha256_file(sp_path) != mixture.tokenizer.sha256:
            raise HFError(f"{sp_path}: not the tokenizer {data} was encoded with (sha256 differs)")
        if tcfg.seq_len > cfg.max_seq_len:
            raise HFError(f"train config seq_len {tcfg.seq_len} exceeds the model's {cfg.max_seq_len}")
        try:
            loader = MixtureLoader(mixture, seq_len=tcfg.seq_len, batch_size=tcfg.micro_batch_size,
                                   seed=tcfg.seed, heldout_every=tcfg.heldout_every)  # fmt: skip
        except ValueError as exc:  # a source too small for one window
            raise HFError(f"{data}: {exc}") from None
        data_state = loader.state_dict()
    weights = _read_hf_weights(hf_dir, cfg)
    model = build_empty(cfg, torch.device("cpu"))
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise HFError(f"{hf_dir}: weights do not match config.json: {str(exc).splitlines()[-1]}") from None
    guard = LossGuard(spike_ratio=tcfg.spike_ratio, warmup_steps=tcfg.guard_warmup_steps,
                      ema_beta=tcfg.guard_ema_beta)  # fmt: skip
    step_dir = save_checkpoint(
        out / "checkpoints", 0, model=model, optimizer=build_optimizer(model, tcfg),
        train_state={"step": 0, "guard": guard.state_dict(), "rollbacks": 0},
        rank_state={"data": data_state},
        meta={"model_config": dataclasses.asdict(cfg), "train_config": dataclasses.asdict(tcfg),
              "imported_from": str(hf_dir.resolve())},
    )  # fmt: skip
    header = f"# Imported by `refinery import-hf` from {hf_dir.resolve()}\n"
    (out / "model.yaml").write_text(header + yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    if sp_path.is_file():
        shutil.copyfile(sp_path, out / TOKENIZER_NAME)
    else:
        log.warning("%s has no tokenizer.model; generate/eval will need --tokenizer", hf_dir)
    return step_dir


# -- command lines ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``refinery export-hf``."""
    parser = argparse.ArgumentParser(
        prog="refinery export-hf", description="Write a Hugging Face checkpoint.", allow_abbrev=False
    )
    add_checkpoint_arguments(parser, device=False)
    parser.add_argument("--out", type=Path, required=True, help="new directory for the export")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        out = export_hf(args.ckpt, args.out, tokenizer=args.tokenizer)
    except (LoadError, HFError) as exc:
        print(f"refinery export-hf: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


def import_main(argv: list[str] | None = None) -> int:
    """``refinery import-hf``."""
    parser = argparse.ArgumentParser(
        prog="refinery import-hf",
        description="Turn a Llama/Mistral Hugging Face checkpoint into a refinery one.",
        allow_abbrev=False,
    )
    parser.add_argument("--hf", type=Path, required=True, help="directory with config.json + *.safetensors")
    parser.add_argument("--out", type=Path, required=True, help="new run directory")
    parser.add_argument("--data", type=Path, help="mixture.json to continue training on (enables --resume)")
    parser.add_argument("--train-config", type=Path, help="training YAML the continued run will use")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        step_dir = import_hf(args.hf, args.out, data=args.data, train_config=args.train_config)
    except (HFError, ConfigError, MixtureError) as exc:
        print(f"refinery import-hf: error: {exc}", file=sys.stderr)
        return 2
    print(step_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
