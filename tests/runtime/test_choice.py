"""The automatic path choice (runtime/choice.py): rules with injected timings, the probe on tiny networks, and
one real `stylegan train` run that prints the choice and records it in training_options.json."""
import json

import pytest
import torch
from click.testing import CliRunner

from stylegan.cli.main import cli
from stylegan.ops.registry import OPS
from stylegan.runtime import choice as speed_path
from stylegan.runtime.choice import (BF16_MIN_PSNR_DB, COMPILE_COST_S, COMPILE_PAYBACK, PROBE_REPEATS, PROBE_SHARE,
                                     Candidate, Job, PathChoice, choose_inference_path, choose_path)
from stylegan.runtime.compile import EagerFallback
from stylegan.runtime.path import FAST, INFERENCE, REFERENCE, TRITON, triton_ops, with_triton
from triton_helpers import KERNEL_DEVICE  # Triton's interpreter where there is no GPU, for the kernel check

CPU = torch.device("cpu")
LONG = 10 ** 6  # network calls of a job long enough to probe and to compile


def fixed(img_per_s: dict, batch: int = 8, calls: list = None):
    """measure() returning the seconds per call that give these img/s per candidate name."""
    def measure(cand: Candidate) -> float:
        if calls is not None:
            calls.append(cand.name)
        return batch / img_per_s[cand.name]
    return measure


def choose(job=None, *, native=True, speeds=None, psnr=40.0, compile_error=None, checks=None, **flags):
    checks = [] if checks is None else checks

    def compile_check():
        checks.append(1)
        return compile_error
    job = job or Job("train", 8, LONG)
    return choose_path(job, CPU, native_bf16=native,
                       measure=fixed(speeds or {"fp32": 10, "bf16": 30, "fp32-channels-last": 12,
                                                "bf16-channels-last": 20}, batch=job.batch),
                       bf16_psnr=lambda: psnr, compile_check=compile_check, **flags)


def test_probe_picks_the_fastest_candidate_and_records_why():
    path = choose()
    assert (path.precision, path.channels_last, path.compile) == ("bf16", False, "default")
    assert path.reason == "fastest in the probe" and path.compile_support == "ok"
    assert path.probe_img_per_s == {"fp32": 10, "bf16": 30, "fp32-channels-last": 12, "bf16-channels-last": 20}
    record = path.to_json()
    assert json.loads(json.dumps(record)) == record  # training_options.json can hold it
    assert record["requested"] == {"precision": "auto", "channels_last": "auto", "compile": "auto"}
    assert "bf16, NCHW, compile default" in path.summary() and "bf16 PSNR 40.0 dB" in path.summary()
    fp32_wins = choose(speeds={"fp32": 10, "bf16": 3, "fp32-channels-last": 14, "bf16-channels-last": 2})
    assert (fp32_wins.precision, fp32_wins.channels_last) == ("fp32", True)
    near_tie = choose(speeds={"fp32": 10, "bf16": 10.5, "fp32-channels-last": 10.9, "bf16-channels-last": 9})
    assert (near_tie.precision, near_tie.channels_last) == ("fp32", False)  # within the 1.1x margin: as built
    assert near_tie.reason == "none 1.1x faster than fp32 in the probe"


def test_no_native_bf16_never_probes_bf16():
    calls = []
    path = choose_path(Job("train", 8, LONG), CPU, native_bf16=False, compile_check=lambda: None,
                       measure=fixed({"fp32": 10, "fp32-channels-last": 9}, calls=calls),
                       bf16_psnr=lambda: pytest.fail("bf16 quality probed without native bf16"))
    assert set(calls) == {"fp32", "fp32-channels-last"} and path.precision == "fp32" and not path.channels_last
    assert path.bf16_psnr_db is None


def test_bf16_below_the_psnr_threshold_is_dropped_however_fast():
    path = choose(psnr=BF16_MIN_PSNR_DB - 5)
    assert (path.precision, path.channels_last) == ("fp32", True)
    assert "bf16" not in "".join(path.probe_img_per_s) and "bf16 dropped" in path.reason


def test_short_jobs_and_several_processes_are_not_probed():
    probe_calls = 4 * PROBE_REPEATS["train"]
    for job in (Job("train", 8, PROBE_SHARE * probe_calls - 1), Job("train", 8, LONG, max_seconds=30),
                Job("train", 8, LONG, no_probe="several processes: not probed")):
        path = choose_path(job, CPU, native_bf16=True, measure=lambda c: pytest.fail("probed"),
                           bf16_psnr=lambda: pytest.fail("probed"), compile_check=lambda: pytest.fail("checked"))
        assert (path.precision, path.channels_last, path.compile) == ("fp32", False, "off")
        assert path.probe_img_per_s == {} and ("short" in path.reason or "several" in path.reason)


