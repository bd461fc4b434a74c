/* The rank histories' hot loop in C: the same arithmetic as novelty.py's Python reference,
 * value by value, so both give bit-identical surprises (tests/detect/test_ranks.py).
 *
 * A history's state lives in buffers that the Python side owns (``novelty.ValueHistory``):
 *   f64 order[size]    entries in arrival order, a ring starting at ``head``
 *   f64 sorted[size]   the same entries in ascending order
 *   i64 maxq_at[size+1], f64 maxq[size+1]   monotonic queue of block maxima (a ring)
 *   i64 minq_at[size+1], f64 minq[size+1]   the same for minima
 *   i64 meta[8]        n, head, added, maxq_head, maxq_len, minq_head, minq_len, has_block
 *   f64 block[2]       (hi, lo) of the numbers observed since the last entry
 *
 * Only the C99 library is used: it builds wherever Python does (Linux, Termux's clang).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define WARMUP_N 100
#define TAIL_MIN_N 10
#define MAX_PAST 1e3

enum { N, HEAD, ADDED, MAXQ_HEAD, MAXQ_LEN, MINQ_HEAD, MINQ_LEN, HAS_BLOCK, META_LEN };

typedef struct {
    Py_ssize_t size;
    double *order, *sorted, *maxq, *minq, *block;
    int64_t *maxq_at, *minq_at, *meta;
} history;

static Py_ssize_t bisect_left(const double *s, Py_ssize_t n, double x) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (s[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static Py_ssize_t bisect_right(const double *s, Py_ssize_t n, double x) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (x < s[mid]) hi = mid; else lo = mid + 1;
    }
    return lo;
}

/* Python's max(a, b) and min(a, b): the first argument unless the second is strictly past it. */
static double py_max(double a, double b) { return b > a ? b : a; }
static double py_min(double a, double b) { return b < a ? b : a; }

static double past(double distance, double tail, const double *s, Py_ssize_t n) {
    if (tail <= 0.0) tail = s[n - 1] - s[0];
    double floor = 1e-9 + 1e-6 * fabs(s[n / 2]);
    return py_min(distance / py_max(tail, floor), MAX_PAST);
}

static double queue_front(const double *q, const int64_t *meta, int head) {
    return q[meta[head]];
}

static double surprise(const history *h, double x, int upper_only) {
    const double *s = h->sorted;
    Py_ssize_t n = (Py_ssize_t)h->meta[N];
    if (n < WARMUP_N) return 0.0;
    Py_ssize_t above = n - bisect_left(s, n, x);
    double p;
    if (upper_only) {
        p = (double)(above + 1) / (double)(n + 1);
    } else {
        Py_ssize_t below = bisect_right(s, n, x);
        Py_ssize_t m = below < above ? below : above;
        p = py_min(1.0, 2.0 * (double)(m + 1) / (double)(n + 1));
    }
    double score = -log10(p);
    Py_ssize_t k = n / 20 > TAIL_MIN_N ? n / 20 : TAIL_MIN_N;
    double top = queue_front(h->maxq, h->meta, MAXQ_HEAD);
    double bottom = queue_front(h->minq, h->meta, MINQ_HEAD);
    if (x > top) {
        score += past(x - top, s[n - 1] - s[n - 1 - k], s, n);
    } else if (x < bottom && !upper_only) {
        score += past(bottom - x, s[k] - s[0], s, n);
    }
    return score;
}

static void observe(history *h, double x) {
    if (!h->meta[HAS_BLOCK]) {
        h->block[0] = h->block[1] = x;
        h->meta[HAS_BLOCK] = 1;
    } else {
        h->block[0] = py_max(h->block[0], x);
        h->block[1] = py_min(h->block[1], x);
    }
}

