/* safetensors: strict reader (mmap) and writer for vidcap's weight files.
 * Rules follow the reference parser (specs/ecosystem_style.md §1.4): 8-byte LE header length
 * <= 100,000,000 and inside the file; UTF-8 JSON object, no duplicate keys; dtypes F32/F16/BF16 only
 * (F16/BF16 are widened to F32 on load); byte length == numel x dtype size with overflow checks; offsets
 * tile the data buffer exactly; 8 + N + data == file size; __metadata__ a string -> string map. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "nn/nn.h"

typedef enum { ST_F32 = 0, ST_F16 = 1, ST_BF16 = 2 } st_dtype;

typedef struct st_tensor {
    const char *name;
    st_dtype dtype; /* as stored; data is always F32 */
    int ndim;
    int64_t shape[NN_MAX_DIMS];
    int64_t numel;
    const float *data; /* in the mapping when F32 and aligned, else an owned, widened copy */
} st_tensor;

typedef struct st_file st_file;

/* Opens and validates path. On failure returns a negative VC_ERR_* code, *out = NULL, and writes
 * "path: reason" (one line) into err. */
int st_open(const char *path, st_file **out, char *err, size_t errlen);
void st_close(st_file *f); /* NULL is a no-op */

const char *st_path(const st_file *f);
int st_n_tensors(const st_file *f);
const st_tensor *st_tensor_at(const st_file *f, int i);       /* sorted by name */
const st_tensor *st_find(const st_file *f, const char *name); /* NULL when absent */
/* The tensor `name` with exactly the shape want[0..ndim) and only finite values, for binding weights; else
 * NULL with the reason in why ("missing tensor X", "tensor X has shape [..], the config needs [..]",
 * "tensor X holds a non-finite value at i"), without the file's name. */
const st_tensor *st_expect(const st_file *f, const char *name, int ndim, const int64_t *want, char *why,
                           size_t whylen);
int st_n_meta(const st_file *f);
const char *st_meta_key(const st_file *f, int i);
const char *st_meta_value(const st_file *f, int i);
const char *st_meta(const st_file *f, const char *key); /* NULL when absent */

/* Shared by the reader and the writer: UTF-8 validity of a NUL-terminated string; whether this host is
 * little-endian; qsort order of (key, value) string pairs by key. */
int st_utf8_valid(const char *s);
int st_host_le(void);
int st_cmp_meta(const void *a, const void *b);

/* Writer: collects tensors (data is copied) and metadata, then writes atomically (temp file + rename). */
typedef struct st_writer st_writer;
st_writer *st_writer_create(void);
void st_writer_free(st_writer *w);
int st_writer_add(st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data);
/* The same without a copy: data must stay valid and unchanged until the writer is saved or freed (large
 * tensors, e.g. a long video's feature rows). */
int st_writer_add_borrowed(st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data);
int st_writer_meta(st_writer *w, const char *key, const char *value);
int st_writer_save(const st_writer *w, const char *path, char *err, size_t errlen);
