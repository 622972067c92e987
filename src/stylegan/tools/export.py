"""Export a generator for inference outside this package: ONNX or TorchScript.

The exported graph is `SamplingGenerator`: inputs z [N, z_dim], psi [N] (truncation per sample) and, for
conditional networks, c [N, c_dim]; output images [N, C, H, W] in [-1, 1]. Noise is the network's constant
noise (noise_mode='const'), so the same inputs give the same image everywhere. The batch axis is dynamic.

ONNX goes through PyTorch's torch.export-based exporter (`torch.onnx.export(program, dynamo=True)`, the default
since PyTorch 2.9), which needs the `onnxscript` package (pure Python, installs offline from a package index;
`onnx` and `onnx-ir` come with it). The older TorchScript-based exporter (`dynamo=False`) cannot export this
network with a dynamic batch: the depthwise FIR filter of upfirdn2d gets a kernel shape computed from traced
sizes, which that exporter rejects (`ops.misc.assert_shape` skips symbolic sizes, so torch.export keeps the
batch symbolic). The modulated convolutions of StyleGAN2 and StyleGAN3 run in their non-fused form (activations
scaled per sample around one shared convolution) because the fused form's grouped convolution fixes the batch size
in the graph.

StyleGAN3: the input transform (`synthesis.input.transform`, set by `Generator3.set_transform` as gen_images.py's
--translate/--rotate) is a buffer of the network, so an export renders the transform G holds when it is exported;
to export a translated or rotated generator, set the transform first (`stylegan export --translate/--rotate`).
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..errors import UserInputError
from ..io.atomic import atomic_path
from ..networks.stylegan3 import SynthesisNetwork3
from ..networks.synthesis import SynthesisNetwork
from ..runtime.path import FAST, apply_path
from .generate import seed_to_z

FORMATS = ("onnx", "torchscript")
ONNX_OPSETS = (18, 23)  # what PyTorch's torch.export-based ONNX exporter writes
DEFAULT_OPSET = 18


class SamplingGenerator(nn.Module):
    """G as one graph: (z [N, z_dim], psi [N] [, c [N, c_dim]]) -> images [N, C, H, W], constant noise.

    G:                 the generator (copied; the copy is put in eval mode, float32, no gradients).
    truncation_cutoff: truncate only the first this many ws (None = the network's default: all for StyleGAN2,
                       8 for StyleGAN v1).
    """

    def __init__(self, G: nn.Module, truncation_cutoff: Optional[int] = None):
        super().__init__()
        if not hasattr(G.mapping, "w_avg"):
            raise UserInputError("this generator tracks no w_avg, so truncation (psi) cannot be exported")
        self.G = copy.deepcopy(G).eval().requires_grad_(False).float()
        apply_path(self.G, FAST.replace(ops={"bias_act": "reference"}))  # exporters cannot look into autograd ops
        self.z_dim, self.c_dim, self.num_ws = G.z_dim, G.c_dim, G.num_ws
        if truncation_cutoff is not None and not 0 <= truncation_cutoff <= G.num_ws:
            raise UserInputError(f"truncation cutoff {truncation_cutoff} is out of range: this network has "
                                 f"{G.num_ws} ws")
        cutoff = truncation_cutoff if truncation_cutoff is not None else getattr(G.mapping, "default_cutoff", None)
        cutoff = G.num_ws if cutoff is None else min(cutoff, G.num_ws)  # v1's default 8 may exceed small nets
        self.register_buffer("truncated_layers", (torch.arange(G.num_ws) < cutoff).float().reshape(1, -1, 1))
        self.synthesis_kwargs = {"noise_mode": "const"}
        if isinstance(self.G.synthesis, (SynthesisNetwork, SynthesisNetwork3)):
            # StyleGAN2 and StyleGAN3: per-sample scaling instead of a grouped convolution over the batch, so
            # the graph does not depend on the batch size.
            self.synthesis_kwargs.update(fused_modconv=False, force_fp32=True)

    def forward(self, z: torch.Tensor, psi: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        ws = self.G.mapping(z, c)  # [N, num_ws, w_dim], untruncated
        # Truncation trick (StyleGAN appendix B): w' = w_avg + psi (w - w_avg), on the first `cutoff` layers.
        layer_psi = 1 + (psi.reshape(-1, 1, 1) - 1) * self.truncated_layers
        ws = self.G.mapping.w_avg + (ws - self.G.mapping.w_avg) * layer_psi
        return self.G.synthesis(ws, **self.synthesis_kwargs)


def example_inputs(G: nn.Module, seeds: Sequence[int], psi: float = 1.0, class_idx: int = 0,
                   device: Union[str, torch.device] = "cpu") -> Tuple[torch.Tensor, ...]:
    """(z, psi[, c]) for `seeds` (NVIDIA's seed -> z convention), all of batch len(seeds).

    G:         the generator.
    seeds:     one sample per seed.
    psi:       the truncation of every sample.
    class_idx: class of every sample (conditional networks).
    device:    where the tensors go.
    """
    z = torch.cat([seed_to_z(s, G.z_dim) for s in seeds]).to(device)
    psis = torch.full([len(seeds)], float(psi), device=device)
    if G.c_dim == 0:
        return z, psis
    c = torch.zeros([len(seeds), G.c_dim], device=device)
    c[:, class_idx] = 1
    return z, psis, c


def input_names(G: nn.Module) -> list:
    """Names of the exported graph's inputs: z, psi (and c for conditional networks)."""
    return ["z", "psi"] + (["c"] if G.c_dim > 0 else [])


EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch.fx.experimental.symbolic_shapes")


@contextlib.contextmanager
def quiet_loggers(names: Sequence[str] = EXPORTER_LOGGERS, level: int = logging.ERROR) -> Iterator[None]:
    """Raise these loggers' levels while the block runs (the exporters log notes and graph dumps), then restore.

    names: logger names.
    level: the level they get meanwhile.
    """
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, before):
            logger.setLevel(old)


