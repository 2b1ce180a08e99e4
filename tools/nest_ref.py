"""PyTorch reference NesT (Zhang et al., AAAI 2022), state_dict-identical to timm's `Nest`.

It is the training code for the shipped model and the parity oracle for vision/nest.c: same keys,
same shapes, same op order as timm (LayerNorm eps 1e-6, exact-erf GELU, head merge e*H+h,
conv -> LN -> max-pool with -inf padding, TF-SAME for the `_jx` variants). No timm import needed.
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-6


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # x: (B, T, N, C)
        B, T, N, C = x.shape
        qkv = self.qkv(x).reshape(B, T, N, 3, self.num_heads, C // self.num_heads).permute(3, 0, 4, 1, 2, 5)
        q, k, v = qkv.unbind(0)  # (B, H, T, N, d)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        x = attn @ v
        # (B, H, T, N, d) -> (B, T, N, d, H): feature index e*H + h, as timm/JAX do
        x = x.permute(0, 2, 3, 4, 1).reshape(B, T, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class TransformerLayer(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def _dp(self, x):
        if not self.training or self.drop_path == 0.0:
            return x
        keep = 1.0 - self.drop_path
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def forward(self, x):
        x = x + self._dp(self.attn(self.norm1(x)))
        x = x + self._dp(self.mlp(self.norm2(x)))
        return x


def maxpool_3x3_s2(x, pad_type):
    """3x3 stride-2 max-pool with -inf padding: symmetric 1 px, or TF-SAME (bottom/right first)."""
    if pad_type == "same":
        H, W = x.shape[-2:]
        ph = max((math.ceil(H / 2) - 1) * 2 + 3 - H, 0)
        pw = max((math.ceil(W / 2) - 1) * 2 + 3 - W, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
        return F.max_pool2d(x, 3, 2, 0)
    return F.max_pool2d(x, 3, 2, 1)


class ConvPool(nn.Module):
    def __init__(self, cin, cout, pad_type):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=True)
        self.norm = nn.LayerNorm(cout, eps=LN_EPS)
        self.pad_type = pad_type

    def forward(self, x):  # NCHW
        x = self.conv(x)
        x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return maxpool_3x3_s2(x, self.pad_type)


def blockify(x, s):  # (B, H, W, C) -> (B, T, s*s, C)
    B, H, W, C = x.shape
    g = H // s
    return x.reshape(B, g, s, g, s, C).transpose(2, 3).reshape(B, g * g, s * s, C)


def deblockify(x, s):  # (B, T, s*s, C) -> (B, H, W, C)
    B, T, _, C = x.shape
    g = int(round(math.sqrt(T)))
    return x.reshape(B, g, g, s, s, C).transpose(2, 3).reshape(B, g * s, g * s, C)


class NestLevel(nn.Module):
    def __init__(self, num_blocks, block_size, seq_length, num_heads, depth, embed_dim, prev_dim,
                 mlp_ratio, pad_type, drop_path):
        super().__init__()
        self.block_size = block_size
        self.pos_embed = nn.Parameter(torch.zeros(1, num_blocks, seq_length, embed_dim))
        self.pool = ConvPool(prev_dim, embed_dim, pad_type) if prev_dim is not None else nn.Identity()
        self.transformer_encoder = nn.Sequential(*[
            TransformerLayer(embed_dim, num_heads, mlp_ratio, drop_path[i]) for i in range(depth)])

    def forward(self, x):  # NCHW
        x = self.pool(x)
        x = x.permute(0, 2, 3, 1)
        x = blockify(x, self.block_size)
        x = x + self.pos_embed
        x = self.transformer_encoder(x)
        x = deblockify(x, self.block_size)
        return x.permute(0, 3, 1, 2)


class Nest(nn.Module):
    """config keys: img_size, in_chans, patch_size, num_levels, embed_dims, num_heads, depths,
    num_classes, mlp_ratio, pad_type ('same' for the _jx variants, '' otherwise)."""

    def __init__(self, config, drop_path_rate=0.0):
        super().__init__()
        c = dict(config)
        self.config = c
        L = c["num_levels"]
        dims, heads, depths = c["embed_dims"], c["num_heads"], c["depths"]
        grid = c["img_size"] // c["patch_size"]
        num_blocks = [4 ** (L - 1 - i) for i in range(L)]
        block_size = int(grid // math.sqrt(num_blocks[0]))
        seq_length = block_size * block_size
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(c["in_chans"], dims[0], c["patch_size"], c["patch_size"])
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        levels, prev, k = [], None, 0
        for i in range(L):
            levels.append(NestLevel(num_blocks[i], block_size, seq_length, heads[i], depths[i], dims[i], prev,
                                    c.get("mlp_ratio", 4.0), c.get("pad_type", ""), dpr[k:k + depths[i]]))
            prev, k = dims[i], k + depths[i]
        self.levels = nn.Sequential(*levels)
        self.norm = nn.LayerNorm(dims[-1], eps=LN_EPS)
        self.head = nn.Linear(dims[-1], c["num_classes"])
        for lvl in self.levels:
            nn.init.trunc_normal_(lvl.pos_embed, std=0.02, a=-2, b=2)

    def forward_levels(self, x):
        """Returns the output map of every level (NCHW), the ones GradCAT and the parity tests read."""
        x = self.patch_embed.proj(x)
        outs = []
        for lvl in self.levels:
            x = lvl(x)
            outs.append(x)
        return outs

    def head_from_map(self, x):
        x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.head(x.mean(dim=(2, 3)))

    def forward(self, x):
        return self.head_from_map(self.forward_levels(x)[-1])


NEST_TINY = dict(img_size=224, in_chans=3, patch_size=4, num_levels=3, embed_dims=[96, 192, 384],
                 num_heads=[3, 6, 12], depths=[2, 2, 8], num_classes=1000, mlp_ratio=4.0, pad_type="same")


def metadata(config, labels, preprocess):
    """The safetensors __metadata__ vidcap reads (all values are strings)."""
    cfg = dict(config)
    return {"vidcap.format": "1", "vidcap.arch": "nest", "vidcap.config": json.dumps(cfg),
            "vidcap.labels": json.dumps(labels), "vidcap.preprocess": json.dumps(preprocess)}


def level_keep_masks(model, keep_top):
    """keep_top: bool (G_top, G_top) over the top level's positions -> per level bool (H_l, W_l) masks: a
    position is kept when the top-level token above it is (2^(L-1-l) x 2^(L-1-l) groups)."""
    L = len(model.levels)
    return [keep_top.repeat_interleave(2 ** (L - 1 - i), 0).repeat_interleave(2 ** (L - 1 - i), 1)
            for i in range(L)]


def forward_filtered(model, x, keep_top):
    """The token filter's option D (specs/token_filter.md §4.2), x: (1, C, H, W). One keep mask at top-level
    granularity carried down: at lower levels dropped tokens skip attention and MLP and pass through
    unchanged (each block attends among its kept tokens only), ConvPool runs on the full grid; at the top
    level dropped tokens are removed, and the head averages the kept tokens after the final norm.
    Returns (level maps as forward_levels gives them, logits)."""
    masks = level_keep_masks(model, keep_top)
    L = len(model.levels)
    h = model.patch_embed.proj(x)
    maps = []
    for i, lvl in enumerate(model.levels):
        h = lvl.pool(h).permute(0, 2, 3, 1)
        S = lvl.block_size
        t = blockify(h, S) + lvl.pos_embed                       # (1, T, N, C)
        kb = blockify(masks[i][None, :, :, None].float(), S)[0, :, :, 0] > 0.5   # (T, N)
        t = t.clone()
        for b in range(t.shape[1]):
            idx = kb[b].nonzero().flatten()
            if idx.numel() == 0:
                continue
            tok = t[:, b:b + 1, idx, :]
            for layer in lvl.transformer_encoder:
                tok = layer(tok)
            t[:, b:b + 1, idx, :] = tok
        h = deblockify(t, S).permute(0, 3, 1, 2)
        maps.append(h)
        if i == L - 1:
            kept = t[0, 0, kb[0]]                                  # (k, C): the top level has one block
            pooled = model.norm(kept).mean(0, keepdim=True)
            return maps, model.head(pooled)
    raise AssertionError("unreachable")


def _attention_masked(attn, x, key_keep):
    """attn: Attention; x (B, T, N, C); key_keep (B, T, N) bool: queries attend to kept keys only."""
    B, T, N, C = x.shape
    qkv = attn.qkv(x).reshape(B, T, N, 3, attn.num_heads, C // attn.num_heads).permute(3, 0, 4, 1, 2, 5)
    q, k, v = qkv.unbind(0)
    a = (q * attn.scale) @ k.transpose(-2, -1)                          # (B, H, T, N, N)
    allow = key_keep | ~key_keep.any(-1, keepdim=True)                  # an empty block masks nothing
    a = a.masked_fill(~allow[:, None, :, None, :], float("-inf")).softmax(dim=-1)
    out = (a @ v).permute(0, 2, 3, 4, 1).reshape(B, T, N, C)
    return attn.proj(out)


def filtered_top_tokens(model, x, keep_top, fill=None):
    """The levels of forward_filtered for a batch, with attention masks instead of gathers (same numbers up
    to rounding): x (B, C, H, W), keep_top (B, G_top, G_top) bool. Returns the top level's tokens
    (B, N, C), dropped ones as they entered the level, and the keep mask over them (B, N).
    fill: per level below the top, a learned (C_i,) vector that replaces the dropped tokens' output (the
    token filter's other option), or None: dropped tokens pass through."""
    L = len(model.levels)
    h = model.patch_embed.proj(x)
    for i, lvl in enumerate(model.levels):
        h = lvl.pool(h).permute(0, 2, 3, 1)
        S = lvl.block_size
        t = blockify(h, S) + lvl.pos_embed
        r = 2 ** (L - 1 - i)
        m = keep_top.repeat_interleave(r, 1).repeat_interleave(r, 2)
        kb = blockify(m[..., None].float(), S)[..., 0] > 0.5            # (B, T, N)
        for layer in lvl.transformer_encoder:
            y = t + layer._dp(_attention_masked(layer.attn, layer.norm1(t), kb))
            y = y + layer._dp(layer.mlp(layer.norm2(y)))
            t = torch.where(kb[..., None], y, t)
        if i == L - 1:
            return t[:, 0], kb[:, 0]                                       # one top block
        if fill is not None:
            t = torch.where(kb[..., None], t, fill[i])
        h = deblockify(t, S).permute(0, 3, 1, 2)
    raise AssertionError("unreachable")


