/* The caption vocabulary (vidcap.vocab, a JSON array of words: <unk>, <pad>, <init>, <eos>, then words by
 * frequency) and turning decoded tokens back into a sentence. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "captioning/internal.h"
#include "vidcap.h"

#define CAP_MAX_VOCAB 1000000

int cap_vocab_parse(cap_model *m, const char *json, char *err, size_t errlen)
{
    cJSON *a = cJSON_Parse(json);
    int rc = VC_ERR_MODEL;
    const int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (n < 4 || n > CAP_MAX_VOCAB) {
        nn_error(rc, err, errlen, "vocab", "vidcap.vocab must be a JSON array of 4..%d words", CAP_MAX_VOCAB);
        goto end;
    }
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *w = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsString(w) || !w->valuestring[0] || strchr(w->valuestring, ' ')) {
            nn_error(rc, err, errlen, "vocab", "word %d is not a non-empty string without spaces", i);
            goto end;
        }
        bytes += strlen(w->valuestring) + 1;
    }
    m->words = malloc((size_t)n * sizeof(char *));
    m->word_blob = malloc(bytes);
    if (!m->words || !m->word_blob) {
        rc = nn_error(VC_ERR_NOMEM, err, errlen, "vocab", "out of memory");
        goto end;
    }
    char *p = m->word_blob;
    for (int i = 0; i < n; i++) {
        const char *w = cJSON_GetArrayItem(a, i)->valuestring;
        size_t len = strlen(w) + 1;
        memcpy(p, w, len);
        m->words[i] = p;
        p += len;
    }
    m->n_vocab = n;
    /* the decoder starts from <init> and stops at <eos> by index, as the trainer numbered them */
    static const char *const specials[4] = {"<unk>", "<pad>", "<init>", "<eos>"};
    for (int i = 0; i < 4; i++)
        if (strcmp(m->words[i], specials[i]) != 0) {
            nn_error(rc, err, errlen, "vocab",
                     "word %d is '%.40s', want %s (<unk> <pad> <init> <eos> come first)", i, m->words[i],
                     specials[i]);
            goto end;
        }
    rc = 0;
end:
    cJSON_Delete(a);
    return rc;
}

void cap_vocab_free(cap_model *m)
{
    free(m->words);
    free(m->word_blob);
    m->words = NULL;
    m->word_blob = NULL;
}

/* <pad> and <init> are not words (a decoder may still emit them); <unk> stays, as the reference keeps it */
void cap_vocab_join(const cap_model *m, const int *tokens, int n, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (tokens[i] == CAP_TOK_PAD || tokens[i] == CAP_TOK_INIT) continue;
        const char *w = tokens[i] >= 0 && tokens[i] < m->n_vocab ? m->words[tokens[i]] : "<unk>";
        size_t len = strlen(w), need = len + (used ? 1 : 0);
        if (used + need + 1 > outlen) break; /* whole words only */
        if (used) out[used++] = ' ';
        memcpy(out + used, w, len);
        used += len;
        out[used] = 0;
    }
}
