"""Edit latents along a direction in W: w_i + strength * n on the chosen ws indices i, the rest unchanged.

The directions come from `tools.directions` (SeFa, GANSpace, label boundaries); they are unit vectors, so a
strength is a distance in W. The edited ws are ordinary latents: `tools.ws_io.save_ws` writes them in the format
`stylegan generate --ws` renders, and ws from `stylegan project` are edited the same way as ws from seeds.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..errors import UserInputError
from ..ops.misc import assert_shape
from .directions import Directions, parse_layers
from .generate import check_ws, render_ws


def apply_direction(ws: torch.Tensor, direction: torch.Tensor, strength: float,
                    layers: Sequence[int]) -> torch.Tensor:
    """ws [N, num_ws, w_dim] -> a new tensor, the same but for `strength * direction` added on `layers`.

    ws:        latents.
    direction: [w_dim] (any norm; the directions of tools.directions are unit vectors).
    strength:  how far to move.
    layers:    ws indices to move; the others keep their w.
    """
    assert_shape(ws, [None, None, direction.shape[0]], "ws")
    num_ws = ws.shape[1]
    layers = list(layers)
    bad = [i for i in layers if not 0 <= i < num_ws]
    if bad:
        raise UserInputError(f"layer {bad[0]} is out of range: these ws have layers 0..{num_ws - 1}")
    mask = torch.zeros([num_ws, 1], dtype=ws.dtype, device=ws.device)
    mask[layers] = 1
    return ws + float(strength) * mask * direction.to(device=ws.device, dtype=ws.dtype)


def parse_strengths(text: str) -> Tuple[float, ...]:
    """'-3,0,3' -> (-3.0, 0.0, 3.0); UserInputError for anything that is not a list of finite numbers."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise UserInputError(f"strengths must be numbers separated by commas, like -3,0,3; got {text!r}") from None
    if not all(np.isfinite(values)):
        raise UserInputError(f"strengths must be finite numbers, got {text!r}")
    return values


def resolve_layers(G: nn.Module, directions: Directions,
                   layers: Union[None, str, Sequence[int]] = None) -> Tuple[int, ...]:
    """The ws indices to edit: the directions' own range (None), a spec such as 'coarse' or '0-5', or indices.

    G:          the generator (num_ws and its named ranges).
    directions: the directions being applied (their `layers` is the default).
    layers:     None, a parse_layers spec, or a sequence of ws indices.
    """
    if layers is None:
        chosen = directions.layers
    elif isinstance(layers, str):
        chosen = parse_layers(layers, G)
    else:
        chosen = tuple(int(i) for i in layers)
    bad = [i for i in chosen if not 0 <= i < G.num_ws]
    if bad or not chosen:
        raise UserInputError(f"layers {list(chosen)} do not fit this network: it has layers 0..{G.num_ws - 1}")
    return tuple(chosen)


def edit_ws(ws: torch.Tensor, direction: torch.Tensor, strengths: Sequence[float],
            layers: Sequence[int]) -> torch.Tensor:
    """[N, num_ws, w_dim] -> [N * S, num_ws, w_dim]: each row of ws at each of the S strengths, row-major.

    ws:        latents.
    direction: [w_dim].
    strengths: the S strengths.
    layers:    ws indices to move.
    """
    edited = torch.stack([apply_direction(ws, direction, s, layers) for s in strengths], dim=1)
    return edited.reshape(-1, *ws.shape[1:])


def edit_grid(G: nn.Module, ws: torch.Tensor, directions: Directions, component: int, strengths: Sequence[float],
              layers: Union[None, str, Sequence[int]] = None, noise_mode: str = "const",
              batch_size: int = 8) -> Tuple[np.ndarray, torch.Tensor]:
    """(images uint8 [N * S, H, W, C], edited ws [N * S, num_ws, w_dim]); row r, column s is ws[r] at strengths[s].

    `tools.images.make_grid(images, cols=len(strengths))` tiles them with one row per input.

    G:          the generator the directions were computed for (checked by fingerprint).
    ws:         latents [N, num_ws, w_dim] (from seeds, or loaded with tools.ws_io.load_ws).
    directions: directions from tools.directions.
    component:  which direction (0 = the first).
    strengths:  the S strengths (distances in W).
    layers:     ws indices to edit; None = directions.layers (see resolve_layers).
    noise_mode: 'const', 'random' or 'none'.
    batch_size: images per forward pass.
    """
    directions.check_network(G)
    direction = directions.vector(component)
    chosen = resolve_layers(G, directions, layers)
    if len(strengths) == 0:
        raise UserInputError("give at least one strength, e.g. -3,0,3")
    ws = check_ws(G, ws)
    edited = edit_ws(ws, direction, strengths, chosen)
    return render_ws(G, edited, noise_mode=noise_mode, batch_size=batch_size), edited.cpu()
