"""Name table: NVlabs/stylegan (TensorFlow, `training/networks_stylegan.py`) -> our StyleGAN v1 networks.

`G_style` (with components `G_mapping`, `G_synthesis`) becomes a `stylegan1.Generator` (Generator1) and
`D_basic` a `stylegan1.Discriminator` (Discriminator1). Every official kwarg is either mapped (tables
`G_KWARGS`, `D_KWARGS` and the builders below) or refused with a message naming it.

Weight transforms (TF layouts: conv [kh, kw, in, out], dense [in, out], stored before the run-time
`get_weight` multiplier he_std * lrmul, or lrmul alone without use_wscale):
- conv -> [out, in, kh, kw], dense -> [out, in]; rescaled by (TF run-time multiplier) / (ours), which is 1
  for use_wscale=True except where noted.
- Layers with a (leaky) ReLU in our shared `layers.py` (mapping Dense*, D convs and Dense0) apply the He
  gain sqrt(2) after the activation; TF folds it into the weight, before the bias. Since
  act(sqrt(2) u + b) = sqrt(2) act(u + b / sqrt(2)), weights map unchanged and biases as b / sqrt(2).
- Synthesis convolutions (`SynthesisLayer1`) apply the gain to the conv output as TF does: weights and
  biases map unchanged.
- `RxR/Conv0_up`: ours is nearest up-sampling followed by a true convolution, which is what the official
  fused op (`conv2d_transpose`, used by fused_scale=True, and by 'auto' at >= 128 px) computes. The
  non-fused official path correlates after `upscale2d`, so its kernels are rotated by 180 degrees.
- `D RxR/Conv1_down`: fused or not, conv then 2x2 average (identical functions): unchanged.
- `LabelConcat/weight` [label_size, latent_size] is used raw by TF; our bias-free embedding scales by
  1/sqrt(label_size), so it maps as w.T * sqrt(label_size).
- Blur filters: TF correlates (depthwise conv2d), ours convolves, so the taps are reversed (a no-op for the
  symmetric [1, 2, 1]).
- `dlatent_avg` -> mapping.w_avg; `lod` (G's, which G_style copies into G_synthesis/lod before every run)
  -> synthesis.lod, `G_synthesis/lod` is consumed as superseded; D's `lod` -> D.lod (0 for
  structure='fixed', which ignores it and builds no lower-resolution ToRGB/FromRGB: ours are zero-filled;
  'linear' and 'recursive' agree to 1e-6); `G_synthesis/noiseK`
  [1, 1, r, r] -> the layer's noise_const [r, r] (K counts layers: 4x4/Const = 0, 4x4/Conv = 1, ...).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch

from ..networks.stylegan1 import V1_ACTIVATIONS, Generator1, v1_channels
from ..networks.stylegan1_discriminator import Discriminator1
from .tf_networks import (
    VariableTable,
    component,
    conv_weight,
    finish,
    refuse,
    rescale,
    resolve_kwargs,
    tf_weight_coef,
)
from .tf_record import TFNetwork

SQRT2 = math.sqrt(2)

# Official defaults of every kwarg that shapes the networks (G_style, G_mapping, G_synthesis); each component
# receives all of G's kwargs, so one table serves the three.
G_KWARGS: Dict[str, object] = dict(
    # G_style
    truncation_cutoff=8, dlatent_avg_beta=0.995,
    # G_mapping
    latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None, mapping_layers=8, mapping_fmaps=512,
    mapping_lrmul=0.01, mapping_nonlinearity="lrelu", normalize_latents=True,
    # G_synthesis
    num_channels=3, resolution=1024, fmap_base=8192, fmap_decay=1.0, fmap_max=512, use_styles=True,
    const_input_layer=True, use_noise=True, nonlinearity="lrelu", use_pixel_norm=False, use_instance_norm=True,
    fused_scale="auto", blur_filter=[1, 2, 1], structure="auto",
    # both
    use_wscale=True, dtype="float32",
)
# Kwargs that only choose run-time behaviour; our calls take them as arguments (truncation_psi,
# noise_mode, lod), training options have no effect on inference.
G_RUNTIME = ("truncation_psi", "truncation_psi_val", "truncation_cutoff_val", "style_mixing_prob", "is_training",
             "is_validation", "is_template_graph", "force_clean_graph", "randomize_noise", "components")

D_KWARGS: Dict[str, object] = dict(
    num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0, fmap_max=512,
    nonlinearity="lrelu", use_wscale=True, mbstd_group_size=4, mbstd_num_features=1, dtype="float32",
    fused_scale="auto", blur_filter=[1, 2, 1], structure="auto",
)
D_RUNTIME = ("is_template_graph",)


def _check_common(net: TFNetwork, source: str, kw: dict, act_key: str) -> None:
    """Checks shared by G and D: resolution, dtype, structure, activation, fused_scale."""
    res = kw["resolution"]
    refuse(not isinstance(res, int) or res < 4 or res & (res - 1) != 0, net, source, "resolution", res,
           "the resolution must be a power of two >= 4")
    refuse(kw["dtype"] != "float32", net, source, "dtype", kw["dtype"], "only float32 networks are mapped")
    refuse(kw["structure"] not in ("auto", "linear", "recursive", "fixed"), net, source, "structure",
           kw["structure"], "unknown structure")
    refuse(kw[act_key] not in V1_ACTIVATIONS, net, source, act_key, kw[act_key], f"choose one of {V1_ACTIVATIONS}")
    refuse(kw["fused_scale"] not in (True, False, "auto"), net, source, "fused_scale", kw["fused_scale"],
           "must be True, False or 'auto'")
    refuse(kw["num_channels"] < 1, net, source, "num_channels", kw["num_channels"], "needs at least one channel")


def _blur_taps(net: TFNetwork, source: str, taps) -> Optional[list]:
    """The official blur_filter as our taps (reversed: TF correlates, we convolve); None = no blur."""
    if not taps:
        return None
    t = torch.as_tensor(taps, dtype=torch.float64)
    square = t.ndim == 1 or (t.ndim == 2 and t.shape[0] == t.shape[1])
    refuse(t.ndim not in (1, 2) or not square or t.shape[0] % 2 == 0 or float(t.sum()) == 0, net, source,
           "blur_filter", taps, "only odd-length 1-D or square 2-D filters with a non-zero sum are mapped "
                               "(TF pads even filters asymmetrically)")
    return t.flip(list(range(t.ndim))).tolist()


def _lod(table: VariableTable, name: str, structure: str) -> torch.Tensor:
    """The stored level of detail; structure 'fixed' ignores it (always full resolution), so it loads as 0."""
    lod = table.take(name, [])
    return torch.zeros([]) if structure == "fixed" else lod


def _noise_and_layers(num_layers: int) -> List[str]:
    """Official synthesis layer scopes in layer order (4x4/Const, 4x4/Conv, 8x8/Conv0_up, 8x8/Conv1, ...)."""
    names = ["4x4/Const", "4x4/Conv"]
    for idx in range(2, num_layers, 2):
        res = 2 ** (idx // 2 + 2)
        names += [f"{res}x{res}/Conv0_up", f"{res}x{res}/Conv1"]
    return names


def generator_from_tf(net: TFNetwork, source: str) -> Generator1:
    """A Generator1 equivalent to the official G_style network `net` (G or Gs), weights loaded, frozen."""
    mapping = component(net, "mapping", source, ["G_mapping"])
    synthesis = component(net, "synthesis", source, ["G_synthesis"])
    kw = resolve_kwargs(net, source, G_KWARGS, G_RUNTIME)
    mkw = resolve_kwargs(mapping, source, G_KWARGS, G_RUNTIME)
    skw = resolve_kwargs(synthesis, source, G_KWARGS, G_RUNTIME)
    _check_common(synthesis, source, skw, "nonlinearity")
    refuse(mkw["mapping_nonlinearity"] not in V1_ACTIVATIONS, mapping, source, "mapping_nonlinearity",
           mkw["mapping_nonlinearity"], f"choose one of {V1_ACTIVATIONS}")
    refuse(mkw["dtype"] != "float32", mapping, source, "dtype", mkw["dtype"], "only float32 networks are mapped")
    refuse(not skw["use_styles"], synthesis, source, "use_styles", False,
           "a synthesis network without styles has no counterpart here")
    refuse(not skw["const_input_layer"], synthesis, source, "const_input_layer", False,
           "only the learned-constant input is implemented (not the ProGAN-style dense 4x4 input)")
    refuse(mkw["dlatent_size"] != skw["dlatent_size"], mapping, source, "dlatent_size", mkw["dlatent_size"],
           f"the synthesis network expects {skw['dlatent_size']}")
    res_log2 = int(math.log2(skw["resolution"]))
    num_layers = 2 * res_log2 - 2
    refuse(mkw["dlatent_broadcast"] != num_layers, mapping, source, "dlatent_broadcast", mkw["dlatent_broadcast"],
           f"G_style broadcasts to the {num_layers} synthesis layers")
    refuse(mkw["mapping_layers"] < 1, mapping, source, "mapping_layers", mkw["mapping_layers"], "needs >= 1 layer")
    beta = kw["dlatent_avg_beta"]
    cutoff = kw["truncation_cutoff"]
    if cutoff is None or cutoff <= 0:  # official: truncation disabled
        cutoff = 0
    label_size = mkw["label_size"]

    G = Generator1(
        z_dim=mkw["latent_size"], c_dim=label_size, w_dim=skw["dlatent_size"], img_resolution=skw["resolution"],
        img_channels=skw["num_channels"], truncation_cutoff=cutoff,
        mapping_kwargs=dict(num_layers=mkw["mapping_layers"], layer_features=mkw["mapping_fmaps"],
                            activation=mkw["mapping_nonlinearity"], lr_multiplier=mkw["mapping_lrmul"],
                            w_avg_beta=beta if beta is not None else 0.995, label_concat=True,
                            embed_features=mkw["latent_size"] if label_size else None,
                            normalize_latents=bool(mkw["normalize_latents"])),
        fmap_base=skw["fmap_base"], fmap_decay=skw["fmap_decay"], fmap_max=skw["fmap_max"],
        use_noise=bool(skw["use_noise"]), blur_filter=_blur_taps(synthesis, source, skw["blur_filter"]),
        activation=skw["nonlinearity"], use_pixel_norm=bool(skw["use_pixel_norm"]),
        use_instance_norm=bool(skw["use_instance_norm"]))

    table = VariableTable(net, source)
    state: Dict[str, torch.Tensor] = {}
    _map_mapping(table, state, G, mkw)
    _map_synthesis(table, state, G, skw)
    state["mapping.w_avg"] = table.take("dlatent_avg", [skw["dlatent_size"]])
    state["synthesis.lod"] = _lod(table, "lod", skw["structure"])
    table.skip("G_synthesis/lod", [], "overwritten by G's lod at every run (G_style)")
    for key, value in G.state_dict().items():  # resampling filters: constants of ours, no TF variable
        if key.endswith("resample_filter") or key.endswith("blur_filter"):
            state[key] = value
    return finish(G, state, table, source)


def _map_mapping(table: VariableTable, state: dict, G: Generator1, mkw: dict) -> None:
    m = G.mapping
    lrmul = mkw["mapping_lrmul"]
    if m.c_dim > 0:
        w = table.take("G_mapping/LabelConcat/weight", [m.c_dim, m.z_dim])
        state["mapping.embed.weight"] = w.t() * math.sqrt(m.c_dim)
    for idx in range(m.num_layers):
        fc = getattr(m, f"fc{idx}")
        name = f"G_mapping/Dense{idx}"
        w = table.take(f"{name}/weight", [fc.in_features, fc.out_features])
        # TF: act(x @ w * coef + b * lrmul); ours: sqrt(2) act(x @ w * lrmul / sqrt(fan_in) + b * lrmul).
        coef = tf_weight_coef(SQRT2, fc.in_features, mkw["use_wscale"], lrmul)
        state[f"mapping.fc{idx}.weight"] = rescale(w.t(), coef / (SQRT2 * fc.weight_gain))
        state[f"mapping.fc{idx}.bias"] = table.take(f"{name}/bias", [fc.out_features]) / SQRT2


def _map_synthesis(table: VariableTable, state: dict, G: Generator1, skw: dict) -> None:
    syn = G.synthesis
    wscale = skw["use_wscale"]
    fused = skw["fused_scale"]
    res_log2 = int(math.log2(syn.img_resolution))
    scopes = _noise_and_layers(syn.num_ws)
    for layer_idx, scope in enumerate(scopes):
        res = 2 ** (layer_idx // 2 + 2)
        block = getattr(syn, f"b{res}")
        layer = getattr(block, f"layer{layer_idx % 2}")
        ours = f"synthesis.b{res}.layer{layer_idx % 2}"
        name = f"G_synthesis/{scope}"
        c = layer.out_channels
        if layer.in_channels == 0:
            state[f"{ours}.const"] = table.take(f"{name}/const", [1, c, 4, 4])[0]
        else:
            fan_in = layer.in_channels * 9
            w = table.take(f"{name}/weight", [3, 3, layer.in_channels, c])
            # Conv0_up of the official non-fused path correlates after upscale2d; ours convolves (as fused).
            flip = layer.up == 2 and not (fused is True or (fused == "auto" and res >= 128))
            coef = tf_weight_coef(SQRT2, fan_in, wscale, 1.0)
            state[f"{ours}.conv.weight"] = rescale(conv_weight(w, flip=flip), coef / (SQRT2 / math.sqrt(fan_in)))
        if layer.use_noise:
            state[f"{ours}.noise_strength"] = table.take(f"{name}/Noise/weight", [c])
            state[f"{ours}.noise_const"] = table.take(f"G_synthesis/noise{layer_idx}", [1, 1, res, res])[0, 0]
        state[f"{ours}.bias"] = table.take(f"{name}/bias", [c])
        fc = layer.style
        coef = tf_weight_coef(1.0, fc.in_features, wscale, 1.0)
        w = table.take(f"{name}/StyleMod/weight", [fc.in_features, 2 * c])
        state[f"{ours}.style.weight"] = rescale(w.t(), coef / fc.weight_gain)
        state[f"{ours}.style.bias"] = table.take(f"{name}/StyleMod/bias", [2 * c])
    for res in syn.block_resolutions:
        torgb = getattr(syn, f"b{res}").torgb
        name = f"G_synthesis/ToRGB_lod{res_log2 - int(math.log2(res))}"
        cin, cout = torgb.in_channels, torgb.out_channels
        if skw["structure"] == "fixed" and res < syn.img_resolution:  # never built: 'fixed' has no lower lods
            state[f"synthesis.b{res}.torgb.weight"] = torch.zeros_like(torgb.weight)
            state[f"synthesis.b{res}.torgb.bias"] = torch.zeros_like(torgb.bias)
            continue
        coef = tf_weight_coef(1.0, cin, wscale, 1.0)
        w = table.take(f"{name}/weight", [1, 1, cin, cout])
        state[f"synthesis.b{res}.torgb.weight"] = rescale(conv_weight(w), coef / torgb.weight_gain)
        state[f"synthesis.b{res}.torgb.bias"] = table.take(f"{name}/bias", [cout])


def discriminator_from_tf(net: TFNetwork, source: str) -> Discriminator1:
    """A Discriminator1 equivalent to the official D_basic network `net`, weights loaded, frozen."""
    kw = resolve_kwargs(net, source, D_KWARGS, D_RUNTIME)
    _check_common(net, source, kw, "nonlinearity")
    group = kw["mbstd_group_size"]
    features = kw["mbstd_num_features"] if group > 1 else 0  # official: group size <= 1 disables the layer
    nf4 = v1_channels(4, kw["fmap_base"], kw["fmap_decay"], kw["fmap_max"])
    refuse(features > 0 and nf4 % features != 0, net, source, "mbstd_num_features", features,
           f"must divide the {nf4} feature maps at 4x4")
    D = Discriminator1(c_dim=kw["label_size"], img_resolution=kw["resolution"], img_channels=kw["num_channels"],
                       fmap_base=kw["fmap_base"], fmap_decay=kw["fmap_decay"], fmap_max=kw["fmap_max"],
                       blur_filter=_blur_taps(net, source, kw["blur_filter"]),
                       mbstd_group_size=group if features else 4, mbstd_num_channels=features,
                       activation=kw["nonlinearity"])
    table = VariableTable(net, source)
    state: Dict[str, torch.Tensor] = {}
    res_log2 = int(math.log2(kw["resolution"]))
    wscale = kw["use_wscale"]

    def conv(ours: str, name: str, layer, kernel: int, act: bool) -> None:
        fan_in = layer.in_channels * kernel * kernel
        w = table.take(f"{name}/weight", [kernel, kernel, layer.in_channels, layer.out_channels])
        gain = SQRT2 if act else 1.0
        coef = tf_weight_coef(gain, fan_in, wscale, 1.0)
        state[f"{ours}.weight"] = rescale(conv_weight(w), coef / (gain * layer.weight_gain))
        state[f"{ours}.bias"] = table.take(f"{name}/bias", [layer.out_channels]) / gain

    def dense(ours: str, name: str, layer, act: bool) -> None:
        w = table.take(f"{name}/weight", [layer.in_features, layer.out_features])
        gain = SQRT2 if act else 1.0
        coef = tf_weight_coef(gain, layer.in_features, wscale, 1.0)
        state[f"{ours}.weight"] = rescale(w.t(), coef / (gain * layer.weight_gain))
        state[f"{ours}.bias"] = table.take(f"{name}/bias", [layer.out_features]) / gain

    for res in [*D.block_resolutions, 4]:
        block = getattr(D, f"b{res}")
        if kw["structure"] == "fixed" and res < D.img_resolution:  # never built: 'fixed' has no lower lods
            state[f"b{res}.fromrgb.weight"] = torch.zeros_like(block.fromrgb.weight)
            state[f"b{res}.fromrgb.bias"] = torch.zeros_like(block.fromrgb.bias)
        else:
            conv(f"b{res}.fromrgb", f"FromRGB_lod{res_log2 - int(math.log2(res))}", block.fromrgb, 1, True)
        if res > 4:
            conv(f"b{res}.conv0", f"{res}x{res}/Conv0", block.conv0, 3, True)
            conv(f"b{res}.conv1", f"{res}x{res}/Conv1_down", block.conv1, 3, True)
    conv("b4.conv", "4x4/Conv", D.b4.conv, 3, True)
    dense("b4.fc", "4x4/Dense0", D.b4.fc, True)
    dense("b4.out", "4x4/Dense1", D.b4.out, False)
    state["lod"] = _lod(table, "lod", kw["structure"])
    for key, value in D.state_dict().items():  # resampling filters: constants of ours, no TF variable
        if key.endswith("resample_filter") or key.endswith("blur_filter"):
            state[key] = value
    return finish(D, state, table, source)
