"""NVIDIA's TF StyleGAN (v1) networks re-expressed op by op in PyTorch, for configurations without fixtures.

Written from `training/networks_stylegan.py` (NVlabs/stylegan), independently of our networks: TF layouts
([kh, kw, in, out] kernels used by correlation, [in, out] dense weights), the official `get_weight`
scaling, the fused conv2d_transpose / strided-conv formulations, the linear `structure` with lerp_clip.
Variables are created on first use, like `tf.get_variable`, so running a network once also yields the
official variable set (names and shapes) with random values.
"""
from __future__ import annotations

import math
from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.io.tf_record import TFNetwork


class Variables:
    """tf.get_variable stand-in: name -> tensor, created on first use with a seeded random value."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.values: Dict[str, torch.Tensor] = {}

    def get(self, name: str, shape, std: float = 1.0, mean: float = 0.0) -> torch.Tensor:
        if name not in self.values:
            self.values[name] = mean + std * torch.randn(list(shape), generator=self.gen, dtype=torch.float64).float()
        value = self.values[name]
        assert list(value.shape) == list(shape), name
        return value


def get_weight(v, scope, shape, gain=math.sqrt(2), use_wscale=False, lrmul=1.0):
    fan_in = int(np.prod(shape[:-1]))
    he_std = gain / math.sqrt(fan_in)
    init_std, coef = (1.0 / lrmul, he_std * lrmul) if use_wscale else (he_std / lrmul, lrmul)
    return v.get(f"{scope}/weight", shape, std=init_std) * coef


def dense(v, scope, x, fmaps, **kw):
    x = x.reshape(x.shape[0], -1)
    return x @ get_weight(v, scope, [x.shape[1], fmaps], **kw)


def tf_conv(x, w, stride=1, padding=None):
    """tf.nn.conv2d with SAME padding: a correlation with the [kh, kw, in, out] kernel."""
    k = w.shape[0]
    return F.conv2d(x, w.permute(3, 2, 0, 1), stride=stride, padding=k // 2 if padding is None else padding)


def conv2d(v, scope, x, fmaps, kernel, **kw):
    return tf_conv(x, get_weight(v, scope, [kernel, kernel, x.shape[1], fmaps], **kw))


def upscale2d(x, factor=2):
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3) if factor > 1 else x


def downscale2d(x, factor=2):
    return F.avg_pool2d(x, factor) if factor > 1 else x


def blur2d(x, f):
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 1:
        f = f[:, None] * f[None, :]
    f = f / f.sum()
    c, k = x.shape[1], f.shape[0]
    return F.conv2d(x, f[None, None].expand(c, 1, k, k), padding=k // 2, groups=c)  # depthwise correlation


def upscale2d_conv2d(v, scope, x, fmaps, kernel, fused_scale, **kw):
    if fused_scale == "auto":
        fused_scale = x.shape[2] * 2 >= 128
    if not fused_scale:
        return conv2d(v, scope, upscale2d(x), fmaps, kernel, **kw)
    w = get_weight(v, scope, [kernel, kernel, x.shape[1], fmaps], **kw).permute(0, 1, 3, 2)  # [k, k, out, in]
    w = F.pad(w.permute(2, 3, 0, 1), [1, 1, 1, 1]).permute(2, 3, 0, 1)
    w = w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]
    # tf.nn.conv2d_transpose(SAME, stride 2): the adjoint of a stride-2 correlation padded by 1.
    return F.conv_transpose2d(x, w.permute(3, 2, 0, 1), stride=2, padding=1)


def conv2d_downscale2d(v, scope, x, fmaps, kernel, fused_scale, **kw):
    if fused_scale == "auto":
        fused_scale = x.shape[2] >= 128
    if not fused_scale:
        return downscale2d(conv2d(v, scope, x, fmaps, kernel, **kw))
    w = get_weight(v, scope, [kernel, kernel, x.shape[1], fmaps], **kw)
    w = F.pad(w.permute(2, 3, 0, 1), [1, 1, 1, 1]).permute(2, 3, 0, 1)
    w = (w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]) * 0.25
    return tf_conv(x, w, stride=2, padding=1)


def apply_bias(v, scope, x, lrmul=1.0):
    b = v.get(f"{scope}/bias", [x.shape[1]], std=0.1 / lrmul) * lrmul
    return x + (b if x.ndim == 2 else b.reshape(1, -1, 1, 1))


def activation(name):
    return {"lrelu": lambda x: torch.maximum(x, x * 0.2), "relu": F.relu}[name]


def pixel_norm(x):
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


def instance_norm(x):
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + 1e-8).rsqrt()


def minibatch_stddev(x, group_size, num_new_features):
    g = min(group_size, x.shape[0])
    n, c, h, w = x.shape
    y = x.reshape(g, -1, num_new_features, c // num_new_features, h, w)
    y = y - y.mean(dim=0, keepdim=True)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()
    y = y.mean(dim=[2, 3, 4], keepdim=True).mean(dim=2)  # [M, n, 1, 1]
    return torch.cat([x, y.repeat(g, 1, h, w)], dim=1)


G_DEFAULTS = dict(truncation_cutoff=8, latent_size=512, label_size=0, dlatent_size=512, mapping_layers=8,
                  mapping_fmaps=512, mapping_lrmul=0.01, mapping_nonlinearity="lrelu", use_wscale=True,
                  normalize_latents=True, num_channels=3, resolution=1024, fmap_base=8192, fmap_decay=1.0,
                  fmap_max=512, use_noise=True, nonlinearity="lrelu", use_pixel_norm=False, use_instance_norm=True,
                  fused_scale="auto", blur_filter=[1, 2, 1])
D_DEFAULTS = dict(num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0, fmap_max=512,
                  nonlinearity="lrelu", use_wscale=True, mbstd_group_size=4, mbstd_num_features=1,
                  fused_scale="auto", blur_filter=[1, 2, 1])


def g_mapping(v, kw, z, labels):
    x = z
    if kw["label_size"]:
        x = torch.cat([x, labels @ v.get("G_mapping/LabelConcat/weight", [kw["label_size"], kw["latent_size"]])], 1)
    if kw["normalize_latents"]:
        x = pixel_norm(x)
    act = activation(kw["mapping_nonlinearity"])
    for idx in range(kw["mapping_layers"]):
        fmaps = kw["dlatent_size"] if idx == kw["mapping_layers"] - 1 else kw["mapping_fmaps"]
        scope = f"G_mapping/Dense{idx}"
        x = dense(v, scope, x, fmaps, gain=math.sqrt(2), use_wscale=kw["use_wscale"], lrmul=kw["mapping_lrmul"])
        x = act(apply_bias(v, scope, x, lrmul=kw["mapping_lrmul"]))
    return x


def g_synthesis(v, kw, dlatents, lod):
    res_log2 = int(math.log2(kw["resolution"]))
    num_layers = 2 * res_log2 - 2
    act = activation(kw["nonlinearity"])
    ws = kw["use_wscale"]

    def nf(stage):
        return min(int(kw["fmap_base"] / (2.0 ** (stage * kw["fmap_decay"]))), kw["fmap_max"])

    noise = [v.get(f"G_synthesis/noise{i}", [1, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2)])
             for i in range(num_layers)] if kw["use_noise"] else []

    def epilogue(scope, x, idx):
        if kw["use_noise"]:
            strength = v.get(f"{scope}/Noise/weight", [x.shape[1]], std=0.3)
            x = x + noise[idx] * strength.reshape(1, -1, 1, 1)
        x = act(apply_bias(v, scope, x))
        if kw["use_pixel_norm"]:
            x = pixel_norm(x)
        if kw["use_instance_norm"]:
            x = instance_norm(x)
        style = apply_bias(v, f"{scope}/StyleMod", dense(v, f"{scope}/StyleMod", dlatents[:, idx], 2 * x.shape[1],
                                                       gain=1, use_wscale=ws))
        style = style.reshape(-1, 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]

    def blur(x):
        return blur2d(x, kw["blur_filter"]) if kw["blur_filter"] else x

    const = v.get("G_synthesis/4x4/Const/const", [1, nf(1), 4, 4], mean=1.0, std=0.1)
    x = epilogue("G_synthesis/4x4/Const", const.repeat(dlatents.shape[0], 1, 1, 1), 0)
    x = epilogue("G_synthesis/4x4/Conv", conv2d(v, "G_synthesis/4x4/Conv", x, nf(1), 3, use_wscale=ws), 1)

    def torgb(res, x):
        scope = f"G_synthesis/ToRGB_lod{res_log2 - res}"
        return apply_bias(v, scope, conv2d(v, scope, x, kw["num_channels"], 1, gain=1, use_wscale=ws))

    fixed = kw.get("structure") == "fixed"  # only the full-resolution ToRGB exists; lod is ignored
    images = None if fixed else torgb(2, x)
    for res in range(3, res_log2 + 1):
        scope = f"G_synthesis/{2 ** res}x{2 ** res}"
        x = epilogue(f"{scope}/Conv0_up", blur(upscale2d_conv2d(v, f"{scope}/Conv0_up", x, nf(res - 1), 3,
                                                                kw["fused_scale"], use_wscale=ws)), 2 * res - 4)
        x = epilogue(f"{scope}/Conv1", conv2d(v, f"{scope}/Conv1", x, nf(res - 1), 3, use_wscale=ws), 2 * res - 3)
        if fixed:
            continue
        img = torgb(res, x)
        images = upscale2d(images)
        t = min(max(lod - (res_log2 - res), 0.0), 1.0)  # lerp_clip(img, images, lod_in - lod)
        images = img + (images - img) * t
    return torgb(res_log2, x) if fixed else images


def g_style(v, kw, z, labels, truncation_psi=1.0, truncation_cutoff=None, lod=0.0):
    kw = {**G_DEFAULTS, **kw}
    num_layers = 2 * int(math.log2(kw["resolution"])) - 2
    dlatents = g_mapping(v, kw, z, labels)[:, None].repeat(1, num_layers, 1)
    avg = v.get("dlatent_avg", [kw["dlatent_size"]], std=0.5)
    v.get("lod", [])
    v.get("G_synthesis/lod", [])
    cutoff = kw["truncation_cutoff"] if truncation_cutoff is None else truncation_cutoff
    if truncation_psi != 1 and cutoff:
        coefs = torch.where(torch.arange(num_layers)[None, :, None] < cutoff, truncation_psi, 1.0)
        dlatents = avg + (dlatents - avg) * coefs
    return g_synthesis(v, kw, dlatents, lod), dlatents


def d_basic(v, kw, images, labels, lod=0.0):
    kw = {**D_DEFAULTS, **kw}
    res_log2 = int(math.log2(kw["resolution"]))
    act = activation(kw["nonlinearity"])
    ws = kw["use_wscale"]
    v.get("lod", [])

    def nf(stage):
        return min(int(kw["fmap_base"] / (2.0 ** (stage * kw["fmap_decay"]))), kw["fmap_max"])

    def fromrgb(x, res):
        scope = f"FromRGB_lod{res_log2 - res}"
        return act(apply_bias(v, scope, conv2d(v, scope, x, nf(res - 1), 1, use_wscale=ws)))

    def block(x, res):
        scope = f"{2 ** res}x{2 ** res}"
        if res >= 3:
            x = act(apply_bias(v, f"{scope}/Conv0", conv2d(v, f"{scope}/Conv0", x, nf(res - 1), 3, use_wscale=ws)))
            if kw["blur_filter"]:
                x = blur2d(x, kw["blur_filter"])
            x = conv2d_downscale2d(v, f"{scope}/Conv1_down", x, nf(res - 2), 3, kw["fused_scale"], use_wscale=ws)
            return act(apply_bias(v, f"{scope}/Conv1_down", x))
        if kw["mbstd_group_size"] > 1:
            x = minibatch_stddev(x, kw["mbstd_group_size"], kw["mbstd_num_features"])
        x = act(apply_bias(v, f"{scope}/Conv", conv2d(v, f"{scope}/Conv", x, nf(res - 1), 3, use_wscale=ws)))
        x = act(apply_bias(v, f"{scope}/Dense0", dense(v, f"{scope}/Dense0", x, nf(res - 2), use_wscale=ws)))
        return apply_bias(v, f"{scope}/Dense1", dense(v, f"{scope}/Dense1", x, max(kw["label_size"], 1), gain=1,
                                                        use_wscale=ws))

    fixed = kw.get("structure") == "fixed"  # only the full-resolution FromRGB exists; lod is ignored
    img = images
    x = fromrgb(img, res_log2)
    for res in range(res_log2, 2, -1):
        x = block(x, res)
        if fixed:
            continue
        img = downscale2d(img)
        y = fromrgb(img, res - 1)
        t = min(max(lod - (res_log2 - res), 0.0), 1.0)
        x = x + (y - x) * t
    scores = block(x, 2)
    if kw["label_size"]:
        scores = (scores * labels).sum(dim=1, keepdim=True)
    return scores


def latents_and_labels(kw: dict, n: int, gen: torch.Generator):
    """Inputs of a test case: z [n, latent_size] drawn from `gen`, one-hot labels cycling through the classes
    ([n, 0] without labels)."""
    z = torch.randn([n, kw["latent_size"]], generator=gen)
    c_dim = kw.get("label_size", 0)
    return z, F.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim else torch.zeros([n, 0])


def generator_record(v: Variables, kw: dict, num_layers: int) -> TFNetwork:
    """The official G pickle layout of the variables `v` holds: own variables plus two components."""
    parts = {"G_mapping": {}, "G_synthesis": {}, "": {}}
    for name, value in v.values.items():
        head, _, tail = name.partition("/")
        if head in ("G_mapping", "G_synthesis") and tail:
            parts[head][tail] = value
        else:
            parts[""][name] = value
    mapping = TFNetwork("G_mapping", "G_mapping", 3, {**kw, "dlatent_broadcast": num_layers}, {}, parts["G_mapping"])
    synthesis = TFNetwork("G_synthesis", "G_synthesis", 3, dict(kw), {}, parts["G_synthesis"])
    return TFNetwork("G", "G_style", 3, dict(kw), {"synthesis": synthesis, "mapping": mapping}, parts[""])
