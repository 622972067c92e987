"""run_demo end to end on a tiny dataset: the fast path (graph capture instead of Inductor, to stay quick) and
the plain one, the sample grid and the report."""
import pytest
import torch

from stylegan.data.dataset_tool import convert_dataset
from stylegan.io.load import load_generator
from stylegan.presets import resolve_preset
from stylegan.tools import demo
from stylegan.runtime.hardware import native_bf16

from patience import patience
from train_helpers import capture_compiles, make_dataset


@pytest.mark.parametrize("fast", [True, False])
def test_run_demo_writes_samples_and_report(tmp_path, monkeypatch, fast):
    out = tmp_path / "out"
    out.mkdir()
    convert_dataset(make_dataset(tmp_path / "blobs", count=64, resolution=32), out / "fashion-mnist-32.zip")
    compiled, graph_runs = capture_compiles(monkeypatch)
    # the plain run trains another configuration (benchmarks/demo_presets.py compares networks this way)
    config = None if fast else resolve_preset("cpu", 32)
    if config is not None:
        config.network.channel_base = 256
    # kimg ends the run; the time budget only has to be out of reach, however busy the machine.
    report = demo.run_demo(out, minutes=patience(300) / 60, kimg=0.064, progress=False, fast=fast, config=config)
    assert report["kimg"] >= 0.064 and (out / "samples.png").stat().st_size > 0
    G = load_generator(report["snapshot"])
    assert G.synthesis.b32.conv1.weight.shape[0] == (8 if config is not None else 16)  # channel_base / 32
    # compiled bf16 where the hardware has bf16, eager float32 elsewhere
    bf16 = native_bf16(torch.device("cpu"))
    fast_path = "bf16, channels-last, compile default" if bf16 else "fp32, channels-last, compile off"
    assert report["path"] == (fast_path if fast else "default path")
    assert [mode for _, mode in compiled] == (["default"] * 3 if fast and bf16 else [])
    assert bool(graph_runs) == (fast and bf16)
    assert report["path"] in (out / "REPORT.md").read_text()
