"""Name table: NVIDIA's TensorFlow StyleGAN2 and StyleGAN2-ADA networks -> our StyleGAN2 networks.

Two codebases, one target (`stylegan2.Generator`, `stylegan2.Discriminator`):
- NVlabs/stylegan2 `training/networks_stylegan2.py`: `G_main` with components `G_mapping` and
  `G_synthesis_stylegan2`, and `D_stylegan2`;
- NVlabs/stylegan2-ada `training/networks.py`: `G_main` with components `G_mapping` and `G_synthesis`, and
  `D_main`.
The synthesis component's build function tells them apart. Every official kwarg is mapped (tables below)
or refused with a message naming it.

StyleGAN2 configs B-D (`G_synthesis_stylegan_revised`, `D_stylegan`) grow progressively: a ToRGB_lod /
FromRGB_lod per resolution, blended by `lod`. At lod 0 (a finished run, or structure='fixed') both are
exactly the 'orig' architecture with the full-resolution ToRGB_lod0 / FromRGB_lod0, so they map to it; the
lower-resolution ToRGB_lodK / FromRGB_lodK (K > 0, absent with 'fixed') only act while lod > 0 and are
consumed unused. A file stored mid-growth (lod > 0) is refused.

Weight transforms (TF conv [kh, kw, in, out], dense [in, out]; every layer uses use_wscale with gain 1
and applies its activation gain after the bias, as ours do, so scales and biases map unchanged):
- conv -> [out, in, kh, kw], dense -> [out, in].
- Up-sampling convolutions (`Conv0_up`, G `Skip`) run as `conv2d_transpose` in TF: rotated by 180 degrees
  for our up-sample-then-convolve (as NVIDIA's legacy.py does). D kernels are not rotated.
- `mod_bias` -> affine.bias + 1 (TF adds the 1 after the bias; ours initialises the bias to 1).
- `noise_strength` is a scalar; `G_synthesis/noiseK` [1, 1, r, r] -> noise_const [r, r] of layer K
  (4x4/Conv = 0, RxR/Conv0_up = 2 log2(R) - 5, RxR/Conv1 = 2 log2(R) - 4).
- Labels in G: stylegan2's `LabelConcat/weight` [label_size, latent_size] is used raw and concatenated to z
  before the normalisation (our MappingNetwork with label_concat=True; weight w.T * sqrt(label_size) for
  our 1/sqrt(fan_in) scaling); stylegan2-ada's `LabelEmbed` is a dense layer with bias whose output is
  normalised on its own, sized `label_fmaps` (default latent_size).
- Labels in D: stylegan2's `Output` has one unit per class and the score is sum(out * labels)
  (label_select=True); stylegan2-ada maps the labels (`LabelEmbed`, `Mapping0..`) to cmap of size
  `mapping_fmaps` (default nf(0)) and projects with 1/sqrt(cmap_dim).
- `dlatent_avg` -> mapping.w_avg. stylegan2's G `lod` is consumed unused (G_synthesis_stylegan2 has none).
- stylegan2-ada clamps the skip D's 4x4 FromRGB as well (conv_clamp; the PyTorch release does not):
  epilogue clamp_fromrgb=True.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch

from ..networks.discriminator import Discriminator
from ..networks.stylegan2 import Generator
from ..ops.bias_act import ACTIVATIONS
from .tf_networks import VariableTable, component, conv_weight, finish, refuse, resolve_kwargs
from .tf_record import TFNetwork

G_MAIN_RUNTIME = ("truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                  "style_mixing_prob", "is_training", "is_validation", "return_dlatents", "is_template_graph",
                  "components", "mapping_func", "synthesis_func", "randomize_noise", "force_clean_graph",
                  "fused_modconv")  # run-time choices; fused_modconv only changes rounding (~3e-6)

# Official defaults of the kwargs that shape the networks. G's kwargs reach every component, so one table
# serves G_main and its components.
SG2_G_KWARGS: Dict[str, object] = dict(
    dlatent_avg_beta=0.995,
    latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None, mapping_layers=8, mapping_fmaps=512,
    mapping_lrmul=0.01, mapping_nonlinearity="lrelu", normalize_latents=True, dtype="float32",
    num_channels=3, resolution=1024, fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512,
    architecture="skip", nonlinearity="lrelu", resample_kernel=[1, 3, 3, 1],
)
ADA_G_KWARGS: Dict[str, object] = dict(
    dlatent_avg_beta=0.995,
    latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None, mapping_layers=8, mapping_fmaps=None,
    mapping_lrmul=0.01, mapping_nonlinearity="lrelu", normalize_latents=True, label_fmaps=None, dtype="float32",
    num_channels=3, resolution=1024, fmap_base=16384, fmap_decay=1, fmap_min=1, fmap_max=512, fmap_const=None,
    use_noise=True, architecture="skip", nonlinearity="lrelu", num_fp16_res=0, conv_clamp=None,
    resample_kernel=[1, 3, 3, 1],
)
SG2_D_KWARGS: Dict[str, object] = dict(
    num_channels=3, resolution=1024, label_size=0, fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512,
    architecture="resnet", nonlinearity="lrelu", mbstd_group_size=4, mbstd_num_features=1, dtype="float32",
    resample_kernel=[1, 3, 3, 1],
)
ADA_D_KWARGS: Dict[str, object] = dict(
    num_channels=3, resolution=1024, label_size=0, fmap_base=16384, fmap_decay=1, fmap_min=1, fmap_max=512,
    mapping_layers=0, mapping_fmaps=None, mapping_lrmul=0.1, architecture="resnet", nonlinearity="lrelu",
    mbstd_group_size=None, mbstd_num_features=1, dtype="float32", num_fp16_res=0, conv_clamp=None,
    resample_kernel=[1, 3, 3, 1], freeze_layers=0,
    # Comparison methods of the ADA paper: only their "off" settings are mapped.
    augment_strength=0, use_pagan=False, pagan_num=16, pagan_fade=0.5, score_size=1, score_max=1,
    use_spectral_norm=False, adaptive_dropout=0,
)
D_RUNTIME = ("is_template_graph",)
REVISED_KWARGS = {**SG2_G_KWARGS, "structure": "auto"}  # G_synthesis_stylegan_revised ignores `architecture`
SG2_D_V1_KWARGS = {**SG2_D_KWARGS, "structure": "auto"}  # D_stylegan: no `architecture` (ignored)
SYNTHESIS_FUNCS = {"G_synthesis_stylegan2": "stylegan2", "G_synthesis": "stylegan2-ada",
                   "G_synthesis_stylegan_revised": "stylegan2-revised"}



def nf(kw: dict, stage: int) -> int:
    """The official feature-map count of a stage: clip(int(fmap_base / 2**(stage * fmap_decay)), min, max)."""
    return int(min(max(int(kw["fmap_base"] / (2.0 ** (stage * kw["fmap_decay"]))), kw["fmap_min"]), kw["fmap_max"]))


def _capacity(net: TFNetwork, source: str, kw: dict) -> dict:
    """channel_base/channel_max reproducing the official nf() at every resolution, or a refusal."""
    res_log2 = int(math.log2(kw["resolution"]))
    channel_base, channel_max = int(2 * kw["fmap_base"]), int(kw["fmap_max"])
    for stage in range(1, res_log2):
        ours = min(channel_base // 2 ** (stage + 1), channel_max)
        if ours != nf(kw, stage):
            refuse(True, net, source, "fmap_base/fmap_decay/fmap_min",
                   (kw["fmap_base"], kw["fmap_decay"], kw["fmap_min"]),
                   f"feature maps at {2 ** (stage + 1)}px would be {nf(kw, stage)}; ours are "
                   f"min(channel_base // res, channel_max) (fmap_decay 1, fmap_min inactive)")
    return dict(channel_base=channel_base, channel_max=channel_max)


def _check_common(net: TFNetwork, source: str, kw: dict) -> None:
    res = kw["resolution"]
    refuse(not isinstance(res, int) or res < 4 or res & (res - 1) != 0, net, source, "resolution", res,
           "the resolution must be a power of two >= 4")
    refuse(kw["dtype"] != "float32", net, source, "dtype", kw["dtype"], "only float32 networks are mapped")
    refuse(kw["architecture"] not in ("orig", "skip", "resnet"), net, source, "architecture", kw["architecture"],
           "choose orig, skip or resnet")
    refuse(kw["nonlinearity"] not in ACTIVATIONS, net, source, "nonlinearity", kw["nonlinearity"],
           f"choose one of {sorted(ACTIVATIONS)}")
    refuse(kw["num_channels"] < 1, net, source, "num_channels", kw["num_channels"], "needs at least one channel")


def _resample_filter(net: TFNetwork, source: str, kernel) -> List[float]:
    """TF resample_kernel as our taps; None is the box filter [1, 1]."""
    if kernel is None:
        return [1.0, 1.0]
    t = torch.as_tensor(kernel, dtype=torch.float64)
    refuse(t.ndim not in (1, 2) or float(t.sum()) == 0, net, source, "resample_kernel", kernel,
           "needs a 1-D or 2-D filter with a non-zero sum")
    return t.tolist()


def generator_from_tf(net: TFNetwork, source: str) -> Generator:
    """A stylegan2.Generator equivalent to the official TF G_main network `net` (G or Gs), frozen."""
    synthesis = component(net, "synthesis", source, list(SYNTHESIS_FUNCS))
    mapping = component(net, "mapping", source, ["G_mapping"])
    ada = SYNTHESIS_FUNCS[synthesis.build_func_name] == "stylegan2-ada"
    revised = SYNTHESIS_FUNCS[synthesis.build_func_name] == "stylegan2-revised"
    table_kw = ADA_G_KWARGS if ada else REVISED_KWARGS if revised else SG2_G_KWARGS
    kw = resolve_kwargs(net, source, table_kw, G_MAIN_RUNTIME)
    mkw = resolve_kwargs(mapping, source, table_kw, G_MAIN_RUNTIME)
    skw = resolve_kwargs(synthesis, source, table_kw, G_MAIN_RUNTIME)
    _check_common(synthesis, source, skw)
    capacity = _capacity(synthesis, source, skw)
    refuse(mkw["mapping_nonlinearity"] not in ACTIVATIONS, mapping, source, "mapping_nonlinearity",
           mkw["mapping_nonlinearity"], f"choose one of {sorted(ACTIVATIONS)}")
    refuse(mkw["dtype"] != "float32", mapping, source, "dtype", mkw["dtype"], "only float32 networks are mapped")
    refuse(mkw["mapping_layers"] < 1, mapping, source, "mapping_layers", mkw["mapping_layers"], "needs >= 1 layer")
    refuse(mkw["dlatent_size"] != skw["dlatent_size"], mapping, source, "dlatent_size", mkw["dlatent_size"],
           f"the synthesis network expects {skw['dlatent_size']}")
    num_layers = 2 * int(math.log2(skw["resolution"])) - 2
    refuse(mkw["dlatent_broadcast"] != num_layers, mapping, source, "dlatent_broadcast", mkw["dlatent_broadcast"],
           f"G_main broadcasts to the {num_layers} synthesis layers")
    label_size, latent_size = mkw["label_size"], mkw["latent_size"]
    if ada:
        refuse(skw["fmap_const"] not in (None, nf(skw, 1)), synthesis, source, "fmap_const", skw["fmap_const"],
               f"our constant input has the 4x4 layer's {nf(skw, 1)} feature maps")
        embed = (mkw["label_fmaps"] or latent_size) if label_size else None
    else:
        embed = latent_size if label_size else None
    beta = kw["dlatent_avg_beta"]
    G = Generator(
        z_dim=latent_size, c_dim=label_size, w_dim=skw["dlatent_size"], img_resolution=skw["resolution"],
        img_channels=skw["num_channels"],
        mapping_kwargs=dict(num_layers=mkw["mapping_layers"], layer_features=mkw["mapping_fmaps"],
                            embed_features=embed, activation=mkw["mapping_nonlinearity"],
                            lr_multiplier=mkw["mapping_lrmul"], w_avg_beta=beta if beta is not None else 0.995,
                            label_concat=not ada, normalize_latents=bool(mkw["normalize_latents"])),
        **capacity, num_fp16_res=skw.get("num_fp16_res", 0), conv_clamp=skw.get("conv_clamp"),
        architecture="orig" if revised else skw["architecture"],
        resample_filter=_resample_filter(synthesis, source, skw["resample_kernel"]),
        activation=skw["nonlinearity"], use_noise=bool(skw.get("use_noise", True)))

    table = VariableTable(net, source)
    state: Dict[str, torch.Tensor] = {}
    _map_mapping(table, state, G, ada)
    _map_synthesis(table, state, G, revised)
    state["mapping.w_avg"] = table.take("dlatent_avg", [G.w_dim])
    if revised:
        _require_full_resolution(table, net, source, skw["structure"])
        table.skip("G_synthesis/lod", [], "overwritten by G's lod at every run (G_main)")
        lower = G.synthesis.block_resolutions[:-1] if skw["structure"] != "fixed" else []  # 'fixed': none built
        for res in lower:  # ToRGB of the lower levels of detail
            lod = int(math.log2(G.img_resolution // res))
            cin = getattr(G.synthesis, f"b{res}").out_channels
            for var, shape in [("weight", [1, 1, cin, G.img_channels]), ("mod_weight", [G.w_dim, cin]),
                               ("mod_bias", [cin]), ("bias", [G.img_channels])]:
                table.skip(f"G_synthesis/ToRGB_lod{lod}/{var}", shape, "acts only while lod > 0")
    elif table.has("lod"):
        table.skip("lod", [], "G_synthesis_stylegan2 has no level of detail")
    _keep_filters(G, state)
    return finish(G, state, table, source)


def _require_full_resolution(table: VariableTable, net: TFNetwork, source: str, structure: str) -> None:
    """Consume `lod`; configs B-D equal the 'orig' architecture only at lod 0 (or with structure 'fixed')."""
    lod = float(table.take("lod", []))
    refuse(structure != "fixed" and lod != 0, net, source, "lod", lod,
           "the file was saved during progressive growing; only lod 0 (full resolution) equals a network "
           "without levels of detail")


def _keep_filters(module, state: dict) -> None:
    """Our resampling-filter buffers are constants of the kwargs, without a TF variable."""
    for key, value in module.state_dict().items():
        if key.endswith("resample_filter"):
            state[key] = value


def _dense(table: VariableTable, state: dict, ours: str, name: str, layer) -> None:
    """A TF dense layer (gain 1, use_wscale, activation gain after the bias, as ours): unchanged values."""
    state[f"{ours}.weight"] = table.take(f"{name}/weight", [layer.in_features, layer.out_features]).t()
    if layer.bias is not None:
        state[f"{ours}.bias"] = table.take(f"{name}/bias", [layer.out_features])


def _map_mapping(table: VariableTable, state: dict, G: Generator, ada: bool) -> None:
    m = G.mapping
    if m.c_dim > 0:
        if ada:
            _dense(table, state, "mapping.embed", "G_mapping/LabelEmbed", m.embed)
        else:
            w = table.take("G_mapping/LabelConcat/weight", [m.c_dim, m.embed.out_features])
            state["mapping.embed.weight"] = w.t() * math.sqrt(m.c_dim)
    for idx in range(m.num_layers):
        _dense(table, state, f"mapping.fc{idx}", f"G_mapping/Dense{idx}", getattr(m, f"fc{idx}"))


def _modulated(table: VariableTable, state: dict, ours: str, name: str, layer, flip: bool = False) -> None:
    k = layer.weight.shape[-1]
    w = table.take(f"{name}/weight", [k, k, layer.in_channels, layer.out_channels])
    state[f"{ours}.weight"] = conv_weight(w, flip=flip)
    state[f"{ours}.bias"] = table.take(f"{name}/bias", [layer.out_channels])
    state[f"{ours}.affine.weight"] = table.take(f"{name}/mod_weight", [layer.w_dim, layer.in_channels]).t()
    state[f"{ours}.affine.bias"] = table.take(f"{name}/mod_bias", [layer.in_channels]) + 1


def _map_synthesis(table: VariableTable, state: dict, G: Generator, revised: bool = False) -> None:
    syn = G.synthesis
    for res in syn.block_resolutions:
        block = getattr(syn, f"b{res}")
        scope, ours = f"G_synthesis/{res}x{res}", f"synthesis.b{res}"
        log2 = int(math.log2(res))
        layers = [("conv1", "Conv", 0)] if res == 4 else [("conv0", "Conv0_up", 2 * log2 - 5),
                                                          ("conv1", "Conv1", 2 * log2 - 4)]
        if res == 4:
            state[f"{ours}.const"] = table.take(f"{scope}/Const/const", [1, block.out_channels, 4, 4])[0]
        for attr, tf_name, noise_idx in layers:
            layer = getattr(block, attr)
            _modulated(table, state, f"{ours}.{attr}", f"{scope}/{tf_name}", layer, flip=layer.up > 1)
            if layer.use_noise:
                state[f"{ours}.{attr}.noise_strength"] = table.take(f"{scope}/{tf_name}/noise_strength", [])
                state[f"{ours}.{attr}.noise_const"] = table.take(f"G_synthesis/noise{noise_idx}",
                                                                 [1, 1, res, res])[0, 0]
        if hasattr(block, "torgb"):
            torgb = "G_synthesis/ToRGB_lod0" if revised else f"{scope}/ToRGB"
            _modulated(table, state, f"{ours}.torgb", torgb, block.torgb)
        if hasattr(block, "skip"):
            w = table.take(f"{scope}/Skip/weight", [1, 1, block.in_channels, block.out_channels])
            state[f"{ours}.skip.weight"] = conv_weight(w, flip=True)


def discriminator_from_tf(net: TFNetwork, source: str) -> Discriminator:
    """A stylegan2.Discriminator equivalent to the official TF D_stylegan2, D_stylegan or D_main `net`, frozen."""
    ada = net.build_func_name == "D_main"
    progressive = net.build_func_name == "D_stylegan"  # configs B-D: 'orig' at lod 0
    kw = resolve_kwargs(net, source, ADA_D_KWARGS if ada else SG2_D_V1_KWARGS if progressive else SG2_D_KWARGS,
                        D_RUNTIME)
    if progressive:
        kw["architecture"] = "orig"
    _check_common(net, source, kw)
    capacity = _capacity(net, source, kw)
    label_size = kw["label_size"]
    epilogue = dict(fc_channels=nf(kw, 0))
    mapping_kwargs: Optional[dict] = None
    cmap_dim = None
    if ada:
        for key in ("use_pagan", "use_spectral_norm", "adaptive_dropout", "augment_strength"):
            refuse(bool(kw[key]), net, source, key, kw[key], "a comparison method of the ADA paper, not mapped")
        for key in ("score_size", "score_max"):
            refuse(kw[key] != 1, net, source, key, kw[key], "only one score per image is mapped")
        features = kw["mbstd_num_features"]
        epilogue.update(mbstd_group_size=kw["mbstd_group_size"], mbstd_num_channels=features,
                        clamp_fromrgb=kw["conv_clamp"] is not None)
        if label_size:
            cmap_dim = kw["mapping_fmaps"] if kw["mapping_fmaps"] is not None else nf(kw, 0)
            mapping_kwargs = dict(num_layers=kw["mapping_layers"], embed_features=cmap_dim, layer_features=cmap_dim,
                                  activation=kw["nonlinearity"], lr_multiplier=kw["mapping_lrmul"])
    else:
        group = kw["mbstd_group_size"]
        features = kw["mbstd_num_features"] if group > 1 else 0  # official: group size <= 1 disables the layer
        epilogue.update(mbstd_group_size=group, mbstd_num_channels=features)
    refuse(features > 0 and nf(kw, 1) % features != 0, net, source, "mbstd_num_features", features,
           f"must divide the {nf(kw, 1)} feature maps at 4x4")
    D = Discriminator(
        c_dim=label_size, img_resolution=kw["resolution"], img_channels=kw["num_channels"],
        architecture=kw["architecture"], **capacity, num_fp16_res=kw.get("num_fp16_res", 0),
        conv_clamp=kw.get("conv_clamp"), cmap_dim=cmap_dim,
        block_kwargs=dict(activation=kw["nonlinearity"], resample_filter=_resample_filter(
            net, source, kw["resample_kernel"]), freeze_layers=kw.get("freeze_layers", 0)),
        mapping_kwargs=mapping_kwargs, epilogue_kwargs=dict(epilogue, activation=kw["nonlinearity"]),
        label_select=not ada)

    table = VariableTable(net, source)
    state: Dict[str, torch.Tensor] = {}

    def conv(ours: str, name: str, layer) -> None:
        k = layer.weight.shape[-1]
        w = table.take(f"{name}/weight", [k, k, layer.in_channels, layer.out_channels])
        state[f"{ours}.weight"] = conv_weight(w)
        if layer.bias is not None:
            state[f"{ours}.bias"] = table.take(f"{name}/bias", [layer.out_channels])

    for res in [*D.block_resolutions, 4]:
        block = getattr(D, f"b{res}")
        scope = f"{res}x{res}"
        if hasattr(block, "fromrgb"):
            conv(f"b{res}.fromrgb", "FromRGB_lod0" if progressive else f"{scope}/FromRGB", block.fromrgb)
        elif progressive and kw["structure"] != "fixed":  # FromRGB of the lower levels ('fixed' builds none)
            lod = int(math.log2(D.img_resolution // res))
            table.skip(f"FromRGB_lod{lod}/weight", [1, 1, D.img_channels, block.in_channels], "acts only while lod > 0")
            table.skip(f"FromRGB_lod{lod}/bias", [block.in_channels], "acts only while lod > 0")
        if res > 4:
            conv(f"b{res}.conv0", f"{scope}/Conv0", block.conv0)
            conv(f"b{res}.conv1", f"{scope}/Conv1_down", block.conv1)
            if hasattr(block, "skip"):
                conv(f"b{res}.skip", f"{scope}/Skip", block.skip)
    conv("b4.conv", "4x4/Conv", D.b4.conv)
    _dense(table, state, "b4.fc", "4x4/Dense0", D.b4.fc)
    _dense(table, state, "b4.out", "Output", D.b4.out)
    if label_size and ada:
        _dense(table, state, "mapping.embed", "LabelEmbed", D.mapping.embed)
        for idx in range(D.mapping.num_layers):
            _dense(table, state, f"mapping.fc{idx}", f"Mapping{idx}", getattr(D.mapping, f"fc{idx}"))
    if progressive:
        _require_full_resolution(table, net, source, kw["structure"])
    _keep_filters(D, state)
    return finish(D, state, table, source)
