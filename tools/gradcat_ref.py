"""PyTorch reference GradCAT over tools/nest_ref.py, the oracle for vision/gradcat.c.

Same decisions as the C header comment: objective log p_c, s = sign * sum_channels(A * d log p_c / dA) per
position and level, node score = mean of the node's own level map over its block, root = the top block,
best of the 2x2 children at each level (first in row-major order on ties).
"""
import torch

from nest_ref import forward_filtered


def gradcat(model, x, target=None, sign=1.0, keep=None):
    """x: (1, C, H, W); keep: the token filter's (G_top, G_top) bool mask, or None. Returns (target,
    score_maps [per level, (H_l, W_l)], path [(level, by, bx, score)])."""
    model.eval()
    maps = model.forward_levels(x) if keep is None else forward_filtered(model, x, keep)[0]
    for m in maps:
        m.retain_grad()
    if keep is None:
        logits = model.head_from_map(maps[-1])
    else:   # the head over the kept top-level tokens, read from the top map so its gradient lands there
        kept = maps[-1][0].permute(1, 2, 0)[keep]
        logits = model.head(model.norm(kept).mean(0, keepdim=True))
    if target is None:
        target = int(logits[0].argmax())
    torch.log_softmax(logits, dim=1)[0, target].backward()
    scores = [sign * (m[0] * m.grad[0]).sum(0).detach() for m in maps]
    S = model.levels[0].block_size
    L = len(maps)

    def node(level, by, bx):
        return float(scores[level][by * S:(by + 1) * S, bx * S:(bx + 1) * S].mean())

    path = [(L - 1, 0, 0, node(L - 1, 0, 0))]
    by = bx = 0
    for level in range(L - 2, -1, -1):
        best = None
        for dy in range(2):
            for dx in range(2):
                v = node(level, 2 * by + dy, 2 * bx + dx)
                if best is None or v > best[0]:
                    best = (v, 2 * by + dy, 2 * bx + dx)
        by, bx = best[1], best[2]
        path.append((level, by, bx, best[0]))
    return target, scores, path
