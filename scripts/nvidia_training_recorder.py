"""Records what NVIDIA's training loop does, for scripts/make_training_parity.py (see its docstring).

`Recorder` wraps torch's and numpy's random functions, NVIDIA's loss reports, optimizers, augmentation pipe,
generator passes and dataset while `training.training_loop.training_loop` runs, and keeps every draw with where it
was made (step, phase, accumulation round, call site), the loss reports, the step-1 gradients and the states the
loop reaches. It reads NVIDIA's modules through the dict `make_training_parity.import_nvidia` returns.
"""
from __future__ import annotations

import contextlib
import json
import re
import sys
import types
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch


@contextlib.contextmanager
def patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


_TORCH_DRAWS = ("randn", "rand", "randn_like", "rand_like", "randint", "randint_like", "randperm", "normal",
                "bernoulli", "multinomial", "poisson")
_TENSOR_DRAWS = ("random_", "normal_", "uniform_", "bernoulli_", "exponential_", "geometric_", "cauchy_",
                 "log_normal_")
_NUMPY_DRAWS = ("randint", "rand", "randn", "random", "uniform", "normal", "choice", "shuffle", "permutation")
# NVIDIA's augment.py introduces each transform with a '# Apply ...' comment; its words name the transform.
# (anisotropic before isotropic: the shorter word is inside the longer one)
_AUG_COMMENTS = (("x-flip", "xflip"), ("90 degree", "rotate90"), ("integer translation", "xint"),
                 ("anisotropic scaling", "aniso"), ("isotropic scaling", "scale"), ("pre-rotation", "rotate_pre"),
                 ("post-rotation", "rotate_post"), ("fractional translation", "xfrac"), ("brightness", "brightness"),
                 ("contrast", "contrast"), ("luma flip", "lumaflip"), ("hue rotation", "hue"),
                 ("saturation", "saturation"), ("amplification", "imgfilter"), ("additive RGB noise", "noise"),
                 ("cutout", "cutout"))


