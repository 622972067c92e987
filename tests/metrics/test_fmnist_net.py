"""The shipped Fashion-MNIST classifier: size, recorded accuracy, and accuracy re-measured here."""
import pytest
import torch

from stylegan.data.fashion_mnist import find_fashion_mnist
from stylegan.metrics.fmnist_net import INFO_FILE, WEIGHTS_FILE, fashion_mnist_tensors, load_fmnist_net, recorded_accuracy


def test_weights_are_small_and_accuracy_is_recorded():
    assert WEIGHTS_FILE.stat().st_size < 1_000_000
    info = recorded_accuracy()
    assert info["test_accuracy"] >= 0.9 and info["test_images"] == 10000
    assert INFO_FILE.is_file()


@pytest.mark.skipif(find_fashion_mnist("t10k") is None,
                    reason="Fashion-MNIST not installed: `apt-get install dataset-fashion-mnist` (Debian package)")
def test_accuracy_on_2000_test_images():
    images, labels = fashion_mnist_tensors("t10k")
    net = load_fmnist_net()
    with torch.no_grad():
        features, logits = net(images[:2000])
        # The 32x32 padded layout of `stylegan dataset` and float [-1, 1] input give the same answers.
        padded = torch.nn.functional.pad(images[:500], (2, 2, 2, 2)).float() / 127.5 - 1
        _, logits_padded = net(padded)
    accuracy = (logits.argmax(1) == labels[:2000]).float().mean().item()
    assert accuracy >= 0.9
    assert features.shape == (2000, 128) and (features >= 0).all()
    padded_accuracy = (logits_padded.argmax(1) == labels[:500]).float().mean().item()
    assert padded_accuracy >= 0.85


def test_missing_weights_explain_how_to_rebuild(tmp_path):
    from stylegan.errors import UserInputError
    with pytest.raises(UserInputError, match="train_fmnist_classifier.py"):
        load_fmnist_net(tmp_path / "nope.safetensors")
