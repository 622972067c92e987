"""stylegan bench: rows measured against the reference path in the same process."""
import json

from stylegan.cli.main import run
from stylegan.tools.bench import psnr, run_benchmarks


def test_rows_have_the_promised_fields():
    rows = run_benchmarks("cpu", 16, "cpu", batch_sizes=(2,), train_batch=4, min_seconds=0.01)
    whats = {(r["what"], r["path"]) for r in rows}
    assert whats == {(w, p) for w in ("g_inference_b2", "train_step") for p in ("reference", "fast", "fast_bf16")}
    for row in rows:
        for key in ("what", "device", "img_per_s", "reference_img_per_s", "speedup", "peak_mem_mb"):
            assert key in row
        assert row["img_per_s"] > 0
        if row["path"] == "reference":
            assert row["speedup"] == 1.0
    inference = [r for r in rows if r["what"].startswith("g_inference")]
    # The reference path upsamples before convolving: more arithmetic per image than the fast path.
    flops = {r["path"]: r["gflop_per_img"] for r in inference}
    assert flops["reference"] > 1.5 * flops["fast"] > 0
    bf16 = next(r for r in inference if r["path"] == "fast_bf16")
    assert 20 < bf16["psnr_vs_fast_db"] < 80
    assert all(r["device_bf16_matmul_tflops"] > 0 and r["fraction_of_bf16_matmul"] > 0 for r in inference)


def test_channels_last_and_compiled_paths():
    rows = run_benchmarks("cpu", 8, "cpu", batch_sizes=(2,), min_seconds=0.01, training=False,
                          paths=("fast", "channels_last", "compiled"))
    by_path = {r["path"]: r for r in rows}
    for path in ("channels_last", "compiled"):  # the same arithmetic: > 80 dB, or None (bit-identical)
        value = by_path[path]["psnr_vs_fast_db"]
        assert value is None or value > 80, (path, value)
    assert by_path["compiled"]["compile_s"] > 0
    assert "compile_s" not in by_path["fast"] and "psnr_vs_fast_db" not in by_path["fast"]


def test_cli_prints_json_lines(capsys, tmp_path):
    out = tmp_path / "bench.jsonl"
    assert run(["bench", "--cfg", "cpu", "--resolution", "16", "--batch", "1", "--no-train", "--seconds", "0.01",
                "--paths", "reference,fast", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in lines] == ["reference", "fast"]
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines
    assert run(["bench", "--paths", "turbo"]) == 2
    assert "unknown path" in capsys.readouterr().err
    assert run(["bench", "--device", "cpu", "--paths", "fp16", "--no-train"]) == 2
    assert "CUDA only" in capsys.readouterr().err
    assert run(["bench", "--device", "tpu9"]) == 2
    assert "unknown device" in capsys.readouterr().err


def test_psnr():
    import torch
    a = torch.zeros(1, 1, 4, 4)
    assert psnr(a, a) == float("inf")
    assert abs(psnr(a, a + 0.02) - 40.0) < 1e-3  # 10 log10(4 / 0.0004)
