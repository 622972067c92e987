"""Reference data for training-step parity: NVIDIA's own training loop, a few steps on the CPU, every draw recorded.

Runs `training.training_loop.training_loop` of an NVlabs/stylegan3 checkout (unmodified; only its `torch` is
pointed at the CPU, see DEVICE_CHANGES) on tiny networks and a 24-image dataset for 20 steps, and writes what our
training code needs to reproduce it step for step, as data only (safetensors + JSON, no pickles, no NVIDIA code):

    .venv/bin/python scripts/make_training_parity.py --nvidia ../shared/gpu/nvidia_stylegan3 \
        --out tests/fixtures/training_parity

Per configuration (CONFIGS), a folder <out>/<name>/ with
  config.json       NVIDIA's exact kwargs (networks, loss, optimizers, augmentation, loop), versions, the
                    draw table, the per-phase loss reports, per-step scalars and the dataset items of every step;
  data.safetensors  the dataset (uint8 images, labels) the loop read, and the real batches it drew;
  draws.safetensors every random number the training steps drew, in order (`float`, `int`; the table in
                    config.json says which call drew which slice);
  init.safetensors  G and D as constructed from the seed (G_ema is a copy of G);
  step1.safetensors, step20.safetensors  G, D, G_ema (parameters and buffers), both Adam states, pl_mean and
                    the augmentation p after that many steps;
  grads1.safetensors the gradients each phase of step 1 handed to Adam (after NVIDIA's nan_to_num);
  phases1.safetensors after each phase of step 1, the network it updated and G's running averages;
  aug1.safetensors  input and output images of every augmentation call of step 1.

Single-threaded and seeded: two runs write identical files.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import platform
import sys
import tempfile
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

import numpy as np
import PIL.Image
import torch
from safetensors.torch import save_file

from nvidia_training_recorder import Recorder, patched
from stylegan.io.atomic import atomic_path, atomic_write_text

STEPS = 20
CAPTURE_STEPS = (1, STEPS)
NUM_IMAGES = 24
SEED = 0
NUM_CLASSES = 4
FMNIST_NPY = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fashion_mnist" / "train_first48.npy"

DEVICE_CHANGES = [
    "training_loop.py's module-global `torch` is a proxy: torch.device(...) returns the CPU device and "
    "torch.cuda.{Event, current_stream, max_memory_allocated, max_memory_reserved, reset_peak_memory_stats} are "
    "no-ops; everything else is the real torch",
    "torch.Tensor.pin_memory returns the tensor itself (no accelerator to pin for)",
    "data_loader_kwargs: num_workers=0, pin_memory=False (train.py: 3 workers, pinned)",
    "networks with num_fp16_res=0 (train.py --fp32 also drops conv_clamp; kept at 256 here, as our CPU runs)",
    "modules NVIDIA's code imports but never calls here are stubbed when absent: pkg_resources.parse_version "
    "(packaging.version.Version), psutil (resource.getrusage), requests",
    "custom ops take NVIDIA's own reference paths on the CPU (bias_act/upfirdn2d/filtered_lrelu _ref; "
    "conv2d_gradfix is inactive on torch >= 1.11; grid_sample_gradfix is enabled by the loop and works on the CPU)",
]

LOSS_SETTINGS = ("r1_gamma", "style_mixing_prob", "pl_weight", "pl_batch_shrink", "pl_decay", "pl_no_weight_grad",
                 "blur_init_sigma", "blur_fade_kimg")  # StyleGAN2Loss's attributes, defaults included
BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
           brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)  # train.py's --aug ada pipe ('bgc')


@dataclass(frozen=True)
class ParityConfig:
    """One tiny training setup; the loss and loop settings follow train.py unless noted in `notes`."""

    name: str
    description: str
    arch: str                       # 'stylegan2' or 'stylegan3-t'
    resolution: int
    channels: int
    cond: bool
    augment: bool                   # 'bgc' pipe with ADA, or no pipe at all
    channel_base: int
    channel_max: int
    z_dim: int = 16
    w_dim: int = 16
    batch: int = 4
    batch_gpu: int = 2              # two accumulation rounds per phase
    r1_gamma: float = 1.0
    augment_p: float = 0.2          # initial p (train.py --aug ada starts at 0; nonzero so that step 1 augments)
    ada_kimg: float = 1.0           # train.py: 500 (100 when resuming); 1 makes p move 0.016 per adjustment
    magnitude_ema_beta: float = 0.99  # StyleGAN3 only; train.py: 0.5 ** (batch / 20000), too slow to see here
    blur_init_sigma: float = 0.0
    blur_fade_kimg: float = 0.0
    notes: str = ""

    @property
    def stylegan2(self) -> bool:
        return self.arch == "stylegan2"


CONFIGS = [
    ParityConfig("sg2", "StyleGAN2, unconditional, 16x16 grayscale (Fashion-MNIST), ADA 'bgc'",
                 "stylegan2", 16, 1, cond=False, augment=True, channel_base=64, channel_max=8),
    ParityConfig("sg2_cond", "StyleGAN2, conditional (4 classes), 8x8 RGB (tinted), ADA 'bgc'",
                 "stylegan2", 8, 3, cond=True, augment=True, channel_base=32, channel_max=8),
    ParityConfig("sg2_noaug", "StyleGAN2, unconditional, 8x8 grayscale, no augmentation (phases without the pipe)",
                 "stylegan2", 8, 1, cond=False, augment=False, channel_base=32, channel_max=8),
    ParityConfig("sg2_cond_noaug", "StyleGAN2, conditional (4 classes), 8x8 RGB (tinted), no augmentation",
                 "stylegan2", 8, 3, cond=True, augment=False, channel_base=32, channel_max=8,
                 notes="sg2_cond without the pipe: every phase of a conditional run comparable with ours"),
    ParityConfig("sg3t", "StyleGAN3-T, unconditional, 16x16 RGB (tinted), no augmentation, D blur fading",
                 "stylegan3-t", 16, 3, cond=False, augment=False, channel_base=64, channel_max=4, z_dim=8, w_dim=8,
                 r1_gamma=2.0, blur_init_sigma=10.0, blur_fade_kimg=0.1,
                 notes="blur as train.py's stylegan3-r (sigma 10) but fading over 0.1 kimg so that it is active and "
                       "changing for all 20 steps; magnitude_ema_beta 0.99 so that the EMAs move visibly"),
]


# ----------------------------------------------------------------------------------------------------------
# NVIDIA's code on this machine


def import_nvidia(path: Path) -> Dict[str, types.ModuleType]:
    """Import the NVIDIA modules the loop needs, stubbing imports that are absent and unused here."""
    def stub(name: str, **attrs) -> None:
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.SimpleNamespace(**attrs)

    from packaging.version import Version
    stub("pkg_resources", parse_version=Version)
    stub("requests")

    def rss_bytes(*_args):
        import resource
        return types.SimpleNamespace(rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    stub("psutil", Process=lambda *_a: types.SimpleNamespace(memory_info=rss_bytes))
    if not (path / "training" / "training_loop.py").is_file():
        raise SystemExit(f"{path} is not an NVlabs/stylegan3 checkout (no training/training_loop.py)")
    sys.path.insert(0, str(path))
    import dnnlib  # noqa: E402 (NVIDIA's)
    from torch_utils import training_stats
    from training import augment, dataset, loss, training_loop
    return dict(dnnlib=dnnlib, training_stats=training_stats, augment=augment, dataset=dataset, loss=loss,
                training_loop=training_loop)


class CudaOnCpu:
    """The few torch.cuda calls the loop makes for timing and memory statistics, as no-ops."""

    class Event:
        def __init__(self, **_kwargs):
            pass

        def record(self, *_args):
            pass

        def synchronize(self):
            pass

        def elapsed_time(self, _other):
            return 0.0

    current_stream = staticmethod(lambda *_a: None)
    max_memory_allocated = max_memory_reserved = staticmethod(lambda *_a: 0)
    reset_peak_memory_stats = staticmethod(lambda *_a: None)

    def __getattr__(self, name):
        return getattr(torch.cuda, name)


class TorchOnCpu(types.ModuleType):
    """What training_loop.py sees as `torch`: the real module, except that every device is the CPU."""

    def __init__(self):
        super().__init__("torch")
        self.cuda = CudaOnCpu()

    @staticmethod
    def device(*_args, **_kwargs):
        return torch.device("cpu")

    def __getattr__(self, name):
        return getattr(torch, name)


# ----------------------------------------------------------------------------------------------------------
# The dataset


def make_images(cfg: ParityConfig):
    """NUM_IMAGES Fashion-MNIST training images, padded to 32x32 as NVIDIA's dataset_tool does and box-averaged
    down to the config's resolution; RGB configs tint each image with a random colour. Labels (for conditional
    configs) are i % NUM_CLASSES: the stored images have none. Returns uint8 [N, C, H, W] and int64 [N]."""
    images = np.load(FMNIST_NPY)[:NUM_IMAGES].astype(np.float64)
    images = np.pad(images, [(0, 0), (2, 2), (2, 2)])
    k = 32 // cfg.resolution
    images = images.reshape(NUM_IMAGES, cfg.resolution, k, cfg.resolution, k).mean(axis=(2, 4))[:, None]
    if cfg.channels == 3:
        images = images * np.random.RandomState(SEED).uniform(0.3, 1.0, size=[NUM_IMAGES, 3, 1, 1])
    return np.rint(images).clip(0, 255).astype(np.uint8), np.arange(NUM_IMAGES, dtype=np.int64) % NUM_CLASSES


def write_dataset_zip(images: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """NVIDIA's dataset layout: PNGs under 00000/ and dataset.json with [name, label] pairs."""
    with zipfile.ZipFile(path, "w") as zf:
        names = []
        for i, image in enumerate(images):
            name = f"00000/img{i:08d}.png"
            pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
            buf = io.BytesIO()
            PIL.Image.fromarray(pixels).save(buf, format="png")
            zf.writestr(name, buf.getvalue())
            names.append(name)
        zf.writestr("dataset.json", json.dumps({"labels": [[n, int(c)] for n, c in zip(names, labels)]}))


