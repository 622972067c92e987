"""The CLI: help, summary, convert, generate, and one-line errors with exit code 2."""
import numpy as np
import pytest
from PIL import Image

from stylegan.cli.main import run

from official_helpers import OFFICIAL_SNAPSHOT


def test_help_lists_commands(capsys):
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("summary", "convert", "generate", "dataset"):
        assert name in out


def test_summary_seed_table(capsys):
    assert run(["summary", "--cfg", "stylegan2", "--resolution", "32"]) == 0
    out = capsys.readouterr().out
    totals = [line.split() for line in out.splitlines() if line.startswith("Total")]
    assert totals == [["Total", "21523475", "3392", "-", "-"], ["Total", "21507073", "224", "-", "-"]]


def test_convert_then_generate_identical(tmp_path, capsys):
    dest = tmp_path / "net.safetensors"
    assert run(["convert", str(OFFICIAL_SNAPSHOT), str(dest)]) == 0
    assert run(["convert", str(OFFICIAL_SNAPSHOT), str(dest)]) == 2  # exists without --force
    for src, out in [(OFFICIAL_SNAPSHOT, tmp_path / "a"), (dest, tmp_path / "b")]:
        assert run(["generate", "--network", str(src), "--seeds", "0-2,5", "--trunc", "0.7", "--grid",
                    "--outdir", str(out)]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0005.png"]
    for name in names:
        a = np.asarray(Image.open(tmp_path / "a" / name))
        b = np.asarray(Image.open(tmp_path / "b" / name))
        assert np.array_equal(a, b)
    assert np.asarray(Image.open(tmp_path / "a" / "grid.png")).shape == (32, 32, 3)
    seeds = [np.asarray(Image.open(tmp_path / "a" / f"seed000{i}.png")) for i in (0, 1)]
    assert not np.array_equal(seeds[0], seeds[1])


def test_generate_conditional(cond_export, tmp_path):
    assert run(["generate", "--network", str(cond_export), "--seeds", "1", "--class", "3",
                "--outdir", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "seed0001.png").exists()


@pytest.mark.parametrize("args,message", [
    (["--network", "/nope.pkl", "--seeds", "0"], "no such file"),
    (["--seeds", "7-3"], "runs backwards"),
    (["--seeds", "a-b"], "cannot read seeds"),
    (["--seeds", "0", "--trunc", "abc"], "not a valid float"),
    (["--seeds", "0", "--class", "2"], "unconditional"),
    (["--seeds", "0", "--noise-mode", "loud"], "noise-mode"),
])
def test_generate_bad_arguments(tmp_path, capsys, args, message):
    if "--network" not in args:
        args = ["--network", str(OFFICIAL_SNAPSHOT)] + args
    assert run(["generate", *args, "--outdir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,message", [(["--class", "10"], "out of range"), ([], "give --class")])
def test_generate_conditional_bad_class(cond_export, tmp_path, capsys, args, message):
    assert run(["generate", "--network", str(cond_export), "--seeds", "0", *args, "--outdir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_console_script_entry_point():
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "stylegan", "generate", "--network", "/missing", "--seeds", "0",
                           "--outdir", "/tmp/x"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: /missing: no such file"


@pytest.mark.parametrize("device,message", [("gpu", "unknown device 'gpu'"), ("cuda:7", "device 'cuda:7'")])
def test_bad_device_is_one_line(tmp_path, capsys, device, message):
    import torch
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    assert run(["generate", "--network", str(OFFICIAL_SNAPSHOT), "--seeds", "0", "--device", device,
                "--outdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_command_line_turns_on_huge_pages_unless_the_user_chose(monkeypatch):
    """The `stylegan` process asks PyTorch for transparent huge pages for its large CPU tensors
    (THP_MEM_ALLOC_ENABLE=1); a value already in the environment is kept."""
    from stylegan.cli import main as cli_main

    monkeypatch.setattr(cli_main, "run", lambda: 0)
    for given, expected in ((None, "1"), ("0", "0")):
        if given is None:
            monkeypatch.delenv(cli_main.HUGE_PAGES_ENV, raising=False)
        else:
            monkeypatch.setenv(cli_main.HUGE_PAGES_ENV, given)
        with pytest.raises(SystemExit) as exit_info:
            cli_main.main()
        assert exit_info.value.code == 0 and cli_main.os.environ[cli_main.HUGE_PAGES_ENV] == expected
