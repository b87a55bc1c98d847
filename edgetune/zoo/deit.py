"""A small vision transformer at DeiT-Tiny size (Touvron et al. 2021), in plain torch.

Why in the zoo: edge deployments run transformers too, and their layers are not convolutions: the
attention MatMuls (both operands at run time), Softmax, LayerNormalization, GELU (Erf) and the token
Gather. Attention is written out (no fused kernel) so the export is plain standard ONNX.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import IMAGENET_NORM, ModelSpec, Weights, init_random, quiet_build, random_weights

SEED = 214


class Attention(nn.Module):
    """Multi-head self-attention: one qkv projection, softmax(q k^T / sqrt(d)) v, output projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Patch embedding (a strided conv), class token, learned positions, `depth` blocks, head on the
    class token."""

    def __init__(self, img: int = 224, patch: int = 16, dim: int = 192, depth: int = 12, heads: int = 3,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        tokens = (img // patch) ** 2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def init_transformer(model: VisionTransformer, seed: int) -> None:
    """He/normal init from `init_random`, plus small random class token, positions and LN affine
    parameters, so no tensor is a constant the exporter could fold."""
    init_random(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model.cls_token.normal_(0.0, 0.02, generator=g)
        model.pos_embed.normal_(0.0, 0.02, generator=g)
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.8, 1.2, generator=g)
                m.bias.normal_(0.0, 0.02, generator=g)


def build_vit(img: int = 224, patch: int = 16, dim: int = 192, depth: int = 12, heads: int = 3,
              num_classes: int = 1000, seed: int = SEED) -> nn.Module:
    """A seeded ViT of the given size (the zoo's is DeiT-Tiny: 224, 16, 192, 12, 3)."""
    model = quiet_build(lambda: VisionTransformer(img, patch, dim, depth, heads, num_classes))
    init_transformer(model, seed)
    return model


def _build(weights: Weights) -> nn.Module:
    return build_vit()


SPECS = [ModelSpec("deit_tiny", "vision transformer, DeiT-Tiny size (12 blocks, dim 192, 3 heads, patch 16)",
                   (1, 3, 224, 224), 1000, IMAGENET_NORM, "imagenet", random_weights(SEED), _build)]
