"""PyTorch reference of the End-to-end Masked Transformer (Zhou et al., CVPR 2018) for dense video captioning:
the training model of tools/train_captioner.py and the parity oracle of captioning/ (state_dict keys, config
JSON, inference and the trace are those of /work/notes/captioner_contract.md and specs/masked_transformer.md).

API (stable; tests/parity/gen_captioner.py imports it as `mt`):
    cfg = mt.default_config(d_in=64, window=96)            # contract defaults, overridable
    model = mt.MaskedTransformer(cfg, vocab)               # vocab: list of words, <unk> <pad> <init> <eos> first
    mt.save(model, path, {"vidcap.inference": ...})        # atomic; drops cap_model.encoder.* and num_batches_tracked
    model = mt.load(path, prefix="")                       # prefix "captioner." for a bundle; eval mode
    events, trace = model.infer(features, times, fps, min_score, nms_tiou, max_events, beam=1, trace=False)

Decisions where the contract is open (the C side must follow them too):
- Decoding runs at most max_tokens - 1 steps (the training length: <init> + 18 words + <eos> in 20 tokens),
  greedy and beam alike; beam=1 gives the greedy answer. Greedy takes the first maximal logit on ties.
- Beam: the pool is, for each hypothesis in beam order, the hypothesis itself if it has ended, else its V
  one-token extensions in token order, scored by the plain sum of float log-probs (log_softmax of the step's
  logits); a stable descending sort keeps the best `beam`; the answer is the first hypothesis at the end.
- Event times are clipped to `duration`; when it is not given it is times[L-1] + 1/fps.
- Features are padded to `window` rows; infer() takes one window (L <= window) and infer_video() splits a
  longer video into consecutive, non-overlapping windows.
- Proposal decoding and its comparisons run in the model's dtype; the NMS tIoU in Python floats (double).
"""
import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import safetensors_io

ARCH = "masked_transformer"
FORMAT = "1"
SPECIALS = ["<unk>", "<pad>", "<init>", "<eos>"]
UNK, PAD, INIT, EOS = 0, 1, 2, 3
LN_EPS = 1e-6
CAUSAL_PENALTY = 1e10
DEFAULT_INFERENCE = {"min_score": 0.5, "nms_tiou": 0.5, "max_events": 10}
CONFIG_KEYS = ("d_in", "d_model", "n_heads", "d_ff", "n_layers", "window", "fps", "kernels", "stride_factor",
               "pe_mask_dim", "max_tokens", "time_dropout", "mask")


# ----------------------------------------------------------------------------------------------------------
# configuration and vocabulary

def default_config(**overrides):
    """The contract's shipped configuration; pe_mask_dim follows d_model unless given."""
    cfg = {"d_in": 2048, "d_model": 192, "n_heads": 4, "d_ff": 384, "n_layers": 2, "window": 160, "fps": 4,
           "kernels": [4, 6, 8, 10, 12, 14, 17, 20, 24], "stride_factor": 50, "pe_mask_dim": None,
           "max_tokens": 20, "time_dropout": 0.1, "mask": "gated_sigmoid"}
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"masked_transformer: unknown config keys {sorted(unknown)}")
    cfg.update(overrides)
    if cfg["pe_mask_dim"] is None:
        cfg["pe_mask_dim"] = cfg["d_model"] // 4
    return check_config(cfg)


def check_config(cfg):
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"masked_transformer: config lacks {missing}")
    if cfg["d_model"] % cfg["n_heads"]:
        raise ValueError("masked_transformer: d_model must be a multiple of n_heads")
    if cfg["mask"] != "gated_sigmoid":
        raise ValueError(f"masked_transformer: mask {cfg['mask']!r} unsupported (gated_sigmoid only)")
    if not cfg["kernels"] or any(k < 1 for k in cfg["kernels"]):
        raise ValueError("masked_transformer: kernels must be positive anchor lengths")
    if cfg["max_tokens"] < 3:
        raise ValueError("masked_transformer: max_tokens must leave room for <init>, a word and <eos>")
    return cfg


def config_to_json(cfg):
    return json.dumps({k: cfg[k] for k in CONFIG_KEYS}, separators=(",", ":"))


def config_from_json(text):
    return check_config(json.loads(text))


def tokenize(sentence):
    """Lower case, split on white space (the contract's tokenisation; "t-shirt" stays one word)."""
    return sentence.lower().split()


