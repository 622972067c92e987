"""`stylegan metrics`: JSON lines, run-dir logs and one-line errors."""
import json

from click.testing import CliRunner

from stylegan.cli.metrics import command

from metrics_helpers import blob_images, write_folder


def test_fakes_folder_prints_json_and_appends_to_run_dir(real_folder, tmp_path):
    fakes = write_folder(tmp_path / "fakes", blob_images(30, seed=3))
    run_dir = tmp_path / "run"
    args = ["--fakes", str(fakes), "--data", str(real_folder), "--metrics", "fid10k_full,kid50k_full",
            "--feature-net", "fmnist", "--num", "24", "--cache-dir", str(tmp_path / "cache"), "--run-dir", str(run_dir)]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [r["metric"] for r in lines] == ["fid10k_full", "kid50k_full"]
    assert lines[0]["num_fake"] == 24 and lines[0]["fakes"] == str(fakes)
    again = CliRunner().invoke(command, args)
    assert again.exit_code == 0
    log = (run_dir / "metric-fid10k_full.jsonl").read_text().strip().splitlines()
    assert len(log) == 2 and json.loads(log[1])["value"] == lines[0]["value"]
    assert json.loads(log[1])["real_stats_cached"] is True


def test_errors_are_one_line_with_exit_code_2(real_folder, tmp_path):
    result = CliRunner().invoke(command, ["--fakes", str(real_folder), "--data", str(real_folder), "--metrics", "fid9"])
    assert result.exit_code == 2
    assert "unknown metric 'fid9'" in result.output and "fid50k_full" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(command, ["--data", str(real_folder)])
    assert result.exit_code == 2 and "exactly one of --network or --fakes" in result.output
    result = CliRunner().invoke(command, ["--fakes", str(tmp_path / "none"), "--data", str(real_folder),
                                          "--feature-net", "fmnist"])
    assert result.exit_code == 2 and "not found" in result.output