static void push(history *h, double x, double hi, double lo) {
    Py_ssize_t size = h->size, cap = size + 1;
    int64_t *m = h->meta;
    Py_ssize_t n = (Py_ssize_t)m[N];
    /* order: append at the ring's end; when full that slot holds the oldest entry, which goes */
    int overflow = n == size;
    double old = overflow ? h->order[m[HEAD]] : 0.0;
    h->order[(m[HEAD] + n) % size] = x;
    /* insort_right into sorted (room for one more when not full) */
    if (overflow) {
        /* remove the oldest first, then insert: the same multiset as insert-then-remove */
        Py_ssize_t i = bisect_left(h->sorted, n, old);
        memmove(h->sorted + i, h->sorted + i + 1, (size_t)(n - i - 1) * sizeof(double));
        n -= 1;
    }
    Py_ssize_t j = bisect_right(h->sorted, n, x);
    memmove(h->sorted + j + 1, h->sorted + j, (size_t)(n - j) * sizeof(double));
    h->sorted[j] = x;
    n += 1;
    int64_t i = m[ADDED];
    m[ADDED] += 1;
    while (m[MAXQ_LEN] > 0 && h->maxq[(m[MAXQ_HEAD] + m[MAXQ_LEN] - 1) % cap] <= hi) m[MAXQ_LEN]--;
    h->maxq_at[(m[MAXQ_HEAD] + m[MAXQ_LEN]) % cap] = i;
    h->maxq[(m[MAXQ_HEAD] + m[MAXQ_LEN]) % cap] = hi;
    m[MAXQ_LEN]++;
    while (m[MINQ_LEN] > 0 && h->minq[(m[MINQ_HEAD] + m[MINQ_LEN] - 1) % cap] >= lo) m[MINQ_LEN]--;
    h->minq_at[(m[MINQ_HEAD] + m[MINQ_LEN]) % cap] = i;
    h->minq[(m[MINQ_HEAD] + m[MINQ_LEN]) % cap] = lo;
    m[MINQ_LEN]++;
    if (overflow) {
        m[HEAD] = (m[HEAD] + 1) % size;
        int64_t first = m[ADDED] - size;
        while (h->maxq_at[m[MAXQ_HEAD]] < first) { m[MAXQ_HEAD] = (m[MAXQ_HEAD] + 1) % cap; m[MAXQ_LEN]--; }
        while (h->minq_at[m[MINQ_HEAD]] < first) { m[MINQ_HEAD] = (m[MINQ_HEAD] + 1) % cap; m[MINQ_LEN]--; }
    }
    m[N] = n;
}

static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t min_len,
                      int writable, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (view->itemsize != itemsize || view->len / itemsize < min_len) {
        PyErr_Format(PyExc_ValueError, "%s: wrong item size or too short", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* The numbers xs[0..count) through one history: each one's surprise, the edges before it
 * (when ``edges`` is not NULL: smallest and largest, in pairs), then the number taken as an
 * entry (when due, or while the history holds fewer than ``size``) or only observed. */
static void feed_one(history *h, const double *x, const uint8_t *a, Py_ssize_t count,
                     int upper_only, double *o, double *edges) {
    for (Py_ssize_t i = 0; i < count; i++) {
        o[i] = surprise(h, x[i], upper_only);
        if (edges != NULL) {
            int empty = h->meta[MAXQ_LEN] == 0;
            edges[2 * i] = empty ? NAN : queue_front(h->minq, h->meta, MINQ_HEAD);
            edges[2 * i + 1] = empty ? NAN : queue_front(h->maxq, h->meta, MAXQ_HEAD);
        }
        observe(h, x[i]);
        if (a[i] || h->meta[N] < h->size) {  /* due, or the history still filling */
            h->meta[HAS_BLOCK] = 0;
            push(h, x[i], h->block[0], h->block[1]);
        }
    }
}

/* A history's buffers from its state tuple (see the top); 0, or -1 with an exception. */
static int open_history(PyObject *state, history *h, Py_buffer b[8], int *got) {
    *got = 0;
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 9) {
        PyErr_SetString(PyExc_ValueError, "a history's state must be a tuple of 9 items");
        return -1;
    }
    Py_ssize_t size = PyLong_AsSsize_t(PyTuple_GET_ITEM(state, 8));
    if (size <= 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "size must be positive");
        return -1;
    }
    const Py_ssize_t sizes[8] = {size, size, size + 1, size + 1, size + 1, size + 1, META_LEN, 2};
    for (; *got < 8; (*got)++)
        if (get_buffer(PyTuple_GET_ITEM(state, *got), &b[*got], 8, sizes[*got], 1, "state") < 0)
            return -1;
    history v = {size, b[0].buf, b[1].buf, b[3].buf, b[5].buf, b[7].buf,
                 b[2].buf, b[4].buf, b[6].buf};
    *h = v;
    return 0;
}

static void close_history(Py_buffer b[8], int got) {
    for (int i = 0; i < got; i++) PyBuffer_Release(&b[i]);
}