def build_vocab(sentences, min_freq=1):
    """<unk> <pad> <init> <eos>, then words by descending frequency, ties alphabetical."""
    counts = {}
    for s in sentences:
        for w in tokenize(s):
            counts[w] = counts.get(w, 0) + 1
    words = sorted((w for w, n in counts.items() if n >= min_freq and w not in SPECIALS),
                   key=lambda w: (-counts[w], w))
    return SPECIALS + words


def encode_sentence(sentence, stoi, max_tokens):
    """Token ids <init> w1 .. wn <eos> <pad>..., n cut to max_tokens - 2, length max_tokens."""
    words = tokenize(sentence)[:max_tokens - 2]
    ids = [INIT] + [stoi.get(w, UNK) for w in words] + [EOS]
    return ids + [PAD] * (max_tokens - len(ids))


def words_of(ids, vocab):
    """The sentence of decoded ids: cut at the first <eos>, specials other than <unk> dropped."""
    out = []
    for i in ids:
        if i == EOS:
            break
        if i in (PAD, INIT):
            continue
        out.append(vocab[i])
    return " ".join(out)


# ----------------------------------------------------------------------------------------------------------
# positional encodings, anchors, windows (shared by training and inference)

def positional_encoding(positions, dim):
    """Interleaved sinusoids: channel c is sin(x / 10000^(c/dim)) for even c, cos(x / 10000^((c-1)/dim)) for
    odd c. positions: tensor of (possibly fractional, differentiable) positions -> [..., dim], same dtype.
    Computed in float64 and rounded once."""
    c = torch.arange(dim, dtype=torch.float64)
    inv = 10000.0 ** (-(c - (c % 2)) / dim)
    angle = positions.to(torch.float64).unsqueeze(-1) * inv
    pe = torch.where(c % 2 == 0, torch.sin(angle), torch.cos(angle))
    return pe.to(positions.dtype if positions.is_floating_point() else torch.float32)


def anchor_stride(kernel, stride_factor):
    return int(math.ceil(kernel / stride_factor))


def branches_up_to(kernels, limit):
    """How many leading kernels fit in `limit` steps (the list is cut at the first kernel that does not)."""
    n = 0
    for k in kernels:
        if k > limit:
            break
        n += 1
    return n


def anchor_grid(cfg, n_branches):
    """Anchor centres and lengths (float64 numpy), branch by branch then by position, for a window of
    cfg['window'] steps: anchor j of kernel k has centre k/2 + j*s and length k, s = ceil(k/stride_factor)."""
    T = cfg["window"]
    centres, lengths = [], []
    for k in cfg["kernels"][:n_branches]:
        s = anchor_stride(k, cfg["stride_factor"])
        n = (T - k) // s + 1
        centres.append(k / 2.0 + s * np.arange(n, dtype=np.float64))
        lengths.append(np.full(n, float(k)))
    if not centres:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(centres), np.concatenate(lengths)


def decode_proposal(centre, length, offsets):
    """Anchor + (theta_l, theta_c) -> (start, end) in steps: l_p = l exp(theta_l), c_p = c + l theta_c."""
    l_p = length * torch.exp(offsets[..., 0])
    c_p = centre + length * offsets[..., 1]
    return c_p - l_p / 2, c_p + l_p / 2


def quantised_window(start, end, limit):
    """Spec 2.5 step 3: w_s = floor(clamp(start, 0, limit - 1)), w_e = ceil(clamp(end, 1, limit))."""
    w_s = math.floor(min(max(start, 0.0), limit - 1))
    w_e = math.ceil(min(max(end, 1.0), limit))
    return w_s, w_e


def segment_tiou(a_start, a_end, b_start, b_end):
    """densecap's segment_iou: intersection clipped at 0, union = len_a + len_b - intersection."""
    inter = max(0.0, min(a_end, b_end) - max(a_start, b_start))
    union = (a_end - a_start) + (b_end - b_start) - inter
    return inter / union if union > 0 else 0.0


def window_masks(windows, T, dtype=torch.float32):
    """Binary masks [n, T]: 1 on [w_s, w_e)."""
    idx = torch.arange(T)
    w = torch.as_tensor(windows, dtype=torch.long).reshape(-1, 2)
    return ((idx >= w[:, :1]) & (idx < w[:, 1:])).to(dtype)


