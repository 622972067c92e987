"""stylegan bench: rows measured against the reference path in the same process.

Nothing here depends on the CPU's instruction set, on timing or on load: bf16 paths are measured only where bf16
is native (elsewhere oneDNN emulates it, hundreds of times slower), the bf16 arithmetic is checked on inference
alone, and no assertion compares speeds."""
import dataclasses
import json

import pytest
import torch

from stylegan import errors as stylegan_errors
from stylegan.cli.main import run
from stylegan.runtime import hardware
from stylegan.tools import bench
from stylegan.ops.registry import OPS
from stylegan.runtime.path import FAST, NETWORK_OPS
from stylegan.tools.bench import PATH_SPECS, psnr, run_benchmarks

CPU = torch.device("cpu")
TINY = dict(cfg="cpu", resolution=16, device="cpu", min_seconds=0.0, min_calls=1)  # one timed call each


def test_rows_have_the_promised_fields():
    rows = run_benchmarks(**TINY, batch_sizes=(2,), train_batch=2, paths=("reference", "fast"))
    assert [(r["what"], r["path"]) for r in rows] == [(w, p) for w in ("g_inference_b2", "train_step")
                                                      for p in ("reference", "fast")]
    for row in rows:
        for key in ("what", "device", "img_per_s", "reference_img_per_s", "speedup", "peak_mem_mb", "machine",
                    "device_matmul_dtype", "device_matmul_tflops"):
            assert key in row, key
        assert row["img_per_s"] > 0 and row["device_matmul_tflops"] > 0 and row["device_matmul_dtype"] == "fp32"
        assert set(hardware.ISA_FLAGS) | {"cpu", "cores", "native_bf16"} <= set(row["machine"])
        assert row["speedup_vs"] == "reference"
        if row["path"] == "reference":
            assert row["speedup"] == 1.0
    inference = [r for r in rows if r["what"].startswith("g_inference")]
    # The reference path upsamples before convolving: more arithmetic per image than the fast path.
    flops = {r["path"]: r["gflop_per_img"] for r in inference}
    assert flops["reference"] > 1.5 * flops["fast"] > 0
    assert all(r["fraction_of_matmul"] > 0 for r in inference)
    assert inference[0]["psnr_vs_fast_db"] > 80  # the reference computes the same images in another order
    for row in rows[2:]:
        # img/s over one 16-step cycle: 16 main phases (G main + D main), 4 G regularisations, 1 D regularisation.
        assert row["main_s"] > 0 and row["g_reg_s"] > 0 and row["d_reg_s"] > 0
        cycle_s = 16 * row["main_s"] + 4 * row["g_reg_s"] + row["d_reg_s"]
        assert row["img_per_s"] == pytest.approx(2 * 16 / cycle_s, rel=1e-2)
    assert bench.phases_per_cycle() == {"main": 16, "g_reg": 4, "d_reg": 1}


def test_quick_sweep_trains_without_the_reference_path():
    rows = run_benchmarks(**TINY, batch_sizes=(1,), train_batch=2, paths=("reference", "fast"), train_reference=False)
    assert [(r["what"], r["path"], r["speedup_vs"]) for r in rows] == [
        ("g_inference_b1", "reference", "reference"), ("g_inference_b1", "fast", "reference"),
        ("train_step", "fast", "fast")]
    assert rows[2]["speedup"] == 1.0 and rows[2]["reference_img_per_s"] is None


def test_bf16_path_arithmetic():
    # Inference only, one small batch: cheap even where bf16 is emulated.
    rows = run_benchmarks(**TINY, batch_sizes=(2,), paths=("fast", "fast_bf16"), training=False)
    bf16 = rows[1]
    assert bf16["path"] == "fast_bf16" and bf16["device_matmul_dtype"] == "bf16" and bf16["device_matmul_tflops"] > 0
    assert 20 < bf16["psnr_vs_fast_db"] < 80  # rounded to bf16, not float32-exact, still the same images


@pytest.mark.parametrize("native", [True, False])
def test_default_paths_follow_the_hardware(monkeypatch, native):
    monkeypatch.setattr(bench, "native_bf16", lambda device: native)
    assert bench.default_paths(CPU) == (("reference", "fast", "fast_bf16") if native else ("reference", "fast"))
    assert bench.emulated_bf16_paths(["fast", "compiled_bf16", "fast_bf16"], CPU) == (
        [] if native else ["compiled_bf16", "fast_bf16"])


