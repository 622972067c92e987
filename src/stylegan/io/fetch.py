"""Networks by address: http(s) URLs, hf://OWNER/REPO/FILE and catalog names, downloaded once into a cache.

`resolve_network(spec)` turns what a user gave for --network / --resume into a local file:
- a path that exists: unchanged;
- `http://` or `https://`: downloaded once into the cache and reused from there, also offline;
- `hf://OWNER/REPO/FILE` (optionally `@REVISION`): through huggingface_hub, in its own cache (io.hf_hub);
- a name from io.catalog (`stylegan3-t-ffhqu-256x256`, NVIDIA's `ffhq1024`): its official address, as above.
Any other `scheme://` is refused. What is downloaded is data like any local file: the same restricted readers
(io.load) read it, and nothing in it runs.

The cache is `$STYLEGAN_CACHE/networks/`, else `$XDG_CACHE_HOME/stylegan/networks/`, else
`~/.cache/stylegan/networks/`; a file is named `<hash of the URL>-<file name>`. A download is written to
`<name>.part` and renamed only when it is complete, looks like a network file (not a web page), and matches the
catalog's checksum where one is known, so the cache never holds a partial or wrong file under the final name. An
interrupted download keeps its `.part` where the server accepts byte ranges, and the next attempt (in the same
call or a later one) asks only for the rest; `If-Range` makes a server that changed the file send it whole.
A lock file serialises processes that download the same URL (torchrun ranks).
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

from ..errors import UserInputError

CACHE_ENV = "STYLEGAN_CACHE"
TIMEOUT_S = 60.0  # seconds a connection may stay silent before the attempt counts as interrupted
ATTEMPTS = 3      # tries per call; each resumes where the last one stopped when the server accepts ranges
CHUNK = 1 << 20
USER_AGENT = "stylegan-downloader/1 (python urllib)"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_GOOGLE_DRIVE_HOSTS = ("drive.google.com", "drive.usercontent.google.com", "docs.google.com")


def cache_root() -> Path:
    """The stylegan cache folder: $STYLEGAN_CACHE, else $XDG_CACHE_HOME/stylegan, else ~/.cache/stylegan."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "stylegan"


def network_cache(cache_dir: Union[str, os.PathLike, None] = None) -> Path:
    """Where downloaded networks are kept: `cache_dir` (a cache root, as $STYLEGAN_CACHE) or the default, /networks."""
    return (Path(cache_dir).expanduser() if cache_dir else cache_root()) / "networks"


def cache_path(url: str, cache_dir: Union[str, os.PathLike, None] = None) -> Path:
    """The file a download of `url` is kept in (whether or not it is there yet)."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    name = re.sub(r"[^0-9A-Za-z._-]", "_", name)[-80:].lstrip(".") or "download"
    return network_cache(cache_dir) / f"{hashlib.sha256(url.encode('utf-8')).hexdigest()[:12]}-{name}"


@dataclass(frozen=True)
class NetworkSource:
    """What a --network value names. kind: 'path', 'url', 'hub' or 'catalog'; url and sha256 for url/catalog."""
    kind: str
    spec: str
    url: Optional[str] = None
    sha256: Optional[str] = None


def network_source(spec: Union[str, os.PathLike]) -> NetworkSource:
    """Classify a --network value without downloading anything; bad addresses raise UserInputError."""
    if not isinstance(spec, str):
        return NetworkSource("path", os.fspath(spec))
    scheme = _SCHEME.match(spec)
    if scheme:
        kind = scheme.group(1).lower()
        if kind in ("http", "https"):
            if not urllib.parse.urlsplit(spec).hostname:
                raise UserInputError(f"{spec}: no host in this URL")
            return NetworkSource("url", spec, url=spec)
        if kind == "hf":
            from .hf_hub import parse_hub_url
            parse_hub_url(spec)
            return NetworkSource("hub", spec)
        raise UserInputError(f"{spec}: only http:// and https:// addresses (and hf://OWNER/REPO/FILE on the Hugging "
                             f"Face Hub) are downloaded; fetch the file another way and pass its path")
    if os.path.exists(spec):
        return NetworkSource("path", spec)
    from .catalog import find_pretrained, similar_names
    entry = find_pretrained(spec)
    if entry is not None:
        return NetworkSource("catalog", spec, url=entry.url, sha256=entry.sha256)
    close = similar_names(spec)
    if close:
        raise UserInputError(f"{spec}: no such file, and no network of that name; did you mean {' or '.join(close)}? "
                             f"(`stylegan pretrained` lists the names)")
    return NetworkSource("path", spec)


def resolve_network(spec: Union[str, os.PathLike], *, cache_dir: Union[str, os.PathLike, None] = None,
                    progress: bool = True) -> str:
    """A local file for `spec` (path, http(s) URL, hf:// address or catalog name), downloading it if needed."""
    source = network_source(spec)
    if source.kind == "path":
        return source.spec
    if source.kind == "hub":
        from .hf_hub import hub_download
        return str(hub_download(source.spec))
    return str(fetch(source.url, sha256=source.sha256, cache_dir=cache_dir, progress=progress))


def fetch(url: str, *, sha256: Optional[str] = None, cache_dir: Union[str, os.PathLike, None] = None,
          progress: bool = True, timeout: float = TIMEOUT_S, attempts: int = ATTEMPTS) -> Path:
    """The cached copy of `url`, downloaded first if it is not there (see the module docstring)."""
    dest = cache_path(url, cache_dir)
    if dest.is_file():
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create the download cache {dest.parent} ({exc.strerror}); set {CACHE_ENV} "
                             f"to a writable folder") from None
    with _exclusive(dest):
        if not dest.is_file():  # another process may have finished it while this one waited
            download(url, dest, sha256=sha256, progress=progress, timeout=timeout, attempts=attempts)
    return dest