def anchor_bounds(centre, length, T):
    """Anchor window S_a = max(0, floor(c - l/2)), E_a = min(T, ceil(c + l/2)) (integers)."""
    return max(0, math.floor(centre - length / 2)), min(T, math.ceil(centre + length / 2))


# ----------------------------------------------------------------------------------------------------------
# transformer parts (densecap's module names, so the state_dict keys are the contract's)

class LayerNorm(nn.Module):
    """gamma * (x - mean) / (std + eps) + beta with the unbiased std (densecap's LayerNorm)."""

    def __init__(self, d):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(d))
        self.beta = nn.Parameter(torch.zeros(d))

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True, unbiased=True)
        return self.gamma * (x - mean) / (std + LN_EPS) + self.beta


class MultiHead(nn.Module):
    """Heads are contiguous slices of W_q/W_k/W_v outputs; scores scaled by 1/sqrt(d_model), not d_head."""

    def __init__(self, d, n_heads, dropout, causal):
        super().__init__()
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.n_heads, self.scale, self.causal = n_heads, math.sqrt(d), causal
        self.dropout = nn.Dropout(dropout)

    def _split(self, x):
        B, n, d = x.shape
        return x.view(B, n, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, query, key, value):
        q, k, v = self._split(self.wq(query)), self._split(self.wk(key)), self._split(self.wv(value))
        scores = q @ k.transpose(-2, -1)
        if self.causal:
            n = key.shape[1]
            scores = scores - torch.ones(n, n, dtype=scores.dtype).triu(1) * CAUSAL_PENALTY
        p = self.dropout(torch.softmax(scores / self.scale, dim=-1))
        out = (p @ v).transpose(1, 2).reshape(query.shape)
        return self.wo(out)


class FeedForward(nn.Module):
    def __init__(self, d, d_ff):
        super().__init__()
        self.linear1 = nn.Linear(d, d_ff)
        self.linear2 = nn.Linear(d_ff, d)

    def forward(self, x):
        return self.linear2(F.relu(self.linear1(x)))


class ResidualBlock(nn.Module):
    """Post-LN residual: LN(x + Dropout(layer(x, ...)))."""

    def __init__(self, layer, d, dropout):
        super().__init__()
        self.layer = layer
        self.layernorm = LayerNorm(d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, *rest):
        return self.layernorm(x + self.dropout(self.layer(x, *rest)))


class EncoderLayer(nn.Module):
    def __init__(self, d, n_heads, d_ff, dropout, attn_dropout):
        super().__init__()
        self.selfattn = ResidualBlock(MultiHead(d, n_heads, attn_dropout, causal=False), d, dropout)
        self.feedforward = ResidualBlock(FeedForward(d, d_ff), d, dropout)

    def forward(self, x):
        return self.feedforward(self.selfattn(x, x, x))


class DecoderLayer(nn.Module):
    def __init__(self, d, n_heads, d_ff, dropout, attn_dropout):
        super().__init__()
        self.selfattn = ResidualBlock(MultiHead(d, n_heads, attn_dropout, causal=True), d, dropout)
        self.attention = ResidualBlock(MultiHead(d, n_heads, attn_dropout, causal=False), d, dropout)
        self.feedforward = ResidualBlock(FeedForward(d, d_ff), d, dropout)

    def forward(self, x, memory):
        x = self.selfattn(x, x, x)
        return self.feedforward(self.attention(x, memory, memory))


class Encoder(nn.Module):
    def __init__(self, d, n_heads, d_ff, n_layers, dropout, attn_dropout):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d, n_heads, d_ff, dropout, attn_dropout) for _ in range(n_layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, embedded, mask=None):
        """Every layer's output: [x0, x1, .., xn], x0 = Dropout(E + PE) (times the mask in the masked pass)."""
        T, d = embedded.shape[-2:]
        x = self.dropout(embedded + positional_encoding(torch.arange(T, dtype=embedded.dtype), d))
        if mask is not None:
            x = x * mask.unsqueeze(-1)
        outs = [x]
        for layer in self.layers:
            x = layer(x)
            if mask is not None:
                x = x * mask.unsqueeze(-1)
            outs.append(x)
        return outs


