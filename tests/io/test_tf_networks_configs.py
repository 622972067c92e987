"""TF network configurations without official fixtures: conditional, one-channel, every v1 option, ADA; refusals.

v1: `tf_v1_reference` re-expresses NVIDIA's TF code op by op and creates the official variable set as it
runs; our mapped networks must reproduce it. v2/ADA: consistency with the fixture-validated networks
(tests/fixtures/tf/v2_skip32.pkl) where the official code says two formulations are the same function.
"""
import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from stylegan.errors import FormatError, UnsupportedNetworkError
from stylegan.io.tf_networks import build_from_tf
from stylegan.io.tf_pickle import read_tf_pickle
from stylegan.io.tf_record import TFNetwork

from tf_v1_reference import Variables, d_basic, g_style, generator_record, latents_and_labels

TF_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf"
N = 4


def assert_matches(ours, ref, name):
    err = (ours.detach() - ref).abs()
    worst = (err / (1e-4 + 1e-4 * ref.abs())).max().item()
    assert worst <= 1, f"{name}: max |ours - ref| = {err.max().item():.3g} uses {worst:.2f} of the tolerance"


V1_CASES = {
    # Conditional, one channel, latent size != w size, fewer/narrower mapping layers.
    "cond_gray16": (dict(num_channels=1, resolution=16, label_size=3, latent_size=12, dlatent_size=10,
                         mapping_layers=3, mapping_fmaps=14, fmap_base=64, fmap_max=16),
                    dict(num_channels=1, resolution=16, label_size=3, fmap_base=64, fmap_max=16)),
    # Every switch away from its default.
    "options8": (dict(num_channels=2, resolution=8, latent_size=8, dlatent_size=8, mapping_fmaps=8, use_wscale=False,
                      nonlinearity="relu", mapping_nonlinearity="relu", mapping_lrmul=0.1, fmap_base=48,
                      fmap_decay=0.5, fmap_max=24, normalize_latents=False, use_pixel_norm=True,
                      use_instance_norm=False, blur_filter=[1, 2, 4], truncation_cutoff=2, dlatent_avg_beta=None,
                      structure="fixed", use_noise=False),
                 dict(num_channels=2, resolution=8, fmap_base=48, fmap_decay=0.5, fmap_max=24, use_wscale=False,
                      nonlinearity="relu", mbstd_group_size=2, mbstd_num_features=2, blur_filter=[1, 2, 4],
                      structure="fixed")),
    # Fused up/down-sampling below 128 px (fused_scale=True), no blur, no minibatch stddev.
    "fused16": (dict(resolution=16, latent_size=8, dlatent_size=8, mapping_fmaps=8, fmap_base=64, fmap_max=8,
                     fused_scale=True, blur_filter=None),
                dict(num_channels=3, resolution=16, fmap_base=64, fmap_max=8, fused_scale=True, blur_filter=None,
                     mbstd_group_size=0)),
}


@pytest.fixture(scope="module", params=sorted(V1_CASES))
def v1_case(request):
    g_kw, d_kw = V1_CASES[request.param]
    gen = torch.Generator().manual_seed(5)
    z, labels = latents_and_labels(g_kw, N, gen)
    g_vars, d_vars = Variables(1), Variables(2)
    g_style(g_vars, g_kw, z, labels)  # creates the official variable set
    num_layers = 2 * int(math.log2(g_kw["resolution"])) - 2
    G = build_from_tf(generator_record(g_vars, g_kw, num_layers), request.param)
    real = torch.rand([N, d_kw["num_channels"], d_kw["resolution"], d_kw["resolution"]], generator=gen) * 2 - 1
    d_basic(d_vars, d_kw, real, labels)
    D = build_from_tf(TFNetwork("D", "D_basic", 3, d_kw, {}, dict(d_vars.values)), request.param)
    return request.param, (g_vars, g_kw, G), (d_vars, d_kw, D), z, labels, real


