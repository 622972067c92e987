"""Networks by URL, by catalog name and from the Hugging Face Hub (io.fetch, io.catalog, io.hf_hub), against a local
HTTP server on 127.0.0.1 serving a real NVIDIA snapshot and the ways a download fails. No test reaches further."""
import hashlib
import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from network_server import cache, server  # noqa: F401 (fixtures)
from stylegan.errors import UserInputError
from stylegan.io import catalog, fetch
from stylegan.io.catalog import PretrainedNetwork
from stylegan.io.fetch import cache_path, network_source, resolve_network
from stylegan.io.hf_hub import HubFile, hub_download, parse_hub_url
from stylegan.io.load import load_generator

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "official_snapshot_tiny16.pkl"
DATA = FIXTURE.read_bytes()


def _final_files(cache_root: Path):
    """Files under their final name in the cache (not .part, .json or .lock)."""
    folder = cache_root / "networks"
    return sorted(p.name for p in folder.glob("*") if p.suffix not in (".part", ".json", ".lock")) \
        if folder.exists() else []


def _refused(url, message, **kwargs):
    with pytest.raises(UserInputError) as info:
        fetch.fetch(url, progress=False, **kwargs)
    text = str(info.value)
    assert text.startswith(url) and message in text and "\n" not in text, text
    return text


def test_a_url_is_downloaded_once_and_reused_offline(server, cache):
    url = server.add("/stylegan3/versions/1/files/net.pkl", DATA)
    path = Path(resolve_network(url, progress=False))
    assert path.parent == cache / "networks" and path.name.endswith("-net.pkl")
    assert path.read_bytes() == DATA and not list(path.parent.glob("*.part"))
    G = load_generator(url)  # the library takes the URL too: the cached file, through the same readers
    assert G.img_resolution == 16
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    server.stop()  # offline from here on
    assert resolve_network(url, progress=False) == str(path)
    assert load_generator(url).img_resolution == 16
    assert len(server.gets("/stylegan3/versions/1/files/net.pkl")) == 1


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("STYLEGAN_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert fetch.network_cache() == tmp_path / "home" / ".cache" / "stylegan" / "networks"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fetch.network_cache() == tmp_path / "xdg" / "stylegan" / "networks"
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "mine"))
    assert fetch.network_cache() == tmp_path / "mine" / "networks"
    assert fetch.network_cache(tmp_path / "flag") == tmp_path / "flag" / "networks"
    a, b = cache_path("https://a.example/x/net.pkl"), cache_path("https://b.example/x/net.pkl")
    assert a != b and a.name.endswith("-net.pkl") and b.name.endswith("-net.pkl")


def test_a_catalog_name_downloads_its_address_and_checks_its_checksum(server, cache, monkeypatch):
    url = server.add("/pretrained/metfaces.pkl", DATA)
    good = PretrainedNetwork("test-metfaces", url, "StyleGAN2-ADA (PyTorch)", "16x16", "test", "here",
                             sha256=hashlib.sha256(DATA).hexdigest(), aliases=("tm16",))
    bad = PretrainedNetwork("test-bad", server.add("/pretrained/bad.pkl", DATA), "x", "16x16", "test", "here",
                            sha256="0" * 64)
    monkeypatch.setattr(catalog, "CATALOG", (good, bad))
    assert network_source("tm16").url == url
    assert Path(resolve_network("test-metfaces.pkl", progress=False)).read_bytes() == DATA
    with pytest.raises(UserInputError, match="SHA-256 .* not the catalog's 0000"):
        resolve_network("test-bad", progress=False)
    assert _final_files(cache) == [cache_path(url).name] and not list((cache / "networks").glob("*.part"))


@pytest.mark.parametrize("status,message", [(404, "not found (HTTP 404)"), (410, "not found (HTTP 410)"),
                                            (403, "access denied (HTTP 403)"), (401, "access denied (HTTP 401)"),
                                            (503, "answered HTTP 503")])
def test_http_errors_are_one_line_and_leave_nothing(server, cache, status, message):
    _refused(server.add("/net.pkl", status=status), message)
    assert list((cache / "networks").iterdir()) == []  # no final file, no .part, no lock


@pytest.mark.parametrize("body,content_type,message", [
    (b"<!DOCTYPE html><html><title>Google Drive - Virus scan warning</title>" + b" " * 200, "text/html",
     "Google Drive sent a web page"),
    (b"\n  <html><body>Please log in</body></html>" + b" " * 200, "text/html; charset=utf-8", "sent a web page"),
    (b"<html><body>Sign in</body></html>" + b" " * 200, "application/octet-stream", "sent a web page"),
    (b"GIF89a" + bytes(300), "image/gif", "not a network file we read"),
])
def test_web_pages_and_other_files_are_refused(server, cache, body, content_type, message):
    _refused(server.add("/uc", body, content_type=content_type), message)
    assert _final_files(cache) == [] and not list((cache / "networks").glob("*.part"))