class Decoder(nn.Module):
    """Caption decoder with the tied embedding: input = out.weight[tok] * sqrt(d) + PE."""

    def __init__(self, d, n_heads, d_ff, n_layers, vocab_size, dropout, attn_dropout):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(d, n_heads, d_ff, dropout, attn_dropout)
                                    for _ in range(n_layers))
        self.out = nn.Linear(d, vocab_size)
        self.dropout = nn.Dropout(dropout)
        self.d = d

    def forward(self, tokens, memories):
        """tokens [B, t] -> logits [B, t, V]; decoder layer l attends to memories[l] (masked layer l+1)."""
        x = F.embedding(tokens, self.out.weight * math.sqrt(self.d))
        x = self.dropout(x + positional_encoding(torch.arange(tokens.shape[1], dtype=x.dtype), self.d))
        for layer, memory in zip(self.layers, memories):
            x = layer(x, memory)
        return self.out(x)


def proposal_branch(d, kernel, stride):
    """BN, depthwise conv (k, stride, no bias), BN, pointwise conv (no bias), BN, ReLU, BN, conv d->4."""
    return nn.Sequential(
        nn.BatchNorm1d(d), nn.Conv1d(d, d, kernel, stride=stride, groups=d, bias=False),
        nn.BatchNorm1d(d), nn.Conv1d(d, d, 1, bias=False),
        nn.BatchNorm1d(d), nn.ReLU(),
        nn.BatchNorm1d(d), nn.Conv1d(d, 4, 1))


class VisualEmbedding(nn.Module):
    """Holds the video encoder under the contract's key prefix vis_emb.encoder."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder


class CaptionModel(nn.Module):
    """cap_model: the shared encoder (same object as vis_emb.encoder, as in densecap) and the decoder."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder


# ----------------------------------------------------------------------------------------------------------
# the model

