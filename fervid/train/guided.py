"""Guided back-propagation (Springenberg et al. 2015), as in the paper's Fig. 10.

The gradient of a class score with respect to the input pixels, with every ReLU passing back only
positive gradients where its input was positive: it shows which pixels raise that class.
Gradients need the torch network, rebuilt from the weights saved beside the ONNX file
(``models/NAME.pt``), so this needs the ``fervid[train]`` extra.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fervid.errors import ModelError
from fervid.labels import EMOTIONS
from fervid.train import nets


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0).to(grad.dtype)


class GuidedReLU(nn.Module):
    def forward(self, x):
        return _GuidedReLU.apply(x)


def guided(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every ReLU replaced by its guided twin."""
    net = copy.deepcopy(net).eval()
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, child_name, GuidedReLU())
    return net


def saliency(net: nn.Module, crops: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Guided back-propagation maps ``[N,S,S]`` for uint8 crops ``[N,S,S]`` and one class index each."""
    gnet = guided(net)
    x = torch.from_numpy(crops.astype(np.float32)).unsqueeze(1).requires_grad_(True)
    logits = gnet(nets.normalise(x))
    logits[torch.arange(len(crops)), torch.from_numpy(np.asarray(classes, dtype=np.int64))].sum().backward()
    return x.grad[:, 0].detach().numpy()


def probabilities(net: nn.Module, crops: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(crops.astype(np.float32)).unsqueeze(1)
        return torch.softmax(net.eval()(nets.normalise(x)), 1).numpy()


def load_weights(onnx_path: str | Path) -> nn.Module:
    """The torch network saved beside an ONNX model as NAME.pt by ``fervid train``."""
    path = Path(onnx_path)
    pt = path.with_suffix(".pt")
    while not pt.is_file() and path.is_file():  # a derived model (8-bit, mirrored, ensemble): the network it came from
        import onnxruntime as ort

        meta = dict(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map)
        # An ensemble is explained through its first member.
        source = meta.get("mirrored_from") or meta.get("quantized_from") or meta.get("members", "").split(", ")[0]
        if not source or path.with_name(source) == path:
            break  # no source named, or a file naming itself
        path = path.with_name(source)
        pt = path.with_suffix(".pt")
    if not pt.is_file():
        raise ModelError(f"{pt}: no torch weights beside {Path(onnx_path).name}; guided back-propagation needs "
                         "them (fervid train writes NAME.pt next to NAME.onnx)")
    saved = torch.load(pt, map_location="cpu", weights_only=True)
    net = nets.build(saved["arch"])
    net.load_state_dict(saved["state_dict"])
    return net.eval()


def save_weights(net: nn.Module, arch: str, onnx_path: str | Path) -> Path:
    pt = Path(onnx_path).with_suffix(".pt")
    torch.save({"arch": arch, "state_dict": net.state_dict()}, pt)
    return pt


def columns(paths: list[Path], crops: np.ndarray, target: int | None = None) -> list[tuple]:
    """One figure column per model: (title, maps, shown class per face, probabilities); with
    ``target`` a second column per model shows the maps for that class, whatever was predicted."""
    out = []
    for path in paths:
        net = load_weights(path)
        probs = probabilities(net, crops)
        predicted = probs.argmax(1)
        out.append((path.stem, saliency(net, crops, predicted), predicted, probs))
        if target is not None:
            k = np.full(len(crops), target)
            out.append((f"{path.stem} ({EMOTIONS[target]})", saliency(net, crops, k), k, probs))
    return out
