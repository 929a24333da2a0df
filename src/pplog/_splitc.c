/*
 * pplog._splitc: the common case of a default-escaped nginx line, split in C.
 *
 * `parse._extract` takes a line apart at its literal `"` characters, then each
 * segment at the literal after each variable, and checks every value of a
 * variable nginx formats itself (status, time, addresses...) against its
 * shape; a line where any of that fails goes to the segment's regex. This
 * module does exactly the cheap half, the split and the shape checks, over a
 * batch of lines held as Arrow string views, and says per line whether it
 * succeeded. Where it says yes, its values are the ones the polars
 * expressions would have taken; where it says no, the caller takes the
 * polars road for that line. It may say no more often than it must (it knows
 * only ASCII digits, say), never less.
 *
 * The values come back as Arrow string views into the same data buffers as
 * the lines: nothing is copied. The work on each batch runs without the GIL.
 *
 * Given a proxy policy (`Realip`), it also makes nginx's realip decision for
 * the lines whose peer and walked header tokens are all plain addresses, and
 * says which; `clientip` decides the others. `inet6_plain` reads ordinary
 * IPv6 tokens for `_ipaddr`, many at a time.
 */
#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <Python.h>
#if defined(__GLIBC__)
#include <malloc.h> /* malloc_trim */
#endif
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* pread */
#include <arpa/inet.h> /* inet_pton, inet_ntop */

/* shape ids: `_fastsplit.SHAPE_IDS` gives the same numbers */
enum {
    SHAPE_NONE = 0,
    SHAPE_TIME_LOCAL = 1,
    SHAPE_TIME_ISO8601 = 2,
    SHAPE_MSEC = 3,
    SHAPE_REQUEST_TIME = 4,
    SHAPE_STATUS = 5,
    SHAPE_COUNTER = 6,
    SHAPE_PIPE = 7,
    SHAPE_PORT = 8,
    SHAPE_REMOTE_ADDR = 9,
    SHAPE_ADDR = 10,
    SHAPE_UPSTREAM_LIST = 11,
    SHAPE_CACHE_STATUS = 12,
    SHAPE_UPSTREAM_TIMES = 13,
    SHAPE_UPSTREAM_COUNTS = 14,
    SHAPE_UPSTREAM_STATUSES = 15,
    SHAPE_COUNT = 16
};

/* how the value of a variable ends */
enum { END_REST = 0, END_SUFFIX = 1, END_SPLIT = 2 };

/* kinds of segment */
enum { SEG_VALUE = 0, SEG_LITERAL = 1, SEG_SPLIT = 2 };

typedef struct {
    int field;   /* output column, or -1 */
    int shape;
    int end;
    const char *lit; /* END_SUFFIX / END_SPLIT */
    Py_ssize_t lit_len;
} Step;

typedef struct {
    int kind;
    int field;          /* SEG_VALUE */
    const char *lit;    /* SEG_LITERAL: the text; SEG_SPLIT: the prefix (may be empty) */
    Py_ssize_t lit_len;
    Step *steps;
    Py_ssize_t nsteps;
} Seg;