def test_flags_override_and_narrow_the_probe():
    calls = []
    path = choose_path(Job("train", 8, LONG), CPU, native_bf16=True, precision="fp32", compile="off",
                       measure=fixed({"fp32": 10, "fp32-channels-last": 20}, calls=calls),
                       bf16_psnr=lambda: pytest.fail("bf16 probed against --precision fp32"),
                       compile_check=lambda: pytest.fail("compile checked against --compile off"))
    assert set(calls) == {"fp32", "fp32-channels-last"}
    assert (path.precision, path.channels_last, path.compile) == ("fp32", True, "off")
    fixed_all = choose(precision="bf16", channels_last=False, compile="max-autotune")
    assert (fixed_all.precision, fixed_all.channels_last, fixed_all.compile) == ("bf16", False, "max-autotune")
    assert fixed_all.reason == "flags" and fixed_all.requested["channels_last"] is False


def test_compile_follows_the_payback_rule():
    """Compile when the job, at the probe's speed, lasts COMPILE_PAYBACK x the compile cost; never where the
    toolchain fails (one printed line) or for jobs that do not compile (StyleGAN3, progressive growing)."""
    speeds = {"fp32": 10, "bf16": 1, "fp32-channels-last": 1, "bf16-channels-last": 1}  # 10 img/s at batch 1
    threshold_calls = COMPILE_PAYBACK * COMPILE_COST_S["train"] * 10  # 4500 calls: long enough to probe
    assert choose(Job("train", 1, int(threshold_calls) + 10), speeds=speeds).compile == "default"
    assert choose(Job("train", 1, int(threshold_calls) - 10), speeds=speeds).compile == "off"
    limited = Job("train", 8, LONG, max_seconds=COMPILE_PAYBACK * COMPILE_COST_S["train"] - 1)
    assert choose(limited, speeds=speeds).compile == "off"
    checks = []
    assert choose(Job("train", 8, LONG, compilable=False), checks=checks).compile == "off" and not checks
    broken = choose(compile_error="torch.compile does not work on this machine (no g++)")
    assert broken.compile == "off" and "no g++" in broken.compile_support


def test_inference_compiles_by_the_same_rule_with_its_own_cost():
    """Tools compile the synthesis when the job lasts COMPILE_PAYBACK x the inference compile cost; StyleGAN3
    never compiles by itself."""
    speeds = {"fp32": 10, "bf16": 1, "fp32-channels-last": 1, "bf16-channels-last": 1}  # 10 img/s at batch 1
    threshold_calls = int(COMPILE_PAYBACK * COMPILE_COST_S["inference"] * 10)
    assert choose(Job("inference", 1, threshold_calls + 10), speeds=speeds).compile == "default"
    assert choose(Job("inference", 1, threshold_calls - 10), speeds=speeds).compile == "off"
    from stylegan.networks.stylegan3 import Generator3
    G3 = Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                    num_layers=4, num_critical=2)
    assert choose_inference_path(G3, CPU, 1, LONG, "fp32", compile="auto").compile == "off"


def test_tools_compile_the_synthesis_for_their_batch_size(tmp_path, monkeypatch):
    """`generate --compile default` runs the synthesis compiled for full batches (graph capture here: eager
    kernels, so the images equal the eager ones) and the last, partial batch eagerly, without a second graph."""
    import numpy as np
    from PIL import Image

    from official_helpers import OFFICIAL_SNAPSHOT
    from train_helpers import capture_compiles
    compiled, runs = capture_compiles(monkeypatch)
    runner = CliRunner()
    base = ["generate", "--network", str(OFFICIAL_SNAPSHOT), "--seeds", "0-4", "--batch", "2", "--precision", "fp32",
            "--channels-last", "0"]
    eager = runner.invoke(cli, base + ["--compile", "off", "--outdir", str(tmp_path / "a")])
    assert eager.exit_code == 0 and not compiled and not runs, eager.output
    fast = runner.invoke(cli, base + ["--compile", "default", "--outdir", str(tmp_path / "b")])
    assert fast.exit_code == 0, fast.output
    assert "path: fp32, NCHW, compile default (flags" in fast.stderr
    assert compiled == [("method", "default")] and len(runs) == 2  # batches of 2, 2 compiled; the last 1 eager
    for i in range(5):
        a, b = (np.asarray(Image.open(tmp_path / d / f"seed000{i}.png")) for d in "ab")
        assert np.array_equal(a, b)
    bad = runner.invoke(cli, base + ["--compile", "fastest", "--outdir", str(tmp_path / "c")])
    assert bad.exit_code == 2 and "'fastest' is not one of" in bad.output and not (tmp_path / "c").exists()


