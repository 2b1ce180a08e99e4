/* One-line error messages "who: what is wrong" for every layer (the library's only error channel). */
#include <stdarg.h>
#include <stdio.h>

#include "nn/nn.h"

int nn_error(int code, char *err, size_t errlen, const char *who, const char *fmt, ...)
{
    if (!err || !errlen) return code;
    int n = snprintf(err, errlen, "%s: ", who ? who : "(null)");
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    /* names read from files may carry control characters; the message must stay one line */
    for (char *c = err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return code;
}
