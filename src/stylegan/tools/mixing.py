"""Style mixing (StyleGAN, Karras et al. 2019, section 3.1 and figure 3).

Two latents w_A (row source) and w_B (column source) are mapped; the synthesis network is fed w_A at every
layer except the selected ones, which get w_B. Copying the coarse styles (4x4-8x8) of B brings B's pose and
face shape, the middle styles (16x16-32x32) its smaller features, the fine styles (64x64 and up) its colours.

The figure: top-left blank, first row the column sources, first column the row sources, cell (r, c) the
row source r with the selected layers taken from column source c.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..errors import UserInputError
from .generate import check_batch_size, seed_ws
from ..io.images import to_uint8
from .layers import parse_layers


def resolve_layers(G: nn.Module, layers: Union[str, Sequence[int]]) -> List[int]:
    """Sorted ws indices from a spec ('coarse', 'middle', 'fine', '0-6', 'coarse,fine') or a list of ints.

    G:      the generator (its num_ws bounds the indices).
    layers: a spec string for `parse_layers`, or ws indices.
    """
    if isinstance(layers, str):
        return parse_layers(layers, G)
    out = sorted(set(int(i) for i in layers))
    if not out:
        raise UserInputError("no layers selected; give ws indices or coarse, middle, fine")
    bad = [i for i in out if not 0 <= i < G.num_ws]
    if bad:
        raise UserInputError(f"layer {bad[0]} is out of range: this network has layers 0..{G.num_ws - 1}")
    return out


def mix_styles(row_ws: torch.Tensor, col_ws: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """Row latents with the listed layers replaced by the column latents' (StyleGAN section 3.1).

    row_ws: [N, num_ws, w_dim] latents giving every unlisted layer.
    col_ws: [N, num_ws, w_dim] latents giving the listed layers.
    layers: ws indices to take from `col_ws`.
    """
    mixed = row_ws.clone()
    idx = torch.as_tensor(list(layers), dtype=torch.long, device=row_ws.device)
    mixed[:, idx] = col_ws[:, idx]
    return mixed


@torch.no_grad()
def style_mixing_images(G: nn.Module, row_seeds: Sequence[int], col_seeds: Sequence[int],
                        layers: Union[str, Sequence[int]], truncation_psi: float = 1.0,
                        truncation_cutoff: Optional[int] = None, noise_mode: str = "const",
                        class_idx: Optional[int] = None, batch_size: int = 8) -> Dict[str, np.ndarray]:
    """The images of a style-mixing figure: {'rows': [R, H, W, C], 'cols': [K, H, W, C], 'cells': [R, K, H, W, C]}.

    G:                 the generator.
    row_seeds:         seeds of the row sources (they give the unlisted layers).
    col_seeds:         seeds of the column sources (they give the listed layers).
    layers:            the layers copied from the column source: spec string or ws indices.
    truncation_psi:    truncation psi applied to every w (1 = none).
    truncation_cutoff: truncate only the first this many ws (None = the network's default).
    noise_mode:        'const', 'random' or 'none'.
    class_idx:         class of conditional networks.
    batch_size:        images per synthesis pass.
    """
    row_seeds, col_seeds = list(row_seeds), list(col_seeds)
    if not row_seeds or not col_seeds:
        raise UserInputError("style mixing needs at least one row seed and one column seed")
    check_batch_size(batch_size)
    layer_idx = resolve_layers(G, layers)
    unique = sorted(set(row_seeds) | set(col_seeds))
    all_ws = seed_ws(G, unique, truncation_psi, truncation_cutoff, class_idx)
    ws_of = {seed: all_ws[i:i + 1] for i, seed in enumerate(unique)}

    def render(ws: torch.Tensor) -> np.ndarray:
        return np.concatenate([to_uint8(G.synthesis(ws[i:i + batch_size], noise_mode=noise_mode))
                               for i in range(0, ws.shape[0], batch_size)])

    source = render(all_ws)
    src_of = {seed: source[i] for i, seed in enumerate(unique)}
    row_ws = torch.cat([ws_of[s] for s in row_seeds for _ in col_seeds])
    col_ws = torch.cat([ws_of[s] for _ in row_seeds for s in col_seeds])
    cells = render(mix_styles(row_ws, col_ws, layer_idx))
    return {
        "rows": np.stack([src_of[s] for s in row_seeds]),
        "cols": np.stack([src_of[s] for s in col_seeds]),
        "cells": cells.reshape(len(row_seeds), len(col_seeds), *cells.shape[1:]),
    }


def mixing_figure(rows: np.ndarray, cols: np.ndarray, cells: np.ndarray, blank_value: int = 255) -> np.ndarray:
    """Lay out the StyleGAN figure 3 grid as one uint8 image [(R+1) H, (K+1) W, C].

    rows:        row source images [R, H, W, C] (first column).
    cols:        column source images [K, H, W, C] (first row).
    cells:       mixed images [R, K, H, W, C].
    blank_value: grey level of the empty top-left tile.
    """
    n_rows, n_cols, h, w, c = cells.shape
    canvas = np.full([(n_rows + 1) * h, (n_cols + 1) * w, c], blank_value, dtype=np.uint8)
    for k in range(n_cols):
        canvas[0:h, (k + 1) * w:(k + 2) * w] = cols[k]
    for r in range(n_rows):
        canvas[(r + 1) * h:(r + 2) * h, 0:w] = rows[r]
        for k in range(n_cols):
            canvas[(r + 1) * h:(r + 2) * h, (k + 1) * w:(k + 2) * w] = cells[r, k]
    return canvas


def style_mixing_grid(G: nn.Module, row_seeds: Sequence[int], col_seeds: Sequence[int],
                      layers: Union[str, Sequence[int]], truncation_psi: float = 1.0, noise_mode: str = "const",
                      class_idx: Optional[int] = None, truncation_cutoff: Optional[int] = None,
                      batch_size: int = 8, blank_value: int = 255) -> np.ndarray:
    """StyleGAN figure 3 as one uint8 image [(R+1) H, (K+1) W, C] (see `style_mixing_images`, `mixing_figure`).

    G:                 the generator.
    row_seeds:         seeds of the row sources.
    col_seeds:         seeds of the column sources.
    layers:            layers taken from the column source: 'coarse', 'middle', 'fine', '0-6', ... or indices.
    truncation_psi:    truncation psi (1 = none).
    noise_mode:        'const', 'random' or 'none'.
    class_idx:         class of conditional networks.
    truncation_cutoff: truncate only the first this many ws (None = the network's default).
    batch_size:        images per synthesis pass.
    blank_value:       grey level of the empty top-left tile.
    """
    parts = style_mixing_images(G, row_seeds, col_seeds, layers, truncation_psi, truncation_cutoff, noise_mode,
                                class_idx, batch_size)
    return mixing_figure(parts["rows"], parts["cols"], parts["cells"], blank_value)