def choose_on_cuda(kernel_check, base_path=FAST, **flags):
    return choose_path(Job("train", 8, LONG), torch.device("cuda"), native_bf16=True,
                       measure=lambda c: pytest.fail("probed"), bf16_psnr=lambda: pytest.fail("probed"),
                       compile_check=lambda: pytest.fail("checked"), base_path=base_path, kernel_check=kernel_check,
                       **flags)


def test_cuda_keeps_nvidias_path_without_probing_and_takes_the_triton_kernels():
    """On CUDA (device facts injected): NVIDIA's float16 blocks, not probed, and every op that has a Triton kernel
    runs it once the kernel check passes; the one line says which."""
    checks = []
    path = choose_on_cuda(lambda: checks.append(1))  # None: the kernels passed
    assert (path.precision, path.channels_last, path.compile) == ("fp16", False, "off") and len(checks) == 1
    assert path.path == TRITON.replace(precision="fp16") and path.kernels == "ok"
    assert {op for op, impl in path.path.ops.items() if impl == "triton"} == {"bias_act", "conv2d_resample",
                                                                              "upfirdn2d"} | set(triton_ops())
    assert "; Triton kernels: bias_act, conv2d_resample" in path.summary()
    assert PathChoice.from_json(path.to_json()).to_json() == path.to_json()
    inference = choose_on_cuda(lambda: None, base_path=INFERENCE)  # the tools' path, its ops with kernels replaced
    assert inference.path.ops == with_triton(INFERENCE).ops and inference.path.ops["bias_act"] == "triton"


def test_cuda_without_working_kernels_keeps_the_pytorch_ops_and_says_why_in_one_line():
    path = choose_on_cuda(lambda: "TritonUnavailable: bias_act: the 'triton' implementation needs Triton")
    assert path.path == FAST.replace(precision="fp16") and path.kernels.startswith("TritonUnavailable")
    line = path.summary()
    assert "\n" not in line and "Triton kernels off, PyTorch ops: TritonUnavailable: bias_act" in line


def test_reference_resampling_and_cpus_never_check_the_kernels():
    """--resample reference keeps every reference op on CUDA too; on the CPU the PyTorch ops run, unchecked."""
    path = choose_on_cuda(lambda: pytest.fail("kernels checked under --resample reference"), base_path=REFERENCE)
    assert path.path.ops == REFERENCE.ops and path.kernels == "not checked"
    cpu = choose_path(Job("train", 8, 10), CPU, native_bf16=False, measure=lambda c: 1.0, bf16_psnr=lambda: 40.0,
                      compile_check=lambda: None, kernel_check=lambda: pytest.fail("kernels checked on the CPU"))
    assert cpu.path.ops == FAST.ops and "Triton" not in cpu.summary()


@pytest.mark.triton
def test_the_kernel_check_runs_every_kernel_against_its_reference(monkeypatch):
    """The real check (here in Triton's interpreter on CPU tensors; compiled on a GPU): the kernels pass; a kernel
    that computes something else, or fails, is reported in one line; every op with a kernel has a case."""
    from stylegan.runtime import kernel_check
    assert set(triton_ops()) <= set(kernel_check.CASES)
    assert kernel_check.triton_problem(KERNEL_DEVICE) is None
    monkeypatch.setitem(OPS["bias_act"], "triton", lambda x, b, *args: OPS["bias_act"]["reference"](x, b, *args) * 1.01)
    assert kernel_check.triton_problem(KERNEL_DEVICE) == "bias_act's kernel gives another value than the reference"

    def broken(*args, **kwargs):
        raise RuntimeError("PTX compile failed\nlong log")
    monkeypatch.setitem(OPS["bias_act"], "triton", broken)
    assert kernel_check.triton_problem(KERNEL_DEVICE) == "RuntimeError: PTX compile failed"


def test_inference_probe_on_a_tiny_generator(monkeypatch):
    """The real probe times every candidate on a copy (the generator keeps its layout) and measures bf16 quality."""
    from train_helpers import tiny_config

    from stylegan.networks.registry import build_network
    net = tiny_config().network
    G = build_network(net.generator_class, net.generator_kwargs(16, 1, 0)).eval()
    monkeypatch.setattr(speed_path.hardware, "native_bf16", lambda device: True)
    path = choose_inference_path(G, CPU, 2, 10 ** 6)
    assert set(path.probe_img_per_s) == {"fp32", "bf16", "fp32-channels-last", "bf16-channels-last"}
    assert path.bf16_psnr_db > 20 and path.compile == "off"
    assert not any(getattr(m, "channels_last", False) for m in G.modules())  # the original is untouched
    assert choose_inference_path(G, CPU, 2, 16).probe_img_per_s == {}  # 8 calls: too short to probe


