"""`stylegan dataset` command: flags map to convert_dataset; bad input is one line and exit code 2."""
import numpy as np
import PIL.Image
from click.testing import CliRunner

from stylegan.cli.dataset import command
from stylegan.data.dataset import ImageDataset


def _folder(tmp_path):
    src = tmp_path / "src"
    for cls in ("a", "b"):
        (src / cls).mkdir(parents=True)
        PIL.Image.fromarray(np.full((8, 16, 4), 255, np.uint8)).save(src / cls / "img.png")
    (src / "a" / "broken.png").write_bytes(b"")
    return src


def test_flags_map_to_the_conversion(tmp_path):
    src = _folder(tmp_path)
    out = tmp_path / "out.zip"
    result = CliRunner().invoke(command, [
        "--source", str(src), "--dest", str(out), "--resolution", "8", "--transform", "pad",
        "--labels-from-folders", "--max-images", "2", "--resize-filter", "box", "--keep-alpha",
    ])
    assert result.exit_code == 0, result.output
    assert "warning: skipped a/broken.png: empty file" in result.stderr
    assert result.stdout.strip().startswith("wrote 2 images (8x8, 4 channel(s), labels: 2 classes)")
    ds = ImageDataset(out, use_labels=True)
    assert ds.image_shape == [4, 8, 8] and ds.label_dim == 2
    assert ds[0][0][3, 0].sum() == 0 and ds[0][0][3, 4].min() == 255  # transparent padding rows kept


def test_user_errors_are_one_line_exit_2(tmp_path):
    src = _folder(tmp_path)
    runner = CliRunner()
    result = runner.invoke(command, ["--source", str(src), "--dest", str(tmp_path / "o.zip"), "--resolution", "12"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: resolution must be a power of two") and result.stderr.count("\n") == 1
    (tmp_path / "o.zip").write_bytes(b"x")
    result = runner.invoke(command, ["--source", str(src), "--dest", str(tmp_path / "o.zip"), "--resolution", "8",
                                     "--transform", "pad"])
    assert result.exit_code == 2 and "--force" in result.stderr and "Traceback" not in result.output
    result = runner.invoke(command, ["--source", str(src), "--dest", str(tmp_path / "n.zip")])
    assert result.exit_code == 2 and "--transform" in result.stderr