def lods(kw):
    """Levels of detail to compare at; structure 'fixed' has none but full resolution."""
    max_lod = int(math.log2(kw["resolution"])) - 2
    return [0.0] if kw.get("structure") == "fixed" else [0.0, 0.5, 1.0, max_lod - 0.25]


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_v1_generator_matches_the_official_code(v1_case, psi):
    name, (v, kw, G), _, z, labels, _ = v1_case
    with torch.no_grad():
        for lod in lods(kw):
            ref_img, ref_ws = g_style(v, kw, z, labels, truncation_psi=psi, lod=lod)
            assert_matches(G.mapping(z, labels, truncation_psi=psi), ref_ws, f"{name} ws psi={psi}")
            assert_matches(G(z, labels, truncation_psi=psi, noise_mode="const", lod=lod), ref_img,
                           f"{name} img psi={psi} lod={lod}")


def test_v1_discriminator_matches_the_official_code(v1_case):
    name, _, (v, kw, D), _, labels, real = v1_case
    with torch.no_grad():
        for lod in lods(kw):
            assert_matches(D(real, labels, lod=lod), d_basic(v, kw, real, labels, lod=lod), f"{name} D lod={lod}")


def test_v1_conditional_parts_are_the_official_ones(v1_case):
    name, (_, kw, G), (_, _, D), z, labels, real = v1_case
    if not kw.get("label_size"):
        return
    assert G.mapping.embed.bias is None and tuple(G.mapping.embed.weight.shape) == (kw["latent_size"], 3)
    with torch.no_grad():
        scores = D(real, labels)
        # LabelSwitch: the score is the labelled class's output; another label picks another output.
        assert not torch.allclose(scores, D(real, labels.roll(1, dims=1)))


def test_v1_lod_variables_are_loaded():
    g_kw, d_kw = V1_CASES["fused16"]
    v = Variables(3)
    g_style(v, g_kw, torch.randn([N, 8]), torch.zeros([N, 0]))
    v.values["lod"] = torch.tensor(1.5)
    v.values["G_synthesis/lod"] = torch.tensor(0.0)  # overwritten by G's lod at every official run
    G = build_from_tf(generator_record(v, g_kw, 6), "lod")
    assert float(G.synthesis.lod) == 1.5
    fixed_kw = {**g_kw, "structure": "fixed"}
    v = Variables(3)
    g_style(v, fixed_kw, torch.randn([N, 8]), torch.zeros([N, 0]))
    assert "G_synthesis/ToRGB_lod1/weight" not in v.values  # 'fixed' builds the full-resolution ToRGB only
    v.values["lod"] = torch.tensor(1.5)
    fixed = build_from_tf(generator_record(v, fixed_kw, 6), "lod")
    assert float(fixed.synthesis.lod) == 0  # the official 'fixed' structure ignores lod


def make_record(kind: str, name="v1"):
    if kind == "G":
        g_kw = V1_CASES["fused16"][0]
        v = Variables(3)
        g_style(v, g_kw, torch.randn([N, 8]), torch.zeros([N, 0]))
        return generator_record(v, g_kw, 6)
    d_kw = V1_CASES["fused16"][1]
    v = Variables(4)
    d_basic(v, d_kw, torch.zeros([N, 3, 16, 16]), torch.zeros([N, 0]))
    return TFNetwork("D", "D_basic", 3, dict(d_kw), {}, dict(v.values))


def with_kwargs(net: TFNetwork, **kwargs) -> TFNetwork:
    net = copy.deepcopy(net)
    for n in [net, *net.components.values()]:
        n.static_kwargs.update(kwargs)
    return net


@pytest.mark.parametrize("kind, kwarg, value", [
    ("G", "use_styles", False), ("G", "const_input_layer", False), ("G", "dtype", "float16"),
    ("G", "nonlinearity", "tanh"), ("G", "structure", "progressive"), ("G", "blur_filter", [1, 1]),
    ("G", "made_up_option", 3), ("D", "fused_scale", "sometimes"), ("D", "made_up_option", 1),
    ("D", "mbstd_num_features", 3),  # 8 feature maps at 4x4 do not split into 3 groups
])
def test_v1_unsupported_kwargs_are_refused_by_name(kind, kwarg, value):
    net = with_kwargs(make_record(kind), **{kwarg: value})
    if kwarg == "mbstd_num_features":
        net.static_kwargs["mbstd_group_size"] = 4
    with pytest.raises(UnsupportedNetworkError, match=kwarg):
        build_from_tf(net, "test.pkl")


