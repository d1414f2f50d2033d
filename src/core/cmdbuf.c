/* Redis command formatting into one growing buffer; see include/leadflow/cmdbuf.h. */
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/cmdbuf.h"
#include "leadflow/common.h"

static void lf_cmdbuf_reserve(lf_cmdbuf_t *b, size_t more)
{
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    b->buf = lf_realloc(b->buf, cap);
    b->cap = cap;
}

/* "<c><n>\r\n" */
static void lf_cmdbuf_header(lf_cmdbuf_t *b, char c, size_t n)
{
    b->buf[b->len++] = c;
    b->len += lf_fmt_i64(b->buf + b->len, (long long)n);
    b->buf[b->len++] = '\r';
    b->buf[b->len++] = '\n';
}

void lf_cmdbuf_add(lf_cmdbuf_t *b, size_t argc, const char *const *argv, const size_t *lens)
{
    size_t need = 24;
    for (size_t i = 0; i < argc; i++)
        need += lens[i] + 26; /* "$" + up to 21 digits + 2 CRLF */
    lf_cmdbuf_reserve(b, need);
    lf_cmdbuf_header(b, '*', argc);
    for (size_t i = 0; i < argc; i++) {
        lf_cmdbuf_header(b, '$', lens[i]);
        if (lens[i]) memcpy(b->buf + b->len, argv[i], lens[i]);
        b->len += lens[i];
        b->buf[b->len++] = '\r';
        b->buf[b->len++] = '\n';
    }
}

void lf_cmdbuf_reset(lf_cmdbuf_t *b)
{
    b->len = 0;
}

void lf_cmdbuf_free(lf_cmdbuf_t *b)
{
    lf_free(b->buf);
    memset(b, 0, sizeof(*b));
}
