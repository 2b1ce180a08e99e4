/* Token impact (Wang et al., arXiv 2305.14840): how much the loss changes when a token is masked, the
 * label the token filter learns from. For NesT it is measured per top-level token (specs/token_filter.md
 * §4.3): each covers a 2^(L-1) x 2^(L-1) group of level-0 tokens. */
#pragma once
#include "vision/nest.h"

/* number of groups: grid_top^2 */
int tf_groups(const nest_config *c);
/* Leave-one-out: delta[g] = CE(f(x with group g's patch embeddings zeroed, position embeddings kept), label)
 * - CE(f(x), label). One forward per group plus one. scratch: grid_0^2 * C_0 floats. */
void tf_impact_loo(nest_state *s, const float *input, int label, float *delta, float *scratch);
/* The one-backward estimate of the same: delta[g] = -sum over the group of e . dCE/de (first-order change
 * when e goes to 0). Needs nest_state_enable_backward(s, 1). */
void tf_impact_grad(nest_state *s, const float *input, int label, float *delta);