def exported_program(module: nn.Module, args: Tuple[torch.Tensor, ...]) -> "torch.export.ExportedProgram":
    """`module` as a torch.export program with a dynamic batch axis.

    module: the SamplingGenerator.
    args:   example inputs (batch >= 2 keeps the batch symbolic).
    """
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    return torch.export.export(module, args, dynamic_shapes=tuple({0: batch} for _ in args), strict=False)


def export_onnx(G: nn.Module, path: Union[str, os.PathLike], batch_size: int = 2, opset: int = DEFAULT_OPSET,
                truncation_cutoff: Optional[int] = None) -> Path:
    """Write G as an ONNX model (inputs z, psi[, c]; output images; dynamic batch axis), atomically.

    Uses PyTorch's torch.export-based ONNX exporter, which needs the `onnxscript` package.
    G:                 the generator.
    path:              the .onnx file.
    batch_size:        batch of the example inputs (>= 2, so that the batch stays symbolic; any batch runs later).
    opset:             ONNX opset version (18..23).
    truncation_cutoff: truncate only the first this many ws (None = the network's default).
    """
    if batch_size < 2:
        raise UserInputError(f"the ONNX export traces a batch of at least 2 (a batch of 1 would be fixed in the "
                             f"graph); got {batch_size}. The exported model runs any batch size")
    if not ONNX_OPSETS[0] <= opset <= ONNX_OPSETS[1]:
        raise UserInputError(f"opset {opset} is not supported by PyTorch's ONNX exporter; "
                             f"use {ONNX_OPSETS[0]}..{ONNX_OPSETS[1]} (default {DEFAULT_OPSET})")
    if importlib.util.find_spec("onnxscript") is None:
        raise UserInputError("ONNX export needs the onnx and onnxscript packages (PyTorch's ONNX exporter uses them): "
                             "pip install \"stylegan[export]\" (\"stylegan[all]\": every optional feature); "
                             "or export --format torchscript")
    module = SamplingGenerator(G, truncation_cutoff).cpu().eval()
    args = example_inputs(G, range(batch_size))
    with warnings.catch_warnings(), quiet_loggers():
        warnings.simplefilter("ignore")  # exporter notes (deprecations, torchvision ops absent)
        program = exported_program(module, args)
        onnx_program = torch.onnx.export(program, dynamo=True, input_names=input_names(G),
                                         output_names=["images"], opset_version=opset, verbose=False)
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx_program.save(str(tmp), external_data=False)
    return path


