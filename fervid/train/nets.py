"""The paper's two fully-convolutional CNNs (Kaskun et al. 2020, after Arriaga et al. 2017), and
ResNets for 48x48 faces: a teacher and the students distilled from it.

The paper's two end in a convolution with one map per class and global average pooling: no dense layer.
The networks return logits; :class:`ContractModel` adds the model contract around them
(raw 0..255 grey input, normalisation inside the graph, softmax output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fervid.labels import NUM_CLASSES


def conv_bn_relu(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FCN(nn.Module):
    """Sequential fully-CNN: 9 convolutions with BN and ReLU, ~590k parameters."""

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.25):
        super().__init__()
        plan = [(1, 16, 7), (16, 16, 7), "pool", (16, 32, 5), (32, 32, 5), "pool",
                (32, 64, 5), (64, 64, 5), "pool", (64, 128, 3), (128, 256, 3)]
        layers: list[nn.Module] = []
        for step in plan:
            if step == "pool":
                layers += [nn.AvgPool2d(2), nn.Dropout(dropout)]
            else:
                layers += conv_bn_relu(*step)
        layers += [nn.Dropout(dropout), nn.Conv2d(256, num_classes, 3, padding=1)]
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


class SeparableConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )


class XceptionBlock(nn.Module):
    """Two separable convolutions and a max-pool, beside a strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
        self.body = nn.Sequential(
            SeparableConv(cin, cout), nn.ReLU(inplace=True),
            SeparableConv(cout, cout), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class MiniXception(nn.Module):
    """Arriaga et al.'s mini-Xception: stem, 4 residual separable blocks, conv to classes, ~60k parameters.

    ``side`` > 48 enlarges the face (bilinear) before the stem: the same weights see it at more
    positions and its last maps are 4x4 instead of 3x3 (at 52), for (52/48)^2 = 1.17x the work."""

    def __init__(self, num_classes: int = NUM_CLASSES, widths: tuple[int, ...] = (16, 32, 64, 128), side: int = 48):
        super().__init__()
        self.side = side
        self.stem = nn.Sequential(*conv_bn_relu(1, 8, 3), *conv_bn_relu(8, 8, 3))
        blocks, cin = [], 8
        for w in widths:
            blocks.append(XceptionBlock(cin, w))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(cin, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.side != 48:  # a plain int: the exported graph has no shape test
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        return self.head(self.blocks(self.stem(x))).mean(dim=(2, 3))


ARCHITECTURES = {"mini_xception": MiniXception, "fcn": FCN,
                 "mini_xception_52": lambda: MiniXception(side=52),
                 "mini_xception_144": lambda: MiniXception(widths=(16, 32, 64, 144))}


def build(arch: str) -> nn.Module:
    try:
        return ARCHITECTURES[arch]()
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}") from None


def load_widened(net: nn.Module, narrow: dict) -> None:
    """Warm-start ``net`` from the weights of a narrower copy of it, computing the same function.

    Each tensor of ``narrow`` fills the leading corner of ``net``'s; the extra output channels keep
    their random start, and the old outputs' weights from the extra input channels are zeroed, so
    the old channels (and the logits) are unchanged until training uses the new ones (Net2Net's
    widening, with zeros instead of copies)."""
    own = net.state_dict()
    if narrow.keys() != own.keys():
        odd = sorted(narrow.keys() ^ own.keys())
        raise ValueError(f"not weights of this network ({len(odd)} layers differ, e.g. {odd[0]})")
    for name, old in narrow.items():
        new = own[name]
        grows = old.dim() == new.dim() and old.shape[2:] == new.shape[2:]  # only channels may grow
        if not grows or any(o > n for o, n in zip(old.shape, new.shape)):
            raise ValueError(f"{name}: {tuple(old.shape)} does not fit into {tuple(new.shape)}")
        if new.dim() > 1:
            new[: old.shape[0], old.shape[1]:] = 0
        new[tuple(slice(0, n) for n in old.shape)] = old
    net.load_state_dict(own)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class ContractModel(nn.Module):
    """Raw grey levels in, probabilities out: what the exported ONNX graph computes."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(normalise(x)), dim=1)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """0..255 to -1..1, as in Arriaga et al.; lives in the graph so callers feed raw pixels."""
    return x * (2.0 / 255.0) - 1.0


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BN beside an identity (or strided 1x1) shortcut, as in ResNet."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)  # a module, so that guided back-propagation can swap it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """A ResNet for 48x48 faces: 3x3 stem (stride ``stem_stride``), stages of basic blocks, each
    stage after the first halving the resolution, global average pooling and one linear layer."""

    def __init__(self, widths: tuple[int, ...], blocks: tuple[int, ...], stem: int, stem_stride: int = 1,
                 num_classes: int = NUM_CLASSES, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 3, stride=stem_stride, padding=1, bias=False),
                                  nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        layers, cin = [], stem
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, 2 if i > 0 and j == 0 else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


ARCHITECTURES.update({
    # Teacher for distillation: ResNet-18's stages at 48x48, about 11M parameters.
    "resnet18": lambda: ResNet((64, 128, 256, 512), (2, 2, 2, 2), stem=64),
    # Students sized on this 2-core CPU (bench/model_card.py, batch 64): resnet_m ~1,300 crops/s
    # in float, ~4,900 in 8 bits; resnet_s (under 1M parameters) ~4,000 in float, ~9,000 in 8 bits.
    "resnet_m": lambda: ResNet((48, 96, 192, 384), (1, 1, 1, 1), stem=48, stem_stride=2),
    "resnet_s": lambda: ResNet((32, 64, 128, 192), (1, 1, 1, 1), stem=32, stem_stride=2),
})