def test_every_variable_is_used_and_shapes_are_checked():
    G = make_record("G")
    extra = copy.deepcopy(G)
    extra.components["synthesis"].variables["8x8/Conv1/extra"] = torch.zeros(3)
    with pytest.raises(UnsupportedNetworkError, match="8x8/Conv1/extra"):
        build_from_tf(extra, "test.pkl")
    missing = copy.deepcopy(G)
    del missing.components["mapping"].variables["Dense1/bias"]
    with pytest.raises(FormatError, match="G_mapping/Dense1/bias"):
        build_from_tf(missing, "test.pkl")
    wrong = copy.deepcopy(G)
    wrong.components["synthesis"].variables["4x4/Conv/weight"] = torch.zeros(3, 3, 8, 7)
    with pytest.raises(FormatError, match="4x4/Conv/weight"):
        build_from_tf(wrong, "test.pkl")


@pytest.mark.parametrize("func", ["G_mapping", "G_synthesis", "G_paper_figure", "G_synthesis_stylegan2"])
def test_unmapped_build_functions_are_refused(func):
    net = TFNetwork("X", func, 4, {}, {}, {})
    with pytest.raises(UnsupportedNetworkError, match=func):
        build_from_tf(net, "test.pkl")


# ---------------------------------------------------------------------------------------------------------
# StyleGAN2 and StyleGAN2-ADA (TF): the fixture networks with the other codebase's build functions / labels.

@pytest.fixture(scope="module")
def v2():
    return read_tf_pickle(TF_FIXTURES / "v2_skip32.pkl")


@pytest.fixture(scope="module")
def v2_inputs():
    from safetensors.torch import load_file
    return load_file(str(TF_FIXTURES / "v2_skip32_expected.safetensors"))


def as_ada_generator(G: TFNetwork, **kwargs) -> TFNetwork:
    """stylegan2-ada's G_synthesis takes the same variables as G_synthesis_stylegan2 (and has no `lod`)."""
    G = copy.deepcopy(G)
    G.components["synthesis"].build_func_name = "G_synthesis"
    del G.variables["lod"]
    for n in [G, *G.components.values()]:
        n.static_kwargs.update(kwargs)
    return G


def test_ada_generator_with_defaults_equals_stylegan2(v2, v2_inputs):
    z, c = v2_inputs["z"], v2_inputs["labels"]
    G = build_from_tf(as_ada_generator(v2["Gs"]), "ada")
    with torch.no_grad():
        assert_matches(G(z, c, noise_mode="const"), v2_inputs["img"], "ada img")
        # A clamp far above the activations changes nothing; a tight one bounds every layer and the image.
        loose = build_from_tf(as_ada_generator(v2["Gs"], conv_clamp=1e5), "ada")
        assert torch.equal(loose(z, c, noise_mode="const"), G(z, c, noise_mode="const"))
        tight = build_from_tf(as_ada_generator(v2["Gs"], conv_clamp=0.05), "ada")
        img = tight(z, c, noise_mode="const")
    assert img.abs().max() <= 0.05 * 4 + 1e-6  # sum of the 4 clamped ToRGB outputs (skip architecture)


def test_ada_generator_refuses_a_different_constant_width(v2):
    with pytest.raises(UnsupportedNetworkError, match="fmap_const"):
        build_from_tf(as_ada_generator(v2["Gs"], fmap_const=7), "ada")


def test_ada_discriminator_with_defaults_equals_stylegan2(v2, v2_inputs):
    D = copy.deepcopy(v2["D"])
    D.build_func_name = "D_main"
    ours = build_from_tf(D, "ada")  # minibatch-stddev group None = the whole batch of 4, as the fixture's 4
    with torch.no_grad():
        assert_matches(ours(v2_inputs["real"], v2_inputs["labels"]), v2_inputs["d_real"], "ada d_real")


def test_ada_discriminator_refuses_comparison_methods(v2):
    for kwarg, value in [("use_spectral_norm", True), ("use_pagan", True), ("score_max", 2)]:
        D = copy.deepcopy(v2["D"])
        D.build_func_name = "D_main"
        D.static_kwargs[kwarg] = value
        with pytest.raises(UnsupportedNetworkError, match=kwarg):
            build_from_tf(D, "ada")


