"""Image conventions, feature-net specs and batched extraction."""
import numpy as np
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.metrics.features import (FEATURE_NETS, extract_features, iterate_batches, load_feature_net,
                                       parse_feature_net)
from stylegan.metrics.preprocess import match_channels, prepare, quantize, to_unit_range


def test_uint8_and_float_ranges_agree():
    u8 = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    as_float = u8.float() / 127.5 - 1
    torch.testing.assert_close(to_unit_range(u8), to_unit_range(as_float))
    torch.testing.assert_close(to_unit_range(u8).flatten(), torch.tensor([0, 0.2, 1.0]))
    assert torch.equal(quantize(as_float), u8)


def test_channel_conversions():
    gray = torch.rand(2, 1, 4, 4)
    assert torch.equal(match_channels(gray, 3), gray.expand(-1, 3, -1, -1))
    rgba = torch.rand(2, 4, 4, 4)
    assert torch.equal(match_channels(rgba, 3), rgba[:, :3])
    rgb = torch.rand(2, 3, 4, 4)
    expected = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    torch.testing.assert_close(match_channels(rgb, 1)[:, 0], expected)
    assert prepare(torch.zeros(2, 3, 64, 48, dtype=torch.uint8), 28, 1).shape == (2, 1, 28, 28)
    with pytest.raises(UserInputError, match="5 channels"):
        match_channels(torch.rand(1, 5, 4, 4), 3)
    with pytest.raises(UserInputError, match="dtype"):
        to_unit_range(torch.zeros(1, 1, 2, 2, dtype=torch.int32))


def test_spec_parsing_and_unknown_names():
    assert parse_feature_net("fmnist") == ("fmnist", None)
    assert parse_feature_net("vgg16:/w/vgg.pth") == ("vgg16", "/w/vgg.pth")
    assert parse_feature_net("/w/pt_inception.pth") == ("inception", "/w/pt_inception.pth")
    with pytest.raises(UserInputError) as err:
        parse_feature_net("resnet")
    for name in FEATURE_NETS:
        assert name in str(err.value)
    with pytest.raises(UserInputError, match="does not exist"):
        load_feature_net("vgg16:/nonexistent/vgg16.pth")


def test_missing_default_weights_say_what_to_download(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEGAN_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UserInputError) as err:
        load_feature_net("inception")
    message = str(err.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in message and "https://" in message
    assert "effnet-lite0" in message and "fmnist" in message  # offline alternatives are named
    with pytest.raises(UserInputError, match="vgg16-397923af.pth"):
        load_feature_net("vgg16")


class SumNet(torch.nn.Module):
    feature_dim, num_classes = 2, 1

    def forward(self, images):
        x = to_unit_range(images)
        f = torch.stack([x.mean(dim=(1, 2, 3)), x.amax(dim=(1, 2, 3))], 1)
        return f, f[:, :1]


def test_extraction_is_batch_size_invariant_and_accepts_iterables():
    images = (torch.rand(10, 3, 8, 8) * 255).to(torch.uint8)
    a = extract_features(SumNet(), images, batch_size=3)
    b = extract_features(SumNet(), images.numpy(), batch_size=10)
    c, logits = extract_features(SumNet(), [(im.numpy(), 0) for im in images], batch_size=4, logits=True)
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a, c)
    assert a.shape == (10, 2) and logits.shape == (10, 1)
    assert [len(x) for x in iterate_batches(iter(images), 4)] == [4, 4, 2]


def test_cpu_feature_nets_run_channels_last_with_the_same_features():
    """On the CPU `to_device` gives the feature networks channels-last weights (oneDNN's faster NHWC kernels); the
    features match the NCHW network's to float32 rounding. Modules holding TorchScript keep their layout."""
    import copy

    from stylegan.metrics.effnet_lite0 import load_effnet_lite0
    from stylegan.metrics.features import to_device

    net = load_effnet_lite0().eval()
    fast = to_device(copy.deepcopy(net), "cpu")
    convs = [m.weight for m in fast.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in net.modules()
                   if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1)
    images = (torch.rand(3, 3, 32, 32) * 255).to(torch.uint8)
    with torch.no_grad():
        (f_fast, l_fast), (f_ref, l_ref) = fast(images), net(images)
    torch.testing.assert_close(f_fast, f_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(l_fast, l_ref, rtol=1e-4, atol=1e-4)

    class Holder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.detector = torch.jit.script(torch.nn.Conv2d(3, 4, 3))
    held = to_device(Holder(), "cpu")
    assert held.detector.weight.is_contiguous()  # NCHW as scripted