class _Interrupted(Exception):
    """A transfer stopped early (timeout, reset, truncation); `resumable`: the server accepts byte ranges."""

    def __init__(self, reason: str, resumable: bool):
        super().__init__(reason)
        self.resumable = resumable


class _Refused(Exception):
    """The server's answer is final and wrong (HTTP error, web page, checksum): the .part is deleted."""


def download(url: str, dest: Union[str, os.PathLike], *, sha256: Optional[str] = None, progress: bool = True,
             timeout: float = TIMEOUT_S, attempts: int = ATTEMPTS) -> Path:
    """Download `url` to `dest` through `dest.part`; raise UserInputError (one line naming the URL) on failure."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if progress:
        print(f"downloading {url} to {dest}", file=sys.stderr)
    last = None
    try:
        for _ in range(attempts):
            try:
                _transfer(url, part, progress, timeout)
                break
            except _Interrupted as exc:
                last = exc
        else:
            size = part.stat().st_size if part.exists() else 0
            if not last.resumable:
                _discard(part)
            again = "resume" if last.resumable else "retry"
            raise UserInputError(f"{url}: the download stopped after {size:,} bytes ({last}); run the command again "
                                 f"to {again} it")
        with open(part, "rb") as f:
            problem = _content_problem(url, f.read(1 << 16), "")
        if problem:
            raise _Refused(problem)
        if sha256 is not None:
            digest = _sha256(part)
            if digest != sha256.lower():
                raise _Refused(f"{url}: the downloaded file's SHA-256 is {digest}, not the catalog's {sha256}: the "
                               f"file on the server changed or was damaged in transit; nothing was kept")
        os.replace(part, dest)
        _discard(_meta_path(part))
    except _Refused as exc:
        _discard(part)
        raise UserInputError(str(exc)) from None
    return dest


def _transfer(url: str, part: Path, progress: bool, timeout: float) -> None:
    """One HTTP request into `part`, appending to it where the server resumes; raises _Interrupted or _Refused."""
    meta_path = _meta_path(part)
    offset = part.stat().st_size if part.exists() else 0
    meta = _read_meta(meta_path) if offset else {}
    if meta.get("url") != url:
        offset = 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if meta.get("validator"):
            headers["If-Range"] = meta["validator"]
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # the part no longer fits the file: start over
            _discard(part)
            raise _Interrupted("the server would not resume the earlier part", resumable=True) from None
        raise _Refused(_http_problem(url, exc.code, exc.reason)) from None
    except (socket.timeout, TimeoutError):
        raise _Interrupted(f"no answer within {timeout:g} s", resumable=bool(offset)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise _Interrupted(f"no answer within {timeout:g} s", resumable=bool(offset)) from None
        raise UserInputError(f"{url}: cannot reach {urllib.parse.urlsplit(url).hostname} ({reason}); check the "
                             f"network connection (networks downloaded before are reused offline)") from None
    with response:
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != offset:
                _discard(part)
                raise _Interrupted("the server resumed at the wrong place", resumable=True)
        else:
            offset, total = 0, _int_or_none(response.headers.get("Content-Length"))
        resumable = response.status == 206 or response.headers.get("Accept-Ranges", "").lower() == "bytes"
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        _write_meta(meta_path, dict(url=url, validator=validator))
        done = offset
        with open(part, "ab" if offset else "wb") as f, _progress_bar(url, total, offset, progress) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (http.client.HTTPException, OSError) as exc:  # cut off, reset, timed out, TLS error
                    raise _Interrupted(_reason(exc, timeout), resumable) from None
                if not chunk:
                    break
                if done == 0 and len(chunk) >= 64:  # judge early, before a large wrong file is fetched
                    problem = _content_problem(url, chunk, response.headers.get("Content-Type", ""))
                    if problem:
                        raise _Refused(problem)
                f.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
    if total is not None and done < total:
        raise _Interrupted(f"the server closed the connection at {done:,} of {total:,} bytes", resumable)
    if done == 0:
        raise _Refused(f"{url}: the server sent an empty file; check the address")


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"the server sent nothing for {timeout:g} s"
    if isinstance(exc, http.client.IncompleteRead):
        return "the server closed the connection early"
    return str(exc) or type(exc).__name__


def _http_problem(url: str, code: int, reason: str) -> str:
    if code in (404, 410):
        return f"{url}: not found (HTTP {code}); check the address (`stylegan pretrained --urls` lists NVIDIA's)"
    if code in (401, 403):
        return (f"{url}: access denied (HTTP {code}): the file is private, needs a login or the link has expired; "
                f"download it in a browser and pass its path")
    return f"{url}: the server answered HTTP {code} {reason}; try again later, or download the file and pass its path"


def looks_like_network(head: bytes) -> bool:
    """Whether a file starting with `head` can be a network file we read (see io.load)."""
    pickle = len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5  # NVIDIA .pkl, legacy torch.save
    safetensors = len(head) >= 9 and head[8:9] == b"{"  # u64 header length, then the JSON header
    return pickle or safetensors or head.startswith(b"PK\x03\x04")  # torch.save zip (rosinality .pt)


def _content_problem(url: str, head: bytes, content_type: str) -> Optional[str]:
    """None for a plausible network file, else the one-line reason (web pages named as such)."""
    if looks_like_network(head):
        return None
    text = head[:4096].lstrip().lower()
    if "html" in content_type.lower() or text.startswith((b"<!doctype", b"<html", b"<head", b"<body")):
        host = urllib.parse.urlsplit(url).hostname or ""
        if host in _GOOGLE_DRIVE_HOSTS or b"google drive" in head.lower():
            return (f"{url}: Google Drive sent a web page instead of the file (its virus-scan warning for large "
                    f"files, or 'quota exceeded'); open the link in a browser, download the file and pass its path")
        return (f"{url}: the server sent a web page, not a network file (a login or error page?); check the "
                f"address, or download the file in a browser and pass its path")
    return (f"{url}: the downloaded file is not a network file we read (it starts with {bytes(head[:8])!r}); check "
            f"the address")


def _content_range(value: str):
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value.strip())
    if not match:
        return None, None
    return int(match.group(1)), (None if match.group(2) == "*" else int(match.group(2)))


def _int_or_none(value) -> Optional[int]:
    return int(value) if value is not None and str(value).isdigit() else None


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _write_meta(path: Path, meta: dict) -> None:
    path.write_text(json.dumps(meta), encoding="utf-8")


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if path.suffix == ".part":
        _discard(_meta_path(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive(dest: Path) -> Iterator[None]:
    """Hold `<dest>.lock` (a POSIX advisory lock) so that one process downloads while the others wait; the lock file
    is removed on release, so a waiter checks that the file it locked is still the lock file."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; each process downloads to the same .part name
        yield
        return
    lock = dest.with_name(dest.name + ".lock")
    while True:
        handle = open(lock, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        handle.close()  # the holder removed it meanwhile: lock the new one
    try:
        yield
    finally:
        _discard(lock)
        handle.close()  # closing releases the lock


def _progress_bar(url: str, total: Optional[int], initial: int, enabled: bool):
    """A tqdm byte counter on stderr (a no-op object when disabled)."""
    from tqdm import tqdm
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or url
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                file=sys.stderr, disable=not enabled, leave=False, dynamic_ncols=True)