# ----------------------------------------------------------------------------------------------------------
# One configuration


def loop_kwargs(cfg: ParityConfig, nv, data_zip: Path, run_dir: Path) -> dict:
    """training_loop's arguments as train.py builds them for this config (EasyDicts, train.py's key order)."""
    E = nv["dnnlib"].EasyDict
    net = dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max, num_fp16_res=0, conv_clamp=256)
    G_kwargs = E(class_name=None, z_dim=cfg.z_dim, w_dim=cfg.w_dim, mapping_kwargs=E(num_layers=2), **net)
    D_kwargs = E(class_name="training.networks_stylegan2.Discriminator", block_kwargs=E(freeze_layers=0),
                 mapping_kwargs=E(), epilogue_kwargs=E(mbstd_group_size=cfg.batch_gpu), **net)
    loss_kwargs = E(class_name="training.loss.StyleGAN2Loss", r1_gamma=cfg.r1_gamma)
    if cfg.stylegan2:
        G_kwargs.class_name = "training.networks_stylegan2.Generator"
        G_kwargs.fused_modconv_default = "inference_only"
        loss_kwargs.update(style_mixing_prob=0.9, pl_weight=2, pl_no_weight_grad=True)
    else:
        G_kwargs.class_name = "training.networks_stylegan3.Generator"
        G_kwargs.magnitude_ema_beta = cfg.magnitude_ema_beta
        loss_kwargs.update(blur_init_sigma=cfg.blur_init_sigma, blur_fade_kimg=cfg.blur_fade_kimg)
    adam = dict(class_name="torch.optim.Adam", betas=[0.0, 0.99], eps=1e-8)
    return dict(
        run_dir=str(run_dir),
        training_set_kwargs=E(class_name="training.dataset.ImageFolderDataset", path=str(data_zip),
                              use_labels=cfg.cond, max_size=None, xflip=True, resolution=cfg.resolution,
                              random_seed=SEED),
        data_loader_kwargs=E(pin_memory=False, num_workers=0),
        G_kwargs=G_kwargs, D_kwargs=D_kwargs,
        G_opt_kwargs=E(adam, lr=0.002 if cfg.stylegan2 else 0.0025), D_opt_kwargs=E(adam, lr=0.002),
        augment_kwargs=E(class_name="training.augment.AugmentPipe", **BGC) if cfg.augment else None,
        loss_kwargs=loss_kwargs, metrics=[], random_seed=SEED, num_gpus=1, rank=0,
        batch_size=cfg.batch, batch_gpu=cfg.batch_gpu, ema_kimg=cfg.batch * 10 / 32, ema_rampup=0.05,
        G_reg_interval=4 if cfg.stylegan2 else None, D_reg_interval=16,
        augment_p=cfg.augment_p if cfg.augment else 0, ada_target=0.6 if cfg.augment else None, ada_interval=4,
        ada_kimg=cfg.ada_kimg, total_kimg=(STEPS * cfg.batch - 0.5) / 1000, kimg_per_tick=1e6,
        image_snapshot_ticks=None, network_snapshot_ticks=None, cudnn_benchmark=False,
    )