def as_configs_b_to_d(G: TFNetwork, D: TFNetwork, lod: float, gen: torch.Generator, **kwargs):
    """The 'orig' networks' variables as configs B-D store them: ToRGB_lod0 / FromRGB_lod0 at full resolution,
    a ToRGB_lodK / FromRGB_lodK per lower resolution (random here: they act only while lod > 0), `lod`."""
    G, D = copy.deepcopy(G), copy.deepcopy(D)
    syn = G.components["synthesis"]
    syn.build_func_name = "G_synthesis_stylegan_revised"
    D.build_func_name = "D_stylegan"
    res = syn.static_kwargs["resolution"]
    for var in ("weight", "mod_weight", "mod_bias", "bias"):
        syn.variables[f"ToRGB_lod0/{var}"] = syn.variables.pop(f"{res}x{res}/ToRGB/{var}")
    for var in ("weight", "bias"):
        D.variables[f"FromRGB_lod0/{var}"] = D.variables.pop(f"{res}x{res}/FromRGB/{var}")
    fixed = kwargs.get("structure") == "fixed"  # the official 'fixed' structure builds ToRGB_lod0 only
    for lod_k in range(1, int(math.log2(res)) - 1 if not fixed else 1):
        r = res >> lod_k
        cin = syn.variables[f"{r}x{r}/Conv1/weight" if r > 4 else "4x4/Conv/weight"].shape[-1]
        channels = syn.variables["ToRGB_lod0/bias"].shape[0]
        dlat = syn.variables["ToRGB_lod0/mod_weight"].shape[0]
        for var, shape in [("weight", [1, 1, cin, channels]), ("mod_weight", [dlat, cin]), ("mod_bias", [cin]),
                           ("bias", [channels])]:
            syn.variables[f"ToRGB_lod{lod_k}/{var}"] = torch.randn(shape, generator=gen)
        d_in = D.variables[f"{r}x{r}/Conv0/weight"].shape[2] if r > 4 else D.variables["4x4/Conv/weight"].shape[-1]
        D.variables[f"FromRGB_lod{lod_k}/weight"] = torch.randn([1, 1, channels, d_in], generator=gen)
        D.variables[f"FromRGB_lod{lod_k}/bias"] = torch.randn([d_in], generator=gen)
    G.variables["lod"] = torch.tensor(lod)
    syn.variables["lod"] = torch.tensor(0.0)
    D.variables["lod"] = torch.tensor(lod)
    for net in (G, syn, G.components["mapping"], D):
        net.static_kwargs.pop("architecture", None)
        net.static_kwargs.update(kwargs)
    return G, D


def test_configs_b_to_d_at_full_resolution_are_the_orig_architecture():
    """G_synthesis_stylegan_revised / D_stylegan at lod 0: only ToRGB_lod0 / FromRGB_lod0 act ('orig')."""
    gen = torch.Generator().manual_seed(3)
    _, g_kw, d_kw = V2_CASES["sg2_orig_cond_gray"]
    d_kw = {**d_kw, "architecture": "orig"}
    G_tf, D_tf = official_v2_generator(g_kw, False, gen), official_v2_discriminator(d_kw, False, gen)
    G_orig, D_orig = build_from_tf(G_tf, "orig"), build_from_tf(D_tf, "orig")
    G_b, D_b = as_configs_b_to_d(G_tf, D_tf, 0.0, gen)
    G_rev, D_rev = build_from_tf(G_b, "config-b"), build_from_tf(D_b, "config-b")
    z, c = torch.randn(N, 12, generator=gen), F.one_hot(torch.arange(N) % 4, 4).float()
    with torch.no_grad():
        img = G_orig(z, c, noise_mode="const")
        assert torch.equal(G_rev(z, c, noise_mode="const"), img)
        assert torch.equal(D_rev(img, c), D_orig(img, c))
    for lod, structure in [(0.5, "auto"), (1.0, "linear")]:  # saved mid-growth: refused
        G_b, D_b = as_configs_b_to_d(G_tf, D_tf, lod, gen, structure=structure)
        for net in (G_b, D_b):
            with pytest.raises(UnsupportedNetworkError, match="lod"):
                build_from_tf(net, "config-b")
    G_b, D_b = as_configs_b_to_d(G_tf, D_tf, 0.5, gen, structure="fixed")  # 'fixed' ignores lod
    assert torch.equal(build_from_tf(G_b, "fixed")(z, c, noise_mode="const"), img)
    build_from_tf(D_b, "fixed")