typedef struct {
    int32_t len;
    union {
        char inl[12];
        struct {
            char prefix[4];
            int32_t buf;
            int32_t off;
        } ref;
    } u;
} View;

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_alpha(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* `\d+` from p; returns the end, or NULL when no digit is there */
static inline const unsigned char *digits(const unsigned char *p, const unsigned char *e) {
    const unsigned char *s = p;
    while (p < e && is_digit(*p)) p++;
    return p > s ? p : NULL;
}

static int digits_n(const unsigned char *p, int n) {
    for (int i = 0; i < n; i++)
        if (!is_digit(p[i])) return 0;
    return 1;
}

/* `\d+(?:\.\d+)?` over the whole of [p, e) */
static int decimal(const unsigned char *p, const unsigned char *e) {
    p = digits(p, e);
    if (!p) return 0;
    if (p == e) return 1;
    if (*p != '.') return 0;
    p = digits(p + 1, e);
    return p == e;
}

/* `[^ ,"]+` from p */
static inline const unsigned char *list_item(const unsigned char *p, const unsigned char *e) {
    const unsigned char *s = p;
    while (p < e && *p != ' ' && *p != ',' && *p != '"') p++;
    return p > s ? p : NULL;
}

/* one number of an upstream list from p: `-`, or digits (3 for a status, at
   most 15 for a time, with a fraction, at most 19 for a count); its end, or
   NULL */
static const unsigned char *list_number(const unsigned char *p, const unsigned char *e,
                                        int shape) {
    if (p < e && *p == '-') return p + 1;
    const unsigned char *s = p;
    while (p < e && is_digit(*p)) p++;
    Py_ssize_t n = p - s;
    if (shape == SHAPE_UPSTREAM_STATUSES) return n == 3 ? p : NULL;
    if (n < 1 || n > (shape == SHAPE_UPSTREAM_TIMES ? 15 : 19)) return NULL;
    if (shape == SHAPE_UPSTREAM_TIMES && p < e && *p == '.') {
        const unsigned char *f = ++p;
        while (p < e && is_digit(*p)) p++;
        if (p == f) return NULL;
    }
    return p;
}

/* an upstream list: `item(?:(?:, | : )item)*`, its items `[^ ,"]+` for
   SHAPE_UPSTREAM_LIST, else `list_number`s */
static int upstream_list(const unsigned char *p, const unsigned char *e, int shape) {
    const unsigned char *q = shape == SHAPE_UPSTREAM_LIST ? list_item(p, e)
                                                          : list_number(p, e, shape);
    if (!q) return 0;
    while (q < e) {
        if (e - q >= 2 && q[0] == ',' && q[1] == ' ')
            q += 2;
        else if (e - q >= 3 && q[0] == ' ' && q[1] == ':' && q[2] == ' ')
            q += 3;
        else
            return 0;
        q = shape == SHAPE_UPSTREAM_LIST ? list_item(q, e) : list_number(q, e, shape);
        if (!q) return 0;
    }
    return 1;
}

static int shape_ok(int shape, const unsigned char *p, Py_ssize_t n) {
    const unsigned char *e = p + n;
    switch (shape) {
    case SHAPE_NONE:
        return 1;
    case SHAPE_TIME_LOCAL: /* \d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4} */
        return n == 26 && digits_n(p, 2) && p[2] == '/' && is_alpha(p[3]) &&
               is_alpha(p[4]) && is_alpha(p[5]) && p[6] == '/' && digits_n(p + 7, 4) &&
               p[11] == ':' && digits_n(p + 12, 2) && p[14] == ':' &&
               digits_n(p + 15, 2) && p[17] == ':' && digits_n(p + 18, 2) &&
               p[20] == ' ' && (p[21] == '+' || p[21] == '-') && digits_n(p + 22, 4);
    case SHAPE_TIME_ISO8601: {
        /* \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:?\d{2}|Z) */
        if (n < 20) return 0;
        if (!(digits_n(p, 4) && p[4] == '-' && digits_n(p + 5, 2) && p[7] == '-' &&
              digits_n(p + 8, 2) && p[10] == 'T' && digits_n(p + 11, 2) &&
              p[13] == ':' && digits_n(p + 14, 2) && p[16] == ':' && digits_n(p + 17, 2)))
            return 0;
        const unsigned char *q = p + 19;
        if (q < e && *q == '.') {
            q = digits(q + 1, e);
            if (!q) return 0;
        }
        if (q < e && *q == 'Z') return q + 1 == e;
        if (q < e && (*q == '+' || *q == '-')) {
            Py_ssize_t rest = e - q - 1;
            if (rest == 4) return digits_n(q + 1, 4);
            if (rest == 5) return digits_n(q + 1, 2) && q[3] == ':' && digits_n(q + 4, 2);
        }
        return 0;
    }
    case SHAPE_MSEC:
        return decimal(p, e);
    case SHAPE_REQUEST_TIME:
        return (n == 1 && p[0] == '-') || decimal(p, e);
    case SHAPE_STATUS:
        return (n == 1 && p[0] == '-') || (n == 3 && digits_n(p, 3));
    case SHAPE_COUNTER:
        return (n == 1 && p[0] == '-') || (n > 0 && digits(p, e) == e);
    case SHAPE_PIPE:
        return n == 1 && (p[0] == 'p' || p[0] == '.');
    case SHAPE_PORT:
        return (n == 1 && p[0] == '-') || n == 0 || digits(p, e) == e;
    case SHAPE_REMOTE_ADDR:
        /* [^ "-][^ "]*|-[^ "]+ : no space or quote, and not "-" alone */
        if (n == 0 || (n == 1 && p[0] == '-')) return 0;
        /* fall through */
    case SHAPE_ADDR:
        if (n == 0) return 0;
        for (Py_ssize_t i = 0; i < n; i++)
            if (p[i] == ' ' || p[i] == '"') return 0;
        return 1;
    case SHAPE_UPSTREAM_LIST:
    case SHAPE_UPSTREAM_TIMES:
    case SHAPE_UPSTREAM_COUNTS:
    case SHAPE_UPSTREAM_STATUSES:
        return upstream_list(p, e, shape);
    case SHAPE_CACHE_STATUS:
        if (n == 1 && p[0] == '-') return 1;
        if (n == 0) return 0;
        for (Py_ssize_t i = 0; i < n; i++)
            if (!((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '_')) return 0;
        return 1;
    default:
        return 0;
    }
}

/* memcmp for the short literals of a log format, without a call */
static inline int same(const unsigned char *a, const char *b, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (a[i] != (unsigned char)b[i]) return 0;
    return 1;
}

/* memchr, inline for the short spans between a log format's literals */
static inline const unsigned char *byte_in(const unsigned char *p, const unsigned char *e,
                                           unsigned char c) {
    if (e - p > 48) return memchr(p, c, (size_t)(e - p));
    for (; p < e; p++)
        if (*p == c) return p;
    return NULL;
}

static const unsigned char *find(const unsigned char *p, const unsigned char *e,
                                 const char *lit, Py_ssize_t n) {
    if (n == 1) return byte_in(p, e, (unsigned char)lit[0]);
    /* short needles in short values: memmem's setup costs more than this */
    const unsigned char *last = e - n;
    while (p <= last) {
        const unsigned char *c = byte_in(p, last + 1, (unsigned char)lit[0]);
        if (!c) return NULL;
        if (same(c + 1, lit + 1, n - 1)) return c;
        p = c + 1;
    }
    return NULL;
}

/* the first marked byte in [p, e) of the block at `base`, or NULL */
static inline const unsigned char *next_mark(const uint64_t *bits, const unsigned char *base,
                                             const unsigned char *p, const unsigned char *e) {
    int64_t i = p - base, n = e - base;
    if (i >= n) return NULL;
    int64_t w = i >> 6;
    uint64_t b = bits[w] & (~0ULL << (i & 63));
    while (!b) {
        if (++w << 6 >= n) return NULL;
        b = bits[w];
    }
    int64_t at = (w << 6) + __builtin_ctzll(b);
    return at < n ? base + at : NULL;
}

/* a value at [s, s + n) of the block whose first byte is `base` */
static inline void put_view(View *out, const unsigned char *base, const unsigned char *s,
                            Py_ssize_t n) {
    memset(out, 0, sizeof *out);
    out->len = (int32_t)n;
    if (n <= 12) {
        memcpy(out->u.inl, s, (size_t)n);
    } else {
        memcpy(out->u.ref.prefix, s, 4);
        out->u.ref.buf = 0;
        out->u.ref.off = (int32_t)(s - base);
    }
}

/* one line: 1 and its values in out[field][i] when the split holds */
static int split_line(const Seg *segs, Py_ssize_t nsegs, const unsigned char *base,
                      const uint64_t *quotes, const unsigned char *text, Py_ssize_t len,
                      View **out, Py_ssize_t i) {
    const unsigned char *p = text, *end = text + len;
    for (Py_ssize_t k = 0; k < nsegs; k++) {
        const Seg *sg = &segs[k];
        /* this segment runs to the next `"` (the last one to the end) */
        const unsigned char *q;
        if (k + 1 < nsegs) {
            q = next_mark(quotes, base, p, end);
            if (!q) return 0;
        } else {
            if (next_mark(quotes, base, p, end)) return 0;
            q = end;
        }
        Py_ssize_t n = q - p;
        if (sg->kind == SEG_VALUE) {
            if (sg->field >= 0) put_view(&out[sg->field][i], base, p, n);
        } else if (sg->kind == SEG_LITERAL) {
            if (n != sg->lit_len || !same(p, sg->lit, n)) return 0;
        } else {
            const unsigned char *r = p;
            if (sg->lit_len) {
                if (n < sg->lit_len || !same(r, sg->lit, sg->lit_len)) return 0;
                r += sg->lit_len;
            }
            for (Py_ssize_t j = 0; j < sg->nsteps; j++) {
                const Step *st = &sg->steps[j];
                const unsigned char *vs = r, *ve;
                if (st->end == END_REST) {
                    ve = q;
                    r = q;
                } else if (st->end == END_SUFFIX) {
                    if (q - r < st->lit_len || !same(q - st->lit_len, st->lit, st->lit_len))
                        return 0;
                    ve = q - st->lit_len;
                    r = q;
                } else {
                    ve = find(r, q, st->lit, st->lit_len);
                    if (!ve) return 0;
                    r = ve + st->lit_len;
                }
                if (!shape_ok(st->shape, vs, ve - vs)) return 0;
                if (st->field >= 0) put_view(&out[st->field][i], base, vs, ve - vs);
            }
        }
        p = q + 1;
    }
    return 1;
}

static void free_segs(Seg *segs, Py_ssize_t n) {
    if (!segs) return;
    for (Py_ssize_t k = 0; k < n; k++) PyMem_Free(segs[k].steps);
    PyMem_Free(segs);
}

/* ------------------------------------------------------------- realip */

/* The trust decision of nginx's realip module (`clientip._decide`, the
 * "realip" strategy) for the lines whose addresses are in the forms decided
 * here: every address the walk reads is plain IPv4 (`_ipaddr._V4_STRICT`)
 * or an ordinary IPv6 address written as inet_ntop writes it
 * (`_ipaddr._plain_inet6`, whose text is then the address as logged). Any
 * other line (a port, brackets, a zone, a leading separator, more than
 * `MAX_HOPS` tokens, an address nginx reads leniently) is left undecided,
 * for `clientip` to decide. */
typedef struct {
    int peer, header, recursive;
    int peer_is_result; /* the peer is `$remote_addr`: realip may have run */
    int max_hops; /* `clientip.MAX_HOPS`: a longer header is left undecided */
    Py_ssize_t nv4, nv6;
    uint32_t *v4; /* (network, mask) pairs */
    uint64_t *v6; /* (hi, lo, mask hi, mask lo) */
} Realip;

static void free_realip(Realip *r) {
    if (!r) return;
    PyMem_Free(r->v4);
    PyMem_Free(r->v6);
    PyMem_Free(r);
}

static int v6_plain_form(const char *s, Py_ssize_t n);

/* Whether s[0:n] is an ordinary IPv6 address (`v6_plain_form`, its first
 * group not zero: `_ipaddr._plain_inet6`) written as inet_ntop writes it:
 * lower case, no leading zeros, the first longest run of two or more zero
 * groups as "::" and no other; its value in `*hi`, `*lo`. Such a text is
 * nginx's text of the address. No Python API. */
static int canonical_v6(const unsigned char *s, Py_ssize_t n, uint64_t *hi, uint64_t *lo) {
    if (n < 2 || n > 39 || !v6_plain_form((const char *)s, n)) return 0;
    unsigned words[8];
    int count = 0, gap = -1; /* groups written; where "::" stands */
    for (Py_ssize_t i = 0; i < n;) {
        if (s[i] == ':') {
            if (i + 1 < n && s[i + 1] == ':') {
                gap = count;
                i += 2;
            } else {
                i++;
            }
            continue;
        }
        unsigned w = 0;
        Py_ssize_t start = i;
        for (; i < n && s[i] != ':'; i++) {
            unsigned char c = s[i];
            if (c >= 'A' && c <= 'F') return 0; /* inet_ntop writes lower case */
            w = w << 4 | (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        if (i - start > 1 && s[start] == '0') return 0; /* a leading zero */
        if (count == 8) return 0;
        words[count++] = w;
    }
    if (gap >= 0 ? count > 7 : count != 8) return 0; /* inet_pton refuses */
    unsigned full[8];
    int zeros = 8 - count;
    for (int k = 0, j = 0; k < 8; k++) {
        if (gap >= 0 && k >= gap && k < gap + zeros)
            full[k] = 0;
        else
            full[k] = words[j++];
    }
    if (full[0] == 0) return 0;
    int best = -1, best_len = 0;
    for (int k = 0; k < 8;) {
        if (full[k]) {
            k++;
            continue;
        }
        int run = k;
        while (k < 8 && !full[k]) k++;
        if (k - run > best_len) {
            best = run;
            best_len = k - run;
        }
    }
    if (best_len < 2) best = -1;
    if (best >= 0 ? (gap != best || zeros != best_len) : gap >= 0) return 0;
    uint64_t h = 0, l = 0;
    for (int k = 0; k < 4; k++) h = h << 16 | full[k];
    for (int k = 4; k < 8; k++) l = l << 16 | full[k];
    *hi = h;
    *lo = l;
    return 1;
}

/* 4: plain IPv4 (`*v4`), 6: ordinary IPv6 as inet_ntop writes it (`*hi`,
 * `*lo`), 0: another form. No Python API. */
static int simple_addr(const unsigned char *s, Py_ssize_t n, uint32_t *v4, uint64_t *hi,
                       uint64_t *lo) {
    if (n >= 7 && n <= 15 && !memchr(s, ':', (size_t)n)) {
        uint32_t value = 0;
        Py_ssize_t i = 0;
        for (int octet = 0; octet < 4; octet++) {
            if (octet) {
                if (i >= n || s[i] != '.') return 0;
                i++;
            }
            Py_ssize_t start = i;
            unsigned v = 0;
            while (i < n && is_digit(s[i]) && i - start < 3) v = v * 10 + (s[i++] - '0');
            Py_ssize_t len = i - start;
            if (len == 0 || (len > 1 && s[start] == '0') || v > 255) return 0;
            value = value << 8 | v;
        }
        if (i != n || value == 0xFFFFFFFFu) return 0; /* nginx's error value */
        *v4 = value;
        return 4;
    }
    return canonical_v6(s, n, hi, lo) ? 6 : 0;
}

static int realip_trusted(const Realip *r, int kind, uint32_t v4, uint64_t hi, uint64_t lo) {
    if (kind == 4) {
        for (Py_ssize_t k = 0; k < r->nv4; k++)
            if ((v4 & r->v4[2 * k + 1]) == r->v4[2 * k]) return 1;
    } else {
        for (Py_ssize_t k = 0; k < r->nv6; k++) {
            const uint64_t *net = &r->v6[4 * k];
            if ((hi & net[2]) == net[0] && (lo & net[3]) == net[1]) return 1;
        }
    }
    return 0;
}

static inline const unsigned char *view_bytes(const View *v, const unsigned char *base) {
    return v->len <= 12 ? (const unsigned char *)v->u.inl : base + v->u.ref.off;
}

/* The decision for one line: 1 (decided: `*client`, `*client_len`, whether
 * the client came from the header, whether an untrusted peer sent one) or 0
 * (undecided). */
static int realip_decide(const Realip *r, const unsigned char *peer, Py_ssize_t peer_len,
                         const unsigned char *h, Py_ssize_t hn,
                         const unsigned char **client, Py_ssize_t *client_len,
                         int *from_header, int *untrusted) {
    uint32_t v4 = 0;
    uint64_t hi = 0, lo = 0;
    int kind = simple_addr(peer, peer_len, &v4, &hi, &lo);
    if (!kind) return 0;
    int peer_ok = realip_trusted(r, kind, v4, hi, lo);
    /* an untrusted `$remote_addr`: is it what the walk takes from the header
     * (nginx's realip ran and replaced the peer)? The walk runs as for a
     * trusted peer, to tell */
    int walk = peer_ok || r->peer_is_result;
    const uint32_t peer_v4 = v4;
    const uint64_t peer_hi = hi, peer_lo = lo;
    int chosen_kind = 0;
    uint32_t chosen_v4 = 0;
    uint64_t chosen_hi = 0, chosen_lo = 0;
    if (hn == 1 && h[0] == '-') hn = 0; /* not sent: no tokens */
    if (hn > 0 && (h[0] == ' ' || h[0] == ',')) return 0;
    const unsigned char *chosen = NULL, *leftmost = NULL;
    Py_ssize_t chosen_len = 0, leftmost_len = 0;
    int n = 0, done = 0;
    Py_ssize_t e = hn;
    for (;;) { /* the tokens, rightmost first */
        while (e > 0 && (h[e - 1] == ' ' || h[e - 1] == ',')) e--;
        if (e == 0) break;
        Py_ssize_t b = e;
        while (b > 0 && h[b - 1] != ' ' && h[b - 1] != ',') b--;
        if (n == r->max_hops) return 0;
        n++;
        if (walk && !done) {
            int tk = simple_addr(h + b, e - b, &v4, &hi, &lo);
            if (!tk) return 0;
            if (!r->recursive || !realip_trusted(r, tk, v4, hi, lo)) {
                chosen = h + b;
                chosen_len = e - b;
                done = 1;
            } else {
                leftmost = h + b;
                leftmost_len = e - b;
            }
            chosen_kind = tk;
            chosen_v4 = v4;
            chosen_hi = hi;
            chosen_lo = lo;
        }
        e = b;
    }
    if (walk && !done && leftmost) { /* every token trusted: the leftmost */
        chosen = leftmost;
        chosen_len = leftmost_len; /* chosen_*: the last token parsed, this one */
    }
    int replaced = chosen && chosen_kind == kind &&
                   (kind == 4 ? chosen_v4 == peer_v4
                              : chosen_hi == peer_hi && chosen_lo == peer_lo);
    if (!peer_ok) chosen = NULL;
    *untrusted = !peer_ok && n > 0 && !replaced;
    *from_header = chosen != NULL;
    *client = chosen ? chosen : peer;
    *client_len = chosen ? chosen_len : peer_len;
    return 1;
}

/* The realip part of a program: None, or (peer field, header field,
 * recursive, the peer is `$remote_addr`, max hops, ((network, mask), ...),
 * ((hi, lo, mask hi, mask lo), ...)). */
static int read_realip(PyObject *spec, int nfields, Realip **out) {
    *out = NULL;
    if (spec == Py_None) return 1;
    PyObject *nets4, *nets6;
    Realip *r = PyMem_Calloc(1, sizeof *r);
    if (!r) {
        PyErr_NoMemory();
        return 0;
    }
    if (!PyArg_ParseTuple(spec, "iippiO!O!", &r->peer, &r->header, &r->recursive,
                          &r->peer_is_result, &r->max_hops, &PyTuple_Type, &nets4,
                          &PyTuple_Type, &nets6))
        goto fail;
    if (r->peer < 0 || r->peer >= nfields || r->header < 0 || r->header >= nfields ||
        r->max_hops < 1) {
        PyErr_SetString(PyExc_ValueError, "bad realip fields in program");
        goto fail;
    }
    r->nv4 = PyTuple_GET_SIZE(nets4);
    r->nv6 = PyTuple_GET_SIZE(nets6);
    r->v4 = PyMem_Calloc((size_t)(r->nv4 ? r->nv4 : 1), 2 * sizeof(uint32_t));
    r->v6 = PyMem_Calloc((size_t)(r->nv6 ? r->nv6 : 1), 4 * sizeof(uint64_t));
    if (!r->v4 || !r->v6) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t k = 0; k < r->nv4; k++) {
        unsigned int net, mask;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(nets4, k), "II", &net, &mask)) goto fail;
        r->v4[2 * k] = net;
        r->v4[2 * k + 1] = mask;
    }
    for (Py_ssize_t k = 0; k < r->nv6; k++) {
        unsigned long long a, b, c, d;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(nets6, k), "KKKK", &a, &b, &c, &d)) goto fail;
        uint64_t *net = &r->v6[4 * k];
        net[0] = a;
        net[1] = b;
        net[2] = c;
        net[3] = d;
    }
    *out = r;
    return 1;
