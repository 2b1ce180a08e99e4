/* The caption event list: adding (sentences kept as valid UTF-8), time order, temporal IoU, and merging
 * the events of overlapping windows so an event seen by two windows is written once. */
#include "captioning/events.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "vidcap.h"

cap_events *cap_events_create(void)
{
    return calloc(1, sizeof(cap_events));
}

void cap_events_clear(cap_events *list)
{
    if (!list) return;
    for (size_t i = 0; i < list->n; i++)
        free(list->ev[i].sentence);
    list->n = 0;
}

void cap_events_free(cap_events *list)
{
    if (!list) return;
    cap_events_clear(list);
    free(list->ev);
    free(list);
}

/* Room for at least `need` events; 0 or VC_ERR_NOMEM (the list is unchanged then). */
static int events_reserve(cap_events *list, size_t need)
{
    if (need <= list->cap) return 0;
    size_t cap = list->cap ? list->cap : 16;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return VC_ERR_NOMEM;
        cap *= 2;
    }
    if (cap > SIZE_MAX / sizeof(cap_event)) return VC_ERR_NOMEM;
    cap_event *ev = realloc(list->ev, cap * sizeof *ev);
    if (!ev) return VC_ERR_NOMEM;
    list->ev = ev;
    list->cap = cap;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at s (1-4), or 0 when the byte at s does not start one
 * (overlong forms, surrogates and code points past U+10FFFF are ill-formed, as in Unicode's table 3-7). */
static int utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        if (s[1] < lo || s[1] > hi) return 0;
        return (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        if (s[1] < lo || s[1] > hi) return 0;
        if ((s[2] & 0xC0) != 0x80) return 0;
        return (s[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* A copy of s in which every byte that is not part of a well-formed UTF-8 sequence becomes U+FFFD, so every
 * writer (JSON above all) produces valid UTF-8 whatever a vocabulary file held. NULL when out of memory. */
static char *utf8_sanitized_copy(const char *s)
{
    size_t len = strlen(s);
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *out = malloc(3 * len + 1); /* each bad byte grows to the 3 bytes of U+FFFD */
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p) {
        int k = utf8_seq_len(p); /* never reads past the NUL: a NUL fails every continuation test */
        if (k) {
            memcpy(out + o, p, (size_t)k);
            o += (size_t)k;
            p += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
        }
    }
    out[o] = '\0';
    return out;
}

int cap_events_add(cap_events *list, double t0, double t1, float score, const char *sentence, char *err,
                   size_t errlen)
{
    const char *who = "caption event";
    if (!list || !sentence) return nn_error(VC_ERR_ARG, err, errlen, who, "no list or no sentence");
    if (!isfinite(t0) || !isfinite(t1) || t0 < 0 || t1 < t0 || t1 > CAP_MAX_SECONDS)
        return nn_error(VC_ERR_ARG, err, errlen, who,
                        "invalid time span [%g, %g] s (need 0 <= t0 <= t1 <= %g)", t0, t1, CAP_MAX_SECONDS);
    if (!isfinite(score)) return nn_error(VC_ERR_ARG, err, errlen, who, "score is not finite");
    if (events_reserve(list, list->n + 1)) return nn_error(VC_ERR_NOMEM, err, errlen, who, "out of memory");
    char *copy = utf8_sanitized_copy(sentence);
    if (!copy) return nn_error(VC_ERR_NOMEM, err, errlen, who, "out of memory");
    list->ev[list->n++] = (cap_event){.t0 = t0, .t1 = t1, .score = score, .sentence = copy};
    return 0;
}

int cap_event_cmp_time(const cap_event *a, const cap_event *b)
{
    if (a->t0 != b->t0) return a->t0 < b->t0 ? -1 : 1;
    if (a->t1 != b->t1) return a->t1 < b->t1 ? -1 : 1;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return strcmp(a->sentence, b->sentence);
}

static int cmp_time_qsort(const void *a, const void *b)
{
    return cap_event_cmp_time(a, b);
}

void cap_events_sort_by_time(cap_events *list)
{
    if (list && list->n > 1) qsort(list->ev, list->n, sizeof(cap_event), cmp_time_qsort);
}

double cap_tiou(double a0, double a1, double b0, double b1)
{
    double inter = fmin(a1, b1) - fmax(a0, b0);
    if (inter < 0) inter = 0;
    double uni = (a1 - a0) + (b1 - b0) - inter;
    if (!(uni > 0)) return (a0 == b0 && a1 == b1) ? 1.0 : 0.0;
    return inter / uni;
}

int cap_events_merge(cap_events *dst, const cap_events *src, double tiou, char *err, size_t errlen)
{
    const char *who = "caption merge";
    if (!dst || !src || dst == src)
        return nn_error(VC_ERR_ARG, err, errlen, who, "needs two distinct event lists");
    if (!(tiou > 0 && tiou <= 1))
        return nn_error(VC_ERR_ARG, err, errlen, who, "tIoU %g is not in (0, 1]", tiou);
    if (src->n == 0) return 0;
    size_t n0 = dst->n, ns = src->n;
    if (n0 > SIZE_MAX - ns || ns > SIZE_MAX / sizeof(char *) || n0 > SIZE_MAX / sizeof(ptrdiff_t))
        return nn_error(VC_ERR_NOMEM, err, errlen, who, "too many events");

    /* Decide everything first, then allocate, then apply: dst stays untouched until nothing can fail. */
    int rc = 0;
    ptrdiff_t *holder = NULL; /* per original dst slot: -1 keeps dst's event, k takes src->ev[k] */
    char **copies = calloc(ns, sizeof *copies);
    unsigned char *append = calloc(ns, 1);
    if (n0) holder = malloc(n0 * sizeof *holder);
    if (!copies || !append || (n0 && !holder)) goto nomem;
    if (events_reserve(dst, n0 + ns)) goto nomem;

    for (size_t j = 0; j < n0; j++)
        holder[j] = -1;
    for (size_t k = 0; k < ns; k++) {
        const cap_event *s = &src->ev[k];
        ptrdiff_t best = -1;
        double best_iou = -1;
        for (size_t j = 0; j < n0; j++) {
            double iou = cap_tiou(dst->ev[j].t0, dst->ev[j].t1, s->t0, s->t1);
            if (iou >= tiou && iou > best_iou) {
                best = (ptrdiff_t)j;
                best_iou = iou;
            }
        }
        if (best < 0) {
            append[k] = 1;
            continue;
        }
        float held = holder[best] < 0 ? dst->ev[best].score : src->ev[holder[best]].score;
        if (s->score > held) holder[best] = (ptrdiff_t)k;
    }

    for (size_t j = 0; j < n0; j++)
        if (holder[j] >= 0 && !(copies[holder[j]] = strdup(src->ev[holder[j]].sentence))) goto nomem;
    for (size_t k = 0; k < ns; k++)
        if (append[k] && !(copies[k] = strdup(src->ev[k].sentence))) goto nomem;

    for (size_t j = 0; j < n0; j++) {
        if (holder[j] < 0) continue;
        free(dst->ev[j].sentence);
        dst->ev[j] = src->ev[holder[j]];
        dst->ev[j].sentence = copies[holder[j]];
    }
    for (size_t k = 0; k < ns; k++) {
        if (!append[k]) continue;
        dst->ev[dst->n] = src->ev[k];
        dst->ev[dst->n++].sentence = copies[k];
    }
    goto end;

nomem:
    for (size_t k = 0; copies && k < ns; k++)
        free(copies[k]);
    rc = nn_error(VC_ERR_NOMEM, err, errlen, who, "out of memory");
end:
    free(copies);
    free(append);
    free(holder);
    return rc;
}
