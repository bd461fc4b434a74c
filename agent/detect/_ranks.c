/* The always-on tier's hot loops in C: the rank histories (the same arithmetic as
 * novelty.py's Python reference, value by value, so both give bit-identical surprises:
 * tests/detect/test_ranks.py), and a source's values through its streams' windows and
 * histories (``columns`` and ``shapes``, the same numbers as scoring.py's reference:
 * tests/detect/test_scoring_kernel.py).
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

/* ``slack``: how far past the edge still counts as at it (the stream's smallest step: a
 * quantised reading one step past its range is the least move it can make). */
static double surprise(const history *h, double x, int upper_only, double slack) {
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
        score += past(py_max(0.0, x - top - slack), s[n - 1] - s[n - 1 - k], s, n);
    } else if (x < bottom && !upper_only) {
        score += past(py_max(0.0, bottom - x - slack), s[k] - s[0], s, n);
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

/* The numbers xs[0..count) through one history: each one's surprise (with ``slack[i]``
 * when ``slack`` is not NULL), the edges before it (when ``edges`` is not NULL: smallest and
 * largest, in pairs), then the number taken as an entry (when due, or with ``fill`` while
 * the history holds fewer than ``size``) or only observed. */
static void feed_one(history *h, const double *x, const uint8_t *a, Py_ssize_t count,
                     int upper_only, int fill, double *o, double *edges, const double *slack) {
    for (Py_ssize_t i = 0; i < count; i++) {
        o[i] = surprise(h, x[i], upper_only, slack != NULL ? slack[i] : 0.0);
        if (edges != NULL) {
            int empty = h->meta[MAXQ_LEN] == 0;
            edges[2 * i] = empty ? NAN : queue_front(h->minq, h->meta, MINQ_HEAD);
            edges[2 * i + 1] = empty ? NAN : queue_front(h->maxq, h->meta, MAXQ_HEAD);
        }
        observe(h, x[i]);
        if (a[i] || (fill && h->meta[N] < h->size)) {  /* due, or the history filling */
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

/* feed(states, xs, add, offsets, upper_only, fill, out, edges[, slack]): history k takes
 * the numbers xs[offsets[k]..offsets[k+1]) (``feed_one``); edges and slack may be None. One
 * call for every stream of a chunk: the per-call cost is paid once, not once per stream. */
static PyObject *feed(PyObject *self, PyObject *args) {
    PyObject *states, *xs_o, *add_o, *off_o, *out_o, *edges_o, *slack_o = Py_None;
    int upper_only, fill;
    if (!PyArg_ParseTuple(args, "O!OOOppOO|O", &PyList_Type, &states, &xs_o, &add_o, &off_o,
                          &upper_only, &fill, &out_o, &edges_o, &slack_o))
        return NULL;
    Py_ssize_t k = PyList_GET_SIZE(states);
    Py_buffer xs, add, off, out, edges, slack;
    int have_xs = 0, have_add = 0, have_off = 0, have_out = 0, have_edges = 0, have_slack = 0;
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
    if (slack_o != Py_None) {
        if (get_buffer(slack_o, &slack, 8, count, 0, "slack") < 0) goto done;
        have_slack = 1;
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
                 (Py_ssize_t)(o[j + 1] - o[j]), upper_only, fill, (double *)out.buf + at,
                 with_edges ? (double *)edges.buf + 2 * at : NULL,
                 have_slack ? (const double *)slack.buf + at : NULL);
        close_history(b, got);
    }
    ok = 1;
done:
    if (have_xs) PyBuffer_Release(&xs);
    if (have_add) PyBuffer_Release(&add);
    if (have_off) PyBuffer_Release(&off);
    if (have_out) PyBuffer_Release(&out);
    if (have_edges) PyBuffer_Release(&edges);
    if (have_slack) PyBuffer_Release(&slack);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* Whether a history takes an entry at ``now`` on its grid of ``every`` (``*entry_t``: its
 * last entry time, NaN before the first; moved on when it takes one, restarted after a gap
 * of two steps): novelty.py's ``next_entry``. ``is_due`` only asks. */
static int is_due(double entry_t, double now, double every) {
    return isnan(entry_t) || now >= entry_t + every;
}

static uint8_t next_entry(double *entry_t, double now, double every) {
    if (isnan(*entry_t)) {
        *entry_t = now;
        return 1;
    }
    if (!is_due(*entry_t, now, every)) return 0;
    *entry_t = now - *entry_t >= 2 * every ? now : *entry_t + every;
    return 1;
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
    for (Py_ssize_t i = 0; i < count; i++) o[i] = next_entry(&entry_t, t[i], every);
    PyBuffer_Release(&ts);
    PyBuffer_Release(&out);
    return PyFloat_FromDouble(entry_t);
}

/* numpy's sum of n doubles (``np.add.reduce`` along a contiguous axis): pairwise, eight
 * running sums per block of 128, the rest added in order; the window statistics below are
 * then the same numbers as ``windows.mean(axis=1)`` and ``windows.std(axis=1)``. */
static double pairwise_sum(const double *a, Py_ssize_t n) {
    if (n < 8) {
        double res = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        Py_ssize_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* feed_number(state, x, due, upper_only, fill) -> (surprise, smallest, largest): one number
 * through one history (``feed_one``), the edges before it NaN while it is empty. The live
 * daemon's source sums and surprises come one at a time: no arrays to build for them. */
static PyObject *feed_number(PyObject *self, PyObject *args) {
    PyObject *state;
    double x;
    int take, upper_only, fill;
    if (!PyArg_ParseTuple(args, "Odppp", &state, &x, &take, &upper_only, &fill)) return NULL;
    Py_buffer b[8];
    history h;
    int got;
    if (open_history(state, &h, b, &got) < 0) {
        close_history(b, got);
        return NULL;
    }
    uint8_t a = (uint8_t)take;
    double o, edges[2];
    feed_one(&h, &x, &a, 1, upper_only, fill, &o, edges, NULL);
    close_history(b, got);
    return Py_BuildValue("(ddd)", o, edges[0], edges[1]);
}

/* A stream's state besides its histories: f64 window[W] (the last values, oldest first,
 * the valid ones at the end) and f64 meta[6] (the last: its smallest step so far, NaN
 * before one). */
enum { S_N, S_HAVE, S_ENTRY_T, S_FIRST_T, S_LAST_T, S_STEP, S_META_LEN };

/* columns(streams, matrix, ts, every, warmup_s, settled_s, context, min_std, rel_std, clip,
 * surprise, edges, due, full, learning, young, scaled) -> the number of full windows.
 *
 * A source's values ``matrix[m, k]`` (NaN where a sample lacks a stream) through its k
 * streams, column by column, each value in time order: whether its history takes an entry
 * (the grid of ``due`` above), its rank in the values history (and the edges before it),
 * then the window; once full, the window's log spread ranked in the spreads history and, if
 * ``min_std`` is not NaN, the window scaled for the model into ``scaled`` (float32 rows, the
 * full windows stream after stream): in units of its first ``context`` values, clipped
 * (``tflite.scale_windows``). A stream is (window, meta, values state, spreads
 * state). The outputs are [m, k] (edges [m, k, 2]); ``surprise`` is the larger of the value's
 * and the spread's; ``learning`` and ``young``: the stream's first value was less than
 * ``warmup_s`` and ``settled_s`` before; cells without a value are left as they were. */
static PyObject *columns(PyObject *self, PyObject *args) {
    PyObject *streams, *matrix_o, *ts_o, *out_o[7];
    double every, warmup, settled, min_std, rel_std, clip;
    Py_ssize_t context;
    if (!PyArg_ParseTuple(args, "O!OOdddndddOOOOOOO", &PyList_Type, &streams, &matrix_o, &ts_o,
                          &every, &warmup, &settled, &context, &min_std, &rel_std, &clip,
                          &out_o[0], &out_o[1], &out_o[2], &out_o[3], &out_o[4], &out_o[5],
                          &out_o[6]))
        return NULL;
    Py_ssize_t k = PyList_GET_SIZE(streams);
    Py_buffer mb, tb, ob[7];
    int got_out = 0, ok = 0;
    Py_ssize_t n_full = 0;
    if (get_buffer(ts_o, &tb, 8, 0, 0, "ts") < 0) return NULL;
    Py_ssize_t m = tb.len / 8;
    if (get_buffer(matrix_o, &mb, 8, m * k, 0, "matrix") < 0) {
        PyBuffer_Release(&tb);
        return NULL;
    }
    const Py_ssize_t item[7] = {8, 8, 1, 1, 1, 1, 4};
    const Py_ssize_t cells[7] = {m * k, 2 * m * k, m * k, m * k, m * k, m * k, 0};
    const char *names[7] = {"surprise", "edges", "due", "full", "learning", "young", "scaled"};
    for (; got_out < 7; got_out++)
        if (get_buffer(out_o[got_out], &ob[got_out], item[got_out], cells[got_out], 1,
                       names[got_out]) < 0)
            goto done;
    const double *x = mb.buf, *t = tb.buf;
    double *surprise_out = ob[0].buf, *edges_out = ob[1].buf;
    uint8_t *due_out = ob[2].buf, *full_out = ob[3].buf, *learning_out = ob[4].buf;
    uint8_t *young_out = ob[5].buf;
    float *scaled = ob[6].buf;
    Py_ssize_t scaled_rows = -1;  /* known once the window width is */
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *st = PyList_GET_ITEM(streams, j);
        if (!PyTuple_Check(st) || PyTuple_GET_SIZE(st) != 4) {
            PyErr_SetString(PyExc_ValueError, "a stream's state must be a tuple of 4 items");
            goto done;
        }
        Py_buffer wb, meta_b, vb[8], sb[8];
        int got_v = 0, got_s = 0, fine = 0;
        history values, spreads;
        if (get_buffer(PyTuple_GET_ITEM(st, 0), &wb, 8, 1, 1, "window") < 0) goto done;
        if (get_buffer(PyTuple_GET_ITEM(st, 1), &meta_b, 8, S_META_LEN, 1, "meta") < 0) {
            PyBuffer_Release(&wb);
            goto done;
        }
        if (open_history(PyTuple_GET_ITEM(st, 2), &values, vb, &got_v) < 0) goto stream_done;
        if (open_history(PyTuple_GET_ITEM(st, 3), &spreads, sb, &got_s) < 0) goto stream_done;
        Py_ssize_t w = wb.len / 8;
        if (scaled_rows < 0) scaled_rows = ob[6].len / (4 * w);
        double *window = wb.buf, *meta = meta_b.buf;
        for (Py_ssize_t i = 0; i < m; i++) {
            Py_ssize_t c = i * k + j;
            double v = x[c];
            if (isnan(v)) continue;
            double now = t[i];
            uint8_t take = next_entry(&meta[S_ENTRY_T], now, every);  /* the entry grid */
            due_out[c] = take;
            if (meta[S_N] > 0.0) {  /* the stream's smallest step so far, this one's too */
                double step = fabs(v - window[w - 1]);
                if (step > 0.0 && !(step >= meta[S_STEP])) meta[S_STEP] = step;
            }
            double slack = isnan(meta[S_STEP]) ? 0.0 : meta[S_STEP];
            feed_one(&values, &v, &take, 1, 0, 1, &surprise_out[c], &edges_out[2 * c], &slack);
            /* the window */
            memmove(window, window + 1, (size_t)(w - 1) * sizeof(double));
            window[w - 1] = v;
            meta[S_N] += 1.0;
            if (meta[S_HAVE] < (double)w) meta[S_HAVE] += 1.0;
            if (isnan(meta[S_FIRST_T])) meta[S_FIRST_T] = now;
            meta[S_LAST_T] = now;
            learning_out[c] = now - meta[S_FIRST_T] < warmup;
            young_out[c] = now - meta[S_FIRST_T] < settled;
            full_out[c] = meta[S_HAVE] >= (double)w;
            if (!full_out[c]) continue;
            /* the window's spread, and the window scaled for the model */
            double d[w > 0 ? w : 1];
            double mean = (0.0 + pairwise_sum(window, w)) / (double)w;
            for (Py_ssize_t q = 0; q < w; q++) {
                double e = window[q] - mean;
                d[q] = e * e;
            }
            double sd = sqrt((0.0 + pairwise_sum(d, w)) / (double)w);
            double spread = (double)(float)log(sd + 1e-9 + 1e-6 * fabs(mean));
            double spread_s;
            feed_one(&spreads, &spread, &take, 1, 0, 1, &spread_s, NULL, NULL);
            surprise_out[c] = py_max(surprise_out[c], spread_s);
            if (!isnan(min_std)) {
                if (n_full >= scaled_rows) {
                    PyErr_SetString(PyExc_ValueError, "scaled: too few rows");
                    goto stream_done;
                }
                if (context < 1 || context > w) {
                    PyErr_SetString(PyExc_ValueError, "context: outside the window");
                    goto stream_done;
                }
                double c_mean = (0.0 + pairwise_sum(window, context)) / (double)context;
                for (Py_ssize_t q = 0; q < context; q++) {
                    double e = window[q] - c_mean;
                    d[q] = e * e;
                }
                double c_sd = sqrt((0.0 + pairwise_sum(d, context)) / (double)context);
                double scale = py_max(py_max(c_sd, min_std), rel_std * fabs(c_mean));
                float *row = scaled + n_full * w;
                for (Py_ssize_t q = 0; q < w; q++) {
                    double z = (window[q] - c_mean) / scale;
                    row[q] = (float)(z > clip ? clip : (z < -clip ? -clip : z));
                }
            }
            n_full++;
        }
        fine = 1;
    stream_done:
        close_history(vb, got_v);
        close_history(sb, got_s);
        PyBuffer_Release(&wb);
        PyBuffer_Release(&meta_b);
        if (!fine) goto done;
    }
    ok = 1;
done:
    for (int q = 0; q < got_out; q++) PyBuffer_Release(&ob[q]);
    PyBuffer_Release(&mb);
    PyBuffer_Release(&tb);
    if (!ok) return NULL;
    return PyLong_FromSsize_t(n_full);
}

/* A stream's memory of its own shapes: f64 recent[width] (its last values on the memory's
 * grid, oldest first, the valid ones at the end), f64 bank[size * width] (the windows it
 * keeps, the first ``held`` of them), f64 sums[size] (each kept window's values summed in
 * order) and f64 bank_meta[6]. */
enum { B_HELD, B_OLDEST, B_LO, B_HI, B_ENTRY_T, B_HAVE, B_META_LEN };
#define MAX_NOVELTY 1e6

/* memory(streams, matrix, ts, width, vigilance, every, warmup, novelty) -> the number of
 * novelties written (at least 0; the others are -1). Each value of
 * ``matrix[m, k]`` (NaN: none) through its stream's memory, column by column in time order.
 * The memory sees a stream on its own grid of ``every`` (a value is a step when the grid
 * takes it, novelty.py's ``next_entry``; the others pass it by), so its windows span the same
 * time whatever the sample interval. At a step: the window of the stream's last ``width``
 * steps, in units of the range of every step before, against each window the memory holds
 * (the mean absolute difference); the nearest one's distance (at most MAX_NOVELTY, kept as a
 * float32) is the window's novelty, ranked (upper tail) in the stream's novelty history, and
 * an entry in it: the surprise into ``novelty[m, k]`` once the stream has ``warmup`` seconds
 * behind it (-1 before, until it has a range and a memory, between steps and where it has no
 * value). The window joins the memory when its distance is more than ``vigilance`` (or the
 * memory is empty), in place of the oldest once full. A stream is (bank_meta, recent, meta,
 * bank, sums, novelty history state); of ``meta`` (``columns``') only the first time is read.
 *
 * The search passes over a kept window whose sum differs from the window's by more than the
 * smallest difference so far (the sum of differences is at least the difference of the
 * sums), with room for the sums' rounding: the nearest is the same as comparing them all. */
static PyObject *memory(PyObject *self, PyObject *args) {
    PyObject *streams, *matrix_o, *ts_o, *nov_o;
    Py_ssize_t width;
    double vigilance, every, warmup;
    if (!PyArg_ParseTuple(args, "O!OOndddO", &PyList_Type, &streams, &matrix_o, &ts_o, &width,
                          &vigilance, &every, &warmup, &nov_o))
        return NULL;
    if (width < 1) {
        PyErr_SetString(PyExc_ValueError, "memory: width must be at least 1");
        return NULL;
    }
    Py_ssize_t k = PyList_GET_SIZE(streams);
    Py_buffer mb, tb, nb;
    if (get_buffer(ts_o, &tb, 8, 0, 0, "ts") < 0) return NULL;
    if (get_buffer(matrix_o, &mb, 8, 0, 0, "matrix") < 0) {
        PyBuffer_Release(&tb);
        return NULL;
    }
    if (get_buffer(nov_o, &nb, 8, 0, 1, "novelty") < 0) {
        PyBuffer_Release(&mb);
        PyBuffer_Release(&tb);
        return NULL;
    }
    int ok = 0;
    Py_ssize_t cells = mb.len / 8, m = tb.len / 8, written = 0;
    if (cells != m * k || nb.len != mb.len) {
        PyErr_SetString(PyExc_ValueError, "memory: matrix and novelty are not [m, k]");
        goto done;
    }
    const double *x = mb.buf, *t = tb.buf;
    double *novelty = nb.buf;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *st = PyList_GET_ITEM(streams, j);
        if (!PyTuple_Check(st) || PyTuple_GET_SIZE(st) != 6) {
            PyErr_SetString(PyExc_ValueError, "memory: a stream's state must be a tuple of 6");
            goto done;
        }
        Py_buffer rb, meta_b, bb, sb, bmb, hb[8];
        history h;
        int got = 0, got_h = 0;
        Py_buffer *bufs[5] = {&bmb, &rb, &meta_b, &bb, &sb};
        const Py_ssize_t mins[5] = {B_META_LEN, width, S_META_LEN, width, 1};
        const int writable[5] = {1, 1, 0, 1, 1};
        if (get_buffer(PyTuple_GET_ITEM(st, 0), &bmb, 8, B_META_LEN, 1, "memory") < 0) goto done;
        got = 1;
        /* No step in these rows (a live sample between two): nothing to open or change. */
        const double *bm_peek = bmb.buf;
        int any_step = 0;
        for (Py_ssize_t i = 0; i < m && !any_step; i++) {
            novelty[i * k + j] = -1.0;
            if (!isnan(x[i * k + j])) any_step = is_due(bm_peek[B_ENTRY_T], t[i], every);
        }
        if (!any_step) {
            PyBuffer_Release(&bmb);
            continue;
        }
        for (; got < 5; got++)
            if (get_buffer(PyTuple_GET_ITEM(st, got), bufs[got], 8, mins[got], writable[got],
                           "memory") < 0)
                break;
        if (got == 5 && (rb.len / 8 != width || sb.len / 8 != bb.len / 8 / width)) {
            PyErr_SetString(PyExc_ValueError, "memory: recent or sums do not fit the bank");
            for (int q = 0; q < got; q++) PyBuffer_Release(bufs[q]);
            goto done;
        }
        if (got < 5 || open_history(PyTuple_GET_ITEM(st, 5), &h, hb, &got_h) < 0) {
            close_history(hb, got_h);
            for (int q = 0; q < got; q++) PyBuffer_Release(bufs[q]);
            goto done;
        }
        double *recent = rb.buf, *bank = bb.buf, *sums = sb.buf, *bm = bmb.buf;
        const double *meta = meta_b.buf;
        Py_ssize_t size = bb.len / 8 / width;
        Py_ssize_t have = (Py_ssize_t)bm[B_HAVE];
        Py_ssize_t held = (Py_ssize_t)bm[B_HELD], oldest = (Py_ssize_t)bm[B_OLDEST];
        double lo = bm[B_LO], hi = bm[B_HI], first_t = meta[S_FIRST_T];
        for (Py_ssize_t i = 0; i < m; i++) {
            Py_ssize_t c = i * k + j;
            double v = x[c], now = t[i];
            novelty[c] = -1.0;
            if (isnan(v)) continue;
            if (isnan(first_t)) first_t = now;  /* as ``columns`` will keep it */
            if (!next_entry(&bm[B_ENTRY_T], now, every)) continue;  /* between steps */
            memmove(recent, recent + 1, (size_t)(width - 1) * sizeof(double));
            recent[width - 1] = v;
            if (have < width) have++;
            if (have == width && hi > lo) {
                double total = 0.0;  /* the window's sum, in order (as ``sums`` are kept) */
                for (Py_ssize_t q = 0; q < width; q++) total += recent[q];
                /* The smallest sum of differences, then in units (the scaling keeps the
                 * order); a window whose sum passes the smallest halfway is passed over,
                 * and one whose sum alone is too far (the values' size bounds the sums'
                 * rounding: the bound only passes over windows that cannot be nearer). */
                double least = INFINITY;
                double size_v = py_max(py_max(fabs(lo), fabs(hi)), fabs(v));
                double room = 1e-12 * (double)width * size_v;
                Py_ssize_t half = width / 2;
                for (Py_ssize_t r = 0; r < held; r++) {
                    if (fabs(total - sums[r]) > least * (1.0 + 1e-12) + room) continue;
                    const double *kept = bank + r * width;
                    double sum = 0.0;
                    Py_ssize_t q = 0;
                    for (; q < half; q++) sum += fabs(kept[q] - recent[q]);
                    if (sum > least) continue;
                    for (; q < width; q++) sum += fabs(kept[q] - recent[q]);
                    if (sum < least) least = sum;
                }
                double nearest = held ? least / (double)width / (hi - lo) : NAN;
                if (!isnan(nearest)) {
                    uint8_t take = 1;
                    double kept = (double)(float)py_min(nearest, MAX_NOVELTY), rank;
                    feed_one(&h, &kept, &take, 1, 1, 1, &rank, NULL, NULL);
                    if (now - first_t >= warmup) {
                        novelty[c] = rank + 0.0;
                        written++;
                    }
                }
                if (held == 0 || nearest > vigilance) {
                    Py_ssize_t at = held < size ? held : oldest;
                    memcpy(bank + at * width, recent, (size_t)width * sizeof(double));
                    sums[at] = total;
                    if (held < size)
                        held++;
                    else
                        oldest = (oldest + 1) % size;
                }
            }
            lo = py_min(lo, v);
            hi = py_max(hi, v);
        }
        bm[B_HELD] = (double)held;
        bm[B_OLDEST] = (double)oldest;
        bm[B_LO] = lo;
        bm[B_HI] = hi;
        bm[B_HAVE] = (double)have;
        close_history(hb, got_h);
        for (int q = 0; q < 5; q++) PyBuffer_Release(bufs[q]);
    }
    ok = 1;
done:
    PyBuffer_Release(&mb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&nb);
    if (!ok) return NULL;
    return PyLong_FromSsize_t(written);
}

/* shapes(errors_states, errors, due, full, learning, young, margin, young_margin, surprise,
 * shape): the model's errors of the full windows (in ``columns``' order) ranked in each
 * stream's errors history (upper tail only) into ``shape``; then each cell's surprise is the
 * larger of its own and the shape's, the shape's at most ``margin`` above its own
 * (``young_margin`` where the stream is young); 0 while the stream is learning (and +0.0 for
 * any zero). ``errors_states`` None: no model, only the last step. */
static PyObject *shapes(PyObject *self, PyObject *args) {
    PyObject *states, *err_o, *due_o, *full_o, *learn_o, *young_o, *sur_o, *shape_o;
    double margin, young_margin;
    if (!PyArg_ParseTuple(args, "OOOOOOddOO", &states, &err_o, &due_o, &full_o, &learn_o,
                          &young_o, &margin, &young_margin, &sur_o, &shape_o))
        return NULL;
    int with_model = states != Py_None;
    if (with_model && !PyList_Check(states)) {
        PyErr_SetString(PyExc_TypeError, "errors_states must be a list or None");
        return NULL;
    }
    Py_buffer b[7];
    PyObject *objs[7] = {err_o, due_o, full_o, learn_o, young_o, sur_o, shape_o};
    const Py_ssize_t item[7] = {8, 1, 1, 1, 1, 8, 8};
    const int writable[7] = {0, 0, 0, 0, 0, 1, 1};
    int got = 0, ok = 0;
    for (; got < 7; got++)
        if (get_buffer(objs[got], &b[got], item[got], 0, writable[got], "shapes") < 0) goto done;
    Py_ssize_t cells = b[5].len / 8;
    for (int q = 1; q < 7; q++) {
        if (b[q].len / item[q] != cells) {
            PyErr_SetString(PyExc_ValueError, "shapes: the [m, k] arrays differ in size");
            goto done;
        }
    }
    const double *errors = b[0].buf;
    Py_ssize_t n_errors = b[0].len / 8;
    const uint8_t *due_f = b[1].buf, *full = b[2].buf, *learning = b[3].buf, *young = b[4].buf;
    double *surprise_out = b[5].buf, *shape_out = b[6].buf;
    if (with_model) {
        Py_ssize_t k = PyList_GET_SIZE(states);
        if (k == 0 || cells % k != 0) {
            PyErr_SetString(PyExc_ValueError, "shapes: cells are not [m, k]");
            goto done;
        }
        Py_ssize_t m = cells / k, at = 0;
        for (Py_ssize_t j = 0; j < k; j++) {
            Py_buffer hb[8];
            history h;
            int got_h;
            if (open_history(PyList_GET_ITEM(states, j), &h, hb, &got_h) < 0) {
                close_history(hb, got_h);
                goto done;
            }
            for (Py_ssize_t i = 0; i < m; i++) {
                Py_ssize_t c = i * k + j;
                if (!full[c]) continue;
                if (at >= n_errors) {
                    close_history(hb, got_h);
                    PyErr_SetString(PyExc_ValueError, "shapes: fewer errors than full windows");
                    goto done;
                }
                feed_one(&h, &errors[at], &due_f[c], 1, 1, 1, &shape_out[c], NULL, NULL);
                at++;
            }
            close_history(hb, got_h);
        }
    }
    for (Py_ssize_t c = 0; c < cells; c++) {
        if (learning[c]) {
            surprise_out[c] = shape_out[c] = 0.0;
        } else {
            double own = surprise_out[c], most = young[c] ? young_margin : margin;
            surprise_out[c] = py_max(own, py_min(shape_out[c], own + most)) + 0.0;
            shape_out[c] += 0.0;
        }
    }
    ok = 1;
done:
    for (int q = 0; q < got; q++) PyBuffer_Release(&b[q]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* cells(states, matrix, due, upper_only, fill, out): the numbers ``matrix[m, k]`` (NaN:
 * none) through the k histories, column by column, each in time order (``feed_one``; a
 * cell takes an entry when its row is ``due``): the surprise of each into ``out[m, k]``,
 * -1 where there is no number. A source's residuals cost one call, whatever their layout. */
static PyObject *cells(PyObject *self, PyObject *args) {
    PyObject *states, *matrix_o, *due_o, *out_o;
    int upper_only, fill;
    if (!PyArg_ParseTuple(args, "O!OOppO", &PyList_Type, &states, &matrix_o, &due_o,
                          &upper_only, &fill, &out_o))
        return NULL;
    Py_ssize_t k = PyList_GET_SIZE(states);
    Py_buffer mx, dv, ov;
    int have_m = 0, have_d = 0, have_o = 0, ok = 0;
    if (get_buffer(matrix_o, &mx, 8, 0, 0, "matrix") < 0) goto done;
    have_m = 1;
    Py_ssize_t count = mx.len / 8;
    if (k == 0 ? count != 0 : count % k != 0) {
        PyErr_SetString(PyExc_ValueError, "matrix: not k columns");
        goto done;
    }
    Py_ssize_t m = k == 0 ? 0 : count / k;
    if (get_buffer(due_o, &dv, 1, m, 0, "due") < 0) goto done;
    have_d = 1;
    if (get_buffer(out_o, &ov, 8, count, 1, "out") < 0) goto done;
    have_o = 1;
    const double *x = mx.buf;
    const uint8_t *d = dv.buf;
    double *o = ov.buf;
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_buffer b[8];
        history h;
        int got;
        if (open_history(PyList_GET_ITEM(states, j), &h, b, &got) < 0) {
            close_history(b, got);
            goto done;
        }
        for (Py_ssize_t i = 0; i < m; i++) {
            Py_ssize_t c = i * k + j;
            if (isnan(x[c])) {
                o[c] = -1.0;
                continue;
            }
            feed_one(&h, &x[c], &d[i], 1, upper_only, fill, &o[c], NULL, NULL);
        }
        close_history(b, got);
    }
    ok = 1;
done:
    if (have_m) PyBuffer_Release(&mx);
    if (have_d) PyBuffer_Release(&dv);
    if (have_o) PyBuffer_Release(&ov);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"feed", feed, METH_VARARGS, "Rank numbers against histories and add them to them."},
    {"feed_number", feed_number, METH_VARARGS, "Rank one number against one history and add it."},
    {"due", due, METH_VARARGS, "Which sample times take a history entry."},
    {"columns", columns, METH_VARARGS, "A source's values through its streams' windows and histories."},
    {"memory", memory, METH_VARARGS, "A source's values through its streams' memories of shapes."},
    {"shapes", shapes, METH_VARARGS, "The model's errors through the errors histories."},
    {"cells", cells, METH_VARARGS, "A matrix of numbers through one history per column."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ranks", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ranks(void) { return PyModule_Create(&module); }
