/* Parity harness: reads a PyTorch fixture written by tests/parity/parity.py (safetensors, names
 * "<case>.<tensor>", params as metadata "<case>.<param>") and compares C results with its tensors,
 * relative to the expected tensor's scale. Failures are counted in testutil's tu_failures. */
#pragma once
#include <stdint.h>

#include "nn/safetensors.h"

typedef struct parity_file parity_file;

/* NULL (after printing the reason and counting a failure) when the file cannot be opened. */
parity_file *parity_open(const char *path);
void parity_close(parity_file *pf); /* NULL is a no-op */

/* The tensor's data when it exists with `ndim` dims matching `shape`; entries of shape that are < 0 are
 * wildcards and receive the stored extent. Otherwise prints why, counts a failure and returns NULL. */
const float *parity_get(parity_file *pf, const char *name, int ndim, int64_t *shape);
/* The tensor if present, else NULL without a failure (for optional inputs such as a bias). */
const st_tensor *parity_find(parity_file *pf, const char *name);

/* Metadata "<key>" parsed as a number; prints and counts a failure when absent or malformed. */
int parity_meta_int(parity_file *pf, const char *key, int64_t *out);
int parity_meta_double(parity_file *pf, const char *key, double *out);
const char *parity_meta_str(parity_file *pf, const char *key); /* NULL + failure when absent */

/* Compares got[n] with the stored tensor `name`: max |got - want| / max |want| <= tol. Prints one line
 * "name: max err X scale Y ok" (or "FAIL ..."), returns 1 when within tolerance. */
int parity_compare(parity_file *pf, const char *name, const float *got, int64_t n, double tol);

/* Prints and counts as failures the tensors no parity_get/parity_find/parity_compare looked at, so a case
 * added to the generator cannot go silently unchecked. Returns how many there were. */
int parity_check_all_used(parity_file *pf);
