"""Per-layer summary tables in the layout of NVIDIA's `print_module_summary` (seed 002).

Runs one forward pass with hooks on every module down to `max_nesting` levels, then lists each module that
owns parameters, buffers or outputs not already listed, followed by a `Total` row. Built on the meta device
the pass costs nothing, so even 1024x1024 tables are instant.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List

import torch
from torch import nn


@dataclass
class _Entry:
    module: nn.Module
    outputs: List[torch.Tensor]
    params: List[torch.Tensor] = field(default_factory=list)
    buffers: List[torch.Tensor] = field(default_factory=list)
    new_outputs: List[torch.Tensor] = field(default_factory=list)


def summary_rows(module: nn.Module, run: Callable[[], object], max_nesting: int = 3) -> List[List[str]]:
    """Rows [name, parameters, buffers, output shape, datatype] incl. header and Total, for `run()`'s pass."""
    entries: List[_Entry] = []
    depth = [0]

    def pre_hook(_mod, _inputs):
        depth[0] += 1

    def post_hook(mod, _inputs, outputs):
        depth[0] -= 1
        if depth[0] <= max_nesting:
            outs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            entries.append(_Entry(mod, [t for t in outs if isinstance(t, torch.Tensor)]))

    hooks = [m.register_forward_pre_hook(pre_hook) for m in module.modules()]
    hooks += [m.register_forward_hook(post_hook) for m in module.modules()]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()

    # Attribute each tensor to the first (innermost, earliest) module that shows it.
    seen = set()
    for e in entries:
        e.params = [t for t in e.module.parameters() if id(t) not in seen]
        e.buffers = [t for t in e.module.buffers() if id(t) not in seen]
        e.new_outputs = [t for t in e.outputs if id(t) not in seen]
        seen |= {id(t) for t in e.params + e.buffers + e.new_outputs}
    entries = [e for e in entries if e.params or e.buffers or e.new_outputs]

    names = {mod: name for name, mod in module.named_modules()}
    rows = [[type(module).__name__, "Parameters", "Buffers", "Output shape", "Datatype"], ["---"] * 5]
    for e in entries:
        name = "<top-level>" if e.module is module else names[e.module]
        n_params = sum(t.numel() for t in e.params)
        n_buffers = sum(t.numel() for t in e.buffers)
        shapes = [str(list(t.shape)) for t in e.outputs] or ["-"]
        dtypes = [str(t.dtype).split(".")[-1] for t in e.outputs] or ["-"]
        suffix = ":0" if len(e.outputs) >= 2 else ""
        rows.append([name + suffix, str(n_params) if n_params else "-", str(n_buffers) if n_buffers else "-",
                     shapes[0], dtypes[0]])
        for idx in range(1, len(e.outputs)):
            rows.append([f"{name}:{idx}", "-", "-", shapes[idx], dtypes[idx]])
    rows.append(["---"] * 5)
    rows.append(["Total", str(sum(t.numel() for t in module.parameters())),
                 str(sum(t.numel() for t in module.buffers())), "-", "-"])
    return rows


def format_rows(rows: List[List[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows)


def generator_summary(G: nn.Module, batch_size: int = 4) -> str:
    """Summary table of a generator for one forward pass of `batch_size` samples."""
    device = next(G.parameters()).device
    z = torch.zeros([batch_size, G.z_dim], device=device)
    c = torch.zeros([batch_size, G.c_dim], device=device)
    kwargs = {"lod": 0.0} if hasattr(G, "set_lod") else {}  # StyleGAN v1: the full-resolution network
    return format_rows(summary_rows(G, lambda: G(z, c, **kwargs)))


def discriminator_summary(D: nn.Module, batch_size: int = 4) -> str:
    """Summary table of a discriminator for one forward pass of `batch_size` samples."""
    device = next(D.parameters()).device
    img = torch.zeros([batch_size, D.img_channels, D.img_resolution, D.img_resolution], device=device)
    c = torch.zeros([batch_size, D.c_dim], device=device)
    kwargs = {"lod": 0.0} if hasattr(D, "set_lod") else {}
    return format_rows(summary_rows(D, lambda: D(img, c, **kwargs)))