def conditional_generator(G: TFNetwork, ada: bool, c_dim: int, gen: torch.Generator) -> TFNetwork:
    G = as_ada_generator(G, label_size=c_dim) if ada else copy.deepcopy(G)
    mapping = G.components["mapping"]
    for n in [G, *G.components.values()]:
        n.static_kwargs["label_size"] = c_dim
    latent = mapping.static_kwargs["latent_size"]
    mapping.variables["Dense0/weight"] = torch.randn([2 * latent, 64], generator=gen)
    if ada:
        mapping.variables["LabelEmbed/weight"] = torch.randn([c_dim, latent], generator=gen)
        mapping.variables["LabelEmbed/bias"] = torch.randn([latent], generator=gen) * 0.1
    else:
        mapping.variables["LabelConcat/weight"] = torch.randn([c_dim, latent], generator=gen)
    return G


def lrelu_dense(x, w, b, lrmul=1.0):
    """TF apply_bias_act(dense_layer(x), act='lrelu', lrmul): sqrt(2) lrelu(x w / sqrt(fan_in) lrmul + b lrmul)."""
    return F.leaky_relu(x @ w * (lrmul / math.sqrt(w.shape[0])) + b * lrmul, 0.2) * math.sqrt(2)


def normalize(x):
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


@pytest.mark.parametrize("ada", [False, True])
def test_conditional_stylegan2_mapping_follows_its_codebase(v2, v2_inputs, ada):
    gen = torch.Generator().manual_seed(0)
    tf = conditional_generator(v2["Gs"], ada, 5, gen)
    G = build_from_tf(tf, "cond")
    m = {k: v for k, v in tf.components["mapping"].variables.items()}
    z = v2_inputs["z"]
    c = F.one_hot(torch.arange(N) % 5, 5).float()
    if ada:  # G_mapping (stylegan2-ada): normalize(z), normalize(embed(c)), concatenated
        y = c @ m["LabelEmbed/weight"] / math.sqrt(5) + m["LabelEmbed/bias"]
        x = torch.cat([normalize(z), normalize(y)], dim=1)
    else:  # G_mapping (stylegan2): normalize(concat(z, c @ LabelConcat))
        x = normalize(torch.cat([z, c @ m["LabelConcat/weight"]], dim=1))
    for idx in range(8):
        x = lrelu_dense(x, m[f"Dense{idx}/weight"], m[f"Dense{idx}/bias"], lrmul=0.01)
    with torch.no_grad():
        assert_matches(G.mapping(z, c)[:, 0], x, "conditional w")
        assert G(z, c, noise_mode="const").shape == (N, 3, 32, 32)


def conditional_discriminator(D: TFNetwork, ada: bool, c_dim: int, gen: torch.Generator, **kwargs) -> TFNetwork:
    D = copy.deepcopy(D)
    D.static_kwargs.update(label_size=c_dim, **kwargs)
    if ada:
        D.build_func_name = "D_main"
        cmap = D.static_kwargs.get("mapping_fmaps") or 64  # nf(0)
        D.variables["LabelEmbed/weight"] = torch.randn([c_dim, cmap], generator=gen)
        D.variables["LabelEmbed/bias"] = torch.randn([cmap], generator=gen) * 0.1
        for idx in range(D.static_kwargs.get("mapping_layers", 0)):
            D.variables[f"Mapping{idx}/weight"] = torch.randn([cmap, cmap], generator=gen)
            D.variables[f"Mapping{idx}/bias"] = torch.randn([cmap], generator=gen) * 0.1
    else:
        cmap = c_dim
    D.variables["Output/weight"] = torch.randn([64, cmap], generator=gen)
    D.variables["Output/bias"] = torch.randn([cmap], generator=gen) * 0.1
    return D


def with_output(D: TFNetwork, weight: torch.Tensor, bias: torch.Tensor) -> TFNetwork:
    """The unconditional D whose single output is `x @ weight + bias`."""
    D = copy.deepcopy(D)
    D.static_kwargs["label_size"] = 0
    D.variables["Output/weight"], D.variables["Output/bias"] = weight, bias
    return D


