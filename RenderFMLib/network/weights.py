"""Network weights on disk: NAME.safetensors (the tensors, with SHA-256 checksums in its metadata)
and NAME.json beside it (the NetworkConfig and how the weights were made). Never pickle.

Both are written whole or not at all (files.write_atomic). load_network checks everything before
use and raises one WeightsError naming the file and the problem: a missing or unreadable file, a
checksum that does not match, a config this version cannot build, tensors of the wrong names or
shapes for that config (e.g. another channel count), non-finite values.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

from ..errors import WeightsError
from ..files import write_atomic
from ..model_file import read_safetensors, save_safetensors, tensor_sha256
from ..resources import resource_path
from .model import NetworkConfig, RenderFMNetwork

FORMAT = "renderfm-network"
VERSION = 1
SHIPPED = "shipped"  # prepare(weights=SHIPPED): the weights bundled in Resources/weights/
SHIPPED_FILE = ("weights", "renderfm-local.safetensors")


def sidecar(path: str | Path) -> Path:
    """The JSON file beside weights `path` (NAME.safetensors -> NAME.json)."""
    return Path(path).with_suffix(".json")


def save_network(network: RenderFMNetwork, path: str | Path, about: dict | None = None) -> None:
    """Write network's weights to `path` (.safetensors) and its config (+ `about`: how it was
    trained, JSON-serialisable) to the sidecar JSON."""
    tensors = {name: value.detach().cpu().contiguous()
               for name, value in network.state_dict().items()}
    metadata = {"format": FORMAT, "version": str(VERSION),
                "sha256": json.dumps({name: tensor_sha256(t) for name, t in tensors.items()})}
    description = {"format": FORMAT, "version": VERSION, "config": network.config.to_dict(),
                   "about": about or {}}
    write_atomic(path, lambda partial: save_safetensors(tensors, partial, metadata))
    write_atomic(sidecar(path), lambda partial: partial.write_text(
        json.dumps(description, indent=2) + "\n", encoding="utf-8"))


def read_description(path: str | Path) -> dict:
    """The sidecar JSON of weights `path` (format, version, config, about); WeightsError if it
    is missing or not this format."""
    side = sidecar(path)
    try:
        description = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"network weights {path} need their config {side} beside "
                           "them") from None
    except (OSError, ValueError) as error:
        raise WeightsError(f"network config {side} cannot be read ({error})") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise WeightsError(f"{side} is not a RenderFM network config (no format {FORMAT!r})")
    if description.get("version") != VERSION:
        raise WeightsError(f"{side}: network format version {description.get('version')!r} is "
                           f"not {VERSION}; this RenderFM cannot read it")
    return description


def load_network(path: str | Path, device: str | torch.device = "cpu") -> RenderFMNetwork:
    """The network saved at `path` (for inference: eval mode, no gradients; on `device`);
    WeightsError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"network weights {path} do not exist")
    description = read_description(path)
    terms = description.get("config")
    if not isinstance(terms, dict):
        raise WeightsError(f"{sidecar(path)} has no network config (a JSON object \"config\")")
    try:
        config = NetworkConfig.from_dict(terms)
    except (TypeError, ValueError) as error:
        raise WeightsError(f"{sidecar(path)}: the network config is wrong: {error}") from None
    network = RenderFMNetwork(config)
    tensors = _read_checked(path)
    _check_fits(path, network, tensors)
    network.load_state_dict(tensors)
    return network.eval().requires_grad_(False).to(device)


def resolve_weights(weights: str | Path | None) -> Path | None:
    """The weights file `weights` names: SHIPPED (the bundled file), None or "none" (AGP alone:
    None), or a path."""
    if weights is None or str(weights) == "none":
        return None
    if str(weights) == SHIPPED:
        return resource_path(*SHIPPED_FILE)
    return Path(weights)


@functools.lru_cache(maxsize=4)
def _cached(path: Path, stamp: tuple[int, int], device: str) -> RenderFMNetwork:
    return load_network(path, device)


def cached_network(path: Path, device: torch.device) -> RenderFMNetwork:
    """load_network, once per file version (size and modification time) and device."""
    try:
        status = path.stat()
    except OSError:
        raise WeightsError(f"network weights {path} do not exist") from None
    return _cached(path, (status.st_size, status.st_mtime_ns), str(device))


def _read_checked(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of `path`, verified against the checksums in its metadata."""
    metadata, tensors = read_safetensors(path, WeightsError, "a network weights file")
    if metadata.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a RenderFM network weights file (format "
                           f"{metadata.get('format')!r}, not {FORMAT!r})")
    try:
        saved = json.loads(metadata["sha256"])
    except (KeyError, ValueError):
        raise WeightsError(f"{path} has no readable checksums; it is damaged") from None
    changed = sorted(name for name in saved.keys() | tensors.keys()
                     if name not in tensors or saved.get(name) != tensor_sha256(tensors[name]))
    if changed:
        raise WeightsError(f"{path} is damaged: the checksums saved with it do not match "
                           f"{', '.join(changed[:5])}")
    return tensors


def _check_fits(path: Path, network: RenderFMNetwork, tensors: dict[str, torch.Tensor]) -> None:
    """WeightsError unless `tensors` are exactly the finite weights of `network`'s config."""
    expected = {name: tuple(value.shape) for name, value in network.state_dict().items()}
    found = {name: tuple(value.shape) for name, value in tensors.items()}
    if expected != found:
        wrong = sorted(name for name in expected.keys() | found.keys()
                       if expected.get(name) != found.get(name))
        first = wrong[0]
        raise WeightsError(
            f"{path} does not fit its config {sidecar(path).name} ({network.config.to_dict()}): "
            f"{len(wrong)} tensors differ, e.g. {first}: file {found.get(first, 'missing')}, "
            f"config {expected.get(first, 'none')}")
    for name, value in tensors.items():
        if value.dtype.is_floating_point and not bool(torch.isfinite(value).all()):
            raise WeightsError(f"{path} is damaged: {name} holds non-finite values")
