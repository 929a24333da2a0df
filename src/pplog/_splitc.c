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
 */
#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <Python.h>
#if defined(__GLIBC__)
#include <malloc.h> /* malloc_trim */
#endif
#include <stdint.h>
#include <string.h>

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
    SHAPE_COUNT = 13
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
    case SHAPE_UPSTREAM_LIST: {
        /* [^ ,"]+(?:(?:, | : )[^ ,"]+)* */
        const unsigned char *q = list_item(p, e);
        if (!q) return 0;
        while (q < e) {
            if (e - q >= 2 && q[0] == ',' && q[1] == ' ')
                q += 2;
            else if (e - q >= 3 && q[0] == ' ' && q[1] == ':' && q[2] == ' ')
                q += 3;
            else
                return 0;
            q = list_item(q, e);
            if (!q) return 0;
        }
        return 1;
    }
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

static const unsigned char *find(const unsigned char *p, const unsigned char *e,
                                 const char *lit, Py_ssize_t n) {
    if (n == 1) return memchr(p, lit[0], (size_t)(e - p));
    /* short needles in short values: memmem's setup costs more than this */
    const unsigned char *last = e - n;
    while (p <= last) {
        const unsigned char *c = memchr(p, lit[0], (size_t)(last - p + 1));
        if (!c) return NULL;
        if (same(c + 1, lit + 1, n - 1)) return c;
        p = c + 1;
    }
    return NULL;
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
                      const unsigned char *text, Py_ssize_t len, View **out,
                      Py_ssize_t i) {
    const unsigned char *p = text, *end = text + len;
    for (Py_ssize_t k = 0; k < nsegs; k++) {
        const Seg *sg = &segs[k];
        /* this segment runs to the next `"` (the last one to the end) */
        const unsigned char *q;
        if (k + 1 < nsegs) {
            q = memchr(p, '"', (size_t)(end - p));
            if (!q) return 0;
        } else {
            if (memchr(p, '"', (size_t)(end - p))) return 0;
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

/* Decode the program `_fastsplit.program` built. The strings it points into
 * stay alive with the `program` tuple the caller holds. */
static Seg *read_program(PyObject *whole, Py_ssize_t *nsegs, int nfields,
                         int *no_backslash, int *request) {
    PyObject *program;
    if (!PyArg_ParseTuple(whole, "iiO", no_backslash, request, &program)) return NULL;
    if (*request < -1 || *request >= nfields) {
        PyErr_SetString(PyExc_ValueError, "bad request field in program");
        return NULL;
    }
    if (!PyTuple_Check(program)) {
        PyErr_SetString(PyExc_TypeError, "program must be a tuple");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(program);
    Seg *segs = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Seg));
    if (!segs) {
        PyErr_NoMemory();
        return NULL;
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
    return NULL;
}

/* a request line of the common shape, `parse.request_parts`' `_REQUEST_PLAIN`:
 * ^[A-Z][A-Z_-]* /[^ ]*(?: HTTP/\d\.\d)?$, with no backslash (so that its
 * decoded text is the same). Lengths, the target's start; -1: absent. */
typedef struct {
    Py_ssize_t method, target, path, query, protocol;
} Rq;

static int request_plain(const unsigned char *s, Py_ssize_t n, Rq *r) {
    if (n < 1 || !(s[0] >= 'A' && s[0] <= 'Z')) return 0;
    if (memchr(s, '\\', (size_t)n)) return 0;
    Py_ssize_t i = 1;
    while (i < n && ((s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' || s[i] == '-')) i++;
    if (i + 1 >= n || s[i] != ' ' || s[i + 1] != '/') return 0;
    r->method = i;
    r->target = i + 1;
    Py_ssize_t j = i + 1;
    while (j < n && s[j] != ' ') j++;
    if (j == n) {
        r->protocol = -1;
    } else {
        if (n - j != 9 || !same(s + j, " HTTP/", 6) || !is_digit(s[j + 6]) ||
            s[j + 7] != '.' || !is_digit(s[j + 8]))
            return 0;
        r->protocol = 8;
    }
    const unsigned char *q = memchr(s + r->target, '?', (size_t)(j - r->target));
    if (q) {
        r->path = q - (s + r->target);
        r->query = j - (q - s) - 1;
    } else {
        r->path = j - r->target;
        r->query = -1;
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

static PyObject *new_bytearray(Py_ssize_t size) {
    PyObject *ba = PyByteArray_FromStringAndSize(NULL, 0);
    if (ba && PyByteArray_Resize(ba, size) < 0) Py_CLEAR(ba);
    return ba;
}

/*
 * lines(block, first_offset, program, nfields, limit)
 *   block: bytes of whole lines, each ending in "\n" except perhaps the last
 *   first_offset: the file offset of its first line
 *   program: `_fastsplit.program`'s steps (None: no split)
 *   limit: the longest line the C road takes (longer lines are cut by the
 *     Python reader)
 * -> None if the block is not for the C road (`plain_text` fails, or a line
 *    is longer than `limit`), else
 *    (count, text views, offsets (u64), ok bitmap,
 *     [views of each field], the request's parts or None: (ok bitmap,
 *     method, path, query views, query validity, protocol views, protocol
 *     validity))
 *
 * Lines are cut as polars' `scan_lines` cuts them (at "\n"; no empty line
 * after the last "\n"), and lose a leading byte order mark as
 * `sources._polars_lines` strips it. Every view points into the
 * block (buffer 0): nothing is copied. Lines are numbered by the caller,
 * which knows how many came before (blocks are cut on several threads).
 */
static PyObject *lines(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer block = {0};
    unsigned long long first_offset;
    PyObject *program;
    int nfields;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "y*KOin", &block, &first_offset, &program, &nfields,
                          &limit))
        return NULL;
    PyObject *result = NULL, *texts = NULL, *offsets = NULL, *ok_obj = NULL,
             *fields = NULL, *parts = NULL;
    View **out = NULL;
    Seg *segs = NULL;
    Py_ssize_t nsegs = 0;
    const unsigned char *base = block.buf, *end = base + block.len;

    if (block.len > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "block larger than 2 GiB");
        goto done;
    }
    if (nfields < 0 || (program == Py_None && nfields != 0)) {
        PyErr_SetString(PyExc_ValueError, "bad field count");
        goto done;
    }
    int no_backslash = 0, request = -1;
    if (program != Py_None) {
        segs = read_program(program, &nsegs, nfields, &no_backslash, &request);
        if (!segs) goto done;
    }
    /* the file's head was judged, not the rest: a block the Python reader
     * would read otherwise is left to the caller (None) */
    int valid;
    Py_ssize_t count = 0;
    Py_BEGIN_ALLOW_THREADS
    valid = plain_text(base, block.len);
    for (const unsigned char *p = base; valid && p < end;) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        const unsigned char *le = nl ? nl : end;
        count++;
        if (le - p > limit) valid = 0;
        if (!nl) break;
        p = nl + 1;
    }
    Py_END_ALLOW_THREADS
    if (!valid) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    Py_ssize_t nbytes = (count + 7) / 8;
    texts = new_bytearray(count * (Py_ssize_t)sizeof(View));
    offsets = new_bytearray(count * 8);
    ok_obj = PyBytes_FromStringAndSize(NULL, nbytes);
    fields = PyList_New(nfields);
    if (!texts || !offsets || !ok_obj || !fields) goto done;
    out = PyMem_Calloc((size_t)(nfields ? nfields : 1), sizeof(View *));
    if (!out) {
        PyErr_NoMemory();
        goto done;
    }
    for (int f = 0; f < nfields; f++) {
        PyObject *ba = new_bytearray(count * (Py_ssize_t)sizeof(View));
        if (!ba) goto done;
        PyList_SET_ITEM(fields, f, ba);
        out[f] = (View *)PyByteArray_AS_STRING(ba);
    }
    /* the request's parts: ok, method, path, query, query valid, protocol,
     * protocol valid */
    View *rq_view[4] = {NULL, NULL, NULL, NULL};
    unsigned char *rq_bits[3] = {NULL, NULL, NULL};
    if (request >= 0) {
        parts = PyTuple_New(7);
        if (!parts) goto done;
        for (int k = 0; k < 7; k++) {
            int bits = k == 0 || k == 4 || k == 6;
            PyObject *ba = new_bytearray(bits ? nbytes : count * (Py_ssize_t)sizeof(View));
            if (!ba) goto done;
            PyTuple_SET_ITEM(parts, k, ba);
            if (bits) {
                rq_bits[k == 0 ? 0 : k == 4 ? 1 : 2] = (unsigned char *)PyByteArray_AS_STRING(ba);
                memset(PyByteArray_AS_STRING(ba), 0, (size_t)nbytes);
            } else {
                rq_view[k == 1 ? 0 : k == 2 ? 1 : k == 3 ? 2 : 3] =
                    (View *)PyByteArray_AS_STRING(ba);
            }
        }
    }
    View *tv = (View *)PyByteArray_AS_STRING(texts);
    uint64_t *off = (uint64_t *)PyByteArray_AS_STRING(offsets);
    unsigned char *ok = (unsigned char *)PyBytes_AS_STRING(ok_obj);
    memset(ok, 0, (size_t)nbytes);

    Py_BEGIN_ALLOW_THREADS
    const unsigned char *p = base;
    for (Py_ssize_t i = 0; i < count; i++) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        const unsigned char *le = nl ? nl : end;
        off[i] = first_offset + (uint64_t)(p - base);
        const unsigned char *t = p, *te = le;
        if (te - t >= 3 && t[0] == 0xEF && t[1] == 0xBB && t[2] == 0xBF) t += 3;
        put_view(&tv[i], base, t, te - t);
        int taken = segs && !(no_backslash && memchr(t, '\\', (size_t)(te - t))) &&
                    split_line(segs, nsegs, base, t, te - t, out, i);
        if (taken) {
            ok[i >> 3] |= (unsigned char)(1u << (i & 7));
        } else {
            for (int f = 0; f < nfields; f++) memset(&out[f][i], 0, sizeof(View));
        }
        if (request >= 0) {
            for (int k = 0; k < 4; k++) memset(&rq_view[k][i], 0, sizeof(View));
            const View *rv = &out[request][i];
            const unsigned char *rs =
                rv->len <= 12 ? (const unsigned char *)rv->u.inl : base + rv->u.ref.off;
            Rq r;
            if (taken && request_plain(rs, rv->len, &r)) {
                unsigned char bit = (unsigned char)(1u << (i & 7));
                rq_bits[0][i >> 3] |= bit;
                put_view(&rq_view[0][i], base, rs, r.method);
                put_view(&rq_view[1][i], base, rs + r.target, r.path);
                if (r.query >= 0) {
                    put_view(&rq_view[2][i], base, rs + r.target + r.path + 1, r.query);
                    rq_bits[1][i >> 3] |= bit;
                }
                if (r.protocol >= 0) {
                    put_view(&rq_view[3][i], base, rs + rv->len - r.protocol, r.protocol);
                    rq_bits[2][i >> 3] |= bit;
                }
            }
        }
        p = le + 1;
    }
    Py_END_ALLOW_THREADS

    result = Py_BuildValue("nOOOOO", count, texts, offsets, ok_obj, fields,
                           parts ? parts : Py_None);
done:
    Py_XDECREF(parts);
    Py_XDECREF(texts);
    Py_XDECREF(offsets);
    Py_XDECREF(ok_obj);
    Py_XDECREF(fields);
    PyMem_Free(out);
    free_segs(segs, nsegs);
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
    {"lines", lines, METH_VARARGS, "Cut a block of a log into lines, and split them."},
    {"shape", shape, METH_VARARGS, "Whether a value has a shape (for the tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_splitc",
    "nginx log lines cut and split in C (see pplog._fastsplit).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__splitc(void) { return PyModule_Create(&module); }