fail:
    free_realip(r);
    return 0;
}

/* Decode the program `_fastsplit.program` built. The strings it points into
 * stay alive with the `program` tuple the caller holds. */
static Seg *read_program(PyObject *whole, Py_ssize_t *nsegs, int nfields,
                         int *no_backslash, int *request, Realip **realip) {
    PyObject *program, *spec = Py_None;
    *realip = NULL;
    if (!PyArg_ParseTuple(whole, "iiO|O", no_backslash, request, &program, &spec))
        return NULL;
    if (!read_realip(spec, nfields, realip)) return NULL;
    if (*request < -1 || *request >= nfields) {
        PyErr_SetString(PyExc_ValueError, "bad request field in program");
        goto early;
    }
    if (!PyTuple_Check(program)) {
        PyErr_SetString(PyExc_TypeError, "program must be a tuple");
        goto early;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(program);
    Seg *segs = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Seg));
    if (!segs) {
        PyErr_NoMemory();
        goto early;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *item = PyTuple_GET_ITEM(program, k);
        PyObject *steps = NULL;
        int kind, field;
        const char *lit;
        Py_ssize_t lit_len;
        if (!PyArg_ParseTuple(item, "iiy#O", &kind, &field, &lit, &lit_len, &steps))
            goto fail;
        if (kind < SEG_VALUE || kind > SEG_SPLIT || field < -1 || field >= nfields ||
            !PyTuple_Check(steps)) {
            PyErr_SetString(PyExc_ValueError, "bad segment in program");
            goto fail;
        }
        segs[k].kind = kind;
        segs[k].field = field;
        segs[k].lit = lit;
        segs[k].lit_len = lit_len;
        Py_ssize_t m = PyTuple_GET_SIZE(steps);
        segs[k].nsteps = m;
        segs[k].steps = PyMem_Calloc((size_t)(m ? m : 1), sizeof(Step));
        if (!segs[k].steps) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t j = 0; j < m; j++) {
            Step *st = &segs[k].steps[j];
            if (!PyArg_ParseTuple(PyTuple_GET_ITEM(steps, j), "iiiy#", &st->field,
                                  &st->shape, &st->end, &st->lit, &st->lit_len))
                goto fail;
            if (st->field < -1 || st->field >= nfields || st->shape < 0 ||
                st->shape >= SHAPE_COUNT || st->end < END_REST || st->end > END_SPLIT ||
                (st->end != END_REST && st->lit_len == 0)) {
                PyErr_SetString(PyExc_ValueError, "bad step in program");
                goto fail;
            }
        }
    }
    *nsegs = n;
    return segs;
