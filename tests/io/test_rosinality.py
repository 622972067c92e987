"""rosinality/stylegan2-pytorch checkpoints: reading both layouts against rosinality's own outputs, safe loading,
writing rosinality's layout, round trips, and refusals."""
import argparse
import collections
import copy
import os
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import stylegan
from stylegan.errors import FormatError, UnsafePickleError, UnsupportedNetworkError
from stylegan.io import rosinality
from stylegan.io.clamp_effect import IMAGE_TOLERANCE, seed_latents
from stylegan.io.rosinality import (
    channel_config,
    estimate_w_avg,
    generator_table,
    save_rosinality,
    stock_channel_multiplier,
)
from stylegan.networks.discriminator import Discriminator
from stylegan.networks.stylegan1 import Generator1
from stylegan.networks.stylegan2 import Generator
from stylegan.tools.mixing import mix_styles

from official_helpers import official_networks

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rosinality"
CONVERTED = FIXTURES / "rosinality_s32_converted.pt"  # convert_weight.py --disc: g_ema, latent_avg, d
TRAIN = FIXTURES / "rosinality_s32_train.pt"  # train.py: g, d, g_ema, g_optim, d_optim, args, ada_aug_p
INJECT_INDEX = 3


@pytest.fixture(scope="module")
def expected():
    return load_file(str(FIXTURES / "rosinality_s32_expected.safetensors"))


@pytest.fixture(scope="module")
def converted():
    return stylegan.load_network(CONVERTED)


@pytest.fixture(scope="module")
def train():
    return stylegan.load_network(TRAIN)


def raw(path):
    """A rosinality file as rosinality's own scripts read it (train.py files need the Namespace allowlisted)."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location="cpu", weights_only=True)


def assert_matches(actual, reference):
    """The reference folder's tolerance: 1e-5 * max(1, max|ref|), absolute."""
    tol = 1e-5 * max(1.0, reference.abs().max().item())
    diff = (actual - reference).abs().max().item()
    assert diff <= tol, f"max abs diff {diff} > {tol}"


@torch.no_grad()
@pytest.mark.parametrize("which", ["converted", "train"])
def test_reproduces_rosinality_outputs(request, expected, which):
    nets = request.getfixturevalue(which)
    G, D = nets["G_ema"], nets["D"]
    assert not G.training and not D.training
    z, z2 = expected["z"], expected["z2"]
    ws, ws2 = G.mapping(z, None), G.mapping(z2, None)
    assert torch.equal(ws[:, 0], expected["latent"])  # w is bit-exact
    assert torch.equal(ws2[:, 0], expected["latent2"])
    assert_matches(G(z, None, noise_mode="const"), expected["img"])  # randomize_noise=False == 'const'
    if which == "converted":
        assert torch.equal(G.mapping.w_avg, expected["latent_avg"])
        assert nets["w_avg_source"] == "latent_avg"
    else:
        G = copy.deepcopy(G)  # train.py files hold no latent_avg; use rosinality's (on a copy: shared fixture)
        G.mapping.w_avg.copy_(expected["latent_avg"])
    assert_matches(G(z, None, truncation_psi=0.7, noise_mode="const"), expected["img_trunc07"])
    mixed = mix_styles(ws, ws2, range(INJECT_INDEX, G.num_ws))  # cutoff = inject_index
    assert torch.equal(mixed, expected["latent_mix"])
    assert_matches(G.synthesis(mixed, noise_mode="const"), expected["img_mix"])
    assert_matches(G.synthesis(expected["latent_mix"], noise_mode="const"), expected["img_from_latent_mix"])
    assert_matches(D(expected["img"], None), expected["d_fake"])
    assert_matches(D(expected["real"], None), expected["d_real"])
    assert_matches(D(expected["real8"], None), expected["d_real8"])  # two strided minibatch-stddev groups


def test_channels_and_parameter_counts_come_from_shapes(converted):
    G, D = converted["G_ema"], converted["D"]
    # The fixture's table is rosinality's divided by 8: 64 channels everywhere, which args.channel_multiplier
    # (2) would not give.
    assert rosinality.generator_channels(G) == {4: 64, 8: 64, 16: 64, 32: 64}
    assert sum(p.numel() for p in G.parameters()) == 313_619  # rosinality's counts (reference json)
    assert sum(p.numel() for p in D.parameters()) == 337_281
    assert (G.z_dim, G.w_dim, G.img_resolution, G.mapping.num_layers, G.num_ws) == (48, 48, 32, 8, 8)


