"""Networks by URL, name and hf:// on the command line, and `stylegan pretrained`, against a local HTTP server
(tests/network_server.py); the catalog's real addresses are never fetched."""
import json
import re
import sys
from pathlib import Path

import click
import pytest

from network_server import cache, server  # noqa: F401 (fixtures)
from stylegan.cli import train as train_cli
from stylegan.cli.common import resolve_network_param
from stylegan.cli.main import cli, run
from stylegan.io import catalog
from stylegan.io.catalog import PretrainedNetwork
from stylegan.io.fetch import cache_path
from train_helpers import make_dataset

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "official" / "official_snapshot_tiny16.pkl"
DATA = FIXTURE.read_bytes()
NGC_PATH = "/v2/models/nvidia/research/stylegan3/versions/1/files/stylegan3-t-ffhqu-256x256.pkl"
# Every command that reads a network, and the parameter that names it (convert: its SRC argument).
NETWORK_PARAMS = {"generate": "network_path", "mix": "network_path", "video": "network_path",
                  "noise": "network_path", "project": "network_path", "metrics": "network_path",
                  "summary": "network_path", "export": "network_path", "edit": "network_path",
                  "directions": "network_path", "serve": "network_path", "convert": "src"}


def _one_error(capsys) -> str:
    """The command's single `error:` line, which must be the last line on stderr."""
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    return errors[0]


def test_nvidias_gen_images_line_with_a_url_works_as_written(server, cache, tmp_path, capsys):
    url = server.add(NGC_PATH, DATA)
    line = f"--outdir=OUT --trunc=1 --seeds=0-1 --network={url}"
    assert run(["generate", *line.replace("OUT", str(tmp_path / "out")).split()]) == 0
    first = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.png")}
    assert sorted(first) == ["seed0000.png", "seed0001.png"]
    assert f"downloading {url}" in capsys.readouterr().err
    server.stop()  # offline: the cached file serves the same command
    assert run(["generate", *line.replace("OUT", str(tmp_path / "again")).split()]) == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "again").glob("*.png")} == first
    assert "downloading" not in capsys.readouterr().err and len(server.gets(NGC_PATH)) == 1


def test_every_network_option_resolves_urls_and_names():
    for name, param_name in NETWORK_PARAMS.items():
        params = {p.name: p for p in cli.commands[name].params}
        assert params[param_name].callback is resolve_network_param, name
        assert name == "metrics" or "--cache-dir" in {o for p in params.values() for o in p.opts}, name


def test_summary_convert_and_cache_dir_take_urls(server, cache, tmp_path, capsys):
    url = server.add("/net.pkl", DATA)
    assert run(["summary", "--network", url, "--cache-dir", str(tmp_path / "mine")]) == 0
    assert "mapping.fc0          1056" in capsys.readouterr().out  # the fixture's tables
    assert cache_path(url, tmp_path / "mine").is_file() and not cache.exists()
    assert run(["convert", url, str(tmp_path / "net.safetensors")]) == 0
    assert (tmp_path / "net.safetensors").is_file() and cache_path(url).is_file()


@pytest.mark.parametrize("route,message", [
    (dict(status=404), "not found (HTTP 404)"),
    (dict(body=b"<html><title>Google Drive - Quota exceeded</title></html>" + b" " * 100, content_type="text/html"),
     "Google Drive sent a web page"),
])
def test_bad_downloads_are_one_line_and_leave_nothing(server, cache, tmp_path, capsys, route, message):
    url = server.add("/net.pkl", **route)
    assert run(["generate", "--network", url, "--seeds", "0", "--outdir", str(tmp_path / "o")]) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: --network {url}: ") and message in line
    assert not (tmp_path / "o").exists() and not cache_path(url).exists()
    assert not list((cache / "networks").glob("*.part"))


def test_hub_addresses_on_the_command_line(server, cache, tmp_path, monkeypatch, capsys):
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    server.add("/owner/repo/resolve/main/net.pkl", DATA, headers={"X-Repo-Commit": "b" * 40})
    monkeypatch.setenv("HF_ENDPOINT", server.url(""))  # read by io.hf_hub at call time
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert run(["convert", "hf://owner/repo/net.pkl", str(tmp_path / "net.safetensors")]) == 0
    assert (tmp_path / "net.safetensors").is_file() and list((tmp_path / "hub").rglob("net.pkl"))


def test_hub_without_its_package_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    assert run(["summary", "--network", "hf://owner/repo/net.pkl"]) == 2
    assert 'pip install "stylegan[hf]"' in _one_error(capsys)


def test_train_resume_takes_urls_and_nvidias_names(server, cache, tmp_path, capsys):
    """A dry run checks --resume without downloading; a run resolves it to the cached file."""
    url = server.add(NGC_PATH, DATA)
    data = make_dataset(tmp_path / "blobs", resolution=32)
    for resume in (url, "ffhq1024", "stylegan3-r-ffhqu-1024x1024"):
        code = run(["train", f"--data={data}", f"--outdir={tmp_path}", "--cfg=stylegan3-r", "--gpus=8",
                    "--batch=32", "--gamma=6.6", "--mirror=1", "--kimg=5000", "--snap=5", f"--resume={resume}",
                    "--dry-run"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert json.loads(captured.out)["resume"] == resume
    assert server.requests == [] and not cache.exists()
    with click.Context(train_cli.command):
        assert train_cli._resume_path(url, dry_run=False) == str(cache_path(url))
    assert cache_path(url).read_bytes() == DATA


def test_pretrained_lists_and_downloads(server, cache, monkeypatch, capsys):
    url = server.add("/pretrained/tiny16.pkl", DATA)
    local = PretrainedNetwork("test-tiny16", url, "StyleGAN2-ADA (PyTorch)", "16x16", "Fixture", "here",
                              aliases=("tiny16",))
    monkeypatch.setattr(catalog, "CATALOG", (local, *catalog.CATALOG))
    assert run(["pretrained"]) == 0
    listing = capsys.readouterr().out
    assert all(entry.name in listing for entry in catalog.CATALOG)
    assert re.search(r"^test-tiny16\s+StyleGAN2-ADA \(PyTorch\)\s+16x16\s+Fixture\s+-\s+no$", listing, re.M)
    assert run(["pretrained", "--download", "tiny16"]) == 0
    assert capsys.readouterr().out.strip() == f"test-tiny16: {cache_path(url)}"
    assert run(["pretrained", "tiny16", "--urls"]) == 0
    listing = capsys.readouterr().out
    assert re.search(rf"^test-tiny16 .*\s625 KB\s+yes\s+{re.escape(url)}$", listing, re.M), listing
    assert "1 networks" in listing


@pytest.mark.parametrize("argv,message", [
    (["pretrained", "--download", "stylegan3-t-ffhqu-256x25"], "did you mean stylegan3-t-ffhqu-256x256"),
    (["pretrained", "--download"], "--download needs the NAMES"),
    (["pretrained", "nothing-like-this"], "no network name contains 'nothing-like-this'"),
])
def test_pretrained_refusals(capsys, cache, argv, message):
    assert run(argv) == 2
    assert message in _one_error(capsys)


def test_the_docs_table_lists_the_catalog():
    text = (ROOT / "docs" / "pretrained.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([^`]+)` \|.*\| (https://\S+) \|$", text, re.M)}
    assert rows == {entry.name: entry.url for entry in catalog.CATALOG}