fail:
    free_segs(segs, n);
early:
    free_realip(*realip);
    *realip = NULL;
    return NULL;
}

/* A request line cut as `parse.request_parts` cuts it, where its regex
 * `_REQUEST_RE` matches:
 *   ^(?P<method>[A-Z][A-Z_-]*) +(?P<target>[^ ](?:.*?[^ ])??)
 *    (?: +(?P<protocol>HTTP/\d+\.\d+))? *$
 * and its target is one nginx parses (`_TARGET_OK`: origin form, `*`, or
 * absolute form, which loses its scheme and host as `_ORIGIN_RE` strips
 * them; nothing left is "/"). The method and protocol are the regex's
 * groups, the target is split at its first "?" into path and query.
 * Positions and lengths in the request; -1: absent. */
typedef struct {
    Py_ssize_t method;           /* at 0 */
    Py_ssize_t path_at, path;    /* path -1: "/" (an absolute form's empty path) */
    Py_ssize_t query_at, query;  /* query -1: none */
    Py_ssize_t proto_at, protocol;
} Rq;

static inline int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static inline int is_scheme(unsigned char c) {
    return is_alpha(c) || is_digit(c) || c == '+' || c == '.' || c == '-';
}

/* -1: not ASCII text (the regex's \d takes digits beyond ASCII: left to
 * polars); 0: the regex does not match or nginx would not parse the target
 * (every part null); 1: cut into `r`. `wide`: whether the block holds a
 * byte >= 0x80 (else there is none to look for) */
static int request_parse(const unsigned char *s, Py_ssize_t n, Rq *r, int wide) {
    for (Py_ssize_t k = 0; wide && k < n; k++)
        if (s[k] >= 0x80) return -1;
    if (n < 1 || !is_upper(s[0])) return 0;
    Py_ssize_t i = 1;
    while (i < n && (is_upper(s[i]) || s[i] == '_' || s[i] == '-')) i++;
    r->method = i;
    if (i >= n || s[i] != ' ') return 0;
    while (i < n && s[i] == ' ') i++;
    Py_ssize_t t = i, q = n; /* the target starts at t; trailing spaces end at q */
    while (q > t && s[q - 1] == ' ') q--;
    if (q <= t) return 0;
    /* the shortest target the rest of the line allows: before a last
     * " HTTP/d.d" if there is one, else before the trailing spaces */
    Py_ssize_t e = q;
    r->proto_at = r->protocol = -1;
    Py_ssize_t j = q;
    while (j > t && is_digit(s[j - 1])) j--;
    if (j < q && j > t && s[j - 1] == '.') {
        Py_ssize_t m = j - 1;
        while (m > t && is_digit(s[m - 1])) m--;
        if (m < j - 1 && m - 5 > t && same(s + m - 5, "HTTP/", 5) && s[m - 6] == ' ') {
            Py_ssize_t sp = m - 6;
            while (sp > t && s[sp - 1] == ' ') sp--;
            if (sp > t) {
                e = sp;
                r->proto_at = m - 5;
                r->protocol = q - (m - 5);
            }
        }
    }
    /* the target: origin form, `*`, or absolute form */
    Py_ssize_t p = t;
    if (s[t] != '/') {
        if (e - t == 1 && s[t] == '*') {
            /* as it is */
        } else {
            if (!is_alpha(s[t])) return 0;
            Py_ssize_t k = t + 1;
            while (k < e && is_scheme(s[k])) k++;
            if (e - k < 3 || !same(s + k, "://", 3)) return 0;
            k += 3;
            while (k < e && s[k] != '/' && s[k] != '?' && s[k] != '#') k++;
            p = k;
        }
    }
    if (p == e) { /* nothing left of an absolute form: "/" */
        r->path_at = p;
        r->path = -1;
        r->query_at = r->query = -1;
        return 1;
    }
    const unsigned char *qm = memchr(s + p, '?', (size_t)(e - p));
    r->path_at = p;
    if (qm) {
        r->path = qm - (s + p);
        r->query_at = qm - s + 1;
        r->query = e - r->query_at;
    } else {
        r->path = e - p;
        r->query_at = r->query = -1;
    }
    return 1;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
/* whether a word holds a zero byte */
#define HAS_ZERO(w) (((w) - ONES) & ~(w) & HIGHS)

/* whether [s, s + n) is text the C road reads as polars' reader would, and
 * as the Python reader would: UTF-8 as Rust (polars) takes it (no overlong
 * forms, no surrogates, nothing past U+10FFFF), without a NUL (the Python
 * reader strips holes) or a CR (polars drops the CR of CRLF, the Python
 * reader keeps it); ASCII eight bytes at a time */
static int plain_text(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (HAS_ZERO(w) || HAS_ZERO(w ^ (ONES * '\r'))) return 0;
            if (!(w & HIGHS)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == 0 || c == '\r') return 0;
            i++;
        } else if (c < 0xC2) {
            return 0;
        } else if (c < 0xE0) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c < 0xF0) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F)) return 0;
            i += 3;
        } else if (c < 0xF5) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 ||
                (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F)) return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- marks
 *
 * One pass over a block finds every "\n" and `"` (bit i of word i / 64 is
 * byte i), and whether the block holds a NUL or a CR, or a byte >= 0x80
 * (then `plain_text` judges it whole). Lines and their segments are then cut
 * from the bits: a memchr per line and per quote (2M elb_log lines: 15 calls
 * a line) had been about two fifths of the split's time.
 */
typedef struct {
    uint64_t *nl, *qt;
    int64_t words;
    int wide; /* a byte >= 0x80 somewhere */
} Marks;

#if defined(__SSE2__)
#include <emmintrin.h>

/* the bits of the 64 bytes at s equal to each of `n` and `q`; NUL or CR, and
 * high bytes, accumulate into `bad` and `wide` */
