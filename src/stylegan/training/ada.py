"""The ADA controller: steers the augmentation probability p from an overfitting heuristic.

Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", section 3. The heuristic
r_t = E[sign(D_train)] is the mean sign of the discriminator's raw outputs on real training images; it
grows towards 1 as D overfits. Every `ada_interval` minibatches p moves by

    adjust = sign(r_t - target) * (batch_size * ada_interval) / (ada_kimg * 1000)

so that p could go from 0 to 1 in `ada_kimg` thousand real images, and is clamped to [0, 1].

Typical use in a training loop (one call of each per minibatch, on every rank):

    ada = AdaController(augment_pipe, target=0.6)
    ...
    ada.accumulate(real_logits)   # D's outputs on the augmented reals of this minibatch
    ada.update(batch_size)        # global batch size; adjusts p on every ada_interval-th call
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from stylegan.errors import UserInputError


def _all_reduce_sum(stats: torch.Tensor) -> torch.Tensor:
    """Sum `stats` over ranks when torch.distributed is running; a no-op otherwise."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(stats, op=torch.distributed.ReduceOp.SUM)
    return stats


class AdaController:
    """Adjusts `augment_pipe.p` towards the target overfitting heuristic r_t (ADA paper, section 3).

    augment_pipe: module with a scalar buffer `p` (an AugmentPipe); p is read from and written to it.
    target:       target value of r_t = E[sign(D(real))]; the paper uses 0.6.
    ada_interval: number of minibatches between adjustments (statistics are gathered over all of them).
    ada_kimg:     speed: p can move from 0 to 1 in this many thousand real images.
    """

    _STATE_KEYS = ("p", "sign_sum", "sign_count", "minibatches", "r_t")

    def __init__(self, augment_pipe: torch.nn.Module, target: float = 0.6, ada_interval: int = 4,
                 ada_kimg: float = 500):
        p = getattr(augment_pipe, "p", None)
        if not isinstance(p, torch.Tensor) or p.numel() != 1:
            raise UserInputError("AdaController needs an augment pipe with a scalar tensor `p` (e.g. AugmentPipe).")
        if not -1 <= float(target) <= 1:
            raise UserInputError(f"ADA target={target} must be in [-1, 1] (it is a mean of signs; the paper uses 0.6).")
        if isinstance(ada_interval, bool) or int(ada_interval) != ada_interval or ada_interval < 1:
            raise UserInputError(f"ada_interval={ada_interval} must be a positive integer number of minibatches.")
        if not (math.isfinite(float(ada_kimg)) and float(ada_kimg) > 0):
            raise UserInputError(f"ada_kimg={ada_kimg} must be a positive number of thousands of images.")
        self.augment_pipe = augment_pipe
        self.target = float(target)
        self.ada_interval = int(ada_interval)
        self.ada_kimg = float(ada_kimg)
        self._stats: Optional[torch.Tensor] = None  # float64 [sum of signs, count], on the logits' device
        self._minibatches = 0                       # update() calls since the last adjustment
        self._r_t: Optional[float] = None

    @property
    def p(self) -> float:
        """Current augmentation probability."""
        return float(self.augment_pipe.p)

    @property
    def r_t(self) -> Optional[float]:
        """The last measured r_t = mean sign of D's outputs on reals (None before the first adjustment)."""
        return self._r_t

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add the signs of D's outputs on (augmented) real images of one minibatch, any shape."""
        if not isinstance(real_logits, torch.Tensor) or real_logits.numel() == 0:
            raise UserInputError("AdaController.accumulate expects a non-empty tensor of D's outputs on real images.")
        logits = real_logits.detach()
        batch = torch.stack([logits.sign().sum().double(),
                             torch.tensor(float(logits.numel()), dtype=torch.float64, device=logits.device)])
        if self._stats is None:
            self._stats = batch
        else:
            self._stats = self._stats.to(batch.device) + batch

    def update(self, batch_size: int) -> Optional[float]:
        """Call once per minibatch with the global batch size; on every `ada_interval`-th call, adjust p.

        Returns the new p when it adjusted, else None. Under torch.distributed every rank must call this at
        the same step: the sign statistics are summed over ranks first, so all ranks get the same p.
        """
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise UserInputError(f"batch_size={batch_size} must be a positive integer (the global minibatch size).")
        self._minibatches += 1
        if self._minibatches < self.ada_interval:
            return None
        device = self.augment_pipe.p.device  # the communication device (CUDA under NCCL)
        stats = self._stats.to(device) if self._stats is not None else torch.zeros(2, dtype=torch.float64, device=device)
        sign_sum, count = _all_reduce_sum(stats.clone()).tolist()
        self._stats, self._minibatches = None, 0
        if count == 0:
            return None  # nothing was measured in this interval anywhere; leave p alone
        self._r_t = sign_sum / count
        step = (int(batch_size) * self.ada_interval) / (self.ada_kimg * 1000)
        direction = (self._r_t > self.target) - (self._r_t < self.target)
        new_p = min(max(self.p + direction * step, 0.0), 1.0)
        self.augment_pipe.p.fill_(new_p)
        return self.p

    def state_dict(self) -> Dict[str, float]:
        """Plain numbers: p, the running sign statistics, the minibatch counter and the last r_t (nan if none)."""
        sign_sum, count = self._stats.tolist() if self._stats is not None else (0.0, 0.0)
        return {"p": self.p, "sign_sum": float(sign_sum), "sign_count": float(count),
                "minibatches": int(self._minibatches), "r_t": float("nan") if self._r_t is None else float(self._r_t)}

    def load_state_dict(self, state: Dict[str, float]) -> None:
        """Restore from `state_dict()`; training then continues exactly as if never interrupted."""
        missing = [k for k in self._STATE_KEYS if k not in state]
        if missing:
            raise UserInputError(f"ADA controller state is missing {missing}; pass the dict saved by AdaController.state_dict().")
        values = {k: float(state[k].item() if isinstance(state[k], torch.Tensor) else state[k]) for k in self._STATE_KEYS}
        if not 0 <= values["p"] <= 1:
            raise UserInputError(f"ADA controller state has p={values['p']}, outside [0, 1]; the checkpoint is corrupt.")
        if values["sign_count"] == 0 and values["sign_sum"] == 0:
            self._stats = None
        else:
            self._stats = torch.tensor([values["sign_sum"], values["sign_count"]], dtype=torch.float64)
        self._minibatches = int(values["minibatches"])
        self._r_t = None if math.isnan(values["r_t"]) else values["r_t"]
        self.augment_pipe.p.fill_(values["p"])