def test_an_interruption_is_resumed_in_the_same_call(server, cache):
    url = server.add("/net.pkl", DATA, cut=1000, cut_times=1)
    assert fetch.fetch(url, progress=False).read_bytes() == DATA
    first, second = server.gets("/net.pkl")
    assert "Range" not in first and second["Range"] == "bytes=1000-" and second["If-Range"].startswith('"')


def test_an_interruption_resumes_in_a_later_call(server, cache):
    url = server.add("/net.pkl", DATA, cut=1000)
    text = _refused(url, "stopped after 1,000 bytes", attempts=1)
    assert "run the command again to resume it" in text
    part = cache_path(url).with_name(cache_path(url).name + ".part")
    assert part.stat().st_size == 1000 and _final_files(cache) == []
    server.routes["/net.pkl"].cut = None  # the connection is back
    assert fetch.fetch(url, progress=False).read_bytes() == DATA
    assert server.gets("/net.pkl")[-1]["Range"] == "bytes=1000-" and not part.exists()


def test_a_file_that_changed_since_the_part_is_fetched_whole(server, cache):
    url = server.add("/net.pkl", DATA, cut=1000)
    _refused(url, "stopped after", attempts=1)
    changed = DATA[:500] + b"\x00" * 100 + DATA[600:]
    server.add("/net.pkl", changed)  # new body, new ETag: the If-Range of the resumed request no longer matches
    assert fetch.fetch(url, progress=False).read_bytes() == changed


def test_a_stale_part_larger_than_the_file_is_restarted(server, cache):
    url = server.add("/net.pkl", DATA)
    part = cache_path(url).with_name(cache_path(url).name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA + DATA)
    part.with_name(part.name + ".json").write_text(json.dumps(dict(url=url, validator=None)))
    assert fetch.fetch(url, progress=False).read_bytes() == DATA  # 416 for the range, then the whole file


def test_truncation_without_ranges_leaves_nothing(server, cache):
    url = server.add("/net.pkl", DATA, cut=1000, ranges=False)
    assert "run the command again to retry it" in _refused(url, "closed the connection at 1,000 of")
    assert len(server.gets("/net.pkl")) == fetch.ATTEMPTS
    assert _final_files(cache) == [] and not list((cache / "networks").glob("*.part"))


def test_a_stalled_server_times_out(server, cache):
    url = server.add("/net.pkl", DATA, stall=True, cut=100)
    _refused(url, "the server sent nothing for 0.2 s", timeout=0.2, attempts=2)
    assert _final_files(cache) == []


def test_a_slow_server_completes(server, cache):
    url = server.add("/net.pkl", DATA, trickle=8)
    assert fetch.fetch(url, progress=False).read_bytes() == DATA


def test_processes_wanting_the_same_url_take_turns(server, cache):
    """Two at once (as torchrun ranks): one downloads, the other waits on the lock and then finds the file."""
    url = server.add("/net.pkl", DATA, trickle=20)
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: fetch.fetch(url, progress=False), range(2)))
    assert paths[0] == paths[1] and paths[0].read_bytes() == DATA
    assert len(server.gets("/net.pkl")) == 1 and sorted(p.name for p in paths[0].parent.iterdir()) == [paths[0].name]


def test_redirects_are_followed_and_named_after_the_address_given(server, cache):
    url = server.add("/files/stylegan3-t-test.pkl", redirect="/signed/blob-123")
    server.add("/signed/blob-123", DATA)
    path = fetch.fetch(url, progress=False)
    assert path.name.endswith("-stylegan3-t-test.pkl") and path.read_bytes() == DATA


def test_no_network_says_so(cache):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _refused(f"http://127.0.0.1:{port}/net.pkl", "cannot reach 127.0.0.1")


def test_the_progress_line_names_the_url_and_the_file(server, cache, capsys):
    url = server.add("/net.pkl", DATA)
    path = fetch.fetch(url)
    assert f"downloading {url} to {path}" in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["ftp://host/net.pkl", "file:///tmp/net.pkl", "s3://bucket/net.pkl",
                                  "gs://bucket/net.pkl"])
def test_other_schemes_are_refused(spec):
    with pytest.raises(UserInputError, match="only http:// and https://"):
        network_source(spec)