static inline void mark64(const unsigned char *s, uint64_t *n, uint64_t *q, __m128i *bad,
                          __m128i *wide) {
    const __m128i vn = _mm_set1_epi8('\n'), vq = _mm_set1_epi8('"');
    const __m128i vz = _mm_setzero_si128(), vr = _mm_set1_epi8('\r');
    uint64_t mn = 0, mq = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + 16 * k));
        mn |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vn)) << (16 * k);
        mq |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vq)) << (16 * k);
        *bad = _mm_or_si128(*bad, _mm_or_si128(_mm_cmpeq_epi8(v, vz), _mm_cmpeq_epi8(v, vr)));
        *wide = _mm_or_si128(*wide, v);
    }
    *n = mn;
    *q = mq;
}
#else
/* the bytes of w equal to c (`ONES * c`), as 8 bits */
static inline uint64_t eq8(uint64_t w, uint64_t c) {
    const uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL;
    uint64_t t = w ^ c;
    uint64_t z = ~(((t & low7) + low7) | t | low7); /* 0x80 where t's byte is 0 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return ((z >> 7) * 0x0102040810204080ULL) >> 56;
#else
    uint64_t bits = 0;
    for (int k = 0; k < 8; k++)
        if (((const unsigned char *)&z)[k]) bits |= 1u << k;
    return bits;
#endif
}
#endif

/* 1 with `m` filled, 0 when the block is not plain text (see `plain_text`),
 * -1 when memory runs out. Bits past `len` are 0. */
static int mark_block(const unsigned char *base, int64_t len, Marks *m) {
    m->words = (len + 63) / 64;
    size_t bytes = (size_t)(m->words ? m->words : 1) * 8;
    m->nl = malloc(bytes);
    m->qt = malloc(bytes);
    if (!m->nl || !m->qt) {
        free(m->nl);
        free(m->qt);
        m->nl = m->qt = NULL;
        return -1;
    }
    unsigned char tail[64];
    int wide = 0, bad = 0;
#if defined(__SSE2__)
    __m128i vbad = _mm_setzero_si128(), vwide = _mm_setzero_si128();
#endif
    for (int64_t w = 0; w < m->words; w++) {
        const unsigned char *s = base + 64 * w;
        if (64 * w + 64 > len) { /* the last, short word: padded with spaces */
            memset(tail, ' ', sizeof tail);
            memcpy(tail, s, (size_t)(len - 64 * w));
            s = tail;
        }
#if defined(__SSE2__)
        mark64(s, &m->nl[w], &m->qt[w], &vbad, &vwide);
#else
        uint64_t n = 0, q = 0;
        for (int k = 0; k < 8; k++) {
            uint64_t v;
            memcpy(&v, s + 8 * k, 8);
            n |= eq8(v, ONES * '\n') << (8 * k);
            q |= eq8(v, ONES * '"') << (8 * k);
            if (HAS_ZERO(v) || HAS_ZERO(v ^ (ONES * '\r'))) bad = 1;
            if (v & HIGHS) wide = 1;
        }
        m->nl[w] = n;
        m->qt[w] = q;
#endif
    }
#if defined(__SSE2__)
    bad = _mm_movemask_epi8(vbad) != 0;
    wide = _mm_movemask_epi8(vwide) != 0;
#endif
    m->wide = wide;
    if (bad || (wide && !plain_text(base, len))) {
        free(m->nl);
        free(m->qt);
        m->nl = m->qt = NULL;
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- Arrow export
 *
 * A block's columns go to polars through the Arrow C data interface (the
 * PyCapsule protocol: `__arrow_c_array__`), as one struct array whose
 * children are its columns. Every buffer is the C library's; the text of the
 * block is one buffer that all string views point into, freed with the last
 * column that holds it. Release callbacks may run on any thread, without
 * the GIL: they only free memory.
 */
struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

#define ARROW_FLAG_NULLABLE 2

/* the block's text, shared by the string columns */
typedef struct {
    long refs;           /* changed atomically */
    unsigned char *data; /* what to free */
    unsigned char *text; /* where the block's first line starts */
} Shared;

static void shared_drop(Shared *s) {
    if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(s->data);
        free(s);
    }
}

/* kinds of column */
enum { COL_U64 = 0, COL_BOOL = 1, COL_TEXT = 2 };

typedef struct {
    Shared *shared;        /* COL_TEXT */
    void *own[2];          /* COL_TEXT: validity, views; else the values */
    const void *buffers[4];
    int64_t sizes[1];      /* COL_TEXT: the data buffer's length */
} Column;

static void column_release(struct ArrowArray *a) {
    Column *c = a->private_data;
    if (c) {
        free(c->own[0]);
        free(c->own[1]);
        shared_drop(c->shared);
        free(c);
    }
    a->release = NULL;
}

static void batch_release(struct ArrowArray *a) {
    for (int64_t k = 0; k < a->n_children; k++) {
        struct ArrowArray *child = a->children[k];
        if (child->release) child->release(child);
        free(child);
    }
    free(a->children);
    free(a->private_data); /* the struct's buffer list */
    a->release = NULL;
}

static void schema_release(struct ArrowSchema *s) {
    for (int64_t k = 0; k < s->n_children; k++) {
        struct ArrowSchema *child = s->children[k];
        if (child->release) child->release(child);
        free(child);
    }
    free(s->children);
    free((void *)s->name);
    s->release = NULL;
}

static void field_release(struct ArrowSchema *s) {
    free((void *)s->name);
    s->release = NULL;
}

static void schema_capsule_free(PyObject *capsule) {
    struct ArrowSchema *s = PyCapsule_GetPointer(capsule, "arrow_schema");
    if (s && s->release) s->release(s);
    free(s);
}

static void array_capsule_free(PyObject *capsule) {
    struct ArrowArray *a = PyCapsule_GetPointer(capsule, "arrow_array");
    if (a && a->release) a->release(a);
    free(a);
}

static int64_t popcount_bits(const unsigned char *bits, int64_t n) {
    int64_t ones = 0;
    for (int64_t i = 0; i < n / 8; i++) ones += __builtin_popcount(bits[i]);
    for (int64_t i = n / 8 * 8; i < n; i++) ones += (bits[i >> 3] >> (i & 7)) & 1;
    return ones;
}

/* one column: `own` (values; for text: validity or NULL, then views) passes
 * to the array, which frees it; NULL on allocation failure (`own` freed) */
static struct ArrowArray *column(int kind, int64_t count, void *own0, void *own1,
                                 Shared *shared, int64_t data_len) {
    struct ArrowArray *a = calloc(1, sizeof *a);
    Column *c = calloc(1, sizeof *c);
    if (!a || !c) {
        free(a);
        free(c);
        free(own0);
        free(own1);
        return NULL;
    }
    c->own[0] = own0;
    c->own[1] = own1;
    a->length = count;
    a->private_data = c;
    a->release = column_release;
    a->buffers = c->buffers;
    if (kind == COL_TEXT) {
        c->shared = shared;
        __atomic_add_fetch(&shared->refs, 1, __ATOMIC_ACQ_REL);
        c->sizes[0] = data_len;
        c->buffers[0] = own0; /* validity, or NULL: every value valid */
        c->buffers[1] = own1;
        c->buffers[2] = shared->text;
        c->buffers[3] = c->sizes;
        a->n_buffers = 4;
        a->null_count = own0 ? count - popcount_bits(own0, count) : 0;
    } else {
        c->buffers[0] = NULL;
        c->buffers[1] = own0;
        a->n_buffers = 2;
    }
    return a;
}

static const char *FORMATS[] = {"L", "b", "vu"};

/* ---------------------------------------------------------------- cutting */

/* the columns of one block, before they are handed over */
typedef struct {
    int64_t count;
    int ncols;
    int kinds[64];
    void *own[64][2];
    unsigned char moved[64]; /* a text column whose values are in `values` */
    unsigned char *values;   /* (`compact`) or NULL */
    int64_t values_len;
} Cut;

static void cut_free(Cut *c) {
    for (int k = 0; k < c->ncols; k++) {
        free(c->own[k][0]);
        free(c->own[k][1]);
    }
    free(c->values);
    c->values = NULL;
    c->ncols = 0;
}

static int cut_add(Cut *c, int kind, void *own0, void *own1) {
    if (c->ncols >= 64) return 0;
    c->kinds[c->ncols] = kind;
    c->own[c->ncols][0] = own0;
    c->own[c->ncols][1] = own1;
    c->moved[c->ncols] = 0;
    c->ncols++;
    return 1;
}

/* Copy the values of every text column but the lines' (column `keep`) into
 * one buffer, `c->values`, each column's one after another, and point the
 * views there. polars hashes and compares a column whose values sit apart,
 * between the other fields of their lines, several times slower once a
 * batch outgrows the CPU's caches (ingest's 32 MiB batches). The views stay
 * as they are when the copies would not fit 32-bit offsets (a request and its
 * parts are copied apart: more bytes than the block). 0 when memory runs
 * out. */
static int compact(Cut *c, const unsigned char *base, int keep) {
    int64_t total = 0;
    for (int k = 0; k < c->ncols; k++) {
        if (c->kinds[k] != COL_TEXT || k == keep) continue;
        const View *v = c->own[k][1];
        for (int64_t i = 0; i < c->count; i++)
            if (v[i].len > 12) total += v[i].len;
    }
    if (total > INT32_MAX) return 1;
    unsigned char *d = malloc((size_t)(total ? total : 1));
    if (!d) return 0;
    int64_t at = 0;
    for (int k = 0; k < c->ncols; k++) {
        if (c->kinds[k] != COL_TEXT || k == keep) continue;
        View *v = c->own[k][1];
        for (int64_t i = 0; i < c->count; i++) {
            if (v[i].len <= 12) continue;
            memcpy(d + at, base + v[i].u.ref.off, (size_t)v[i].len);
            v[i].u.ref.off = (int32_t)at;
            at += v[i].len;
        }
        c->moved[k] = 1;
    }
    c->values = d;
    c->values_len = total;
    return 1;
}

/*
 * Cut [base, base + len) into lines and split them: 1 with the columns in
 * `cut` (offsets, text, too long, ok, each field, the request's parts), 0
 * when the block is not for the C road (`mark_block` finds it is not plain
 * text, or a line is longer than `limit`), -1 when memory runs out. No
 * Python API: runs without the GIL.
 *
 * Lines are cut as polars' `scan_lines` cuts them (at "\n"; no empty line
 * after the last "\n"), and lose a leading byte order mark as
 * `sources._polars_lines` strips it. Every view points into the block
 * (nothing is copied), unless `values`: then the values of every column
 * but the lines' are copied into a buffer of their own (`compact`). Lines
 * are numbered by the caller, which knows how many came before (blocks are
 * cut on several threads).
 */
static int cut_block(const unsigned char *base, int64_t len, uint64_t first_offset,
                     const Seg *segs, Py_ssize_t nsegs, int nfields, int no_backslash,
                     int request, const Realip *rip, int64_t limit, int values,
                     Cut *cut) {
    const unsigned char *end = base + len;
    memset(cut, 0, sizeof *cut);
    Marks mk;
    int marked = mark_block(base, len, &mk);
    if (marked <= 0) return marked;
    int64_t count = 0, from = 0; /* the line starts at `from` */
    for (int64_t w = 0; w < mk.words; w++) {
        for (uint64_t b = mk.nl[w]; b; b &= b - 1) {
            int64_t at = (w << 6) + __builtin_ctzll(b);
            if (at - from > limit) goto not_plain;
            count++;
            from = at + 1;
        }
    }
    if (from < len) { /* the last line, without a newline */
        if (len - from > limit) goto not_plain;
        count++;
    }
    cut->count = count;
    size_t nbytes = (size_t)(count + 7) / 8 + 1;
    size_t nviews = (size_t)(count ? count : 1) * sizeof(View);
    uint64_t *off = malloc((size_t)(count ? count : 1) * 8);
    View *tv = malloc(nviews);
    unsigned char *too_long = calloc(nbytes, 1);
    unsigned char *ok = calloc(nbytes, 1);
    if (!cut_add(cut, COL_U64, off, NULL) || !cut_add(cut, COL_TEXT, NULL, tv) ||
        !cut_add(cut, COL_BOOL, too_long, NULL) || !cut_add(cut, COL_BOOL, ok, NULL) ||
        !off || !tv || !too_long || !ok)
        goto oom;
    View *out[64];
    for (int f = 0; f < nfields; f++) {
        out[f] = malloc(nviews);
        if (!cut_add(cut, COL_TEXT, NULL, out[f]) || !out[f]) goto oom;
    }
    /* the request's parts: whether the C split cut the request (`ok`), then
     * its method, path, query and protocol (`request_parse`; each null where
     * nginx would not have parsed the request, or it has no such part) */
    View *rq_view[4] = {NULL, NULL, NULL, NULL};
    unsigned char *rq_ok = NULL, *rq_has[4] = {NULL, NULL, NULL, NULL};
    if (request >= 0) {
        rq_ok = calloc(nbytes, 1);
        if (!cut_add(cut, COL_BOOL, rq_ok, NULL) || !rq_ok) goto oom;
        for (int k = 0; k < 4; k++) {
            rq_view[k] = calloc(1, nviews);
            rq_has[k] = calloc(nbytes, 1);
            if (!cut_add(cut, COL_TEXT, rq_has[k], rq_view[k]) || !rq_view[k] ||
                !rq_has[k])
                goto oom;
        }
    }
    /* the trust decision (`Realip`): whether it was made here, whether the
     * client is the header's, whether an untrusted peer sent one, the client */
    unsigned char *rip_ok = NULL, *rip_header = NULL, *rip_untrusted = NULL;
    View *rip_client = NULL;
    if (rip) {
        rip_ok = calloc(nbytes, 1);
        rip_header = calloc(nbytes, 1);
        rip_untrusted = calloc(nbytes, 1);
        rip_client = calloc(1, nviews);
        if (!cut_add(cut, COL_BOOL, rip_ok, NULL) || !rip_ok ||
            !cut_add(cut, COL_BOOL, rip_header, NULL) || !rip_header ||
            !cut_add(cut, COL_BOOL, rip_untrusted, NULL) || !rip_untrusted ||
            !cut_add(cut, COL_TEXT, NULL, rip_client) || !rip_client)
            goto oom;
    }
    const unsigned char *p = base;
    for (int64_t i = 0; i < count; i++) {
        const unsigned char *nl = next_mark(mk.nl, base, p, end);
        const unsigned char *le = nl ? nl : end;
        off[i] = first_offset + (uint64_t)(p - base);
        const unsigned char *t = p, *te = le;
        if (te - t >= 3 && t[0] == 0xEF && t[1] == 0xBB && t[2] == 0xBF) t += 3;
        put_view(&tv[i], base, t, te - t);
        int taken = segs && !(no_backslash && memchr(t, '\\', (size_t)(te - t))) &&
                    split_line(segs, nsegs, base, mk.qt, t, te - t, out, i);
        if (taken) {
            ok[i >> 3] |= (unsigned char)(1u << (i & 7));
        } else {
            for (int f = 0; f < nfields; f++) memset(&out[f][i], 0, sizeof(View));
        }
        if (request >= 0 && taken) {
            const View *rv = &out[request][i];
            const unsigned char *rs =
                rv->len <= 12 ? (const unsigned char *)rv->u.inl : base + rv->u.ref.off;
            Rq r;
            int cut_rq = request_parse(rs, rv->len, &r, mk.wide);
            unsigned char bit = (unsigned char)(1u << (i & 7));
            if (cut_rq >= 0) rq_ok[i >> 3] |= bit;
            if (cut_rq > 0) {
                put_view(&rq_view[0][i], base, rs, r.method);
                rq_has[0][i >> 3] |= bit;
                if (r.path >= 0)
                    put_view(&rq_view[1][i], base, rs + r.path_at, r.path);
                else
                    put_view(&rq_view[1][i], base, (const unsigned char *)"/", 1);
                rq_has[1][i >> 3] |= bit;
                if (r.query >= 0) {
                    put_view(&rq_view[2][i], base, rs + r.query_at, r.query);
                    rq_has[2][i >> 3] |= bit;
                }
                if (r.protocol >= 0) {
                    put_view(&rq_view[3][i], base, rs + r.proto_at, r.protocol);
                    rq_has[3][i >> 3] |= bit;
                }
            }
        }
        if (rip && taken) {
            const View *pv = &out[rip->peer][i], *hv = &out[rip->header][i];
            const unsigned char *client;
            Py_ssize_t client_len;
            int from_header, untrusted;
            if (realip_decide(rip, view_bytes(pv, base), pv->len, view_bytes(hv, base),
                              hv->len, &client, &client_len, &from_header, &untrusted)) {
                unsigned char bit = (unsigned char)(1u << (i & 7));
                rip_ok[i >> 3] |= bit;
                if (from_header) rip_header[i >> 3] |= bit;
                if (untrusted) rip_untrusted[i >> 3] |= bit;
                put_view(&rip_client[i], base, client, client_len);
            }
        }
        p = le + 1;
    }
    free(mk.nl);
    free(mk.qt);
    if (values && !compact(cut, base, 1)) {
        cut_free(cut);
        return -1;
    }
    return 1;
not_plain:
    free(mk.nl);
    free(mk.qt);
    return 0;
oom:
    free(mk.nl);
    free(mk.qt);
    cut_free(cut);
    return -1;
}

/* Hand the columns of `cut` and the block `shared` over as capsules (the
 * schema's field names from `names`); takes `cut`'s buffers, even on error. */
static PyObject *batch(Cut *cut, Shared *shared, int64_t data_len, Shared *values,
                       PyObject *names) {
    int n = cut->ncols;
    if (!PyTuple_Check(names) || PyTuple_GET_SIZE(names) != n) {
        cut_free(cut);
        PyErr_SetString(PyExc_ValueError, "one name per column is needed");
        return NULL;
    }
    struct ArrowSchema *schema = calloc(1, sizeof *schema);
    struct ArrowArray *array = calloc(1, sizeof *array);
    const void **struct_buffers = calloc(1, sizeof(void *));
    PyObject *capsules = NULL;
    if (!schema || !array || !struct_buffers) goto oom;
    schema->format = "+s";
    schema->name = strdup("");
    schema->release = schema_release;
    schema->children = calloc((size_t)n, sizeof(void *));
    array->length = cut->count;
    array->n_buffers = 1;
    array->buffers = struct_buffers;
    array->private_data = struct_buffers;
    struct_buffers = NULL;
    array->release = batch_release;
    array->children = calloc((size_t)n, sizeof(void *));
    if (!schema->name || !schema->children || !array->children) goto oom;
    for (int k = 0; k < n; k++) {
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(names, k));
        if (!name) goto fail;
        struct ArrowSchema *field = calloc(1, sizeof *field);
        if (!field) goto oom;
        schema->children[schema->n_children++] = field;
        field->format = FORMATS[cut->kinds[k]];
        field->name = strdup(name);
        field->flags = ARROW_FLAG_NULLABLE;
        field->release = field_release;
        if (!field->name) goto oom;
        struct ArrowArray *col =
            column(cut->kinds[k], cut->count, cut->own[k][0], cut->own[k][1],
                   cut->moved[k] ? values : shared,
                   cut->moved[k] ? cut->values_len : data_len);
        cut->own[k][0] = cut->own[k][1] = NULL; /* the column's now */
        if (!col) goto oom;
        array->children[array->n_children++] = col;
    }
    PyObject *s = PyCapsule_New(schema, "arrow_schema", schema_capsule_free);
    if (!s) goto fail;
    schema = NULL;
    PyObject *a = PyCapsule_New(array, "arrow_array", array_capsule_free);
    if (!a) {
        Py_DECREF(s);
        goto fail;
    }
    array = NULL;
    capsules = PyTuple_Pack(2, s, a);
    Py_DECREF(s);
    Py_DECREF(a);
    return capsules;
oom:
    PyErr_NoMemory();
fail:
    cut_free(cut);
    if (schema) {
        schema_release(schema);
        free(schema);
    }
    if (array) {
        batch_release(array);
        free(array);
    }
    free(struct_buffers);
    return NULL;
}