def test_conditional_stylegan2_discriminator_selects_the_labelled_output(v2, v2_inputs):
    """D_stylegan2: scores = sum(Output(x) * labels): for class k exactly the k-th output unit."""
    gen = torch.Generator().manual_seed(1)
    tf = conditional_discriminator(v2["D"], False, 3, gen)
    D = build_from_tf(tf, "cond D")
    real = v2_inputs["real"]
    with torch.no_grad():
        for k in range(3):
            c = F.one_hot(torch.full([N], k), 3).float()
            uncond = build_from_tf(with_output(v2["D"], tf.variables["Output/weight"][:, k:k + 1],
                                               tf.variables["Output/bias"][k:k + 1]), "uncond D")
            assert_matches(D(real, c), uncond(real, None), f"class {k}")


@pytest.mark.parametrize("mapping_layers", [0, 2])
def test_conditional_ada_discriminator_projects_on_the_label_mapping(v2, v2_inputs, mapping_layers):
    """D_main: cmap = Mapping(normalize(LabelEmbed(c))); score = sum(Output(x) * cmap) / sqrt(mapping_fmaps)."""
    gen = torch.Generator().manual_seed(2)
    tf = conditional_discriminator(v2["D"], True, 3, gen, mapping_layers=mapping_layers, mbstd_group_size=4)
    D = build_from_tf(tf, "ada cond D")
    v, real = tf.variables, v2_inputs["real"]
    with torch.no_grad():
        for k in range(3):
            c = F.one_hot(torch.full([N], k), 3).float()
            cmap = normalize(c[:1] @ v["LabelEmbed/weight"] / math.sqrt(3) + v["LabelEmbed/bias"])
            for idx in range(mapping_layers):
                cmap = lrelu_dense(cmap, v[f"Mapping{idx}/weight"], v[f"Mapping{idx}/bias"], lrmul=0.1)
            # sum(x (W / 8) cmap + b cmap) / 8 is the single output x (W cmap / 8) / 8 + b cmap / 8.
            weight = (v["Output/weight"] @ cmap[0] / 8).reshape(64, 1)
            bias = (v["Output/bias"] @ cmap[0] / 8).reshape(1)
            plain = copy.deepcopy(v2["D"])
            plain.build_func_name = "D_main"
            plain.static_kwargs["mbstd_group_size"] = 4
            uncond = build_from_tf(with_output(plain, weight, bias), "uncond D")
            assert_matches(D(real, c), uncond(real, None), f"class {k}")


def test_ada_skip_discriminator_clamps_its_4x4_fromrgb():
    """TF D_main clamps every FromRGB, the 4x4 one of the skip architecture too (the PyTorch release does not)."""
    from stylegan.networks.discriminator import Discriminator
    torch.manual_seed(0)
    kw = dict(c_dim=0, img_resolution=8, img_channels=3, architecture="skip", channel_base=64, channel_max=8,
              num_fp16_res=0, conv_clamp=0.01)
    plain = Discriminator(**kw).eval()
    clamped = Discriminator(**kw, epilogue_kwargs=dict(clamp_fromrgb=True)).eval()
    clamped.load_state_dict(plain.state_dict())
    assert clamped.b4.fromrgb.conv_clamp == 0.01 and plain.b4.fromrgb.conv_clamp is None
    img = torch.randn(4, 3, 8, 8) * 10
    with torch.no_grad():
        assert not torch.allclose(plain(img), clamped(img))


# ---------------------------------------------------------------------------------------------------------
# StyleGAN2 / ADA architectures without fixtures: the official variable set, enumerated from the TF code
# (names and shapes only), must be consumed exactly once and give a working network.

def nf(kw, stage):
    return int(min(max(int(kw["fmap_base"] / 2.0 ** stage), 1), kw["fmap_max"]))


