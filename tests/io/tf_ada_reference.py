"""NVIDIA's StyleGAN2-ADA TensorFlow networks re-expressed op by op in PyTorch, for configurations without fixtures.

Written from NVlabs/stylegan2-ada `training/networks.py` (G_main, G_mapping, G_synthesis, D_main) and
`dnnlib/tflib/ops/upfirdn_2d.py` / `fused_bias_act.py`, independently of our networks: TF layouts
([kh, kw, in, out] kernels used by correlation, [in, out] dense weights), `get_weight`'s equalized-lr scaling,
up-sampling convolutions as `conv2d_transpose` of the 180-degree-rotated kernel followed by the FIR filter,
down-sampling as FIR filter then a stride-2 VALID convolution, `fused_bias_act`'s clamp after the gain. The
modulated convolution is the non-fused form (ADA's default; the fused one equals it to ~6e-6, fixture check
`G_fused_modconv_True_vs_default_False_maxabs`). Everything runs in float32 (`num_fp16_res` only changes
precision on the GPU).

Variables are created on first use, like `tf.get_variable`, so running a network once also yields the
official variable set (names and shapes) with random values; `ada_records` packs it as the pickle does.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.io.tf_record import TFNetwork

from tf_v1_reference import Variables, minibatch_stddev, tf_conv

G_DEFAULTS = dict(latent_size=512, label_size=0, dlatent_size=512, mapping_layers=8, mapping_fmaps=None,
                  mapping_lrmul=0.01, mapping_nonlinearity="lrelu", normalize_latents=True, label_fmaps=None,
                  num_channels=3, resolution=1024, fmap_base=16384, fmap_decay=1, fmap_min=1, fmap_max=512,
                  fmap_const=None, use_noise=True, architecture="skip", nonlinearity="lrelu", conv_clamp=None,
                  resample_kernel=[1, 3, 3, 1])
D_DEFAULTS = dict(num_channels=3, resolution=1024, label_size=0, fmap_base=16384, fmap_decay=1, fmap_min=1,
                  fmap_max=512, mapping_layers=0, mapping_fmaps=None, mapping_lrmul=0.1, architecture="resnet",
                  nonlinearity="lrelu", mbstd_group_size=None, mbstd_num_features=1, conv_clamp=None,
                  resample_kernel=[1, 3, 3, 1])

# fused_bias_act: activation and its default gain.
ACTS = {"linear": (lambda x: x, 1.0), "lrelu": (lambda x: torch.where(x >= 0, x, x * 0.2), math.sqrt(2)),
        "relu": (F.relu, math.sqrt(2)), "swish": (lambda x: torch.sigmoid(x) * x, math.sqrt(2))}


def nf(kw: dict, stage: int) -> int:
    return int(np.clip(int(kw["fmap_base"] / (2.0 ** (stage * kw["fmap_decay"]))), kw["fmap_min"], kw["fmap_max"]))


# ---------------------------------------------------------------------------------------------------------
# Layers (get_weight, dense_layer, apply_bias_act, conv2d_layer, modulated_conv2d_layer).

def get_weight(v: Variables, name: str, shape, lrmul: float = 1.0) -> torch.Tensor:
    """Equalized learning rate: stored with std 1/lrmul, used times he_std * lrmul (gain 1)."""
    fan_in = int(np.prod(shape[:-1]))
    return v.get(name, shape, std=1.0 / lrmul) * (lrmul / math.sqrt(fan_in))


def dense(v, scope, x, fmaps, lrmul=1.0, weight_var="weight"):
    x = x.reshape(x.shape[0], -1)
    return x @ get_weight(v, f"{scope}/{weight_var}", [x.shape[1], fmaps], lrmul=lrmul)


def bias_act(v, scope, x, act="linear", lrmul=1.0, clamp=None, bias_var="bias"):
    b = v.get(f"{scope}/{bias_var}", [x.shape[1]], std=0.1 / lrmul) * lrmul
    fn, gain = ACTS[act]
    x = fn(x + (b if x.ndim == 2 else b.reshape(1, -1, 1, 1))) * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x


def fir_kernel(k, gain: float) -> torch.Tensor:
    """_FilterKernel: normalised to sum 1 (outer product of a 1-D filter), times gain."""
    k = torch.as_tensor(np.asarray(k, dtype=np.float32))
    k = k / k.sum()
    return (torch.outer(k, k) if k.ndim == 1 else k) * gain


def upfirdn(x, k, up=1, down=1, pad0=0, pad1=0):
    """upfirdn_2d's reference: insert zeros, pad (crop if negative), convolve with k (a true convolution), keep
    every `down`-th pixel."""
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros([n, c, h, up, w, up])
        z[:, :, :, 0, :, 0] = x
        x = z.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(pad0, 0), max(pad1, 0), max(pad0, 0), max(pad1, 0)])
    x = x[:, :, max(-pad0, 0):x.shape[2] - max(-pad1, 0), max(-pad0, 0):x.shape[3] - max(-pad1, 0)]
    kernel = k.flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, kernel, groups=c)[:, :, ::down, ::down]


def upsample_2d(x, k):
    kk = fir_kernel(k if k is not None else [1, 1], 4)
    return upfirdn(x, kk, up=2, pad0=(kk.shape[0] + 1) // 2, pad1=(kk.shape[0] - 2) // 2)


def downsample_2d(x, k):
    kk = fir_kernel(k if k is not None else [1, 1], 1)
    return upfirdn(x, kk, down=2, pad0=(kk.shape[0] - 1) // 2, pad1=(kk.shape[0] - 2) // 2)


def conv2d(x, w, up=False, down=False, resample_kernel=None):
    """networks.conv2d: w [k, k, in, out]; up = upsample_conv_2d, down = conv_downsample_2d."""
    k = w.shape[0]
    if up and k == 1:  # upfirdn_2d's fast path for 1x1 kernels: convolve, then up-sample
        return upsample_2d(tf_conv(x, w), resample_kernel)
    if down and k == 1:
        return tf_conv(downsample_2d(x, resample_kernel), w)
    if up:
        kk = fir_kernel(resample_kernel if resample_kernel is not None else [1, 1], 4)
        # conv2d_transpose(x, w[::-1, ::-1] as [k, k, out, in], stride 2, VALID), then the FIR filter.
        wt = w.flip([0, 1]).permute(2, 3, 0, 1)  # torch conv_transpose2d: [in, out, kh, kw]
        x = F.conv_transpose2d(x, wt, stride=2)
        return upfirdn(x, kk, pad0=(kk.shape[0] + 2 - k) // 2, pad1=(kk.shape[0] - 2 - k + 3) // 2)
    if down:
        kk = fir_kernel(resample_kernel if resample_kernel is not None else [1, 1], 1)
        x = upfirdn(x, kk, pad0=(kk.shape[0] - 2 + k) // 2, pad1=(kk.shape[0] - 2 + k - 1) // 2)
        return tf_conv(x, w, stride=2, padding=0)
    return tf_conv(x, w)


def conv2d_layer(v, scope, x, fmaps, kernel, up=False, down=False, resample_kernel=None):
    w = get_weight(v, f"{scope}/weight", [kernel, kernel, x.shape[1], fmaps])
    return conv2d(x, w, up=up, down=down, resample_kernel=resample_kernel)


def modulated_conv2d_layer(v, scope, x, y, fmaps, kernel, up=False, demodulate=True, resample_kernel=None):
    w = get_weight(v, f"{scope}/weight", [kernel, kernel, x.shape[1], fmaps])  # [kkIO]
    s = bias_act(v, scope, dense(v, scope, y, x.shape[1], weight_var="mod_weight"), bias_var="mod_bias") + 1
    ww = w[None] * s[:, None, None, :, None]  # [BkkIO]
    x = x * s[:, :, None, None]
    x = conv2d(x, w, up=up, resample_kernel=resample_kernel)
    if demodulate:
        d = (ww.square().sum(dim=[1, 2, 3]) + 1e-8).rsqrt()  # [BO]
        x = x * d[:, :, None, None]
    return x


def normalize_2nd_moment(x):
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


# ---------------------------------------------------------------------------------------------------------
# Networks.

def g_mapping(v, kw, z, labels):
    x = normalize_2nd_moment(z) if kw["normalize_latents"] else z
    if kw["label_size"]:
        fmaps = kw["label_fmaps"] if kw["label_fmaps"] is not None else kw["latent_size"]
        y = normalize_2nd_moment(bias_act(v, "G_mapping/LabelEmbed", dense(v, "G_mapping/LabelEmbed", labels, fmaps)))
        x = torch.cat([x, y], dim=1)
    for idx in range(kw["mapping_layers"]):
        last = idx == kw["mapping_layers"] - 1
        fmaps = kw["mapping_fmaps"] if kw["mapping_fmaps"] is not None and not last else kw["dlatent_size"]
        scope, lrmul = f"G_mapping/Dense{idx}", kw["mapping_lrmul"]
        x = bias_act(v, scope, dense(v, scope, x, fmaps, lrmul=lrmul), act=kw["mapping_nonlinearity"], lrmul=lrmul)
    return x


def g_synthesis(v, kw, dlatents):
    res_log2 = int(math.log2(kw["resolution"]))
    num_layers = 2 * res_log2 - 2
    arch, rk, clamp, act = kw["architecture"], kw["resample_kernel"], kw["conv_clamp"], kw["nonlinearity"]
    noise = [v.get(f"G_synthesis/noise{i}", [1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)])
             for i in range(num_layers - 1)] if kw["use_noise"] else []

    def layer(scope, x, idx, fmaps, kernel, up=False):
        x = modulated_conv2d_layer(v, scope, x, dlatents[:, idx], fmaps, kernel, up=up, resample_kernel=rk)
        if kw["use_noise"]:
            x = x + noise[idx] * v.get(f"{scope}/noise_strength", [], std=0.1)
        return bias_act(v, scope, x, act=act, clamp=clamp)

    def torgb(scope, x, y, res):
        t = modulated_conv2d_layer(v, f"{scope}/ToRGB", x, dlatents[:, res * 2 - 3], kw["num_channels"], 1,
                                   demodulate=False)
        t = bias_act(v, f"{scope}/ToRGB", t, clamp=clamp)
        return t if y is None else t + y

    fmaps = kw["fmap_const"] if kw["fmap_const"] is not None else nf(kw, 1)
    x = v.get("G_synthesis/4x4/Const/const", [1, fmaps, 4, 4]).repeat(dlatents.shape[0], 1, 1, 1)
    x = layer("G_synthesis/4x4/Conv", x, 0, nf(kw, 1), 3)
    y = torgb("G_synthesis/4x4", x, None, 2) if arch == "skip" else None
    for res in range(3, res_log2 + 1):
        scope = f"G_synthesis/{2 ** res}x{2 ** res}"
        t = x
        x = layer(f"{scope}/Conv0_up", x, res * 2 - 5, nf(kw, res - 1), 3, up=True)
        x = layer(f"{scope}/Conv1", x, res * 2 - 4, nf(kw, res - 1), 3)
        if arch == "resnet":
            t = conv2d_layer(v, f"{scope}/Skip", t, nf(kw, res - 1), 1, up=True, resample_kernel=rk)
            x = (x + t) * (1 / math.sqrt(2))
        if arch == "skip":
            y = upsample_2d(y, rk)
        if arch == "skip" or res == res_log2:
            y = torgb(scope, x, y, res)
    return y


def g_main(v: Variables, kw: dict, z, labels, truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None):
    """(images, dlatents fed to G_synthesis) of G_main; creates every variable G, G_mapping, G_synthesis own."""
    kw = {**G_DEFAULTS, **kw}
    num_layers = 2 * int(math.log2(kw["resolution"])) - 2
    dlatents = g_mapping(v, kw, z, labels)[:, None].repeat(1, num_layers, 1)
    avg = v.get("dlatent_avg", [kw["dlatent_size"]], std=0.5)
    if truncation_psi != 1:
        layer = torch.arange(num_layers)[None, :, None]
        psi = torch.where(layer < (truncation_cutoff if truncation_cutoff is not None else num_layers),
                          truncation_psi, 1.0)
        dlatents = avg + (dlatents - avg) * psi
    return g_synthesis(v, kw, dlatents), dlatents


def d_main(v: Variables, kw: dict, images, labels):
    kw = {**D_DEFAULTS, **kw}
    res_log2 = int(math.log2(kw["resolution"]))
    arch, rk, clamp, act = kw["architecture"], kw["resample_kernel"], kw["conv_clamp"], kw["nonlinearity"]
    cmap_dim = kw["mapping_fmaps"] if kw["mapping_fmaps"] is not None else nf(kw, 0)
    cmap = None
    if kw["label_size"]:
        cmap = normalize_2nd_moment(bias_act(v, "LabelEmbed", dense(v, "LabelEmbed", labels, cmap_dim)))
        for idx in range(kw["mapping_layers"]):
            scope, lrmul = f"Mapping{idx}", kw["mapping_lrmul"]
            cmap = bias_act(v, scope, dense(v, scope, cmap, cmap_dim, lrmul=lrmul), act=act, lrmul=lrmul)

    def fromrgb(scope, x, y, res):
        t = bias_act(v, f"{scope}/FromRGB", conv2d_layer(v, f"{scope}/FromRGB", y, nf(kw, res - 1), 1), act=act,
                     clamp=clamp)
        return t if x is None else t + x

    x, y = None, images
    for res in range(res_log2, 2, -1):
        scope = f"{2 ** res}x{2 ** res}"
        if arch == "skip" or res == res_log2:
            x = fromrgb(scope, x, y, res)
        t = x
        x = bias_act(v, f"{scope}/Conv0", conv2d_layer(v, f"{scope}/Conv0", x, nf(kw, res - 1), 3), act=act,
                     clamp=clamp)
        x = bias_act(v, f"{scope}/Conv1_down", conv2d_layer(v, f"{scope}/Conv1_down", x, nf(kw, res - 2), 3,
                                                            down=True, resample_kernel=rk), act=act, clamp=clamp)
        if arch == "resnet":
            t = conv2d_layer(v, f"{scope}/Skip", t, nf(kw, res - 2), 1, down=True, resample_kernel=rk)
            x = (x + t) * (1 / math.sqrt(2))
        if arch == "skip":
            y = downsample_2d(y, rk)
    if arch == "skip":
        x = fromrgb("4x4", x, y, 2)
    if kw["mbstd_num_features"] > 0:
        group = kw["mbstd_group_size"] if kw["mbstd_group_size"] is not None else x.shape[0]
        x = minibatch_stddev(x, group, kw["mbstd_num_features"])
    x = bias_act(v, "4x4/Conv", conv2d_layer(v, "4x4/Conv", x, nf(kw, 1), 3), act=act, clamp=clamp)
    x = bias_act(v, "4x4/Dense0", dense(v, "4x4/Dense0", x, nf(kw, 0)), act=act)
    if cmap is None:
        return bias_act(v, "Output", dense(v, "Output", x, 1))
    x = bias_act(v, "Output", dense(v, "Output", x, cmap_dim))
    return (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap_dim)


# ---------------------------------------------------------------------------------------------------------
# Records as the pickle stores them, and variables from a record.

def ada_records(g_vars: Variables, g_kw: dict, d_vars: Variables, d_kw: dict, version: int = 5) -> Dict[str, TFNetwork]:
    """{'Gs': G_main record with its G_mapping / G_synthesis components, 'D': D_main record}."""
    num_layers = 2 * int(math.log2(g_kw["resolution"])) - 2
    parts: Dict[str, dict] = {"G_mapping": {}, "G_synthesis": {}, "": {}}
    for name, value in g_vars.values.items():
        head, _, tail = name.partition("/")
        parts[head if head in parts and tail else ""][tail if head in parts and tail else name] = value
    mapping = TFNetwork("G_mapping", "G_mapping", version, {**g_kw, "dlatent_broadcast": num_layers}, {},
                        parts["G_mapping"])
    synthesis = TFNetwork("G_synthesis", "G_synthesis", version, dict(g_kw), {}, parts["G_synthesis"])
    G = TFNetwork("Gs", "G_main", version, dict(g_kw), {"synthesis": synthesis, "mapping": mapping}, parts[""])
    return {"Gs": G, "D": TFNetwork("D", "D_main", version, dict(d_kw), {}, dict(d_vars.values))}


def variables_of(net: TFNetwork) -> Variables:
    """A Variables holding `net`'s stored values under `Network.vars` names (nothing left to create)."""
    v = Variables(0)
    v.values.update(net.vars())
    return v
