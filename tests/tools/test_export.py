"""tools.export: ONNX (run with onnxruntime) and TorchScript round trips of (z, psi[, c]) -> images."""
import numpy as np
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.tools.export import SamplingGenerator, example_inputs, export_generator, export_onnx, run_exported, \
    verify_export

from official_helpers import official_networks


def test_sampling_generator_is_G_with_per_sample_psi(G):
    module = SamplingGenerator(G, truncation_cutoff=2)
    z, _ = example_inputs(G, [3, 4])
    psi = torch.tensor([0.5, 1.0])
    with torch.no_grad():
        out = module(z, psi)
        for i in range(2):
            expected = G(z[i:i + 1], None, truncation_psi=float(psi[i]), truncation_cutoff=2, noise_mode="const")
            assert torch.allclose(out[i:i + 1], expected, atol=1e-5)


@pytest.fixture(scope="module")
def onnx_file(G, tmp_path_factory):
    for name in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(name)
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("onnx") / "G.onnx"
    export_onnx(G, path, batch_size=2)
    return path


def test_onnx_matches_pytorch_at_other_batch_sizes(G, onnx_file):
    import onnx
    model = onnx.load(str(onnx_file))
    assert [i.name for i in model.graph.input] == ["z", "psi"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch, not a number
    for seeds, psi in (([7], 1.0), ([0, 1, 2, 3, 4], 0.6)):  # exported with a batch of 2
        assert verify_export(G, onnx_file, "onnx", seeds=seeds, psi=psi) < 1e-4
    z, psi = example_inputs(G, [5, 6, 7])
    psi = torch.tensor([0.3, 0.7, 1.0])  # psi per sample
    with torch.no_grad():
        expected = SamplingGenerator(G)(z, psi).numpy()
    assert np.abs(run_exported(onnx_file, "onnx", [z, psi]) - expected).max() < 1e-4


def test_torchscript_round_trip_unconditional_and_conditional(G, tmp_path):
    path = export_generator(G, tmp_path / "G.pt", "torchscript", batch_size=2)
    for seeds in ([1], [2, 3, 4]):
        assert verify_export(G, path, "torchscript", seeds=seeds) < 1e-5
    _, G_cond, _ = official_networks("cond32")
    path = export_generator(G_cond, tmp_path / "Gc.pt", "torchscript", batch_size=2)
    inputs = example_inputs(G_cond, [1, 2, 3], psi=0.8, class_idx=2)
    assert len(inputs) == 3 and inputs[2].shape == (3, G_cond.c_dim)
    with torch.no_grad():
        expected = G_cond(inputs[0], inputs[2], truncation_psi=0.8, noise_mode="const").numpy()
    assert np.abs(run_exported(path, "torchscript", inputs) - expected).max() < 1e-4


@pytest.mark.parametrize("kwargs,message", [
    (dict(format="onnx", opset=7), "opset 7"),
    (dict(format="onnx", batch_size=1), "at least 2"),
    (dict(format="tflite"), "unknown export format"),
    (dict(format="torchscript", truncation_cutoff=99), "out of range"),
])
def test_bad_export_requests(G, tmp_path, kwargs, message):
    with pytest.raises(UserInputError, match=message):
        export_generator(G, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
