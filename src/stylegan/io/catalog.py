"""The networks NVIDIA published, by name: `--network stylegan3-t-ffhqu-256x256` downloads its official file once.

Every address below is copied from NVIDIA's own READMEs and scripts (the `source` of each entry):
- NVlabs/stylegan3 README: the StyleGAN3 T/R pickles and the StyleGAN2 pickles for that code base, on NGC
  (`api.ngc.nvidia.com/v2/models/nvidia/research/<model>/versions/1/files/<file>`);
- NVlabs/stylegan2-ada-pytorch README ("Data repository") and train.py (`resume_specs`: the transfer-learning
  sources that `--resume=ffhq1024` names);
- NVlabs/stylegan2 README and pretrained_networks.py: the TensorFlow config-f pickles (`gdrive:networks/...` is
  that repository's own spelling for them);
- NVlabs/stylegan README: the TensorFlow StyleGAN pickles, which NVIDIA hosts on Google Drive only.

No size or checksum is recorded: none could be verified where this table was written (no internet). An entry
gets a `sha256` only once someone has downloaded the file and checked it against NVIDIA's; `io.fetch` then
verifies every download of it. docs/pretrained.md shows the table (a test keeps the two in step).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple


@dataclass(frozen=True)
class PretrainedNetwork:
    """One published network file.

    name: what --network takes (the file name without .pkl where NVIDIA's names are unique).
    url: the official address.
    generation: which code base and version wrote it ("StyleGAN3-T", "StyleGAN2 (TF)", ...).
    resolution: the image size, as NVIDIA lists it ("1024x1024", "512x384").
    dataset: the training data.
    source: the NVIDIA repository whose README (or script) gives the address.
    sha256: hex digest of the file, verified after every download; None where nobody has verified one.
    aliases: other names that resolve to it (NVIDIA's train.py --resume names, stylegan2's gdrive: paths).
    """
    name: str
    url: str
    generation: str
    resolution: str
    dataset: str
    source: str
    sha256: Optional[str] = None
    aliases: Tuple[str, ...] = ()


_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research"
_ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained"
_SG2_TF = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks"
_DRIVE = "https://drive.google.com/uc?id="

_DATASETS = {"ffhq": "FFHQ", "ffhqu": "FFHQ-U (unaligned)", "metfaces": "MetFaces", "metfacesu": "MetFaces-U (unaligned)",
             "afhqv2": "AFHQv2", "afhqcat": "AFHQ Cat", "afhqdog": "AFHQ Dog", "afhqwild": "AFHQ Wild",
             "brecahad": "BreCaHAD", "cifar10": "CIFAR-10 (conditional)", "celebahq": "CelebA-HQ",
             "lsundog": "LSUN Dog", "car": "LSUN Car", "cat": "LSUN Cat", "church": "LSUN Church",
             "horse": "LSUN Horse", "bedrooms": "LSUN Bedroom", "cars": "LSUN Car", "cats": "LSUN Cat"}


def _ngc(model: str, generation: str, dataset: str, resolution: str) -> PretrainedNetwork:
    """A file of NVIDIA's NGC model `model` (stylegan3 or stylegan2), listed in the NVlabs/stylegan3 README."""
    name = f"{model}-{'' if model == 'stylegan2' else generation[-1].lower() + '-'}{dataset}-{resolution}"
    return PretrainedNetwork(name, f"{_NGC}/{model}/versions/1/files/{name}.pkl", generation, resolution,
                             _DATASETS[dataset], "NVlabs/stylegan3")


def _ada(stem: str, dataset: str, resolution: str, aliases: Tuple[str, ...] = ()) -> PretrainedNetwork:
    """A file of stylegan2-ada-pytorch's data repository (its README; transfer sources: its train.py)."""
    name = f"stylegan2-ada-{stem.rsplit('/', 1)[-1]}"
    return PretrainedNetwork(name, f"{_ADA}/{stem}.pkl", "StyleGAN2-ADA (PyTorch)", resolution, _DATASETS[dataset],
                             "NVlabs/stylegan2-ada-pytorch", aliases=aliases)


def _stylegan2_tf(dataset: str, resolution: str) -> PretrainedNetwork:
    name = f"stylegan2-{dataset}-config-f"
    return PretrainedNetwork(name, f"{_SG2_TF}/{name}.pkl", "StyleGAN2 (TF)", resolution, _DATASETS[dataset],
                             "NVlabs/stylegan2", aliases=(f"gdrive:networks/{name}.pkl",))


def _stylegan1_tf(dataset: str, resolution: str, drive_id: str) -> PretrainedNetwork:
    name = f"stylegan-{dataset}-{resolution}"
    return PretrainedNetwork(name, _DRIVE + drive_id, "StyleGAN (TF)", resolution, _DATASETS[dataset],
                             "NVlabs/stylegan", aliases=(f"karras2019{name}",))


CATALOG: Tuple[PretrainedNetwork, ...] = (
    # StyleGAN3 (NGC), NVlabs/stylegan3 README.
    _ngc("stylegan3", "StyleGAN3-T", "ffhq", "1024x1024"),
    _ngc("stylegan3", "StyleGAN3-T", "ffhqu", "1024x1024"),
    _ngc("stylegan3", "StyleGAN3-T", "ffhqu", "256x256"),
    _ngc("stylegan3", "StyleGAN3-R", "ffhq", "1024x1024"),
    _ngc("stylegan3", "StyleGAN3-R", "ffhqu", "1024x1024"),
    _ngc("stylegan3", "StyleGAN3-R", "ffhqu", "256x256"),
    _ngc("stylegan3", "StyleGAN3-T", "metfaces", "1024x1024"),
    _ngc("stylegan3", "StyleGAN3-T", "metfacesu", "1024x1024"),
    _ngc("stylegan3", "StyleGAN3-R", "metfaces", "1024x1024"),
    _ngc("stylegan3", "StyleGAN3-R", "metfacesu", "1024x1024"),
    _ngc("stylegan3", "StyleGAN3-T", "afhqv2", "512x512"),
    _ngc("stylegan3", "StyleGAN3-R", "afhqv2", "512x512"),
    # StyleGAN2 for the stylegan3 code base (NGC), NVlabs/stylegan3 README.
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "ffhq", "1024x1024"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "ffhq", "512x512"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "ffhq", "256x256"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "ffhqu", "1024x1024"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "ffhqu", "256x256"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "metfaces", "1024x1024"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "metfacesu", "1024x1024"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "afhqv2", "512x512"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "afhqcat", "512x512"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "afhqdog", "512x512"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "afhqwild", "512x512"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "brecahad", "512x512"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "cifar10", "32x32"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "celebahq", "256x256"),
    _ngc("stylegan2", "StyleGAN2 (PyTorch)", "lsundog", "256x256"),
    # StyleGAN2-ADA (PyTorch), NVlabs/stylegan2-ada-pytorch README and train.py.
    _ada("ffhq", "ffhq", "1024x1024"),
    _ada("metfaces", "metfaces", "1024x1024"),
    _ada("afhqcat", "afhqcat", "512x512"),
    _ada("afhqdog", "afhqdog", "512x512"),
    _ada("afhqwild", "afhqwild", "512x512"),
    _ada("cifar10", "cifar10", "32x32"),
    _ada("brecahad", "brecahad", "512x512"),
    _ada("transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug", "ffhq", "256x256", ("ffhq256",)),
    _ada("transfer-learning-source-nets/ffhq-res512-mirror-stylegan2-noaug", "ffhq", "512x512", ("ffhq512",)),
    _ada("transfer-learning-source-nets/ffhq-res1024-mirror-stylegan2-noaug", "ffhq", "1024x1024", ("ffhq1024",)),
    _ada("transfer-learning-source-nets/celebahq-res256-mirror-paper256-kimg100000-ada-target0.5", "celebahq",
         "256x256", ("celebahq256",)),
    _ada("transfer-learning-source-nets/lsundog-res256-paper256-kimg100000-noaug", "lsundog", "256x256",
         ("lsundog256",)),
    # StyleGAN2 (TensorFlow), NVlabs/stylegan2 README and pretrained_networks.py.
    _stylegan2_tf("ffhq", "1024x1024"),
    _stylegan2_tf("car", "512x384"),
    _stylegan2_tf("cat", "256x256"),
    _stylegan2_tf("church", "256x256"),
    _stylegan2_tf("horse", "256x256"),
    # StyleGAN (TensorFlow), NVlabs/stylegan README: Google Drive only.
    _stylegan1_tf("ffhq", "1024x1024", "1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ"),
    _stylegan1_tf("celebahq", "1024x1024", "1MGqJl28pN4t7SAtSrPdSRJSQJqahkzUf"),
    _stylegan1_tf("bedrooms", "256x256", "1MOSKeGF0FJcivpBI7s63V9YHloUTORiF"),
    _stylegan1_tf("cars", "512x384", "1MJ6iCfNtMIRicihwRorsM3b7mmtmK9c3"),
    _stylegan1_tf("cats", "256x256", "1MQywl0FNt6lHu8E_EUqnRbviagS7fbiJ"),
)


def _index() -> Dict[str, PretrainedNetwork]:
    table = {}
    for entry in CATALOG:
        for key in (entry.name, *entry.aliases):
            assert key not in table, f"catalog name {key!r} twice"
            table[key] = entry
    return table


def find_pretrained(name: str) -> Optional[PretrainedNetwork]:
    """The entry called `name` or one of its aliases (NVIDIA's file name, `<name>.pkl`, too), else None."""
    table = _index()
    if name in table:
        return table[name]
    entry = table.get(name[:-4]) if name.endswith(".pkl") else None
    return entry if entry is not None and entry.name == name[:-4] else None


def similar_names(name: str, count: int = 3) -> List[str]:
    """Catalog names close to a misspelt `name` (for 'did you mean' hints)."""
    return difflib.get_close_matches(name, list(_index()), n=count, cutoff=0.8)