class Recorder:
    """Everything NVIDIA's loop does that our code must reproduce: draws, reports, gradients, pipe calls, states.

    Each random draw is attributed to (step, phase, round) by looking up the stack for the frames of
    `training_loop` (batch_idx, the phase being run, the round's gen_z) and `StyleGAN2Loss.accumulate_gradients`,
    and named by its call site (`_tag`). Draws are grouped into rows: one per generator pass (`run_G`: style
    mixing and noise inputs), one per augmentation call, one per other draw (a run of numpy label draws is one
    row); a row names a template, the list of its draws (tag, op, shape, args, dtype, site), and where its values
    start in the float and int arrays.
    """

    def __init__(self, nv: Dict[str, types.ModuleType], root: Path):
        self.nv = nv
        self.root = root
        self.loop_code = nv["training_loop"].training_loop.__code__
        self.acc_code = nv["loss"].StyleGAN2Loss.accumulate_gradients.__code__
        self.objects: Dict[str, object] = {}
        self.module_names: Dict[int, str] = {}
        self.source_lines: Dict[str, List[str]] = {}
        self.phases: List[str] = []
        # draws
        self.sites: List[str] = []
        self.templates: Dict[str, int] = {}
        self.rows: List[list] = []
        self.floats: List[torch.Tensor] = []
        self.ints: List[torch.Tensor] = []
        self.num_floats = 0
        self.num_ints = 0
        self.setup_draws = 0
        self.group: Optional[dict] = None   # the row being filled
        # everything else
        self.reports: List[list] = []
        self.items: List[int] = []
        self.grads: Dict[str, torch.Tensor] = {}
        self.after_phase: Dict[str, torch.Tensor] = {}
        self.aug_io: Dict[str, torch.Tensor] = {}
        self.per_step: List[dict] = []
        self.captures: Dict[int, Dict[str, torch.Tensor]] = {}

    # --- where are we?
    def context(self, depth: int):
        """(step or None, phase name, round, loss frame) of the code `depth` frames above the caller."""
        frame = sys._getframe(depth + 1)
        acc = None
        while frame is not None and frame.f_code is not self.loop_code:
            if frame.f_code is self.acc_code:
                acc = frame
            frame = frame.f_back
        if frame is None or "batch_idx" not in frame.f_locals:
            return None, "setup", -1, None
        local = frame.f_locals
        if acc is None:
            return local["batch_idx"], "data", -1, None
        rounds = local["phase_gen_z"]
        gen_z = acc.f_locals["gen_z"]
        return local["batch_idx"], local["phase"].name, next(i for i, z in enumerate(rounds) if z is gen_z), acc

    def line(self, frame) -> str:
        file = frame.f_code.co_filename
        if file not in self.source_lines:
            self.source_lines[file] = Path(file).read_text().splitlines()
        return self.source_lines[file][frame.f_lineno - 1]

    def site(self, frame) -> str:
        return f"{Path(frame.f_code.co_filename).resolve().relative_to(self.root).as_posix()}:{frame.f_lineno}"

    def subject(self, acc) -> str:
        """Which images the loss is passing to D at this moment (its current line names the logits)."""
        return "fake" if "gen_logits" in self.line(acc) else "real"

    def _tag(self, op: str, caller) -> str:
        """A name for the draw from its call site, e.g. 'noise:synthesis.b8.conv0', 'aug:xflip:gate', 'mix_z'."""
        file = self.site(caller).split(":")[0]
        func, text = caller.f_code.co_name, self.line(caller)
        if file == "training/training_loop.py":
            return {"randn": "gen_z", "np.randint": "gen_c_index"}.get(op, "loop:" + op)
        if file == "training/loss.py":
            if func == "run_G":
                return {"random_": "mix_cutoff", "rand": "mix_gate", "randn_like": "mix_z"}.get(op, "run_G:" + op)
            return "pl_noise" if op == "randn_like" else "loss:" + op
        if file.startswith("training/networks_stylegan") and "self" in caller.f_locals:
            return "noise:" + self.module_names.get(id(caller.f_locals["self"]), "?")
        if file == "training/augment.py":
            lines = self.source_lines[caller.f_code.co_filename]
            k = caller.f_lineno - 1
            while k > 0 and "# Apply " not in lines[k]:
                k -= 1
            transform = next((name for words, name in _AUG_COMMENTS if words in lines[k]), "?")
            if transform == "imgfilter":
                transform += str(caller.f_locals.get("i", "?"))
            var = re.match(r"\s*(\w+)\s*=", text)
            kind = "gate" if "torch.where(torch.rand" in text else (var.group(1) if var else "?")
            return f"aug:{transform}:{kind}"
        return f"other:{file}:{func}"

    # --- draws
    def draw(self, op: str, value, args=()) -> None:
        step, phase, rnd, _ = self.context(2)
        if step is None:
            self.setup_draws += 1
            return
        if phase == "data" and op == "randn":  # the first draw of a step: note the scalars it starts from
            self.scalars_before_step()
        caller = sys._getframe(2)
        site = self.site(caller)
        if site not in self.sites:
            self.sites.append(site)
        tensor = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
        tensor = tensor.reshape(-1).clone()
        dtype = "float" if tensor.is_floating_point() else "int"
        shape = list(value.shape) if hasattr(value, "shape") else []
        part = [self._tag(op, caller), op, shape, [float(a) for a in args], dtype, self.sites.index(site)]
        head = [step, phase, rnd]
        group = self.group
        if op.startswith("np.") and not shape:  # numpy scalars (label indices): a run of them is one draw [n]
            part[2] = [1]
            if group is not None and group["kind"] == "" and group["head"] == head and group["parts"][-1][0] == part[0]:
                group["parts"][-1][2][0] += 1
                self._store(tensor, dtype)
                return
        if group is None or group["kind"] == "":
            self.open_group(head, "", "")
        self.group["parts"].append(part)
        self._store(tensor, dtype)

    def _store(self, tensor: torch.Tensor, dtype: str) -> None:
        if dtype == "float":
            self.floats.append(tensor.float())
            self.num_floats += tensor.numel()
        else:
            self.ints.append(tensor.long())
            self.num_ints += tensor.numel()

    def open_group(self, head: list, kind: str, subject: str) -> None:
        self.close_group()
        self.group = dict(head=head, kind=kind, subject=subject, parts=[], offsets=[self.num_floats, self.num_ints])

    def close_group(self) -> None:
        group, self.group = self.group, None
        if group is None or not group["parts"]:
            return
        key = json.dumps(group["parts"])
        template = self.templates.setdefault(key, len(self.templates))
        self.rows.append([*group["head"], group["kind"], group["subject"], template, *group["offsets"]])

    @contextlib.contextmanager
    def drawing(self):
        """Record every torch and numpy random draw while active."""
        with contextlib.ExitStack() as stack:
            for name in _TORCH_DRAWS:
                stack.enter_context(patched(torch, name, self._wrap(getattr(torch, name), name)))
            for name in _TENSOR_DRAWS:
                stack.enter_context(patched(torch.Tensor, name, self._wrap(getattr(torch.Tensor, name), name)))
            for name in _NUMPY_DRAWS:
                stack.enter_context(patched(np.random, name, self._wrap(getattr(np.random, name), "np." + name)))
            yield
        self.close_group()

    def _wrap(self, fn, op):
        def wrapper(*args, **kwargs):
            out = fn(*args, **kwargs)
            numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
            self.draw(op, out if out is not None else args[0], numbers)  # np.random.shuffle: the shuffled array
            return out
        return wrapper

    def grouped(self, original, kind: str):
        """Wrap a method so that the draws of one call form one row (kind 'G': run_G, 'augment': the pipe)."""
        def wrapper(obj, *args, **kwargs):
            step, phase, rnd, acc = self.context(1)
            if step is None:
                return original(obj, *args, **kwargs)
            self.open_group([step, phase, rnd], kind, self.subject(acc) if kind == "augment" else "")
            out = original(obj, *args, **kwargs)
            self.close_group()
            if kind == "augment" and step == 0:
                key = f"{phase}.{rnd}.{self.subject(acc)}"
                self.aug_io[key + ".in"] = args[0].detach().clone()
                self.aug_io[key + ".out"] = out.detach().clone()
            return out
        return wrapper

    # --- other wrappers
    def report(self, original):
        def wrapper(name, value):
            step, phase, rnd, _ = self.context(1)
            if phase not in ("setup", "data") and isinstance(value, torch.Tensor):
                self.reports.append([step, phase, rnd, name, [float(v) for v in value.detach().flatten()]])
            return original(name, value)
        return wrapper

    def construct(self, original):
        def wrapper(*args, class_name, **kwargs):
            obj = original(*args, class_name=class_name, **kwargs)
            key = {"torch.optim.Adam": "opt_G" if "opt_G" not in self.objects else "opt_D",
                   "training.loss.StyleGAN2Loss": "loss", "training.augment.AugmentPipe": "augment_pipe"}.get(
                class_name, "G" if class_name.endswith("Generator") else "D" if class_name.endswith(
                    "Discriminator") else "training_set")
            self.objects[key] = obj
            if key in ("G", "D"):
                self.module_names.update({id(m): n for n, m in obj.named_modules()})
            if key.startswith("opt_"):
                obj.step = self.optimizer_step(obj.step, "G" if key == "opt_G" else "D")
            return obj
        return wrapper

    def optimizer_step(self, step_fn, net: str):
        def wrapper(*args, **kwargs):
            loop = sys._getframe(1).f_locals  # called by training_loop itself, after its nan_to_num
            phase = loop["phase"].name
            if loop["batch_idx"] == 0:
                for name, p in self.objects[net].named_parameters():
                    if p.grad is not None:
                        self.grads[f"{phase}.{name}"] = p.grad.detach().clone()
            out = step_fn(*args, **kwargs)
            if loop["batch_idx"] == 0:  # the state the next phase starts from: this network, G's running averages
                self.after_phase.update(_prefixed(f"{phase}.{net}", self.objects[net].state_dict()))
                self.after_phase.update(_prefixed(f"{phase}.G", {
                    k: v for k, v in self.objects["G"].state_dict().items() if k.endswith(("w_avg", "magnitude_ema"))}))
            return out
        return wrapper

    def getitem(self, original):
        def wrapper(dataset, idx):
            if self.context(1)[0] is not None:  # the loop's data fetch, not the image grid of its setup
                self.items.append(int(idx))
            return original(dataset, idx)
        return wrapper

    def progress(self, *_args):
        """Called by the loop at its start and at every tick (after steps 1 and 20 here): snapshot the state."""
        local = sys._getframe(1).f_locals
        step = local["batch_idx"]
        if step == 0:
            self.phases = [phase.name for phase in local["phases"]]
            self.captures[0] = {**_prefixed("G", local["G"].state_dict()), **_prefixed("D", local["D"].state_dict())}
            return
        state = {}
        for name in ("G", "D", "G_ema"):
            state.update(_prefixed(name, local[name].state_dict()))
        for key, net in (("opt_G", local["G"]), ("opt_D", local["D"])):
            opt = self.objects[key]
            for name, p in net.named_parameters():
                for field, value in opt.state.get(p, {}).items():
                    state[f"{key}.{field}.{name}"] = torch.as_tensor(value, dtype=torch.float32).clone()
        state["loss.pl_mean"] = local["loss"].pl_mean.detach().clone()
        if local["augment_pipe"] is not None:
            state["augment_pipe.p"] = local["augment_pipe"].p.detach().clone()
        self.captures[step] = state

    def scalars_before_step(self) -> None:
        """pl_mean and p as the step about to run finds them (read when its latents are drawn)."""
        loss, pipe = self.objects.get("loss"), self.objects.get("augment_pipe")
        self.per_step.append({"pl_mean": float(loss.pl_mean), "augment_p": float(pipe.p) if pipe is not None else None})


def _prefixed(prefix: str, state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in state.items()}