/* pread until `n` bytes or the end of the file: bytes read, -1 on error */
static int64_t pread_full(int fd, unsigned char *buf, int64_t n, int64_t at) {
    int64_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, (size_t)(n - got), (off_t)(at + got));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += r;
    }
    return got;
}

/*
 * The lines of the file that start in bytes [start, stop): read with pread
 * into `*buf` (the caller frees it), from `*first` for `*len` bytes. A line
 * runs on past `stop` to its newline (read `slack` bytes at a time); none
 * runs past `size`, the file's size when it was judged. 0; 1 when the last
 * line is longer than `limit` (not read to its end: not for the C road); or
 * -1 with errno.
 */
static int read_range(int fd, int64_t start, int64_t stop, int64_t size, int64_t slack,
                      int64_t limit, unsigned char **buf, int64_t *first, int64_t *len) {
    int64_t at = start > 0 ? start - 1 : 0; /* the byte before: a line start? */
    int64_t cap = stop - at + slack;
    if (cap > size - at) cap = size - at;
    if (cap < 1) cap = 1;
    unsigned char *data = malloc((size_t)cap);
    if (!data) {
        errno = ENOMEM;
        return -1;
    }
    int64_t n = pread_full(fd, data, cap, at);
    if (n < 0) goto fail;
    *buf = data;
    *first = 0;
    if (start > 0) {
        int64_t window = stop - start < n ? stop - start : n;
        const unsigned char *nl = window > 0 ? memchr(data, '\n', (size_t)window) : NULL;
        if (!nl) { /* inside a line that started before the range */
            *first = n;
            *len = 0;
            return 0;
        }
        *first = nl - data + 1;
    }
    int64_t from = stop - at - 1; /* the newline ending the last line: here or on */
    for (;;) {
        const unsigned char *nl =
            from < n ? memchr(data + from, '\n', (size_t)(n - from)) : NULL;
        if (nl) {
            *len = nl - data + 1 - *first;
            return 0;
        }
        if (at + n >= size) break;
        /* the last line started before `stop`: this much of it is read */
        if (n - (stop - at) > limit) {
            *len = n - *first;
            return 1;
        }
        int64_t more = slack << 4;
        if (more > size - at - n) more = size - at - n;
        unsigned char *grown = realloc(data, (size_t)(n + more));
        if (!grown) {
            errno = ENOMEM;
            goto fail;
        }
        data = *buf = grown;
        int64_t got = pread_full(fd, data + n, more, at + n);
        if (got < 0) goto fail;
        if (got == 0) break; /* the file shrank since it was judged */
        from = n;
        n += got;
    }
    *len = n - *first;
    return 0;
fail:
    free(data);
    *buf = NULL;
    return -1;
}