def test_native_bf16_needs_the_cpu_flag_and_onednn(monkeypatch):
    for flags, onednn, expected in [({"avx2", "avx512f", "avx512_bf16"}, True, True),
                                    ({"avx2", "amx_bf16"}, True, True),
                                    ({"avx2", "avx512f"}, True, False),  # AVX-512 without BF16: emulated
                                    ({"avx2", "avx512f", "avx512_bf16"}, False, False)]:  # ONEDNN_MAX_CPU_ISA=AVX2
        monkeypatch.setattr(hardware, "cpu_flags", lambda flags=flags: frozenset(flags))
        monkeypatch.setattr(hardware, "onednn_bf16", lambda onednn=onednn: onednn)
        assert hardware.native_bf16(CPU) is expected, (flags, onednn)


def _capture_sweep(monkeypatch):
    calls = []

    def fake_run_benchmarks(cfg, resolution, device, batch_sizes, train_batch, min_seconds, paths, training, emit,
                            min_calls, train_reference, case=None, **overrides):
        calls.append(dict(batch_sizes=batch_sizes, train_batch=train_batch, min_seconds=min_seconds, paths=paths,
                          min_calls=min_calls, train_reference=train_reference))
        if case is not None or overrides:  # the seed case (the default) passes neither
            calls[-1].update(cfg=cfg, resolution=resolution, case=case, **overrides)
        return []
    monkeypatch.setattr(bench, "run_benchmarks", fake_run_benchmarks)
    return calls


def test_cli_quick_by_default_full_on_request(monkeypatch, capsys):
    calls = _capture_sweep(monkeypatch)
    assert run(["bench"]) == 0
    assert run(["bench", "--full"]) == 0
    assert run(["bench", "--full", "--batch", "4", "--seconds", "0.1", "--paths", "fast"]) == 0
    assert calls == [dict(batch_sizes=[1, 8], train_batch=2, min_seconds=0.5, paths=None, min_calls=1,
                          train_reference=False),
                     dict(batch_sizes=[1, 8, 16], train_batch=8, min_seconds=2.0, paths=None, min_calls=2,
                          train_reference=True),
                     dict(batch_sizes=[4], train_batch=8, min_seconds=0.1, paths=["fast"], min_calls=2,
                          train_reference=True)]
    assert "--full for the full sweep" in capsys.readouterr().err


def test_cli_warns_about_emulated_bf16(monkeypatch, capsys):
    _capture_sweep(monkeypatch)
    monkeypatch.setattr(bench, "native_bf16", lambda device: False)
    assert run(["bench", "--device", "cpu", "--paths", "reference,fast_bf16"]) == 0
    assert "fast_bf16 run emulated" in capsys.readouterr().err


def test_channels_last_and_compiled_paths():
    rows = run_benchmarks(cfg="cpu", resolution=8, device="cpu", batch_sizes=(2,), min_seconds=0.0, min_calls=1,
                          training=False, paths=("fast", "channels_last", "compiled"))
    by_path = {r["path"]: r for r in rows}
    for path in ("channels_last", "compiled"):  # the same arithmetic: > 80 dB, or None (bit-identical)
        value = by_path[path]["psnr_vs_fast_db"]
        assert value is None or value > 80, (path, value)
    assert by_path["compiled"]["compile_s"] > 0
    assert "compile_s" not in by_path["fast"] and "psnr_vs_fast_db" not in by_path["fast"]


