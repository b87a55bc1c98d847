"""An SSD-Lite style detector (Sandler et al. 2018) on a MobileNet v2 backbone, in plain torch.

torchvision's `ssdlite320_mobilenet_v3_large` cannot be used: no torchvision build matches the pinned
torch. This one keeps the parts that matter for what an edge CPU runs: a MobileNet v2 backbone (the
zoo's blocks), a light FPN top-down path (nearest Resize + Add), extra stride-2 layers, SSD-Lite
heads (depthwise 3x3 + pointwise 1x1 per feature map), the Transpose/Reshape/Concat of the head
outputs, and a YOLO/SSD style box decoding against constant anchors (Split, Sigmoid, Exp, Mul, Add).
Outputs: `boxes` (1, anchors, 4) as x1, y1, x2, y2 in [0, 1] units and `scores` (1, anchors, classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgetune.data.preprocess import Preprocessing

from .base import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Weights, init_random, quiet_build, random_weights
from .mobilenet_v2 import _SETTINGS, InvertedResidual, _conv_bn

SEED = 320
FPN_CH = 128


def _head(cin: int, cout: int) -> nn.Sequential:
    """SSD-Lite prediction head: depthwise 3x3 + BN + ReLU6, then a pointwise 1x1 with bias."""
    return nn.Sequential(_conv_bn(cin, cin, 3, 1, groups=cin), nn.Conv2d(cin, cout, 1))


def _extra(cin: int, cout: int) -> nn.Sequential:
    """Extra feature layer: 1x1 reduce, depthwise 3x3 stride 2, 1x1 expand (each + BN + ReLU6)."""
    mid = cout // 2
    return nn.Sequential(_conv_bn(cin, mid, 1, 1), _conv_bn(mid, mid, 3, 2, groups=mid), _conv_bn(mid, cout, 1, 1))


def _anchors(sizes: list[int]) -> Tensor:
    """(sum h*w*A, 4) anchors as (cx, cy, w, h): per feature map of side s, A = 6 boxes per cell of
    scale 0.1..0.9 and aspect ratios 1, 2, 1/2, 3, 1/3 plus one intermediate scale, cell-major order."""
    scales = torch.linspace(0.1, 0.9, len(sizes) + 1)
    out = []
    for k, s in enumerate(sizes):
        sc, nxt = float(scales[k]), float(scales[k + 1])
        shapes = [(sc, sc), ((sc * nxt) ** 0.5,) * 2] + [(sc * r ** 0.5, sc / r ** 0.5) for r in (2, 0.5, 3, 1 / 3)]
        ys, xs = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        centers = torch.stack([(xs + 0.5) / s, (ys + 0.5) / s], -1).reshape(-1, 1, 2).expand(-1, len(shapes), 2)
        wh = torch.tensor(shapes).reshape(1, -1, 2).expand(s * s, -1, 2)
        out.append(torch.cat([centers, wh], -1).reshape(-1, 4))
    return torch.cat(out)


class SSDLite(nn.Module):
    """Backbone -> C4 (stride 16) and C5 (stride 32) -> FPN-lite P4, P5 -> 3 extra maps -> heads -> decode."""

    def __init__(self, img: int = 320, num_classes: int = 91, settings: list[tuple[int, int, int, int]] = _SETTINGS,
                 stem: int = 32, c5_ch: int = 480, fpn_ch: int = FPN_CH, anchors: int = 6) -> None:
        super().__init__()
        self.num_classes, self.num_anchors = num_classes, anchors
        blocks: list[nn.Module] = [_conv_bn(3, stem, 3, 2)]
        cin, stride, c4_index = stem, 2, 0
        for t, c, n, s in settings:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                stride *= s if i == 0 else 1
                cin = c
                if stride == 16:
                    c4_index, c4_ch = len(blocks), c
        self.c4 = nn.Sequential(*blocks[:c4_index])
        self.c5 = nn.Sequential(*blocks[c4_index:], _conv_bn(cin, c5_ch, 1, 1))
        self.lateral4, self.lateral5 = _conv_bn(c4_ch, fpn_ch, 1, 1), _conv_bn(c5_ch, fpn_ch, 1, 1)
        self.extras = nn.ModuleList([_extra(fpn_ch, fpn_ch) for _ in range(3)])
        self.heads = nn.ModuleList([_head(fpn_ch, anchors * (4 + num_classes)) for _ in range(5)])
        sizes = [img // 16, img // 32]
        for _ in range(3):
            sizes.append((sizes[-1] - 1) // 2 + 1)
        self.register_buffer("anchors", _anchors(sizes), persistent=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        c4 = self.c4(x)
        p5 = self.lateral5(self.c5(c4))
        p4 = self.lateral4(c4) + F.interpolate(p5, scale_factor=2.0, mode="nearest")
        maps = [p4, p5]
        for extra in self.extras:
            maps.append(extra(maps[-1]))
        per_map = []
        for head, m in zip(self.heads, maps, strict=True):
            y = head(m).permute(0, 2, 3, 1)
            per_map.append(y.reshape(y.shape[0], -1, 4 + self.num_classes))
        loc, logits = torch.cat(per_map, 1).split([4, self.num_classes], dim=-1)
        dxy, dwh = loc.split([2, 2], dim=-1)
        a_xy, a_wh = self.anchors[:, :2], self.anchors[:, 2:]
        centers = a_xy + dxy * 0.1 * a_wh
        half = torch.exp(dwh * 0.2) * a_wh * 0.5
        return torch.cat([centers - half, centers + half], dim=-1), torch.sigmoid(logits)


def build_ssdlite(img: int = 320, num_classes: int = 91, settings: list[tuple[int, int, int, int]] = _SETTINGS,
                  stem: int = 32, c5_ch: int = 480, fpn_ch: int = FPN_CH, seed: int = SEED) -> nn.Module:
    """A seeded detector; the zoo's is MobileNet v2 1.0 at 320x320 with 91 classes (COCO)."""
    model = quiet_build(lambda: SSDLite(img, num_classes, settings, stem, c5_ch, fpn_ch))
    damp = [m.conv[-1] for m in model.modules() if isinstance(m, InvertedResidual) and m.use_res]
    init_random(model, seed, damp)
    return model


def _build(weights: Weights) -> nn.Module:
    return build_ssdlite()


SPECS = [ModelSpec("ssdlite_mobilenet_v2", "SSD-Lite detector, MobileNet v2 backbone + FPN-lite, 320x320, 91 "
                   "classes, decoded boxes", (1, 3, 320, 320), 91,
                   Preprocessing(size=320, crop=320, mean=IMAGENET_MEAN, std=IMAGENET_STD), None, random_weights(SEED),
                   _build, outputs=("boxes", "scores"))]