def test_paths_names_and_hints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert network_source("stylegan3-t-ffhqu-256x256").kind == "catalog"
    assert network_source("ffhq1024").url.endswith("/ffhq-res1024-mirror-stylegan2-noaug.pkl")
    (tmp_path / "ffhq1024").write_bytes(DATA)  # a file of that name wins over the catalog
    assert network_source("ffhq1024") == fetch.NetworkSource("path", "ffhq1024")
    assert network_source("no/such/net.pkl").kind == "path"  # io.load reports the missing file
    assert network_source("ffhq512.pkl").kind == "path"  # '.pkl' is added to NVIDIA's file names only
    assert network_source("stylegan2-ffhq-512x512.pkl").url.endswith("/stylegan2-ffhq-512x512.pkl")
    with pytest.raises(UserInputError, match="did you mean stylegan3-t-ffhqu-256x256"):
        network_source("stylegan3-t-ffhqu-256x25")


def test_catalog_names_are_unique_and_addresses_official():
    keys = [key for entry in catalog.CATALOG for key in (entry.name, *entry.aliases)]
    assert len(keys) == len(set(keys)) == len(catalog._index())
    hosts = {"api.ngc.nvidia.com", "nvlabs-fi-cdn.nvidia.com", "drive.google.com"}
    for entry in catalog.CATALOG:
        assert entry.url.startswith("https://") and entry.url.split("/")[2] in hosts, entry
        assert entry.source.startswith("NVlabs/") and entry.generation and entry.dataset and "x" in entry.resolution
        assert entry.sha256 is None or len(entry.sha256) == 64
    gens = {entry.generation for entry in catalog.CATALOG}
    assert {"StyleGAN3-T", "StyleGAN3-R", "StyleGAN2-ADA (PyTorch)", "StyleGAN2 (TF)", "StyleGAN (TF)"} <= gens


@pytest.mark.parametrize("url,expected", [
    ("hf://owner/repo/net.pkl", HubFile("owner/repo", "net.pkl")),
    ("hf://owner/repo/sub/dir/net.pkl", HubFile("owner/repo", "sub/dir/net.pkl")),
    ("hf://owner/repo@v1.0/net.pkl", HubFile("owner/repo", "net.pkl", "v1.0")),
    ("hf://owner/repo/net.pkl@0123abc", HubFile("owner/repo", "net.pkl", "0123abc")),
    ("hf://owner/repo@refs%2Fpr%2F1/net.pkl", HubFile("owner/repo", "net.pkl", "refs/pr/1")),
])
def test_hub_addresses_parse(url, expected):
    assert parse_hub_url(url) == expected
    assert network_source(url).kind == "hub"


@pytest.mark.parametrize("url", ["hf://owner/net.pkl", "hf://owner/repo/", "hf://owner//net.pkl",
                                 "hf://owner/repo@a/net.pkl@b", "hf://owner/repo@/net.pkl"])
def test_bad_hub_addresses_are_refused(url):
    with pytest.raises(UserInputError, match="hf://OWNER/REPO/FILE"):
        network_source(url)


def test_hub_without_its_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import huggingface_hub raises ImportError
    with pytest.raises(UserInputError, match=r'pip install "stylegan\[hf\]"'):
        resolve_network("hf://owner/repo/net.pkl")


def _hub_routes(server):
    """The two endpoints huggingface_hub's hf_hub_download uses (HEAD for metadata, then GET), for one file."""
    commit = {"X-Repo-Commit": "a" * 40}
    server.add("/owner/repo/resolve/main/nets/net.pkl", DATA, headers=commit)
    server.add("/owner/repo/resolve/v2/nets/net.pkl", DATA, headers=commit)
    server.add("/owner/missing/resolve/main/net.pkl", status=404, headers={"X-Error-Code": "RepoNotFound"})
    server.add("/owner/repo/resolve/main/nope.pkl", status=404, headers={"X-Error-Code": "EntryNotFound", **commit})


def test_hub_downloads_through_huggingface_hub(server, tmp_path):
    """The real library, pointed at the local server (its `endpoint` argument) and a cache in tmp_path."""
    pytest.importorskip("huggingface_hub")
    _hub_routes(server)
    endpoint, hub_cache = server.url(""), tmp_path / "hub"
    path = hub_download("hf://owner/repo/nets/net.pkl", cache_dir=hub_cache, endpoint=endpoint)
    assert path.read_bytes() == DATA and hub_cache in path.parents
    assert hub_download("hf://owner/repo/nets/net.pkl@v2", cache_dir=hub_cache, endpoint=endpoint).read_bytes() == DATA
    with pytest.raises(UserInputError, match="no repository owner/missing on the Hugging Face Hub"):
        hub_download("hf://owner/missing/net.pkl", cache_dir=hub_cache, endpoint=endpoint)
    with pytest.raises(UserInputError, match="no file nope.pkl in owner/repo"):
        hub_download("hf://owner/repo/nope.pkl", cache_dir=hub_cache, endpoint=endpoint)