def test_cli_prints_json_lines(capsys, tmp_path):
    out = tmp_path / "bench.jsonl"
    assert run(["bench", "--cfg", "cpu", "--resolution", "16", "--batch", "1", "--no-train", "--seconds", "0",
                "--paths", "reference,fast", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["path"] for r in lines] == ["reference", "fast"]
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines
    assert "g_inference_b1   fast" in captured.err  # the table of what was measured
    assert run(["bench", "--paths", "turbo"]) == 2
    assert "unknown path" in capsys.readouterr().err
    assert run(["bench", "--device", "cpu", "--paths", "fp16", "--no-train"]) == 2
    assert "CUDA only" in capsys.readouterr().err
    assert run(["bench", "--device", "cpu", "--paths", "fast,triton_bf16", "--no-train"]) == 2
    assert "Triton GPU kernels, on CUDA only" in capsys.readouterr().err
    assert run(["bench", "--device", "tpu9"]) == 2
    assert "unknown device" in capsys.readouterr().err


def test_triton_paths_take_every_triton_kernel():
    """The triton paths run each op's Triton kernel where one is registered, the fast ops elsewhere, at their
    precision (measured on a GPU by benchmarks/gpu.sh)."""
    kernels = {op for op, impls in OPS.items() if "triton" in impls and op in NETWORK_OPS}
    assert {"bias_act", "upfirdn2d", "filtered_lrelu"} <= kernels
    for name, precision in (("triton", "fp32"), ("triton_fp16", "fp16"), ("triton_bf16", "bf16")):
        path = PATH_SPECS[name].path
        assert path.precision == precision
        assert {op for op, impl in path.ops.items() if impl == "triton"} == kernels
        assert dataclasses.replace(path, ops=FAST.ops) == FAST.replace(precision=precision)


def test_psnr():
    a = torch.zeros(1, 1, 4, 4)
    assert psnr(a, a) == float("inf")
    assert abs(psnr(a, a + 0.02) - 40.0) < 1e-3  # 10 log10(4 / 0.0004)


SG3_TINY = dict(resolution=16, device="cpu", min_seconds=0.0, min_calls=1, channel_base=256, channel_max=16)


@pytest.mark.parametrize("cfg", ["stylegan3-t", "stylegan3-r"])
def test_stylegan3_rows_reference_vs_fast(cfg):
    # bf16 only where native: emulated bf16 training would take minutes.
    paths = ("reference", "fast") + (("fast_bf16",) if hardware.native_bf16(CPU) else ())
    rows = run_benchmarks(cfg=cfg, **SG3_TINY, batch_sizes=(2,), train_batch=2, paths=paths)
    assert [(r["what"], r["path"]) for r in rows] == [(w, p) for w in ("g_inference_b2", "train_step") for p in paths]
    for row in rows:
        for key in ("img_per_s", "reference_img_per_s", "speedup", "peak_mem_mb", "machine", "device_matmul_tflops"):
            assert key in row, key
        assert row["config"] == f"{cfg}@16" and (row["channel_base"], row["channel_max"]) == (256, 16)
        assert row["img_per_s"] > 0 and row["speedup_vs"] == "reference"
    inference = {r["path"]: r for r in rows if r["what"] == "g_inference_b2"}
    # The reference filtered_lrelu filters every inserted zero and every discarded sample: more arithmetic.
    assert inference["reference"]["gflop_per_img"] > 1.3 * inference["fast"]["gflop_per_img"] > 0
    assert inference["reference"]["psnr_vs_fast_db"] > 80  # the same images, computed another way
    if "fast_bf16" in inference:
        assert 20 < inference["fast_bf16"]["psnr_vs_fast_db"] < 80
    for row in rows[len(paths):]:
        # StyleGAN3 trains without path length regularisation: 16 main phases and one R1 phase per cycle.
        assert "g_reg_s" not in row and row["main_s"] > 0 and row["d_reg_s"] > 0
        assert row["img_per_s"] == pytest.approx(2 * 16 / (16 * row["main_s"] + row["d_reg_s"]), rel=1e-2)
        assert row["gflop_per_img_main_phases"] > 0


def test_stylegan3_paths_choose_the_filtered_lrelu():
    from stylegan.networks.stylegan3 import SynthesisLayer3
    G, D = bench.build_networks("stylegan3-t", 16, CPU, channel_base=256, channel_max=16)
    assert max(layer.out_channels for layer in G.modules() if isinstance(layer, SynthesisLayer3)) <= 16
    for path, impl in [("reference", "reference"), ("fast", "fast"), ("fast_bf16", "fast")]:
        nets = bench.path_networks(path, G, D, "stylegan3-t", 16, CPU)
        layers = [m for m in nets.G.modules() if isinstance(m, SynthesisLayer3)]
        assert layers and {m.filtered_lrelu_impl for m in layers} == {impl}, path
    assert bench.has_g_reg("stylegan2", 32) and bench.has_g_reg("cpu", 32)  # StyleGAN2 rows keep their cycle
    assert not bench.has_g_reg("stylegan3-t", 32) and not bench.has_g_reg("stylegan3-r", 32)
    assert bench.phases_per_cycle(g_reg=False) == {"main": 16, "d_reg": 1}


def test_cli_width_overrides(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(bench, "run_benchmarks", lambda *args, **kwargs: calls.append(kwargs) or [])
    assert run(["bench", "--cfg", "stylegan3-r", "--cbase", "2048", "--cmax", "64"]) == 0
    assert calls[-1]["channel_base"] == 2048 and calls[-1]["channel_max"] == 64
    assert run(["bench", "--cfg", "stylegan3-t", "--cmax", "0"]) == 2
    assert "--cbase and --cmax must be positive" in capsys.readouterr().err
    with pytest.raises(stylegan_errors.UserInputError, match="must be positive"):
        bench.build_networks("stylegan3-t", 16, CPU, channel_base=-1)


def test_cli_small_case_and_overrides(monkeypatch, capsys):
    calls = _capture_sweep(monkeypatch)
    assert run(["bench", "--case", "small"]) == 0
    assert run(["bench", "--case", "small", "--full", "--channels", "3", "--batch", "4", "--map-depth", "8"]) == 0
    assert run(["bench", "--map-depth", "2", "--channels", "1"]) == 0
    small = dict(cfg="stylegan2", resolution=32, case="small", channel_base=2048, channel_max=64)
    assert calls == [dict(batch_sizes=[16], train_batch=32, min_seconds=0.5, paths=None, min_calls=1,
                          train_reference=False, map_depth=2, img_channels=1, **small),
                     dict(batch_sizes=[4], train_batch=32, min_seconds=2.0, paths=None, min_calls=2,
                          train_reference=True, map_depth=8, **small),
                     dict(batch_sizes=[1, 8], train_batch=2, min_seconds=0.5, paths=None, min_calls=1,
                          train_reference=False, cfg="stylegan2", resolution=32, case=None, map_depth=2,
                          img_channels=1)]
    for bad in (["--map-depth", "0"], ["--channels", "0"], ["--kimg", "1"]):
        assert run(["bench", *bad]) == 2, bad
    err = capsys.readouterr().err
    assert "--map-depth and --channels must be positive" in err and "--kimg applies to --case loop only" in err


def test_small_case_networks():
    case = bench.CASES["small"]
    G, D = bench.build_networks(case.cfg, case.resolution, CPU, channel_base=case.channel_base,
                                channel_max=case.channel_max, map_depth=case.map_depth, img_channels=case.img_channels)
    assert G.img_channels == D.img_channels == 1 and G.z_dim == G.w_dim == 512
    assert G.mapping.num_layers == 2
    widths = {m.out_channels for m in G.modules() if hasattr(m, "out_channels") and hasattr(m, "affine")}
    assert widths == {64, 1}  # 64 channels at every resolution, toRGB to one channel
    with pytest.raises(stylegan_errors.UserInputError, match="map_depth must be positive"):
        bench.build_networks("cpu", 8, CPU, map_depth=0)
    rows = run_benchmarks(cfg="cpu", resolution=8, device="cpu", batch_sizes=(2,), min_seconds=0.0, min_calls=1,
                          training=False, paths=("fast",), map_depth=1, img_channels=1, case="small")
    assert rows[0]["case"] == "small" and rows[0]["map_depth"] == 1 and rows[0]["img_channels"] == 1
    assert set(hardware.ISA_FLAGS) <= set(rows[0]["machine"])


def test_cli_loop_case_calls_the_loop_benchmark(monkeypatch, capsys, tmp_path):
    import stylegan.cli.bench_loop as bench_loop

    calls = []
    monkeypatch.setattr(bench_loop, "run_loop_case",
                        lambda **kwargs: calls.append(kwargs) or [{"what": "loop", "path": p} for p in kwargs["paths"]])
    out = str(tmp_path / "loop.jsonl")
    assert run(["bench", "--case", "loop", "--device", "cpu", "--paths", "reference,default", "--kimg", "0.5",
                "--out", out]) == 0
    assert calls == [dict(device="cpu", paths=["reference", "default"], kimg=0.5, out=out)]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [{"what": "loop", "path": "reference"}, {"what": "loop", "path": "default"}]
    assert run(["bench", "--help"]) == 0
    assert "loop" in capsys.readouterr().out


def test_interleaved_rounds_keep_every_path_and_compiled_graphs(monkeypatch):
    measured = []
    real = bench.seconds_per_call

    def recording(fn, device, min_seconds, warmup=1, min_calls=2):
        measured.append(fn.__qualname__.split(".")[0])  # the matmul yardstick is timed too
        return real(fn, device, min_seconds, warmup, min_calls)
    monkeypatch.setattr(bench, "seconds_per_call", recording)
    rows = run_benchmarks(cfg="cpu", resolution=8, device="cpu", batch_sizes=(2,), train_batch=2, min_seconds=0.0,
                          min_calls=1, paths=("fast", "compiled"), rounds=2)
    assert [(r["what"], r["path"], r["rounds"]) for r in rows] == [
        ("g_inference_b2", "fast", 2), ("g_inference_b2", "compiled", 2), ("train_step", "fast", 2),
        ("train_step", "compiled", 2)]
    # inference: 2 paths x 2 rounds; training: the same x 3 phases
    assert measured.count("inference_rows") == 2 * 2 and measured.count("training_rows") == 2 * 2 * 3
    assert rows[1]["psnr_vs_fast_db"] is None or rows[1]["psnr_vs_fast_db"] > 80
    assert rows[1]["compile_s"] > 0 and rows[3]["compile_s"] > 0
    with pytest.raises(stylegan_errors.UserInputError, match="rounds"):
        run_benchmarks(**TINY, paths=("fast",), rounds=0)
