"""Whole-loop benchmark: real `stylegan train` ticks on generated data, each path against the reference path."""
import json
import zipfile

import pytest

from stylegan.errors import UserInputError
from stylegan.cli.bench_loop import LOOP_PATHS, SMALL_CONFIG, run_loop_case, synthetic_dataset

# NVIDIA's small command line with tiny widths and batch, so a run takes seconds.
TINY = (*SMALL_CONFIG, "--cbase", "128", "--cmax", "16", "--batch", "8")


def test_rows_for_each_path_against_reference(tmp_path, capsys):
    out = tmp_path / "loop.jsonl"
    rows = run_loop_case(paths=("reference", "fast_eager"), kimg=0.032, tick_kimg=0.008, workers=0,
                         dataset_size=16, config=TINY, out=str(out))
    assert [r["path"] for r in rows] == ["reference", "fast_eager"]
    for row in rows:
        assert row["what"] == "train_loop" and row["speedup_vs"] == "reference"
        assert row["kimg_timed"] == pytest.approx(0.024)  # the first tick is warm-up, not timed
        assert row["sec_per_kimg"] > 0 and row["img_per_s"] == pytest.approx(1000 / row["sec_per_kimg"], rel=0.02)
        assert set(row["phase_sec"]) >= {"Gmain_sec", "Dmain_sec"}
        assert "cpu" in row["machine"] and "avx2" in row["machine"]
        assert row["flags"] == " ".join(LOOP_PATHS[row["path"]])
    assert rows[0]["speedup"] == 1.0
    assert rows[1]["speedup"] == pytest.approx(rows[0]["sec_per_kimg"] / rows[1]["sec_per_kimg"], rel=0.01)
    # The path's flags reached `stylegan train`: the run recorded the reference ops and float32.
    assert rows[0]["requested"] == {"resample": "reference", "precision": "fp32", "channels_last": False,
                                    "compile": "off"}
    assert rows[1]["requested"]["resample"] == "fast"
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == ["reference", "fast_eager"]
    captured = capsys.readouterr()
    assert "tick 0" not in captured.out and "tick 0" in captured.err  # stdout stays for the bench's JSON rows


def test_synthetic_dataset_is_a_training_zip(tmp_path):
    path = synthetic_dataset(tmp_path / "blobs.zip", count=5, resolution=8)
    with zipfile.ZipFile(path) as z:
        assert sum(n.endswith(".png") for n in z.namelist()) == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(paths=("nope",)), "unknown loop path nope"),
    (dict(paths=()), "unknown loop path"),
    (dict(kimg=0.01, tick_kimg=0.008), "at least two ticks"),
    (dict(rounds=0), "rounds must be"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        run_loop_case(**kwargs)