def run_config(cfg: ParityConfig, nv, root: Path) -> tuple:
    """Run NVIDIA's loop for STEPS steps; returns (recorder, kwargs, images, labels, loop log)."""
    rec = Recorder(nv, root)
    images, labels = make_images(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        data_zip = Path(tmp) / f"{cfg.name}.zip"
        write_dataset_zip(images, labels, data_zip)
        (Path(tmp) / "run").mkdir()
        kwargs = loop_kwargs(cfg, nv, data_zip, Path(tmp) / "run")
        tl, ts = nv["training_loop"], nv["training_stats"]
        ts._counters.clear()  # NVIDIA's statistics live in module globals: start each config clean
        ts._cumulative.clear()
        log = io.StringIO()
        with contextlib.ExitStack() as stack:
            stack.enter_context(patched(tl, "torch", TorchOnCpu()))
            stack.enter_context(patched(torch.Tensor, "pin_memory", lambda t, *a, **k: t))
            stack.enter_context(patched(nv["dnnlib"].util, "construct_class_by_name",
                                        rec.construct(nv["dnnlib"].util.construct_class_by_name)))
            stack.enter_context(patched(ts, "report", rec.report(ts.report)))
            stack.enter_context(patched(nv["augment"].AugmentPipe, "forward",
                                        rec.grouped(nv["augment"].AugmentPipe.forward, "augment")))
            stack.enter_context(patched(nv["loss"].StyleGAN2Loss, "run_G",
                                        rec.grouped(nv["loss"].StyleGAN2Loss.run_G, "G")))
            stack.enter_context(patched(nv["dataset"].Dataset, "__getitem__",
                                        rec.getitem(nv["dataset"].Dataset.__getitem__)))
            stack.enter_context(contextlib.redirect_stdout(log))
            stack.enter_context(rec.drawing())
            tl.training_loop(progress_fn=rec.progress, **kwargs)
        rec.per_step.append({"pl_mean": float(rec.objects["loss"].pl_mean),
                             "augment_p": float(rec.objects["augment_pipe"].p) if cfg.augment else None})
        kwargs["training_set_kwargs"]["path"] = f"<{cfg.name}.zip: data.safetensors>"
        kwargs["run_dir"] = "<temporary>"
    return rec, kwargs, images, labels, log.getvalue()


def _file_digests(root: Path) -> Dict[str, str]:
    files = ["training/training_loop.py", "training/loss.py", "training/augment.py", "training/networks_stylegan2.py",
             "training/networks_stylegan3.py", "training/dataset.py", "torch_utils/misc.py",
             "torch_utils/training_stats.py", "torch_utils/ops/upfirdn2d.py", "torch_utils/ops/bias_act.py",
             "torch_utils/ops/filtered_lrelu.py", "torch_utils/ops/grid_sample_gradfix.py"]
    return {f: hashlib.sha256((root / f).read_bytes()).hexdigest()[:16] for f in files}


def write_config(cfg: ParityConfig, rec: Recorder, kwargs: dict, images, labels, out: Path, root: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    steps = [rec.items[i * cfg.batch:(i + 1) * cfg.batch] for i in range(STEPS)]
    training_set = rec.objects["training_set"]
    for item in rec.items:  # the rule config.json states: the reals are rebuilt from the images and the items
        image, label = training_set[item]
        expected = images[item % NUM_IMAGES][:, :, ::-1] if item >= NUM_IMAGES else images[item % NUM_IMAGES]
        assert np.array_equal(image, expected), item
        assert not cfg.cond or label.argmax() == labels[item % NUM_IMAGES]
    data = {"images": torch.from_numpy(images), "labels": torch.from_numpy(labels)}
    tensors = {
        "data.safetensors": data,
        "draws.safetensors": {"float": torch.cat(rec.floats) if rec.floats else torch.zeros(0),
                              "int": torch.cat(rec.ints) if rec.ints else torch.zeros(0, dtype=torch.int64)},
        "init.safetensors": rec.captures[0],
        "grads1.safetensors": rec.grads,
        "phases1.safetensors": rec.after_phase,
    }
    for step in CAPTURE_STEPS:
        tensors[f"step{step}.safetensors"] = rec.captures[step]
    if rec.aug_io:
        tensors["aug1.safetensors"] = rec.aug_io
    for name, content in tensors.items():
        with atomic_path(out / name) as tmp:
            save_file({k: v.contiguous() for k, v in sorted(content.items())}, str(tmp))
    G, D = rec.objects["G"], rec.objects["D"]
    config = {
        "config": dataclasses.asdict(cfg),
        "made_by": "scripts/make_training_parity.py",
        "nvidia": {"files_sha256_16": _file_digests(root), "commit_note": "NVlabs/stylegan3 c233a91 plus the "
                   "compatibility fixes of ../shared/gpu/nvidia_stylegan3/COMPAT-torch2.11.diff"},
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
                     "scipy": __import__("scipy").__version__, "threads": torch.get_num_threads()},
        "device_changes": DEVICE_CHANGES,
        "training_loop_kwargs": json.loads(json.dumps(kwargs)),
        "loss_settings": {key: getattr(rec.objects["loss"], key) for key in LOSS_SETTINGS},
        "network_classes": {"G": kwargs["G_kwargs"]["class_name"], "D": kwargs["D_kwargs"]["class_name"]},
        "network_kwargs": {"G": dict(G.init_kwargs), "D": dict(D.init_kwargs)},
        "parameters": {"G": sum(p.numel() for p in G.parameters()), "D": sum(p.numel() for p in D.parameters())},
        "phases": rec.phases,
        "steps": STEPS,
        "captured_after_steps": list(CAPTURE_STEPS),
        "dataset": {"num_images": NUM_IMAGES, "xflip": True, "len": len(training_set),
                    "label_dim": training_set.label_dim,
                    "items_per_step": steps,
                    "item_meaning": "index into NVIDIA's dataset (len = 2 * num_images with xflip): item i < "
                                    "num_images is data.safetensors images[i], item i >= num_images is images[i - "
                                    "num_images] mirrored left-right; real_c is the one-hot of labels[i % num_images] "
                                    "(conditional configs; label_dim = max label + 1). Images are uint8: the loop "
                                    "feeds image / 127.5 - 1"},
        "draws": {
            "columns": ["step", "phase", "round", "group", "subject", "template", "float_offset", "int_offset"],
            "rows": rec.rows,
            "template_columns": ["tag", "op", "shape", "args", "dtype", "site"],
            "templates": [json.loads(key) for key in rec.templates],
            "sites": rec.sites,
            "setup_draws_not_stored": rec.setup_draws,
            "meaning": "every random number the training steps drew, in order. A row is a group of draws: "
                       "group 'G' = one StyleGAN2Loss.run_G call (style mixing, then the noise inputs), 'augment' = "
                       "one AugmentPipe call (subject: the fake or real images it augmented), '' = single draws "
                       "(latents gen_z, label indices gen_c_index, pl_noise). step: batch_idx (0-based); phase: the "
                       "loop's phase, or 'data' for what the loop draws at the start of a step; round: the "
                       "accumulation round (batch_gpu images). The row's template lists its draws in order; each "
                       "takes prod(shape) values of its dtype from draws.safetensors 'float' or 'int', starting at "
                       "the row's offsets. Tags: gen_z, gen_c_index (np.random.randint), mix_cutoff (random_), "
                       "mix_gate, mix_z, noise:<layer>, pl_noise, aug:<transform>:<variable, or 'gate' for the "
                       "uniform compared with the probability>.",
        },
        "reports": {"columns": ["step", "phase", "round", "name", "values"], "rows": rec.reports,
                    "meaning": "every training_stats.report() inside accumulate_gradients, per-sample values"},
        "scalars_before_each_step": rec.per_step,
        "tensor_files": {
            "init": "G.<name>, D.<name>: state_dict() as constructed from the seed (G_ema = copy of G)",
            "stepN": "after N steps: G/D/G_ema state_dict(); opt_G/opt_D.{step,exp_avg,exp_avg_sq}.<param>; "
                     "loss.pl_mean; augment_pipe.p",
            "grads1": "<phase>.<param>: the gradient each phase of step 1 handed to Adam (after nan_to_num)",
            "phases1": "<phase>.<G|D>.<name>: after each phase of step 1, the state_dict of the network it updated "
                       "and G's running averages (w_avg, magnitude_ema): the state the next phase starts from",
            "aug1": "<phase>.<round>.<fake|real>.{in,out}: every augmentation call of step 1",
        },
    }
    atomic_write_text(out / "config.json", json.dumps(config, separators=(",", ":")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvidia", required=True, type=Path, help="an NVlabs/stylegan3 checkout")
    parser.add_argument("--out", required=True, type=Path, help="e.g. tests/fixtures/training_parity")
    parser.add_argument("--configs", default=",".join(c.name for c in CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(1)  # one summation order: the same files on every run
    root = args.nvidia.resolve()
    nv = import_nvidia(root)
    wanted = args.configs.split(",")
    for cfg in CONFIGS:
        if cfg.name not in wanted:
            continue
        rec, kwargs, images, labels, log = run_config(cfg, nv, root)
        write_config(cfg, rec, kwargs, images, labels, args.out / cfg.name, root)
        sizes = sum(f.stat().st_size for f in (args.out / cfg.name).iterdir())
        print(f"{cfg.name}: {len(rec.rows)} draws ({rec.num_floats} floats, {rec.num_ints} ints), "
              f"{len(rec.reports)} reports, {sizes / 1024:.0f} KiB in {args.out / cfg.name}")


if __name__ == "__main__":
    main()
