"""Apply activation checkpointing, compilation and FSDP2 to a ``Transformer`` from outside, then init it.

The model file knows nothing of this (as in torchtitan's ``parallelize.py``). The intended use:

    with torch.device("meta"):
        model = Transformer(cfg)        # no memory, even for 7B
    model = parallelize(model, device, activation_checkpointing=True, compile=True)

Order matters: checkpoint wrappers go on first so that compile sees (and can optimize across) the
recomputation, and FSDP wraps the result so that each block's parameters are gathered once per pass.
On GPU, materialization comes last, so every rank allocates only its own shard before ``init_weights``
fills it; on a CPU mesh the full model is initialized first and then sharded (see below for why).

After ``parallelize`` the trainer touches FSDP2 through two helpers only: ``reshard`` after every forward
run without grad, and ``set_gradient_sync`` around gradient accumulation.

Works in one process (no FSDP unless a process group is up) and with any backend: NCCL on GPU, and gloo
on CPU for tests, where mixed precision is off because CPU bf16 matmuls are slow and the point there is
correctness. Mixed precision on GPU follows LLaMA-style training practice: bf16 parameters and
activations in the forward/backward, gradients reduced and the optimizer state kept in float32.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointImpl, checkpoint_wrapper
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from trainer.model import Transformer


def parallelize(
    model: Transformer,
    device: torch.device | str,
    *,
    mesh: DeviceMesh | None = None,
    activation_checkpointing: bool = False,
    compile: bool = False,
    compile_backend: str = "inductor",
    mixed_precision: bool | None = None,
) -> Transformer:
    """Wrap ``model`` in place and return it, materialized on ``device`` and initialized.

    - ``mesh``: 1-D data-parallel mesh for FSDP2. Defaults to all ranks when a process group is
      initialized; with no process group the model is not sharded (single-process training).
    - ``activation_checkpointing``: recompute each block in the backward (non-reentrant), trading about
      one extra forward for activations of one block instead of all of them.
    - ``compile``: ``torch.compile`` each block in place (``Module.compile`` keeps parameter names, so
      checkpoints do not get an ``_orig_mod`` prefix).
    - ``compile_backend``: ``torch.compile``'s backend. Training wants "inductor"; "aot_eager" runs the
      same Dynamo trace and autograd split without generating kernels, which is how CPU tests check the
      compiled path (graph breaks, mask builds) in a second instead of inductor's ~20 s C++ build.
    - ``mixed_precision``: bf16 compute with float32 gradient reduction, an FSDP policy; ``None`` means on
      when sharding on CUDA, off otherwise.

    Parameters still on the meta device are allocated with ``to_empty`` and filled by ``init_weights()``;
    a model built on a real device keeps its values (e.g. weights already loaded).
    """
    device = torch.device(device)
    if mesh is None and dist.is_available() and dist.is_initialized():
        mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    if mixed_precision is None:
        mixed_precision = device.type == "cuda" and mesh is not None
    if mixed_precision and mesh is None:
        raise ValueError(
            "mixed_precision needs FSDP (a process group or a mesh); in one process use torch.autocast"
        )

    blocks: nn.ModuleList = model.layers
    for i, block in enumerate(blocks):
        if activation_checkpointing:
            # The wrapper's state-dict hooks drop its "_checkpoint_wrapped_module." prefix, so saved keys
            # (and trainer.hf_keys) are the same with and without checkpointing.
            block = checkpoint_wrapper(
                block, checkpoint_impl=CheckpointImpl.NO_REENTRANT, preserve_rng_state=False
            )
        if compile:
            block.compile(backend=compile_backend)
        blocks[i] = block

    # DTensor's random ops track per-shard RNG offsets on CUDA only; on a CPU (gloo) mesh every rank would
    # draw the same numbers for its own shard, repeating rows of every weight. There, each rank builds and
    # initializes the full model (test-sized models only) and fully_shard keeps its slice, which also makes
    # the sharded init bit-identical to the one-process init.
    init_after_sharding = mesh is not None and device.type == "cuda"
    if not init_after_sharding:
        _materialize(model, device, move_real=True)

    if mesh is not None:
        policy = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if mixed_precision
            else MixedPrecisionPolicy()
        )
        for i, block in enumerate(blocks):
            # The last block's backward starts right after its forward: keeping it gathered saves an
            # all-gather per step (torchtitan does the same).
            last = i == len(blocks) - 1
            fully_shard(block, mesh=mesh, mp_policy=policy, reshard_after_forward=not last)
        # The root holds the embedding, the final norm and the head (and the shared tensor when tied).
        fully_shard(model, mesh=mesh, mp_policy=policy)

    if init_after_sharding:
        # fully_shard has already moved real (non-meta) shards to the mesh's device.
        _materialize(model, device, move_real=False)
    return model


def _materialize(model: Transformer, device: torch.device, *, move_real: bool) -> None:
    """Allocate meta parameters on ``device`` and initialize them; a real model keeps its values."""
    if any(p.is_meta for p in model.parameters()) or any(b.is_meta for b in model.buffers()):
        model.to_empty(device=device)
        with torch.no_grad():
            model.init_weights()
    elif move_real:
        model.to(device)


def reshard(model: nn.Module) -> None:
    """Return every FSDP2 module of ``model`` to its sharded state; a no-op without FSDP.

    Call after any forward run without grad (held-out evaluation, the silent-corruption recompute).
    FSDP2 frees a module's gathered parameters after its forward only when it reshards after
    forward, which the root never does (``fully_shard`` special-cases it, since training gathers it
    again at once for the backward) and the last block does not either (``parallelize`` keeps it
    gathered for its backward). In training the backward reshards them; a no-grad forward has no
    backward, so they stay gathered. Their gathered copies are separate tensors that
    ``optimizer.step()`` (which updates the shards) does not touch, and ``unshard()`` does nothing for
    a module already gathered, so the next step would run its forward and backward with the weights
    from before the update.
    """
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()  # not recursive: one call per FSDP module


def set_gradient_sync(model: nn.Module, enabled: bool) -> None:
    """Whether the next backward reduce-scatters gradients across ranks (FSDP2); a no-op without FSDP.

    With gradient accumulation, the trainer turns it off for every micro-batch but the last: each
    rank then sums its micro-batches' gradients locally, unsharded and in float32, and the last
    backward reduces that sum once, one reduce-scatter per FSDP module per step instead of one per
    micro-batch. The price is memory: between micro-batches each rank holds a full float32 gradient
    of every parameter (4 bytes per parameter, unsharded) instead of its shard.
    """
    if isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(enabled)  # recurses into every FSDP module