def test_probe_runs_g_as_the_job_does(monkeypatch):
    """The training probe runs the training phases with G in training mode, as the loop does, and inference in
    eval mode: a network's 'inference_only' modulation follows the mode, and timing the wrong one ranked the layouts
    wrongly. The originals keep their mode and layout."""
    from train_helpers import tiny_config

    from stylegan.networks.registry import build_network
    from stylegan.runtime.path import FAST
    from stylegan.training.setup import _training_probe
    net = tiny_config().network
    G = build_network(net.generator_class, net.generator_kwargs(16, 1, 0)).eval()
    D = build_network(net.discriminator_class, net.discriminator_kwargs(16, 1, 0))
    modes = []
    G.synthesis.register_forward_pre_hook(lambda module, args: modes.append(module.training))  # copies keep it
    measure, _ = _training_probe(G, D, tiny_config(), FAST, 2, CPU)
    for channels_last in (False, True):
        measure(Candidate("fp32", channels_last))
    assert modes == [True, True, True, True]  # G main and D main per candidate
    modes.clear()
    monkeypatch.setattr(speed_path.hardware, "native_bf16", lambda device: False)
    choose_inference_path(G, CPU, 2, LONG)
    assert modes and not any(modes)
    assert not G.training and not any(getattr(m, "channels_last", False) for m in G.modules())


def test_eager_fallback_says_one_line_and_continues():
    lines = []
    eager = torch.nn.Linear(2, 2)

    def broken(*args):
        raise RuntimeError("InductorError: C++ compile error\nlong details")
    fallback = EagerFallback(broken, eager, lines.append)
    x = torch.ones(1, 2)
    assert torch.equal(fallback(x), eager(x)) and torch.equal(fallback(x), eager(x))
    assert len(lines) == 1 and "continuing eagerly" in lines[0] and "long details" not in lines[0]
    assert lines[0].startswith("compiling Linear failed (RuntimeError: InductorError")
    named = EagerFallback(broken, eager.forward, lines.append, name="SynthesisNetwork")
    named(x)
    assert lines[1].startswith("compiling SynthesisNetwork failed")


def test_train_prints_and_records_the_choice(tmp_path):
    """A real `stylegan train` run (too short to probe or compile): the path line is printed and the choice is
    recorded beside the flags' values in training_options.json."""
    from train_helpers import make_dataset
    data = make_dataset(tmp_path / "data", count=16)
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--outdir", str(tmp_path / "runs"), "--cfg", "cpu",
                                      "--cbase", "256", "--cmax", "16", "--batch", "8", "--kimg", "0.016", "--tick",
                                      "0.008", "--snap", "1", "--workers", "0", "--no-progress", "--metrics", "none"])
    assert result.exit_code == 0, result.output
    assert "path: fp32, NCHW, compile off (job too short to probe" in result.output
    options = json.loads(next((tmp_path / "runs").glob("*/training_options.json")).read_text())
    assert (options["precision"], options["channels_last"], options["compile"]) == ("auto", None, "auto")
    assert options["speed_path"]["precision"] == "fp32" and options["speed_path"]["compile"] == "off"
    assert options["speed_path"]["reason"] == "job too short to probe"
    assert PathChoice.from_json(options["speed_path"]).to_json() == options["speed_path"]


