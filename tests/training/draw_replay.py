"""NVIDIA's training steps as recorded in tests/fixtures/training_parity, served to our code.

scripts/make_training_parity.py ran NVIDIA's training loop and recorded every random draw, the loss reports, the
step-1 gradients and the states after steps 1 and 20 (read its README and config.json). Here:

- `ParityFixture(name)` reads one configuration: the networks as ours (`build('G', 'init')`), the real batches,
  latents and labels of each step, the draws of each step or phase, the reports; `write_dataset(folder)` writes
  its images as a dataset folder our `ImageDataset` reads item for item as NVIDIA's loop did;
- `DrawReplay(draws, STEP_ROUTES)` answers our code's torch.randn / randn_like / rand / randint calls with the
  recorded draws, routed by which of our functions calls, and checks that every recorded draw was used.

    fx = ParityFixture("sg2_noaug")
    with DrawReplay(fx.draws(0), STEP_ROUTES):
        training_step(run, ...)
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from stylegan.networks.registry import OFFICIAL_CLASS_NAMES, build_network

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "training_parity"
CONFIGS = ("sg2", "sg2_cond", "sg2_noaug", "sg2_cond_noaug", "sg3t")

# Which recorded draws answer our training step's random calls: 'op@function' for a torch function called by one
# of our functions (training.loop.training_step: latents; training.setup.label_draws: label items;
# PhaseNetworks.run_G: the second latent of style mixing; losses.mix_styles: its cutoff and gate;
# losses.path_lengths: the path-length noise), a bare op for every other caller (the synthesis noise inputs).
# NVIDIA draws the mixing cutoff, gate and second latent in another order than ours: each route keeps its own
# recorded order.
STEP_ROUTES = {
    "randn@training_step": "gen_z",
    "randint@label_draws": "gen_c_index",
    "randn_like@run_G": "mix_z",
    "randint@mix_styles": "mix_cutoff",
    "rand@mix_styles": "mix_gate",
    "randn_like@path_lengths": "pl_noise",
    "randn": "noise:",
}

# The augmentation pipe's draws (augment_params.draw_params: uniform values and gates, normal values), all from
# one queue in NVIDIA's recorded order, which is ours (value, then gate, per transform).
AUGMENT_ROUTES = {"rand@uniform": "aug:", "rand@gate": "aug:", "randn@normal": "aug:"}


@dataclass
class Draw:
    step: int
    phase: str        # Gmain, Greg, Gboth, Dmain, Dreg, or 'data' (latents and label indices of a step)
    round: int        # accumulation round, -1 for 'data'
    group: str        # 'G' (one run_G call), 'augment' (one AugmentPipe call), '' (single draws)
    subject: str      # augmentation: 'fake' or 'real' images
    tag: str          # gen_z, gen_c_index, mix_cutoff, mix_gate, mix_z, noise:<layer>, pl_noise, aug:...
    op: str           # NVIDIA's call: randn, rand, randn_like, random_, np.randint
    shape: List[int]
    value: torch.Tensor


class ParityFixture:
    """One configuration of tests/fixtures/training_parity."""

    def __init__(self, name: str):
        self.name = name
        self.dir = FIXTURES / name
        self.config = json.loads((self.dir / "config.json").read_text())
        kwargs = self.config["training_loop_kwargs"]
        self.batch = kwargs["batch_size"]
        self.batch_gpu = kwargs["batch_gpu"]
        self.phases: List[str] = self.config["phases"]
        self.loop_kwargs = kwargs

    def tensors(self, file: str) -> Dict[str, torch.Tensor]:
        """Contents of <file>.safetensors (data, draws, init, step1, step20, grads1, aug1)."""
        return load_file(str(self.dir / f"{file}.safetensors"))

    def state(self, file: str, role: str) -> Dict[str, torch.Tensor]:
        """The state_dict of G, D or G_ema stored in `file` (NVIDIA's names, which are ours)."""
        prefix = role + "."
        return {k[len(prefix):]: v for k, v in self.tensors(file).items() if k.startswith(prefix)}

    def build(self, role: str, file: str = "init") -> torch.nn.Module:
        """Our network for NVIDIA's class and kwargs, with the weights of `file` (G_ema: G's kwargs)."""
        net = "G" if role.startswith("G") else "D"
        module = build_network(OFFICIAL_CLASS_NAMES[self.config["network_classes"][net]],
                               self.config["network_kwargs"][net])
        state = self.state(file, "G" if role == "G_ema" and file == "init" else role)
        module.load_state_dict(state, strict=True)
        return module.train().requires_grad_(False)

    def build_before(self, phase: str):
        """(G, D), ours, as NVIDIA's loop had them when `phase` of step 1 started: the initial weights updated by
        every earlier phase (phases1.safetensors), G's running averages included."""
        G, D = self.build("G"), self.build("D")
        after = self.tensors("phases1")
        for earlier in self.phases[:self.phases.index(phase)]:
            for role, net in (("G", G), ("D", D)):
                prefix = f"{earlier}.{role}."
                update = {k[len(prefix):]: v for k, v in after.items() if k.startswith(prefix)}
                net.load_state_dict({**net.state_dict(), **update}, strict=True)
        return G, D

    # --- draws
    @cached_property
    def all_draws(self) -> List[Draw]:
        values = self.tensors("draws")
        table = self.config["draws"]
        out = []
        for step, phase, rnd, group, subject, template, f_off, i_off in table["rows"]:
            for tag, op, shape, _args, dtype, _site in table["templates"][template]:
                n = math.prod(shape)
                if dtype == "float":
                    value, f_off = values["float"][f_off:f_off + n], f_off + n
                else:
                    value, i_off = values["int"][i_off:i_off + n], i_off + n
                out.append(Draw(step, phase, rnd, group, subject, tag, op, shape, value.reshape(shape)))
        return out

    def draws(self, step: int, phase: Optional[str] = None, round: Optional[int] = None,
              group: Optional[str] = None, tag: Optional[str] = None) -> List[Draw]:
        """The draws of `step` (all of them, or those of one phase, round, group or tag prefix), in order."""
        return [d for d in self.all_draws if d.step == step and (phase is None or d.phase == phase)
                and (round is None or d.round == round) and (group is None or d.group == group)
                and (tag is None or d.tag.startswith(tag))]

    # --- inputs of a step
    def gen_z(self, step: int) -> torch.Tensor:
        """[phases, batch, z_dim]: the latents the loop drew for every phase of `step`."""
        (z,) = self.draws(step, "data", tag="gen_z")
        return z.value.reshape(len(self.phases), self.batch, -1)

    def _labels(self, items: torch.Tensor) -> torch.Tensor:
        data = self.tensors("data")
        if not self.loop_kwargs["training_set_kwargs"]["use_labels"]:
            return torch.zeros([len(items), 0])
        return F.one_hot(data["labels"][items % len(data["images"])], self.config["dataset"]["label_dim"]).float()

    def gen_c(self, step: int) -> torch.Tensor:
        """[phases, batch, c_dim]: the labels of the dataset items the loop drew for `step`'s latents."""
        (idx,) = self.draws(step, "data", tag="gen_c_index")
        return self._labels(idx.value).reshape(len(self.phases), self.batch, -1)

    def reals(self, step: int):
        """(images in [-1, 1] [batch, C, H, W], labels [batch, c_dim]) of `step`, as the loop received them."""
        images = self.tensors("data")["images"]
        items = torch.tensor(self.config["dataset"]["items_per_step"][step])
        img = images[items % len(images)].clone()
        flip = items >= len(images)
        img[flip] = img[flip].flip(-1)
        return img.float() / 127.5 - 1, self._labels(items)

    def write_dataset(self, folder: Path) -> Path:
        """The fixture's images as PNGs in `folder` (dataset.json with their labels where conditional): read with
        x-flips, its items are NVIDIA's dataset items (item i >= 24: image i - 24 mirrored)."""
        folder.mkdir(parents=True, exist_ok=True)
        data = self.tensors("data")
        names = []
        for i, image in enumerate(data["images"].numpy()):
            names.append(f"img{i:08d}.png")
            PIL.Image.fromarray(image[0] if image.shape[0] == 1 else np.ascontiguousarray(image.transpose(1, 2, 0))
                                ).save(folder / names[-1])
        if self.loop_kwargs["training_set_kwargs"]["use_labels"]:
            labels = [[n, int(c)] for n, c in zip(names, data["labels"])]
            (folder / "dataset.json").write_text(json.dumps({"labels": labels}))
        return folder

    def report_rows(self, step: int, phase: Optional[str] = None, round: Optional[int] = None) -> List[list]:
        """NVIDIA's loss reports of `step` (or of one phase and round), in order: [step, phase, round, name,
        per-sample values]."""
        return [r for r in self.config["reports"]["rows"]
                if r[0] == step and (phase is None or r[1] == phase) and (round is None or r[2] == round)]

    def reports(self, step: int, phase: str, round: int, name: str) -> torch.Tensor:
        rows = [r for r in self.report_rows(step, phase, round) if r[3] == name]
        assert len(rows) == 1, (step, phase, round, name, len(rows))
        return torch.tensor(rows[0][4])


class DrawReplay:
    """While active, answer torch.randn / randn_like / rand / randint with recorded draws.

    routes: our call -> the tag prefix of the recorded draws that answer it, taken in their recorded order (e.g.
    'noise:' answers the synthesis layers one after another); calls routed to the same prefix take from one queue
    (the augmentation pipe's uniform and normal draws, in NVIDIA's order: a torch.rand answered by NVIDIA's
    torch.randn, or the reverse, fails). A call is 'op@function' (torch.op called by our
    function of that name, e.g. 'randn_like@path_lengths') or a bare op (any other caller). A call with no route
    raises. The number of values must match the recorded draw; on exit every draw must have been used.
    """

    def __init__(self, draws: List[Draw], routes: Dict[str, str]):
        by_prefix: Dict[str, List[Draw]] = {}  # calls routed to the same prefix share one queue, in recorded order
        self.queues = {call: by_prefix.setdefault(prefix, [d for d in draws if d.tag.startswith(prefix)])
                       for call, prefix in routes.items()}
        routed = {id(d) for q in self.queues.values() for d in q}
        unrouted = [d.tag for d in draws if id(d) not in routed]
        assert not unrouted, f"recorded draws no route answers: {unrouted}"
        self.originals = {}

    @staticmethod
    def _caller() -> str:
        """The name of the function that called torch (the first frame outside this file)."""
        frame = sys._getframe(1)
        while frame.f_globals is globals():
            frame = frame.f_back
        return frame.f_code.co_name

    def _serve(self, op: str, shape, dtype=None, device=None) -> torch.Tensor:
        call = f"{op}@{self._caller()}"
        queue = self.queues.get(call if call in self.queues else op)
        assert queue, f"our code called torch.{op}{list(shape)} ({call}) where NVIDIA drew nothing (or no more)"
        draw = queue.pop(0)
        assert draw.value.numel() == math.prod(shape), \
            f"torch.{op}{list(shape)} ({call}) answered by {draw.tag}{draw.shape}"
        assert op == draw.op or not {op, draw.op} <= {"rand", "randn"}, \
            f"torch.{op} ({call}) answered by NVIDIA's torch.{draw.op} ({draw.tag}): another order of draws"
        value = draw.value.reshape(shape)
        if dtype is not None or not value.is_floating_point():
            value = value.to(dtype or torch.int64)
        return value.to(device) if device is not None else value.clone()

    def __enter__(self):
        def size(args):
            return list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple, torch.Size)) else list(args)

        replacements = {
            "randn": lambda *args, dtype=None, device=None, **_: self._serve("randn", size(args), dtype, device),
            "rand": lambda *args, dtype=None, device=None, **_: self._serve("rand", size(args), dtype, device),
            "randn_like": lambda t, **_: self._serve("randn_like", t.shape, t.dtype, t.device),
            "randint": lambda *args, dtype=None, device=None, **_: self._serve(
                "randint", list(args[-1]), dtype or torch.int64, device),
        }
        for name, fn in replacements.items():
            self.originals[name] = getattr(torch, name)
            setattr(torch, name, fn)
        return self

    def __exit__(self, exc_type, *_exc):
        for name, fn in self.originals.items():
            setattr(torch, name, fn)
        if exc_type is None:
            left = {call: [d.tag for d in q] for call, q in self.queues.items() if q}  # shared: listed per call
            assert not left, f"NVIDIA drew these, our code did not ask for them: {left}"
        return False