/* Hand the columns of `cut` over (`batch`), with the buffer `buf` they
 * point into from `text` on, `len` bytes; takes both, even on error. */
static PyObject *handed_over(Cut *cut, unsigned char *buf, unsigned char *text,
                             int64_t len, PyObject *names) {
    Shared *shared = malloc(sizeof *shared);
    if (!shared) {
        cut_free(cut);
        free(buf);
        return PyErr_NoMemory();
    }
    shared->refs = 1; /* this function's, dropped below */
    shared->data = buf;
    shared->text = text; /* the views are relative to it */
    Shared *values = NULL;
    if (cut->values) {
        values = malloc(sizeof *values);
        if (!values) {
            shared_drop(shared);
            cut_free(cut);
            return PyErr_NoMemory();
        }
        values->refs = 1;
        values->data = values->text = cut->values;
        cut->values = NULL; /* `values`' now */
    }
    PyObject *capsules = batch(cut, shared, len, values, names);
    shared_drop(shared);
    shared_drop(values);
    return capsules;
}

/*
 * read(fd, start, stop, size, slack, program, nfields, limit, names[, values])
 *   -> (offset, count, capsules)
 * The lines starting in bytes [start, stop) of the file (see `read_range`),
 * cut and split (see `cut_block`) without the GIL: `offset` is the first
 * line's, `capsules` the (schema, array) pair of the PyCapsule protocol,
 * `names` the columns' names. count 0: no line starts there (capsules
 * None); count -1: the block is not for the C road (capsules None).
 * `values`: each value column's text in a buffer of its own (`cut_block`).
 */
