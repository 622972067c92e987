"""Networks on the Hugging Face Hub: `hf://OWNER/REPO/FILE`, through the huggingface_hub library and its cache.

Spellings: `hf://OWNER/REPO/PATH/TO/FILE.pkl`, with a revision (branch, tag or commit) either as huggingface_hub's
file system writes it, `hf://OWNER/REPO@REVISION/FILE` (a '/' in the revision as %2F), or at the end,
`hf://OWNER/REPO/FILE@REVISION`. The file lands in huggingface_hub's cache (HF_HOME, HF_HUB_CACHE; HF_TOKEN or
`hf auth login` for private and gated repositories) and is then read like any local file: nothing in it runs.
"""
from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..errors import UserInputError

HINT = 'pip install "stylegan[hf]"'


@dataclass(frozen=True)
class HubFile:
    """repo_id: 'OWNER/REPO'; filename: the path inside the repository; revision: None = the default branch."""
    repo_id: str
    filename: str
    revision: Optional[str] = None


def parse_hub_url(url: str) -> HubFile:
    """hf://OWNER/REPO[@REVISION]/FILE[@REVISION] -> HubFile; anything else raises UserInputError."""
    usage = "give hf://OWNER/REPO/FILE, optionally with @REVISION after REPO or FILE"
    if not url.startswith("hf://"):
        raise UserInputError(f"{url}: not an hf:// address; {usage}")
    parts = url[len("hf://"):].split("/")
    if len(parts) < 3 or not all(parts):
        raise UserInputError(f"{url}: {usage}")
    owner, repo, path = parts[0], parts[1], "/".join(parts[2:])
    revisions = []
    if "@" in repo:
        repo, revision = repo.split("@", 1)
        revisions.append(urllib.parse.unquote(revision))
    if "@" in parts[-1]:
        path, revision = path.rsplit("@", 1)
        revisions.append(urllib.parse.unquote(revision))
    if len(revisions) > 1:
        raise UserInputError(f"{url}: two revisions; {usage}")
    if not repo or not path or not all(revisions):
        raise UserInputError(f"{url}: {usage}")
    return HubFile(f"{owner}/{repo}", path, revisions[0] if revisions else None)


# huggingface_hub's exceptions, most specific first (matched by class name along the MRO: the names are stable
# across its versions, their modules are not), and what to tell the user.
_HUB_PROBLEMS = (
    ("GatedRepoError", "{ref.repo_id} is gated: accept its conditions on its Hub page, then log in (hf auth login "
                       "or HF_TOKEN)"),
    ("RepositoryNotFoundError", "no repository {ref.repo_id} on the Hugging Face Hub (or it is private: log in "
                                "with hf auth login or HF_TOKEN)"),
    ("RevisionNotFoundError", "no revision {ref.revision} in {ref.repo_id}"),
    ("LocalEntryNotFoundError", "cannot reach the Hugging Face Hub and the file is not in its cache; check the "
                                "network connection"),
    ("EntryNotFoundError", "no file {ref.filename} in {ref.repo_id}"),
    ("RemoteEntryNotFoundError", "no file {ref.filename} in {ref.repo_id}"),
)


def hub_download(url: str, *, cache_dir: Union[str, os.PathLike, None] = None,
                 endpoint: Optional[str] = None) -> Path:
    """Download (or find in huggingface_hub's cache) the file an hf:// address names.

    cache_dir: huggingface_hub's cache folder (None: its default, HF_HUB_CACHE).
    endpoint: the Hub's address (None: $HF_ENDPOINT as set now, else huggingface_hub's default).
    """
    ref = parse_hub_url(url)
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise UserInputError(f"{url}: hf:// addresses need the huggingface_hub package: {HINT} "
                             f"(or stylegan[all])") from None
    try:
        return Path(hf_hub_download(repo_id=ref.repo_id, filename=ref.filename, revision=ref.revision,
                                    cache_dir=cache_dir, endpoint=endpoint or os.environ.get("HF_ENDPOINT")))
    except Exception as exc:  # noqa: BLE001 - mapped below by name; anything unknown is re-raised
        names = {cls.__name__ for cls in type(exc).__mro__}
        for name, message in _HUB_PROBLEMS:
            if name in names:
                raise UserInputError(f"{url}: " + message.format(ref=ref)) from None
        if "HfHubHTTPError" in names or "HFValidationError" in names or isinstance(exc, OSError):
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserInputError(f"{url}: {first_line}") from None
        raise