@torch.no_grad()
def test_train_file_roles_extras_and_w_avg(train, converted, expected):
    assert "G" in train and "G" not in converted
    img_g = train["G"](expected["z"], None, noise_mode="const")
    assert_matches(img_g, expected["img_g"])  # G from the non-EMA g ...
    assert (img_g - expected["img"]).abs().max() > 1  # ... and G_ema never from g
    for role in ("G_ema", "D"):
        for (k, a), b in zip(train[role].state_dict().items(), converted[role].state_dict().values()):
            assert k == "mapping.w_avg" or torch.equal(a, b), k  # w_avg: estimated vs latent_avg, below
    assert train["augment_p"] == 0.1 and "augment_p" not in converted
    assert train["rosinality_args"]["arch"] == "stylegan2" and train["rosinality_args"]["size"] == 32
    # No latent_avg in a train.py file: w_avg is the mean w of 4096 seeded z, the same on every load.
    G = train["G_ema"]
    z = torch.randn([4096, 48], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(G.mapping.w_avg, G.mapping(z, None)[:, 0].mean(0), atol=1e-5, rtol=0)
    assert torch.equal(G.mapping.w_avg, estimate_w_avg(G))
    assert (G.mapping.w_avg - expected["latent_avg"]).abs().max() < 0.2  # rosinality's own 4096-sample estimate
    assert train["w_avg_source"].startswith("estimated")
    assert not torch.equal(train["G"].mapping.w_avg, G.mapping.w_avg)  # g's estimate is g's own


def test_namespace_is_allowed_only_where_the_file_has_it(monkeypatch):
    seen = []
    original = torch.serialization.safe_globals

    def recording(allowed):
        seen.append([g.__name__ for g in allowed])
        return original(allowed)

    monkeypatch.setattr(torch.serialization, "safe_globals", recording)
    assert isinstance(rosinality.read_torch_checkpoint(CONVERTED), dict)
    assert seen == [[]]
    seen.clear()
    ckpt = rosinality.read_torch_checkpoint(TRAIN)
    assert seen == [[], ["Namespace"]]
    assert type(ckpt["args"]) is dict and ckpt["args"]["channel_multiplier"] == 2
    with pytest.raises(Exception, match="argparse.Namespace"):  # what a plain weights-only load says
        torch.load(TRAIN, map_location="cpu", weights_only=True)


class Payload:
    """A global no weights-only load allows; unpickling it would create a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_disallowed_global_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "x": Payload(marker)}, path)
    with pytest.raises(UnsafePickleError, match="mkdir"):
        stylegan.load_network(path)
    assert not marker.exists()


@torch.no_grad()
@pytest.mark.parametrize("legacy", [False, True])
def test_legacy_and_cuda_saved_files(tmp_path, monkeypatch, expected, converted, legacy):
    ckpt = raw(CONVERTED)
    path = tmp_path / "cuda.pt"
    # Tag every storage as cuda:0, as a checkpoint saved from a GPU is; reading then needs map_location.
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    monkeypatch.undo()
    assert rosinality.is_torch_checkpoint(path)
    assert (path.read_bytes()[:2] == b"PK") != legacy
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    nets = stylegan.load_network(path)
    z = expected["z"]
    assert torch.equal(nets["G_ema"](z, None, noise_mode="const"), converted["G_ema"](z, None, noise_mode="const"))
    assert torch.equal(nets["D"](expected["real"], None), converted["D"](expected["real"], None))


def test_swagan_is_refused(tmp_path):
    ckpt = raw(TRAIN)
    ckpt["args"].arch = "swagan"
    torch.save(ckpt, tmp_path / "swagan_args.pt")
    with pytest.raises(UnsupportedNetworkError, match="SWAGAN"):
        stylegan.load_network(tmp_path / "swagan_args.pt")
    ckpt = raw(CONVERTED)  # no args: recognised by swagan's wavelet layers
    ckpt["g_ema"]["iwt.ll"] = torch.ones(1, 2)
    torch.save(ckpt, tmp_path / "swagan_keys.pt")
    with pytest.raises(UnsupportedNetworkError, match="SWAGAN"):
        stylegan.load_network(tmp_path / "swagan_keys.pt")


def test_other_torch_files_get_one_clear_line(tmp_path):
    cases = {"tensor.pt": torch.zeros(3), "state.pt": {"model": {"w": torch.zeros(2)}}}
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(FormatError, match="not a rosinality/stylegan2-pytorch checkpoint") as info:
            stylegan.load_network(tmp_path / name)
        assert "\n" not in str(info.value)
    data = CONVERTED.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated or corrupt"):
        stylegan.load_network(tmp_path / "cut.pt")
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:  # a zip, but no torch archive
        archive.writestr("img.png", b"x")
    assert not rosinality.is_torch_checkpoint(tmp_path / "plain.zip")
    with pytest.raises(FormatError, match="neither"):
        stylegan.load_network(tmp_path / "plain.zip")


@pytest.mark.parametrize("edit,error,message", [
    (lambda g, d: g.__setitem__("convs.1.conv.weight", torch.zeros(1, 64, 32, 3, 3)), FormatError,
     r"convs.1.conv.weight has shape \[1, 64, 32, 3, 3\]"),
    (lambda g, d: g.pop("noises.noise_3"), FormatError, r"missing \['noises.noise_3'\]"),
    (lambda g, d: g.__setitem__("extra.weight", torch.zeros(1)), FormatError, r"unexpected \['extra.weight'\]"),
    (lambda g, d: g.__setitem__("convs.0.conv.blur.kernel", torch.ones(4, 4) / 4), UnsupportedNetworkError,
     "blur kernel"),
    (lambda g, d: d.__setitem__("convs.2.skip.0.kernel", torch.ones(4, 4) / 16), UnsupportedNetworkError,
     "blur kernel"),
    (lambda g, d: d.__setitem__("final_linear.0.weight", torch.zeros(64, 512)), FormatError,
     r"final_linear.0.weight has shape \[64, 512\]"),
    # Channels that grow with resolution: no channel_base/channel_max gives them.
    (lambda g, d: g.__setitem__("convs.0.conv.weight", torch.zeros(1, 32, 64, 3, 3)), FormatError,
     "not min\\(channel_base // res, channel_max\\)"),
])
def test_bad_state_dicts_are_named(tmp_path, edit, error, message):
    ckpt = raw(CONVERTED)
    edit(ckpt["g_ema"], ckpt["d"])
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(error, match=message):
        stylegan.load_network(tmp_path / "bad.pt")


def test_channel_config():
    def table(cm, size):  # rosinality's stock table
        return {r: 512 if r <= 32 else 16384 * cm // r for r in (2 ** i for i in range(2, size.bit_length()))}

    assert channel_config(table(2, 1024), "x") == (32768, 512)  # config-f
    assert channel_config(table(1, 256), "x") == (16384, 512)
    assert channel_config({4: 64, 8: 64, 16: 64, 32: 64}, "x") == (2048, 64)
    assert stock_channel_multiplier(table(1, 1024)) == 1 and stock_channel_multiplier(table(2, 512)) == 2
    assert stock_channel_multiplier({4: 64, 8: 64}) is None
    for channels in [table(2, 1024), table(1, 64), {4: 48, 8: 48, 16: 24, 32: 12}, {4: 64, 8: 32, 16: 16}]:
        base, cmax = channel_config(channels, "x")
        assert {r: min(base // r, cmax) for r in channels} == channels
    with pytest.raises(FormatError, match="channel_base"):
        channel_config({4: 64, 8: 32, 16: 24}, "x")  # 8 needs base in [256, 263], 16 in [384, 399]


# ---------------------------------------------------------------------------------------------------------------
# Writing.


@torch.no_grad()
@pytest.mark.parametrize("source", [CONVERTED, TRAIN])
def test_write_is_rosinality_layout_and_round_trips(tmp_path, expected, source):
    nets = stylegan.load_network(source)
    out = tmp_path / "out.pt"
    info = save_rosinality(out, nets["G_ema"], D=nets["D"], G=nets.get("G"))
    assert info == {"size": 32, "style_dim": 48, "n_mlp": 8, "channels": {4: 64, 8: 64, 16: 64, 32: 64},
                    "channel_multiplier": None, "clamp_effects": []}
    written, original = raw(out), raw(source)
    assert list(written) == ["g_ema", "latent_avg"] + (["g"] if "g" in original else []) + ["d"]
    for role in ("g_ema", "g", "d"):
        if role not in original:
            continue
        # Rosinality's own state dict for this config: same keys, order, shapes, and every tensor (the
        # blur-kernel and noise buffers included) equal to the original, bit for bit.
        assert list(written[role]) == list(original[role])
        for key, value in original[role].items():
            assert written[role][key].shape == value.shape, key
            assert torch.equal(written[role][key], value), key
            assert written[role][key].is_contiguous()
    assert written["latent_avg"].shape == (48,)
    assert torch.equal(written["latent_avg"], nets["G_ema"].mapping.w_avg)
    # Loading the written file with our reader gives our networks back, bit for bit.
    again = stylegan.load_network(out)
    z = expected["z"]
    for role in ("G_ema", "G"):
        if role in nets:
            for psi in (1, 0.7):
                a = again[role](z, None, truncation_psi=psi, noise_mode="const")
                assert torch.equal(a, nets[role](z, None, truncation_psi=psi, noise_mode="const"))
    assert torch.equal(again["D"](expected["real8"], None), nets["D"](expected["real8"], None))


def test_generator_table_is_complete_for_other_configs():
    # Every parameter and buffer of ours except the resample filters (and w_avg, written as latent_avg) has
    # exactly one rosinality key, for sizes and mapping depths the fixture does not cover.
    for size, n_mlp in [(4, 1), (16, 2), (256, 8)]:
        with torch.device("meta"):
            G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=size, img_channels=3,
                          mapping_kwargs=dict(num_layers=n_mlp), channel_base=1024, channel_max=32, num_fp16_res=0,
                          conv_clamp=None)
        ours = [row[1] for row in generator_table(size, n_mlp) if row[1] is not None]
        assert len(ours) == len(set(ours))
        assert set(ours) == {k for k in G.state_dict() if not k.endswith("resample_filter")} - {"mapping.w_avg"}


@torch.no_grad()
def test_stock_table_network_round_trips(tmp_path):
    # Rosinality's unedited table (512 channels up to 32x32) with channel_multiplier 2: our 32768 / 512.
    G = small_generator(img_resolution=8, channel_base=32768, channel_max=512)
    info = save_rosinality(tmp_path / "stock.pt", G)
    assert info == {"size": 8, "style_dim": 16, "n_mlp": 2, "channels": {4: 512, 8: 512}, "channel_multiplier": 2,
                    "clamp_effects": []}
    again = stylegan.load_network(tmp_path / "stock.pt")["G_ema"]
    assert (again.init_kwargs["channel_base"], again.init_kwargs["channel_max"]) == (4096, 512)
    z = torch.randn(2, 16)
    assert torch.equal(again(z, None, truncation_psi=0.5, noise_mode="const"),
                       G(z, None, truncation_psi=0.5, noise_mode="const"))


def small_generator(**overrides):
    kwargs = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None)
    kwargs.update(overrides)
    torch.manual_seed(0)
    return Generator(**kwargs).eval()


def small_discriminator(**overrides):
    kwargs = dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32, num_fp16_res=0,
                  conv_clamp=None)
    kwargs.update(overrides)
    torch.manual_seed(1)
    return Discriminator(**kwargs).eval()


@torch.no_grad()
def test_official_network_round_trips(tmp_path):
    _, G, D = official_networks("tiny16")  # an official NVIDIA network that rosinality's classes can express
    path = tmp_path / "tiny16.pt"
    info = save_rosinality(path, G, D=D)
    assert info["channel_multiplier"] is None and info["channels"] == {4: 32, 8: 32, 16: 16}
    nets = stylegan.load_network(path)
    z, img = torch.randn(4, 32), torch.rand(4, 3, 16, 16) * 2 - 1
    for psi in (1, 0.5):
        assert torch.equal(nets["G_ema"](z, None, truncation_psi=psi, noise_mode="const"),
                           G(z, None, truncation_psi=psi, noise_mode="const"))
    assert torch.equal(nets["D"](img, None), D(img, None))


@pytest.mark.parametrize("G,D,message", [
    (lambda: official_networks("cond32")[1], None, "conditional"),
    (lambda: small_generator(architecture="resnet"), None, "architecture is 'resnet'"),
    (lambda: small_generator(architecture="orig"), None, "architecture is 'orig'"),
    (lambda: small_generator(img_channels=1), None, "outputs 1 channels"),
    (lambda: small_generator(resample_filter=[1, 2, 1]), None, "resample filter"),
    (lambda: small_generator(mapping_kwargs=dict(num_layers=2, lr_multiplier=0.1)), None, "lr_multiplier is 0.1"),
    (lambda: small_generator(z_dim=8), None, "z_dim=8"),
    (lambda: small_generator(mapping_kwargs=dict(num_layers=2, layer_features=24)), None, "16->24"),
    (lambda: Generator1(z_dim=16, c_dim=0, w_dim=16, img_resolution=8, img_channels=3, fmap_base=64, fmap_max=16),
     None, "Generator1"),
    (small_generator, lambda: small_discriminator(architecture="skip"), "D's architecture is 'skip'"),
    (small_generator, lambda: small_discriminator(epilogue_kwargs=dict(mbstd_group_size=2)), "group size 2"),
    (small_generator, lambda: small_discriminator(channel_base=512), "one size and one channel table"),
    (small_generator, lambda: small_discriminator(img_resolution=32), "one size and one channel table"),
])
def test_write_refuses_what_rosinality_cannot_express(tmp_path, G, D, message):
    path = tmp_path / "out.pt"
    with pytest.raises(UnsupportedNetworkError, match=message) as info:
        save_rosinality(path, G(), D=D() if D else None)
    assert "cannot write a rosinality checkpoint" in str(info.value)
    assert not path.exists() and list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("G,message", [
    (lambda: small_generator(mapping_kwargs=dict(num_layers=3)), "different mapping networks"),
    (lambda: small_generator(channel_max=16), "one size and one channel table"),
    (lambda: small_generator(conv_clamp=0.5), "G without conv_clamp=0.5"),
    (lambda: Generator1(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3), "Generator1"),
])
def test_write_refuses_a_non_ema_g_that_does_not_fit(tmp_path, G, message):
    with pytest.raises(UnsupportedNetworkError, match=message):
        save_rosinality(tmp_path / "out.pt", small_generator(), G=G())
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_a_mapping_without_w_avg(tmp_path):
    with pytest.raises(UnsupportedNetworkError, match="no w_avg"):
        save_rosinality(tmp_path / "out.pt", small_generator(mapping_kwargs=dict(num_layers=2, w_avg_beta=None)))


@torch.no_grad()
def test_clamp_that_changes_nothing_is_written_and_reported(tmp_path):
    """NVIDIA's conv_clamp=256, which these networks never reach: measured on the default 4096 seeds, written."""
    G, D = small_generator(conv_clamp=256), small_discriminator(conv_clamp=256)
    info = save_rosinality(tmp_path / "clamp.pt", G, D=D)
    effects = {e.role: e for e in info["clamp_effects"]}
    assert sorted(effects) == ["D", "G_ema"] and effects["D"].output == "scores"
    for effect in effects.values():
        assert (effect.conv_clamp, effect.num_seeds, effect.max_abs_diff) == (256, 4096, 0) and effect.negligible
    again = stylegan.load_network(tmp_path / "clamp.pt")
    assert again["G_ema"].init_kwargs["conv_clamp"] is None and again["D"].init_kwargs["conv_clamp"] is None
    z = seed_latents(range(16), 16)  # ours -> rosinality -> ours: the same images
    assert torch.equal(again["G_ema"](z, None, noise_mode="const"), G(z, None, noise_mode="const"))


@torch.no_grad()
def test_clamp_that_matters_is_refused_unless_allowed(tmp_path):
    G = small_generator(conv_clamp=0.5)
    path = tmp_path / "clamp.pt"
    with pytest.raises(UnsupportedNetworkError) as info:
        save_rosinality(path, G, clamp_seeds=256)
    message = str(info.value)
    assert message.startswith("cannot write a rosinality checkpoint: G_ema without conv_clamp=0.5: its images of "
                              "seeds 0-63 change by max |Δ| >= ")  # the first batch already decides
    assert "--allow-conv-clamp (allow_conv_clamp=True)" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []
    effect, = save_rosinality(path, G, clamp_seeds=256, allow_conv_clamp=True)["clamp_effects"]
    assert not effect.negligible and effect.max_abs_diff > IMAGE_TOLERANCE
    # Rosinality's layout computes the clamp-free network: its images, not G's.
    again = stylegan.load_network(path)["G_ema"]
    z = seed_latents(range(256), 16)
    img = again(z, None, noise_mode="const")
    assert torch.equal(img, small_generator(conv_clamp=None)(z, None, noise_mode="const"))
    assert (img - G(z, None, noise_mode="const")).abs().max() >= effect.max_abs_diff


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "out.pt"
    path.write_bytes(b"previous")

    def failing_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_rosinality(path, small_generator())
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["out.pt"]


def test_written_optimizer_free_file_needs_no_allowlist(tmp_path):
    save_rosinality(tmp_path / "g.pt", small_generator())
    ckpt = torch.load(tmp_path / "g.pt", map_location="cpu", weights_only=True)  # plain weights-only load
    assert list(ckpt) == ["g_ema", "latent_avg"]
    assert all(isinstance(v, torch.Tensor) for v in ckpt["g_ema"].values())
    assert isinstance(ckpt["g_ema"], collections.OrderedDict)