class MaskedTransformer(nn.Module):
    def __init__(self, config, vocab, dropout=0.1, attn_dropout=0.0):
        """dropout: on E + PE, the word embeddings and every residual branch; attn_dropout: on attention
        probabilities (densecap uses 0.2 for both; training only, inference is unaffected)."""
        super().__init__()
        cfg = check_config(dict(config))
        self.config, self.vocab = cfg, list(vocab)
        if self.vocab[:4] != SPECIALS:
            raise ValueError(f"masked_transformer: vocab must start with {SPECIALS}")
        self.stoi = {w: i for i, w in enumerate(self.vocab)}
        self.inference_params = dict(DEFAULT_INFERENCE)
        d, T = cfg["d_model"], cfg["window"]
        self.emb = nn.Linear(cfg["d_in"], d)
        encoder = Encoder(d, cfg["n_heads"], cfg["d_ff"], cfg["n_layers"], dropout, attn_dropout)
        self.vis_emb = VisualEmbedding(encoder)
        self.prop_out = nn.ModuleList(proposal_branch(d, k, anchor_stride(k, cfg["stride_factor"]))
                                      for k in cfg["kernels"])
        self.mask_model = nn.Sequential(nn.Linear(4 * cfg["pe_mask_dim"] + T, d, bias=False),
                                        nn.BatchNorm1d(d), nn.ReLU(), nn.Linear(d, T))
        self.cap_model = CaptionModel(encoder, Decoder(d, cfg["n_heads"], cfg["d_ff"], cfg["n_layers"],
                                                       len(self.vocab), dropout, attn_dropout))

    # -- the stages, batched; used by training and inference alike -------------------------------------

    def embed(self, frames):
        """E = ReLU(time_dropout(emb(frames))): training zeroes whole time steps without rescaling,
        evaluation multiplies by (1 - time_dropout). frames [B, T, d_in] -> [B, T, d]."""
        e = self.emb(frames)
        p = self.config["time_dropout"]
        if self.training:
            keep = (torch.rand(e.shape[:2], device=e.device) >= p).to(e.dtype).unsqueeze(-1)
            e = e * keep
        else:
            e = e * (1.0 - p)
        return F.relu(e)

    def encode(self, embedded, mask=None):
        return self.vis_emb.encoder(embedded, mask)

    def anchor_outputs(self, top, n_branches):
        """Branch outputs [B, N, 4] (event logit, unused overlap, theta_l, theta_c) from the last encoder
        layer top [B, T, d], for the first n_branches kernels."""
        x = top.transpose(1, 2)
        outs = [self.prop_out[i](x).transpose(1, 2) for i in range(n_branches)]
        if not outs:
            return top.new_zeros(top.shape[0], 0, 4)
        return torch.cat(outs, 1)

    def mask_input(self, start, end, anchor_start, anchor_end, anchor_window):
        """[rho(S_p) | rho(E_p) | rho(S_a) | rho(E_a) | B_a] for n proposals -> [n, 4*pe_mask_dim + T]."""
        D = self.config["pe_mask_dim"]
        return torch.cat([positional_encoding(start, D), positional_encoding(end, D),
                          positional_encoding(anchor_start, D), positional_encoding(anchor_end, D),
                          anchor_window], 1)

    def continuous_mask_logits(self, mask_in):
        """g(.): one logit per window step; the continuous mask is sigmoid(g) (the paper, not the code)."""
        return self.mask_model(mask_in)

    @staticmethod
    def gated_mask(score, proposal_window, g):
        """M = P * B_p + (1 - P) * sigmoid(g), P the proposal's event score."""
        P = score.unsqueeze(-1)
        return P * proposal_window + (1 - P) * torch.sigmoid(g)

    def caption_logits(self, tokens, masked):
        """Teacher-forced logits [B, t, V] given the masked encoder outputs [G0, G1, .., Gn]."""
        return self.cap_model.decoder(tokens, masked[1:])

    # -- decoding -----------------------------------------------------------------------------------------

    def greedy_decode(self, masked):
        """Greedy captions for K proposals at once. Returns (token lists cut before <eos>, per-proposal
        logits [n_steps_p, V] including the step that emitted <eos>)."""
        K = masked[0].shape[0]
        steps = self.config["max_tokens"] - 1
        tokens = torch.full((K, 1), INIT, dtype=torch.long)
        done = torch.zeros(K, dtype=torch.bool)
        n_steps = torch.full((K,), steps, dtype=torch.long)
        step_logits = []
        for t in range(steps):
            logits = self.caption_logits(tokens, masked)[:, -1]
            step_logits.append(logits)
            nxt = logits.argmax(-1)
            ended = ~done & (nxt == EOS)
            n_steps[ended] = t + 1
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            tokens = torch.cat([tokens, nxt.unsqueeze(1)], 1)
            done = done | ended
            if bool(done.all()):
                break
        logits = torch.stack(step_logits, 1)
        seqs = [tokens[p, 1:1 + n_steps[p]].tolist() for p in range(K)]
        return ([s[:-1] if s and s[-1] == EOS else s for s in seqs],
                [logits[p, :n_steps[p]] for p in range(K)])

    def beam_decode(self, masked, beam):
        """Beam search for one proposal (masked: list of [1, T, d]); see the module docstring for the rules.
        Returns (tokens cut before <eos>, teacher-forced logits [n_steps, V] of the chosen sentence)."""
        steps = self.config["max_tokens"] - 1
        hyps = [([INIT], 0.0, False)]  # (tokens, sum of log-probs in the model dtype, ended)
        for _ in range(steps):
            live = [h for h in hyps if not h[2]]
            if not live:
                break
            toks = torch.tensor([h[0] for h in live], dtype=torch.long)
            mem = [m.expand(len(live), -1, -1) for m in masked]
            logp = torch.log_softmax(self.caption_logits(toks, mem)[:, -1], -1)
            pool_tokens, pool_scores, pool_ended = [], [], []
            li = 0
            for h in hyps:
                if h[2]:
                    pool_tokens.append(h[0])
                    pool_scores.append(torch.tensor(h[1], dtype=logp.dtype).reshape(1))
                    pool_ended.append(True)
                    continue
                ext = torch.tensor(h[1], dtype=logp.dtype) + logp[li]
                li += 1
                pool_scores.append(ext)
                pool_tokens.extend(h[0] + [v] for v in range(ext.shape[0]))
                pool_ended.extend(v == EOS for v in range(ext.shape[0]))
            scores = torch.cat(pool_scores).detach().numpy()
            order = np.argsort(-scores, kind="stable")[:beam]
            hyps = [(pool_tokens[i], scores[i], pool_ended[i]) for i in order]
        best = hyps[0][0]
        emitted = best[1:]
        logits = self.caption_logits(torch.tensor([best[:-1]]), masked)[0]
        words = emitted[:emitted.index(EOS)] if EOS in emitted else emitted
        return words, logits[:len(emitted)]

    def caption_windows(self, embedded, masks, beam=1):
        """Masked encoder passes (batched over proposals) and decoding. embedded [1, T, d], masks [K, T].
        Returns (masked outputs list of [K, T, d], token lists, per-proposal step logits)."""
        K = masks.shape[0]
        masked = self.encode(embedded.expand(K, -1, -1), masks)
        if beam <= 1:
            tokens, logits = self.greedy_decode(masked)
        else:
            tokens, logits = [], []
            for p in range(K):
                t, lg = self.beam_decode([m[p:p + 1] for m in masked], beam)
                tokens.append(t)
                logits.append(lg)
        return masked, tokens, logits

    # -- inference on one window (the contract's procedure) -----------------------------------------------

    def _window_frames(self, features):
        T, d_in = self.config["window"], self.config["d_in"]
        x = torch.as_tensor(features).to(self.emb.weight.dtype)
        if x.dim() != 2 or x.shape[1] != d_in:
            raise ValueError(f"masked_transformer: features must be [L, {d_in}], got {list(x.shape)}")
        L = x.shape[0]
        if L > T:
            raise ValueError(f"masked_transformer: {L} rows exceed the window of {T}; use infer_video")
        frames = x.new_zeros(1, T, d_in)
        frames[0, :L] = x
        return frames, L

    def propose(self, frames, L):
        """Unmasked pass and proposal decoder on one padded window [1, T, d_in] with L real rows: returns
        (E, encoder outputs, branch outputs [N, 4], anchor centres, lengths (numpy), score, start, end)."""
        E = self.embed(frames)
        H = self.encode(E)
        n_branches = branches_up_to(self.config["kernels"], L)
        out = self.anchor_outputs(H[-1], n_branches)[0]
        centre, length = anchor_grid(self.config, n_branches)
        score = torch.sigmoid(out[:, 0])
        start, end = decode_proposal(torch.as_tensor(centre, dtype=out.dtype),
                                     torch.as_tensor(length, dtype=out.dtype), out[:, 2:4])
        return E, H, out, centre, length, score, start, end

    def _select_proposals(self, score, start, end, L, min_score, nms_tiou, max_events):
        """Candidates in descending score (stable), dropped when start >= end, start < 0 or end > L + 1, kept
        by greedy NMS against the kept quantised windows. Returns [(anchor, w_s, w_e)]."""
        valid = (start < end) & (start >= 0) & (end <= L + 1) & (score >= min_score)
        order = torch.sort(score, descending=True, stable=True).indices
        limit = min(L + 1, self.config["window"])
        kept = []
        for a in order.tolist():
            if len(kept) >= max_events:
                break
            if not bool(valid[a]):
                continue
            s, e = float(start[a]), float(end[a])
            if any(segment_tiou(s, e, ks, ke) > nms_tiou for _, ks, ke in kept):
                continue
            kept.append((a,) + quantised_window(s, e, limit))
        return kept

    @torch.no_grad()
    def infer(self, features, times, fps, min_score=None, nms_tiou=None, max_events=None, beam=1, trace=False,
              duration=None):
        """Dense captions of one window of frame features.

        features [L, d_in] (L <= window), times [L] in seconds, fps of the features. min_score, nms_tiou and
        max_events default to the model's vidcap.inference. Returns (events, trace_dict): events in score
        order, each {"start", "end" (seconds), "score", "sentence", "tokens" (ids without <eos>),
        "window" [w_s, w_e] (steps), "proposal" [start, end] (float steps), "anchor" (index)}.

        trace_dict (empty unless trace=True), every value a tensor in the model's dtype:
          input [T, d_in]                 the zero-padded window
          embedding [T, d]                E = ReLU((1 - time_dropout) * emb(input))
          encoder.input [T, d]            E + PE
          encoder.layers.{l} [T, d]       output of encoder layer l (l = 0 .. n_layers-1), unmasked pass
          anchors.output [N, 4]           branch outputs of the used kernels, branch then position order
          anchors.centre, anchors.length, anchors.score (sigmoid), anchors.start, anchors.end   [N]
          proposals.anchor [K]            index of each kept proposal's anchor (score order)
          proposals.score, proposals.start, proposals.end [K];  proposals.window [K, 2] (w_s, w_e)
          mask.input [K, 4*pe_mask_dim + T], mask.logits [K, T] (g), mask [K, T] (M, gated)
          masked.input [K, T, d]          G0 = (E + PE) * M
          masked.layers.{l} [K, T, d]     G_{l+1} = Layer_l(G_l) * M
          decoder.logits.{p} [n_p, V]     logits of every decoding step of proposal p (incl. the <eos> step)
          decoder.tokens.{p} [n_p]        the tokens emitted at those steps (float ids)
        """
        self.eval()
        prm = self.inference_params
        min_score = prm["min_score"] if min_score is None else min_score
        nms_tiou = prm["nms_tiou"] if nms_tiou is None else nms_tiou
        max_events = int(prm["max_events"] if max_events is None else max_events)
        cfg, tr = self.config, {}
        T = cfg["window"]
        frames, L = self._window_frames(features)
        times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
        if L == 0:
            return [], tr
        if duration is None:
            duration = float(times[L - 1]) + 1.0 / fps
        E, H, out, centre_np, length_np, score, start, end = self.propose(frames, L)
        centre = torch.as_tensor(centre_np, dtype=out.dtype)
        length = torch.as_tensor(length_np, dtype=out.dtype)
        kept = self._select_proposals(score, start, end, L, min_score, nms_tiou, max_events)
        if trace:
            tr.update({"input": frames[0], "embedding": E[0], "encoder.input": H[0][0]})
            tr.update({f"encoder.layers.{l}": h[0] for l, h in enumerate(H[1:])})
            tr.update({"anchors.output": out, "anchors.centre": centre, "anchors.length": length,
                       "anchors.score": score, "anchors.start": start, "anchors.end": end})
        if not kept:
            if trace:
                self._trace_empty(tr, out.dtype)
            return [], tr
        anchors = torch.tensor([a for a, _, _ in kept], dtype=torch.long)
        windows = [(ws, we) for _, ws, we in kept]
        bounds = [anchor_bounds(centre_np[a], length_np[a], T) for a, _, _ in kept]
        mask_in = self.mask_input(start[anchors], end[anchors],
                                  torch.tensor([b[0] for b in bounds], dtype=out.dtype),
                                  torch.tensor([b[1] for b in bounds], dtype=out.dtype),
                                  window_masks(bounds, T, out.dtype))
        g = self.continuous_mask_logits(mask_in)
        M = self.gated_mask(score[anchors], window_masks(windows, T, out.dtype), g)
        masked, tokens, logits = self.caption_windows(E, M, beam)
        events = []
        for p, (a, ws, we) in enumerate(kept):
            events.append({"start": min(float(times[0]) + ws / fps, duration),
                           "end": min(float(times[0]) + we / fps, duration),
                           "score": float(score[a]), "sentence": words_of(tokens[p], self.vocab),
                           "tokens": list(tokens[p]), "window": [ws, we],
                           "proposal": [float(start[a]), float(end[a])], "anchor": a})
        if trace:
            tr.update({"proposals.anchor": anchors.to(out.dtype), "proposals.score": score[anchors],
                       "proposals.start": start[anchors], "proposals.end": end[anchors],
                       "proposals.window": torch.tensor(windows, dtype=out.dtype),
                       "mask.input": mask_in, "mask.logits": g, "mask": M, "masked.input": masked[0]})
            tr.update({f"masked.layers.{l}": m for l, m in enumerate(masked[1:])})
            for p, lg in enumerate(logits):
                tr[f"decoder.logits.{p}"] = lg
                tr[f"decoder.tokens.{p}"] = lg.argmax(-1).to(out.dtype) if beam <= 1 else torch.tensor(
                    (tokens[p] + [EOS])[:lg.shape[0]], dtype=out.dtype)
        return events, tr

    def _trace_empty(self, tr, dtype):
        T, d, D = self.config["window"], self.config["d_model"], self.config["pe_mask_dim"]
        z = lambda *s: torch.zeros(*s, dtype=dtype)  # noqa: E731
        tr.update({"proposals.anchor": z(0), "proposals.score": z(0), "proposals.start": z(0),
                   "proposals.end": z(0), "proposals.window": z(0, 2), "mask.input": z(0, 4 * D + T),
                   "mask.logits": z(0, T), "mask": z(0, T), "masked.input": z(0, T, d)})
        tr.update({f"masked.layers.{l}": z(0, T, d) for l in range(self.config["n_layers"])})

    @torch.no_grad()
    def infer_video(self, features, times, fps, min_score=None, nms_tiou=None, max_events=None, beam=1,
                    duration=None):
        """infer() over consecutive windows of `window` rows; events of all windows, each window's in score
        order (max_events applies per window)."""
        T = self.config["window"]
        L = len(features)
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if duration is None and L:
            duration = float(times[L - 1]) + 1.0 / fps
        events = []
        for s0 in range(0, L, T):
            ev, _ = self.infer(features[s0:s0 + T], times[s0:s0 + T], fps, min_score, nms_tiou, max_events,
                               beam, duration=duration)
            events.extend(ev)
        return events

    @torch.no_grad()
    def caption_segments(self, features, times, fps, segments, beam=1):
        """Captions of given segments (seconds) of one window: each segment is a proposal with P = 1, so its
        mask is its quantised window (the ground-truth-segment upper bound). Returns sentences."""
        self.eval()
        frames, L = self._window_frames(features)
        if L == 0 or not segments:
            return [""] * len(segments)
        t0 = float(np.asarray(times, dtype=np.float64).reshape(-1)[0])
        limit = min(L + 1, self.config["window"])
        windows = [quantised_window((s - t0) * fps, (e - t0) * fps, limit) for s, e in segments]
        E = self.embed(frames)
        M = window_masks(windows, self.config["window"], E.dtype)
        _, tokens, _ = self.caption_windows(E, M, beam)
        return [words_of(t, self.vocab) for t in tokens]