def test_tool_flags_override_the_choice(tmp_path):
    """`generate --precision bf16 --channels-last --compile off` renders on that path (images close to float32 ones)
    and says so (with --compile left to auto, a job this short says "too short to probe" instead: nothing told
    whether compiling would pay);
    `mix` and `video` take the same flags; --channels-last on a StyleGAN3 network is refused in one line."""
    import numpy as np
    from PIL import Image

    from official_helpers import OFFICIAL_SNAPSHOT
    from stylegan.io.export import save_network
    from stylegan.tools.projector import psnr
    runner = CliRunner()
    base = ["generate", "--network", str(OFFICIAL_SNAPSHOT), "--seeds", "0-3"]
    plain = runner.invoke(cli, base + ["--outdir", str(tmp_path / "a")])
    fast = runner.invoke(cli, base + ["--precision", "bf16", "--channels-last", "--compile", "off",
                                      "--outdir", str(tmp_path / "b")])
    assert plain.exit_code == 0 and fast.exit_code == 0, plain.output + fast.output
    assert "path: fp32, NCHW, compile off (job too short to probe" in plain.stderr
    assert "path: bf16, channels-last, compile off (flags" in fast.stderr
    for i in range(4):
        a, b = (np.asarray(Image.open(tmp_path / d / f"seed000{i}.png")) for d in "ab")
        assert 25 < psnr(a, b) < float("inf")  # bf16 really ran, and stayed close
    mix = runner.invoke(cli, ["mix", "--network", str(OFFICIAL_SNAPSHOT), "--rows", "0,1", "--cols", "2",
                              "--channels-last=0", "--precision", "fp32", "--compile", "off",
                              "--out", str(tmp_path / "mix.png")])
    assert mix.exit_code == 0 and "path: fp32, NCHW, compile off (flags" in mix.stderr

    from stylegan.networks.stylegan3 import Generator3
    sg3 = tmp_path / "sg3.safetensors"
    save_network(sg3, {"G_ema": Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                                           channel_base=256, channel_max=16, num_layers=4, num_critical=2)})
    refused = runner.invoke(cli, ["generate", "--network", str(sg3), "--seeds", "0", "--channels-last",
                                  "--outdir", str(tmp_path / "c")])
    assert refused.exit_code == 2 and refused.stderr.strip().splitlines() == [
        "error: --channels-last applies to StyleGAN2 and StyleGAN generators; this one (StyleGAN3) has no "
        "channels-last path: drop the flag"]
    assert not (tmp_path / "c").exists()


def test_probe_stops_at_its_budget():
    """Slow calls (4 s each): the probe measures what fits in PROBE_MAX_S after its warm-up call, always the float32
    path first, and never chooses a candidate it did not measure."""
    calls = []
    seconds = {"fp32": 4.0, "bf16": 4.0, "fp32-channels-last": 4.0, "bf16-channels-last": 0.1}
    path = choose_path(Job("inference", 8, LONG), CPU, native_bf16=True, compile="off",
                       measure=lambda c: calls.append(c.name) or seconds[c.name], bf16_psnr=lambda: 40.0,
                       compile_check=lambda: None)
    assert speed_path.PROBE_MAX_S["inference"] == 10  # 4 s per call: the third one (warm-up included) crosses it
    assert calls == ["fp32", "fp32", "bf16"] and path.channels_last is False
    assert set(path.probe_img_per_s) == set(calls)


def test_training_probe_outlasts_the_kernel_warm_ups():
    """Training probes get PROBE_MAX_S['train'] (30 s): calls of 6 s each (first calls while oneDNN builds its
    kernels) still leave every candidate measured after the warm-up, so a fast one that comes last is found."""
    calls = []
    seconds = {"fp32": 6.0, "bf16": 6.0, "fp32-channels-last": 6.0, "bf16-channels-last": 0.1}
    path = choose_path(Job("train", 8, LONG), CPU, native_bf16=True, compile="off",
                       measure=lambda c: calls.append(c.name) or seconds[c.name], bf16_psnr=lambda: 40.0,
                       compile_check=lambda: None)
    assert speed_path.PROBE_MAX_S["train"] == 30
    assert calls[:5] == ["fp32", "fp32", "bf16", "fp32-channels-last", "bf16-channels-last"] and len(calls) < 9
    assert (path.precision, path.channels_last) == ("bf16", True)


def test_budget_spent_after_the_first_candidate_keeps_it():
    """Without native bf16, 31 s calls: only float32 as built is measured (the budget is spent), and it stays."""
    path = choose_path(Job("train", 8, LONG), CPU, native_bf16=False, compile="off",
                       measure=lambda c: 31.0, bf16_psnr=lambda: pytest.fail("probed"), compile_check=lambda: None)
    assert (path.precision, path.channels_last) == ("fp32", False) and list(path.probe_img_per_s) == ["fp32"]
    assert path.reason == "fastest in the probe (budget spent before fp32-channels-last)"


def test_seconds_of_drains_the_device_queue_before_and_after_the_call(monkeypatch):
    events = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append(("sync", str(device))))
    seconds = speed_path.seconds_of(lambda: events.append("call"), torch.device("cuda", 0))
    assert events == [("sync", "cuda:0"), "call", ("sync", "cuda:0")]
    assert seconds >= 0
    events.clear()
    speed_path.seconds_of(lambda: events.append("call"), CPU)  # nothing queued on the CPU: no CUDA call
    assert events == ["call"]