static PyObject *read_lines(PyObject *self, PyObject *args) {
    (void)self;
    int fd, nfields;
    long long start, stop, size, slack, limit;
    PyObject *program, *names;
    int values = 0;
    if (!PyArg_ParseTuple(args, "iLLLLOiLO|p", &fd, &start, &stop, &size, &slack, &program,
                          &nfields, &limit, &names, &values))
        return NULL;
    if (start < 0 || stop < start || size < stop || slack < 1 || nfields < 0 ||
        nfields > 40 || (program == Py_None && nfields != 0)) {
        PyErr_SetString(PyExc_ValueError, "bad range or field count");
        return NULL;
    }
    Seg *segs = NULL;
    Realip *rip = NULL;
    Py_ssize_t nsegs = 0;
    int no_backslash = 0, request = -1;
    if (program != Py_None) {
        segs = read_program(program, &nsegs, nfields, &no_backslash, &request, &rip);
        if (!segs) return NULL;
    }
    unsigned char *buf = NULL;
    int64_t first = 0, len = 0;
    int status = 0, err = 0;
    Cut cut;
    Py_BEGIN_ALLOW_THREADS
    int got = read_range(fd, start, stop, size, slack, limit, &buf, &first, &len);
    if (got < 0) {
        err = errno;
    } else if (got > 0) {
        status = 0; /* a line too long for the C road */
        len = -1;
    } else if (len > INT32_MAX) {
        err = EFBIG;
    } else if (len > 0) {
        status = cut_block(buf + first, len, (uint64_t)(start > 0 ? start - 1 : 0) + first,
                           segs, nsegs, nfields, no_backslash, request, rip, limit, values,
                           &cut);
    }
    Py_END_ALLOW_THREADS
    free_segs(segs, nsegs);
    free_realip(rip);
    long long offset = (start > 0 ? start - 1 : 0) + first;
    if (err) {
        free(buf);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (status < 0) {
        free(buf);
        return PyErr_NoMemory();
    }
    if (len == 0 || status == 0) {
        free(buf);
        return Py_BuildValue("LiO", len == 0 ? start : offset, len == 0 ? 0 : -1, Py_None);
    }
    int64_t count = cut.count;
    PyObject *capsules = handed_over(&cut, buf, buf + first, len, names);
    if (!capsules) return NULL;
    return Py_BuildValue("LLN", offset, (long long)count, capsules);
}

/*
 * lines(block, first_offset, program, nfields, limit, names[, values])
 *   -> None, or (count, capsules)
 * `read` for lines already in memory (`ingest`'s blocks, and the tests): a
 * copy of `block` cut and split; None when it is not for the C road.
 */
static PyObject *lines(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer block = {0};
    unsigned long long first_offset;
    long long limit;
    PyObject *program, *names;
    int nfields, values = 0;
    if (!PyArg_ParseTuple(args, "y*KOiLO|p", &block, &first_offset, &program, &nfields,
                          &limit, &names, &values))
        return NULL;
    PyObject *result = NULL;
    Seg *segs = NULL;
    Realip *rip = NULL;
    Py_ssize_t nsegs = 0;
    int no_backslash = 0, request = -1;
    unsigned char *buf = NULL;
    if (block.len > INT32_MAX || nfields < 0 || nfields > 40 ||
        (program == Py_None && nfields != 0)) {
        PyErr_SetString(PyExc_ValueError, "bad block or field count");
        goto done;
    }
    if (program != Py_None) {
        segs = read_program(program, &nsegs, nfields, &no_backslash, &request, &rip);
        if (!segs) goto done;
    }
    buf = malloc((size_t)(block.len ? block.len : 1));
    if (!buf) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(buf, block.buf, (size_t)block.len);
    Cut cut;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = cut_block(buf, block.len, first_offset, segs, nsegs, nfields, no_backslash,
                       request, rip, limit, values, &cut);
    Py_END_ALLOW_THREADS
    if (status < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (status == 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    int64_t count = cut.count;
    PyObject *capsules = handed_over(&cut, buf, buf, block.len, names);
    buf = NULL; /* handed over */
    if (capsules) result = Py_BuildValue("LN", (long long)count, capsules);
done:
    free(buf);
    free_segs(segs, nsegs);
    free_realip(rip);
    PyBuffer_Release(&block);
    return result;
}

/* shape(shape_id, value: bytes) -> bool: one shape check, for the tests */
static PyObject *shape(PyObject *self, PyObject *args) {
    (void)self;
    int id;
    const char *s;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "iy#", &id, &s, &n)) return NULL;
    if (id < 0 || id >= SHAPE_COUNT) {
        PyErr_SetString(PyExc_ValueError, "unknown shape");
        return NULL;
    }
    return PyBool_FromLong(shape_ok(id, (const unsigned char *)s, n));
}

/* Whether s[0:n] is hex groups of 1-4 digits: eight joined by ':', or one to
 * six, '::', then none to six (`_ipaddr._V6_PLAIN`, matched whole). */
static int v6_plain_form(const char *s, Py_ssize_t n) {
    int groups = 0, after = -1; /* groups after '::' (-1: no '::' yet) */
    Py_ssize_t i = 0;
    for (;;) {
        Py_ssize_t digits = 0;
        while (i < n && digits < 5 &&
               ((s[i] >= '0' && s[i] <= '9') || ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f'))) {
            i++;
            digits++;
        }
        if (digits == 0 || digits > 4) {
            /* no group here: allowed only right after '::', at the end */
            return digits == 0 && after == 0 && i == n;
        }
        groups++;
        if (after >= 0) after++;
        if (i == n) break;
        if (s[i] != ':') return 0;
        i++;
        if (i < n && s[i] == ':') {
            if (after >= 0) return 0; /* a second '::' */
            if (groups > 6) return 0;
            after = 0;
            i++;
            if (i == n) return 1; /* ends with '::' */
        }
    }
    if (after < 0) return groups == 8;
    return after <= 6;
}

/*
 * inet6_plain(tokens: list) -> list of (text, hi, lo) or None
 * `_ipaddr._plain_inet6` for many tokens at once: an ordinary IPv6 address
 * (`v6_plain_form`) that inet_pton reads and whose first group is not zero,
 * as inet_ntop prints it and as two 64-bit halves; None for anything else.
 */
static PyObject *inet6_plain(PyObject *self, PyObject *tokens) {
    (void)self;
    if (!PyList_Check(tokens)) {
        PyErr_SetString(PyExc_TypeError, "a list of str");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(tokens);
    PyObject *out = PyList_New(count);
    if (!out) return NULL;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *item = PyList_GET_ITEM(tokens, k), *got = NULL;
        Py_ssize_t n = 0;
        const char *s = PyUnicode_Check(item) ? PyUnicode_AsUTF8AndSize(item, &n) : NULL;
        if (!s && PyErr_Occurred()) {
            Py_DECREF(out);
            return NULL;
        }
        unsigned char packed[16];
        char text[INET6_ADDRSTRLEN + 1], buf[48];
        if (s && n > 0 && n < (Py_ssize_t)sizeof buf && v6_plain_form(s, n)) {
            memcpy(buf, s, (size_t)n);
            buf[n] = '\0';
            if (inet_pton(AF_INET6, buf, packed) == 1 && (packed[0] | packed[1]) &&
                inet_ntop(AF_INET6, packed, text, sizeof text)) {
                unsigned long long hi = 0, lo = 0;
                for (int b = 0; b < 8; b++) hi = hi << 8 | packed[b];
                for (int b = 8; b < 16; b++) lo = lo << 8 | packed[b];
                got = Py_BuildValue("(sKK)", text, hi, lo);
                if (!got) {
                    Py_DECREF(out);
                    return NULL;
                }
            }
        }
        if (!got) {
            got = Py_None;
            Py_INCREF(got);
        }
        PyList_SET_ITEM(out, k, got);
    }
    return out;
}

/* addr(text: bytes) -> (kind, v4, hi, lo): `simple_addr`, for the tests */
static PyObject *addr(PyObject *self, PyObject *args) {
    (void)self;
    const char *s;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "y#", &s, &n)) return NULL;
    uint32_t v4 = 0;
    uint64_t hi = 0, lo = 0;
    int kind = simple_addr((const unsigned char *)s, n, &v4, &hi, &lo);
    return Py_BuildValue("(iIKK)", kind, (unsigned int)v4, (unsigned long long)hi,
                         (unsigned long long)lo);
}

/* trim(): give the memory the C library holds free back to the system */
static PyObject *trim(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    int released = 0;
#if defined(__GLIBC__)
    Py_BEGIN_ALLOW_THREADS
    released = malloc_trim(0);
    Py_END_ALLOW_THREADS
#endif
    return PyBool_FromLong(released);
}

static PyMethodDef methods[] = {
    {"trim", trim, METH_NOARGS, "Give freed memory back to the system (malloc_trim)."},
    {"read", read_lines, METH_VARARGS, "Read a range of a log, cut it into lines, split them."},
    {"lines", lines, METH_VARARGS, "Cut a block of a log into lines, and split them."},
    {"shape", shape, METH_VARARGS, "Whether a value has a shape (for the tests)."},
    {"inet6_plain", inet6_plain, METH_O, "Ordinary IPv6 addresses: nginx's text and value."},
    {"addr", addr, METH_VARARGS, "An address as the trust decision reads it (for the tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_splitc",
    "nginx log lines cut and split in C (see pplog._fastsplit).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__splitc(void) { return PyModule_Create(&module); }