# ----------------------------------------------------------------------------------------------------------
# files

def file_state_dict(model):
    """The contract's keys: the shared encoder once (vis_emb.encoder.*), no num_batches_tracked."""
    return {k: v for k, v in model.state_dict().items()
            if not k.startswith("cap_model.encoder.") and not k.endswith("num_batches_tracked")}


def metadata(model, extra=None):
    meta = {"vidcap.arch": ARCH, "vidcap.format": FORMAT, "vidcap.config": config_to_json(model.config),
            "vidcap.vocab": json.dumps(model.vocab, ensure_ascii=False),
            "vidcap.inference": json.dumps(model.inference_params)}
    meta.update(extra or {})
    return meta


def save(model, path, metadata_extra=None, prefix=""):
    """Writes the model as safetensors (atomically, through safetensors_io); metadata_extra may carry
    vidcap.inference (JSON string or dict) and anything else."""
    extra = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in (metadata_extra or {}).items()}
    meta = metadata(model, extra)
    tensors = {prefix + k: v for k, v in file_state_dict(model).items()}
    safetensors_io.save(path, tensors, {prefix + k: v for k, v in meta.items()})


def load(path, prefix="", dropout=0.0):
    """Reads a captioner (optionally under a bundle prefix such as "captioner."); strict on keys and shapes."""
    tensors, meta = safetensors_io.load(path)
    arch = meta.get(prefix + "vidcap.arch")
    if arch != ARCH:
        raise ValueError(f"{path}: vidcap.arch is {arch!r}, expected {ARCH!r}")
    if meta.get(prefix + "vidcap.format") != FORMAT:
        raise ValueError(f"{path}: unsupported vidcap.format {meta.get(prefix + 'vidcap.format')!r}")
    model = MaskedTransformer(config_from_json(meta[prefix + "vidcap.config"]),
                              json.loads(meta[prefix + "vidcap.vocab"]), dropout=dropout)
    if prefix + "vidcap.inference" in meta:
        model.inference_params.update(json.loads(meta[prefix + "vidcap.inference"]))
    sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    want = file_state_dict(model)
    if set(sd) != set(want):
        missing, extra = sorted(set(want) - set(sd)), sorted(set(sd) - set(want))
        raise ValueError(f"{path}: key mismatch, missing {missing[:5]}, unexpected {extra[:5]}")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(want[k].shape):
            raise ValueError(f"{path}: {k} has shape {list(v.shape)}, expected {list(want[k].shape)}")
    full = dict(sd)
    full.update({"cap_model.encoder." + k[len("vis_emb.encoder."):]: v
                 for k, v in sd.items() if k.startswith("vis_emb.encoder.")})
    full.update({k: torch.zeros((), dtype=torch.long)
                 for k in model.state_dict() if k.endswith("num_batches_tracked")})
    model.load_state_dict(full, strict=True)
    model.file_metadata = {k[len(prefix):]: v for k, v in meta.items() if k.startswith(prefix)}
    return model.eval()