/* feed(states, xs, add, offsets, upper_only, out, edges): history k takes the numbers
 * xs[offsets[k]..offsets[k+1]) (``feed_one``); edges may be None. One call for every
 * stream of a chunk: the per-call cost is paid once, not once per stream. */
static PyObject *feed(PyObject *self, PyObject *args) {
    PyObject *states, *xs_o, *add_o, *off_o, *out_o, *edges_o;
    int upper_only;
    if (!PyArg_ParseTuple(args, "O!OOOpOO", &PyList_Type, &states, &xs_o, &add_o, &off_o,
                          &upper_only, &out_o, &edges_o))
        return NULL;
    Py_ssize_t k = PyList_GET_SIZE(states);
    Py_buffer xs, add, off, out, edges;
    int have_xs = 0, have_add = 0, have_off = 0, have_out = 0, have_edges = 0;
    int ok = 0, with_edges = edges_o != Py_None;
    if (get_buffer(xs_o, &xs, 8, 0, 0, "xs") < 0) goto done;
    have_xs = 1;
    Py_ssize_t count = xs.len / 8;
    if (get_buffer(add_o, &add, 1, count, 0, "add") < 0) goto done;
    have_add = 1;
    if (get_buffer(off_o, &off, 8, k + 1, 0, "offsets") < 0) goto done;
    have_off = 1;
    if (get_buffer(out_o, &out, 8, count, 1, "out") < 0) goto done;
    have_out = 1;
    if (with_edges) {
        if (get_buffer(edges_o, &edges, 8, 2 * count, 1, "edges") < 0) goto done;
        have_edges = 1;
    }
    const int64_t *o = off.buf;
    for (Py_ssize_t j = 0; j < k; j++) {
        if (o[j] < 0 || o[j] > o[j + 1] || o[j + 1] > count) {
            PyErr_SetString(PyExc_ValueError, "offsets out of order or past the numbers");
            goto done;
        }
    }
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_buffer b[8];
        history h;
        int got;
        if (open_history(PyList_GET_ITEM(states, j), &h, b, &got) < 0) {
            close_history(b, got);
            goto done;
        }
        Py_ssize_t at = (Py_ssize_t)o[j];
        feed_one(&h, (const double *)xs.buf + at, (const uint8_t *)add.buf + at,
                 (Py_ssize_t)(o[j + 1] - o[j]), upper_only, (double *)out.buf + at,
                 with_edges ? (double *)edges.buf + 2 * at : NULL);
        close_history(b, got);
    }
    ok = 1;
done:
    if (have_xs) PyBuffer_Release(&xs);
    if (have_add) PyBuffer_Release(&add);
    if (have_off) PyBuffer_Release(&off);
    if (have_out) PyBuffer_Release(&out);
    if (have_edges) PyBuffer_Release(&edges);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* due(ts, entry_t, every, out) -> entry_t: whether each time takes a history entry, on a grid
 * of ``every`` from the first entry, restarted after a gap of two steps (anomaly.py's
 * ``next_entry``). entry_t is NaN before the first entry. */
static PyObject *due(PyObject *self, PyObject *args) {
    PyObject *ts_o, *out_o;
    double entry_t, every;
    if (!PyArg_ParseTuple(args, "OddO", &ts_o, &entry_t, &every, &out_o)) return NULL;
    Py_buffer ts, out;
    if (get_buffer(ts_o, &ts, 8, 0, 0, "ts") < 0) return NULL;
    Py_ssize_t count = ts.len / 8;
    if (get_buffer(out_o, &out, 1, count, 1, "out") < 0) {
        PyBuffer_Release(&ts);
        return NULL;
    }
    const double *t = ts.buf;
    uint8_t *o = out.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (isnan(entry_t)) {
            o[i] = 1;
            entry_t = t[i];
        } else if (t[i] < entry_t + every) {
            o[i] = 0;
        } else {
            o[i] = 1;
            entry_t = t[i] - entry_t >= 2 * every ? t[i] : entry_t + every;
        }
    }
    PyBuffer_Release(&ts);
    PyBuffer_Release(&out);
    return PyFloat_FromDouble(entry_t);
}

static PyMethodDef methods[] = {
    {"feed", feed, METH_VARARGS, "Rank numbers against histories and add them to them."},
    {"due", due, METH_VARARGS, "Which sample times take a history entry."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ranks", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ranks(void) { return PyModule_Create(&module); }
