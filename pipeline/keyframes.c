/* --heatmaps: one keyframe per event, the frame on screen at the event's midpoint, explained by the frame
 * encoder's GradCAT map (the explain renderer) for the item class the sentence names. The video is decoded
 * once more at its own size (the long side capped at KEYFRAME_MAX_SIDE), sampled at the captioner's rate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "captioning/events.h"
#include "pipeline/model.h"
#include "video/decode.h"

#define KEYFRAME_MAX_SIDE 1280

/* The model label the sentence names: the longest label found as whole words ("ankle boot" before
 * "boot", "t-shirt" is not "shirt"), else -1 (explain the predicted class). */
static int named_label(const vc_model *m, const char *sentence)
{
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < m->n_labels; i++) {
        const char *label = m->labels[i];
        const size_t n = strlen(label);
        if (!n || n <= best_len) continue;
        for (const char *p = strstr(sentence, label); p; p = strstr(p + 1, label)) {
            const int starts = p == sentence || p[-1] == ' ';
            const int ends = p[n] == '\0' || p[n] == ' ';
            if (starts && ends) {
                best = i, best_len = n;
                break;
            }
        }
    }
    return best;
}

int vc_captions_heatmaps(const vc_model *m, const vc_captions *c, const char *path, const char *dir,
                         char *err, size_t errlen)
{
    const int n = vc_captions_n(c);
    if (n == 0) return 0;
    vid_reader *r = NULL;
    vc_state *st = NULL;
    uint8_t *rgb = NULL;
    char *id = cap_video_id_from_path(path);
    int rc = VC_ERR_NOMEM;
    if (!id || !(st = vc_state_create(m))) goto nomem;
    /* the source size (as shown), then the keyframe size that keeps its aspect */
    vid_params vp = vid_default_params();
    vp.width = vp.height = 16;
    vp.fps = m->video_fps > 0 ? m->video_fps : 4.0;
    if ((rc = vid_open(path, &vp, &r, err, errlen))) goto end;
    int w = vid_source_width(r), h = vid_source_height(r);
    vid_close(r);
    r = NULL;
    if (w > KEYFRAME_MAX_SIDE || h > KEYFRAME_MAX_SIDE) {
        const double s = (double)KEYFRAME_MAX_SIDE / (w > h ? w : h);
        w = (int)(w * s + 0.5), h = (int)(h * s + 0.5);
    }
    vp.width = w < 1 ? 1 : w, vp.height = h < 1 ? 1 : h;
    if ((rc = vid_open(path, &vp, &r, err, errlen))) goto end;
    if (!(rgb = malloc((size_t)vp.width * vp.height * 3))) goto nomem;
    /* events are in time order of their start; their midpoints need not be, so take each in turn and
     * re-open when one lies behind the decoder */
    double t = -1.0;
    for (int i = 0; i < n; i++) {
        double t0, t1;
        float score;
        const char *sentence;
        vc_captions_event(c, i, &t0, &t1, &score, &sentence);
        const double mid = 0.5 * (t0 + t1);
        if (t > mid + 1e-9) {
            vid_close(r);
            r = NULL;
            if ((rc = vid_open(path, &vp, &r, err, errlen))) goto end;
            t = -1.0;
        }
        while (t < mid - 0.5 / vp.fps) {
            rc = vid_read(r, rgb, &t, err, errlen);
            if (rc < 0) goto end;
            if (rc == 0) break; /* past the end: the last frame stands */
        }
        char png[4096];
        snprintf(png, sizeof(png), "%s/%s.event%02d.png", dir, id, i + 1);
        vc_explain_params ep = vc_explain_default_params();
        ep.target = named_label(m, sentence);
        ep.png = png;
        if ((rc = vc_explain_rgb(st, rgb, vp.width, vp.height, png, ep, err, errlen))) goto end;
    }
    rc = 0;
    goto end;
nomem:
    snprintf(err, errlen, "%s: out of memory for the heatmaps", path);
    rc = VC_ERR_NOMEM;
end:
    vid_close(r);
    vc_state_free(st);
    free(rgb);
    free(id);
    return rc;
}