def official_v2_generator(kw: dict, ada: bool, gen: torch.Generator) -> TFNetwork:
    """G_main's variables as networks_stylegan2.py / stylegan2-ada networks.py create them."""
    shapes_m, shapes_s = {}, {}
    latent, dlat, c_dim = kw["latent_size"], kw["dlatent_size"], kw.get("label_size", 0)
    fmaps = kw.get("mapping_fmaps", dlat)
    width = latent
    if c_dim:
        if ada:
            shapes_m.update({"LabelEmbed/weight": [c_dim, latent], "LabelEmbed/bias": [latent]})
        else:
            shapes_m["LabelConcat/weight"] = [c_dim, latent]
        width = 2 * latent
    for idx in range(kw.get("mapping_layers", 8)):
        out = dlat if idx == kw.get("mapping_layers", 8) - 1 else fmaps
        shapes_m.update({f"Dense{idx}/weight": [width, out], f"Dense{idx}/bias": [out]})
        width = out
    res_log2 = int(math.log2(kw["resolution"]))
    arch, use_noise, channels = kw.get("architecture", "skip"), kw.get("use_noise", True), kw["num_channels"]
    if use_noise:
        for idx in range(2 * res_log2 - 3):
            r = 2 ** ((idx + 5) // 2)
            shapes_s[f"noise{idx}"] = [1, 1, r, r]

    def modconv(scope, cin, cout, k, noise=True):
        shapes_s.update({f"{scope}/weight": [k, k, cin, cout], f"{scope}/mod_weight": [dlat, cin],
                         f"{scope}/mod_bias": [cin], f"{scope}/bias": [cout]})
        if noise and use_noise:
            shapes_s[f"{scope}/noise_strength"] = []

    shapes_s["4x4/Const/const"] = [1, nf(kw, 1), 4, 4]
    modconv("4x4/Conv", nf(kw, 1), nf(kw, 1), 3)
    if arch == "skip":
        modconv("4x4/ToRGB", nf(kw, 1), channels, 1, noise=False)
    for res in range(3, res_log2 + 1):
        scope = f"{2 ** res}x{2 ** res}"
        modconv(f"{scope}/Conv0_up", nf(kw, res - 2), nf(kw, res - 1), 3)
        modconv(f"{scope}/Conv1", nf(kw, res - 1), nf(kw, res - 1), 3)
        if arch == "resnet":
            shapes_s[f"{scope}/Skip/weight"] = [1, 1, nf(kw, res - 2), nf(kw, res - 1)]
        if arch == "skip" or res == res_log2:
            modconv(f"{scope}/ToRGB", nf(kw, res - 1), channels, 1, noise=False)
    own = {"dlatent_avg": [dlat]} if ada else {"lod": [], "dlatent_avg": [dlat]}

    def rand(shapes):
        return {k: torch.randn(s, generator=gen) * (0.1 if k.endswith("bias") else 1.0) for k, s in shapes.items()}

    mapping = TFNetwork("G_mapping", "G_mapping", 4, {**kw, "dlatent_broadcast": 2 * res_log2 - 2}, {},
                        rand(shapes_m))
    synthesis = TFNetwork("G_synthesis", "G_synthesis" if ada else "G_synthesis_stylegan2", 4, dict(kw), {},
                          rand(shapes_s))
    return TFNetwork("G", "G_main", 4, dict(kw), {"mapping": mapping, "synthesis": synthesis}, rand(own))


def official_v2_discriminator(kw: dict, ada: bool, gen: torch.Generator) -> TFNetwork:
    """D_stylegan2's / D_main's variables as the official code creates them."""
    shapes = {}
    res_log2 = int(math.log2(kw["resolution"]))
    arch, channels, c_dim = kw.get("architecture", "resnet"), kw["num_channels"], kw.get("label_size", 0)

    def conv(scope, cin, cout, k, bias=True):
        shapes[f"{scope}/weight"] = [k, k, cin, cout]
        if bias:
            shapes[f"{scope}/bias"] = [cout]

    for res in range(res_log2, 2, -1):
        scope = f"{2 ** res}x{2 ** res}"
        if arch == "skip" or res == res_log2:
            conv(f"{scope}/FromRGB", channels, nf(kw, res - 1), 1)
        conv(f"{scope}/Conv0", nf(kw, res - 1), nf(kw, res - 1), 3)
        conv(f"{scope}/Conv1_down", nf(kw, res - 1), nf(kw, res - 2), 3)
        if arch == "resnet":
            conv(f"{scope}/Skip", nf(kw, res - 1), nf(kw, res - 2), 1, bias=False)
    if arch == "skip":
        conv("4x4/FromRGB", channels, nf(kw, 1), 1)
    mbstd = kw.get("mbstd_num_features", 1)
    if not ada and kw.get("mbstd_group_size", 4) <= 1:  # D_stylegan2: group size <= 1 disables the layer
        mbstd = 0
    conv("4x4/Conv", nf(kw, 1) + mbstd, nf(kw, 1), 3)
    shapes.update({"4x4/Dense0/weight": [nf(kw, 1) * 16, nf(kw, 0)], "4x4/Dense0/bias": [nf(kw, 0)]})
    outputs = (kw.get("mapping_fmaps") or nf(kw, 0)) if ada and c_dim else max(c_dim, 1)
    shapes.update({"Output/weight": [nf(kw, 0), outputs], "Output/bias": [outputs]})
    if ada and c_dim:
        shapes.update({"LabelEmbed/weight": [c_dim, outputs], "LabelEmbed/bias": [outputs]})
        for idx in range(kw.get("mapping_layers", 0)):
            shapes.update({f"Mapping{idx}/weight": [outputs, outputs], f"Mapping{idx}/bias": [outputs]})
    variables = {k: torch.randn(s, generator=gen) * (0.1 if k.endswith("bias") else 1.0) for k, s in shapes.items()}
    return TFNetwork("D", "D_main" if ada else "D_stylegan2", 4, dict(kw), {}, variables)


V2_CASES = {
    "sg2_orig_cond_gray": (False, dict(num_channels=1, resolution=16, label_size=4, latent_size=12, dlatent_size=10,
                                       mapping_layers=2, mapping_fmaps=14, fmap_base=64, fmap_max=64,
                                       architecture="orig"),
                           dict(num_channels=1, resolution=16, label_size=4, fmap_base=64, fmap_max=64,
                                architecture="skip", mbstd_group_size=2, resample_kernel=None)),
    "sg2_resnet": (False, dict(num_channels=3, resolution=16, latent_size=8, dlatent_size=8, mapping_fmaps=8,
                               fmap_base=32, fmap_max=16, architecture="resnet", nonlinearity="swish",
                               resample_kernel=[1, 2, 1]),
                   dict(num_channels=3, resolution=16, fmap_base=32, fmap_max=16, architecture="orig",
                        mbstd_group_size=0)),
    "ada_skip_cond": (True, dict(num_channels=3, resolution=16, label_size=3, latent_size=8, dlatent_size=12,
                                 mapping_layers=3, fmap_base=32, fmap_max=16, architecture="resnet",
                                 conv_clamp=256, num_fp16_res=2, use_noise=False, fused_modconv=True),
                      dict(num_channels=3, resolution=16, label_size=3, fmap_base=32, fmap_max=16, mapping_layers=2,
                           architecture="skip", conv_clamp=256, mbstd_num_features=2, freeze_layers=2)),
}


@pytest.mark.parametrize("name", sorted(V2_CASES))
def test_v2_official_variable_sets_map_completely(name):
    ada, g_kw, d_kw = V2_CASES[name]
    gen = torch.Generator().manual_seed(7)
    G = build_from_tf(official_v2_generator(g_kw, ada, gen), name)
    D = build_from_tf(official_v2_discriminator(d_kw, ada, gen), name)
    c_dim, channels, res = g_kw.get("label_size", 0), g_kw["num_channels"], g_kw["resolution"]
    c = F.one_hot(torch.arange(N) % c_dim, c_dim).float() if c_dim else None
    with torch.no_grad():
        img = G(torch.randn(N, g_kw["latent_size"]), c, noise_mode="const", truncation_psi=0.5)
        scores = D(img, c)
    assert img.shape == (N, channels, res, res) and torch.isfinite(img).all()
    assert scores.shape == (N, 1) and torch.isfinite(scores).all()
    assert D.b4.fc.out_features == nf(d_kw, 0)  # TF's Dense0 is nf(0) wide, the 4x4 conv nf(1)
    if ada and d_kw.get("architecture") == "skip":
        assert D.b4.fromrgb.conv_clamp == d_kw["conv_clamp"]  # TF D_main clamps the 4x4 FromRGB too