def forward_filtered_batched(model, x, keep_top, fill=None):
    """Logits of forward_filtered for a batch (the head averages the kept top-level tokens). Used to
    fine-tune with a filter."""
    t, kb = filtered_top_tokens(model, x, keep_top, fill)
    w = kb.float()[..., None]
    return model.head((model.norm(t) * w).sum(1) / w.sum(1))


class TokenFilter(nn.Module):
    """The C filter (vision/token_filter.c) in PyTorch: one score per top-level token from the mean of the
    patch + level-0 position embeddings it covers, with the image's mean row as context."""

    def __init__(self, c0, hidden, context=True):
        super().__init__()
        self.context = context
        self.fc1 = nn.Linear(2 * c0 if context else c0, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, model, x):
        L = len(model.levels)
        e = model.patch_embed.proj(x).permute(0, 2, 3, 1)                 # (B, G0, G0, C0)
        pos = deblockify(model.levels[0].pos_embed, model.levels[0].block_size)
        f = e + pos
        B, G0, _, C = f.shape
        side = 2 ** (L - 1)
        top = G0 // side
        f = f.reshape(B, top, side, top, side, C).mean((2, 4)).reshape(B, top * top, C)
        if self.context:
            f = torch.cat([f, f.mean(1, keepdim=True).expand_as(f)], -1)
        return self.fc2(self.act(self.fc1(f)))[..., 0].reshape(B, top, top)


def keep_topk(scores, keep):
    """(B, G, G) scores -> bool mask of the round(keep * G * G) best per image (at least 1)."""
    B, G, _ = scores.shape
    k = max(1, min(G * G, int(math.floor(keep * G * G + 0.5))))
    idx = scores.reshape(B, -1).topk(k, dim=1).indices
    mask = torch.zeros(B, G * G, dtype=torch.bool)
    mask.scatter_(1, idx, True)
    return mask.reshape(B, G, G)