def export_torchscript(G: nn.Module, path: Union[str, os.PathLike], batch_size: int = 2,
                       truncation_cutoff: Optional[int] = None) -> Path:
    """Write G as a traced TorchScript module (`torch.jit.load(path)(z, psi[, c])`), atomically.

    G:                 the generator.
    path:              the .pt file.
    batch_size:        batch of the example inputs traced (any batch runs afterwards).
    truncation_cutoff: truncate only the first this many ws (None = the network's default).
    """
    if batch_size < 1:
        raise UserInputError(f"batch size must be >= 1, got {batch_size}")
    module = SamplingGenerator(G, truncation_cutoff).cpu()
    args = example_inputs(G, range(batch_size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python values recorded as constants
        traced = torch.jit.trace(module, args, check_trace=False)
    path = Path(path)
    with atomic_path(path) as tmp:
        traced.save(str(tmp))
    return path


def export_generator(G: nn.Module, path: Union[str, os.PathLike], format: str = "onnx", batch_size: int = 2,
                     opset: int = DEFAULT_OPSET, truncation_cutoff: Optional[int] = None) -> Path:
    """Export G as 'onnx' or 'torchscript' (see `export_onnx`, `export_torchscript`).

    G:                 the generator.
    path:              the output file.
    format:            'onnx' or 'torchscript'.
    batch_size:        batch of the traced example inputs.
    opset:             ONNX opset (ONNX only).
    truncation_cutoff: truncate only the first this many ws (None = the network's default).
    """
    if format == "onnx":
        return export_onnx(G, path, batch_size, opset, truncation_cutoff)
    if format == "torchscript":
        return export_torchscript(G, path, batch_size, truncation_cutoff)
    raise UserInputError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")


def run_exported(path: Union[str, os.PathLike], format: str, inputs: Sequence[torch.Tensor]) -> np.ndarray:
    """Run an exported model (onnxruntime for ONNX, torch.jit for TorchScript) on (z, psi[, c]); returns images.

    path:   the exported file.
    format: 'onnx' or 'torchscript'.
    inputs: the graph's inputs, in the order of `input_names`.
    """
    if format == "torchscript":
        with torch.no_grad():
            return torch.jit.load(str(path))(*inputs).numpy()
    try:
        import onnxruntime
    except ImportError:
        raise UserInputError("running an ONNX model needs onnxruntime: pip install \"stylegan[export]\" "
                             "(\"stylegan[all]\": every optional feature)") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {name: t.cpu().numpy() for name, t in zip(names, inputs)})[0]


def verify_export(G: nn.Module, path: Union[str, os.PathLike], format: str, seeds: Sequence[int] = (0, 1, 2),
                  psi: float = 0.7, truncation_cutoff: Optional[int] = None, class_idx: int = 0) -> float:
    """Largest absolute difference between the exported model and PyTorch for `seeds` (one batch).

    G:                 the generator that was exported.
    path:              the exported file.
    format:            'onnx' or 'torchscript'.
    seeds:             the samples compared (their count is the batch size run).
    psi:               truncation of every sample.
    truncation_cutoff: the cutoff the export was made with.
    class_idx:         class of every sample (conditional networks).
    """
    module = SamplingGenerator(G, truncation_cutoff).cpu()
    inputs = example_inputs(G, seeds, psi, class_idx)
    with torch.no_grad():
        expected = module(*inputs).numpy()
    return float(np.abs(run_exported(path, format, inputs) - expected).max())
