/*
 * Compiled versions of the reconciliation's innermost loops.
 *
 * Each function here does exactly what a pure-Python function of the package
 * does (named in its docstring), which stays the reference: the package uses
 * the Python version when this module is not built, and the tests compare the
 * two on generated inputs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')

/* The longest token kept: a reading longer than an RRN's 13 digits is dropped
 * (and a time is never longer than 8 characters once its colons are gone). */
#define KEEP_MAX 13

/* One leftmost match of  \d\d:+ ?\d\d:+ ?\d\d  at ``i``; its end, or -1. */
static Py_ssize_t
match_time(const unsigned char *s, Py_ssize_t i, Py_ssize_t n)
{
    int pair;
    for (pair = 0; pair < 2; pair++) {
        if (i + 1 >= n || !IS_DIGIT(s[i]) || !IS_DIGIT(s[i + 1]))
            return -1;
        i += 2;
        if (i >= n || s[i] != ':')
            return -1;
        while (i < n && s[i] == ':')
            i++;
        if (i < n && s[i] == ' ')
            i++;
    }
    if (i + 1 >= n || !IS_DIGIT(s[i]) || !IS_DIGIT(s[i + 1]))
        return -1;
    return i + 2;
}

/* One match of  \d(?:\d| \d){4,}\*?  at ``i``; its end, or -1. The digits
 * (spaces left out) go to ``digits`` (up to KEEP_MAX + 1 of them), their number
 * to ``*count`` and whether the match ends with "*" to ``*star``. */
static Py_ssize_t
match_number(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, char *digits,
             Py_ssize_t *count, int *star)
{
    Py_ssize_t found = 0, repeats = 0;
    if (i >= n || !IS_DIGIT(s[i]))
        return -1;
    digits[found++] = (char)s[i++];
    for (;;) {
        unsigned char c;
        if (i < n && IS_DIGIT(s[i])) {
            c = s[i];
            i += 1;
        }
        else if (i + 1 < n && s[i] == ' ' && IS_DIGIT(s[i + 1])) {
            c = s[i + 1];
            i += 2;
        }
        else {
            break;
        }
        if (found <= KEEP_MAX)
            digits[found] = (char)c;
        found++;
        repeats++;
    }
    if (repeats < 4)
        return -1;
    *star = i < n && s[i] == '*';
    if (*star)
        i++;
    *count = found;
    return i;
}

static int
append_ascii(PyObject *list, const char *text, Py_ssize_t size)
{
    PyObject *item = PyUnicode_New(size, 127);
    int failed;
    if (item == NULL)
        return -1;
    memcpy(PyUnicode_DATA(item), text, (size_t)size);
    failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed;
}

/* The readings of s[start:end]: (numbers, rrns, times) as three tuples. */
static PyObject *
block_readings(const unsigned char *s, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *lists[3] = {NULL, NULL, NULL}; /* numbers, rrns, times */
    PyObject *result = NULL;
    char digits[KEEP_MAX + 2];
    Py_ssize_t i = start;
    int k;

    for (k = 0; k < 3; k++) {
        lists[k] = PyList_New(0);
        if (lists[k] == NULL)
            goto done;
    }
    while (i < end) {
        Py_ssize_t stop, count;
        int star;
        if (!IS_DIGIT(s[i])) {
            i++;
            continue;
        }
        stop = match_time(s, i, end);
        if (stop >= 0) {
            char compact[8];
            Py_ssize_t size = 0, j;
            for (j = i; j < stop; j++)
                if (IS_DIGIT(s[j]))
                    compact[size++] = (char)s[j];
            if (append_ascii(lists[2], compact, size) < 0)
                goto done;
            i = stop;
            continue;
        }
        stop = match_number(s, i, end, digits, &count, &star);
        if (stop < 0) {
            i++;
            continue;
        }
        if (!star) {
            if (count <= 7) {
                if (append_ascii(lists[0], digits, count) < 0)
                    goto done;
            }
            else if (count >= 11 && count <= 13) {
                if (append_ascii(lists[1], digits, count) < 0)
                    goto done;
            }
        }
        i = stop;
    }
    result = PyTuple_New(3);
    if (result == NULL)
        goto done;
    for (k = 0; k < 3; k++) {
        PyObject *items = PyList_AsTuple(lists[k]);
        if (items == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyTuple_SET_ITEM(result, k, items);
    }
done:
    for (k = 0; k < 3; k++)
        Py_XDECREF(lists[k]);
    return result;
}

PyDoc_STRVAR(paper_readings_doc,
"paper_readings(normal, spans, /)\n--\n\n"
"reconciliation.paper.candidates(normal[start:end]) for every span of\n"
"``spans``, a list of (first line, last line, start, end) tuples.");

static PyObject *
paper_readings(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    PyObject *spans, *result = NULL;
    Py_ssize_t count, index;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "paper_readings takes two arguments");
        return NULL;
    }
    if (!PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "spans must be a list");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    spans = args[1];
    count = PyList_GET_SIZE(spans);
    result = PyList_New(count);
    if (result == NULL)
        goto done;
    for (index = 0; index < count; index++) {
        PyObject *span = PyList_GET_ITEM(spans, index), *found;
        Py_ssize_t start, end;
        if (!PyTuple_Check(span) || PyTuple_GET_SIZE(span) != 4) {
            PyErr_SetString(PyExc_TypeError, "a span must be a tuple of four integers");
            goto fail;
        }
        start = PyLong_AsSsize_t(PyTuple_GET_ITEM(span, 2));
        end = PyLong_AsSsize_t(PyTuple_GET_ITEM(span, 3));
        if ((start == -1 || end == -1) && PyErr_Occurred())
            goto fail;
        if (start < 0 || end > view.len || start > end) {
            PyErr_SetString(PyExc_ValueError, "a span lies outside the text");
            goto fail;
        }
        found = block_readings((const unsigned char *)view.buf, start, end);
        if (found == NULL)
            goto fail;
        PyList_SET_ITEM(result, index, found);
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(iso_records_doc,
"iso_records(buffer, /)\n--\n\n"
"Split a switch log of 2-byte big-endian length-prefixed ISO 8583 records, as\n"
"reconciliation.host_iso.parse_iso_frame's loop does. Returns (texts, indexes,\n"
"offsets, odd, count, stop): the ASCII records as str with their index (from 0)\n"
"and offset, the other records as (index, offset, bytes), the number of records\n"
"met (the last one possibly unusable) and the offset where the split stopped\n"
"(len(buffer) when every record was whole).");

static PyObject *
iso_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    PyObject *texts = NULL, *indexes = NULL, *offsets = NULL, *odd = NULL, *result = NULL;
    const unsigned char *s;
    Py_ssize_t length, offset = 0, count = 0;

    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "iso_records takes one argument");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    s = (const unsigned char *)view.buf;
    length = view.len;
    texts = PyList_New(0);
    indexes = PyList_New(0);
    offsets = PyList_New(0);
    odd = PyList_New(0);
    if (texts == NULL || indexes == NULL || offsets == NULL || odd == NULL)
        goto done;
    while (offset < length) {
        Py_ssize_t size, end, j;
        int ascii = 1;
        PyObject *item, *where, *index;
        count++;
        if (offset + 2 > length)
            break;
        size = (Py_ssize_t)s[offset] << 8 | s[offset + 1];
        end = offset + 2 + size;
        if (size == 0 || end > length)
            break;
        for (j = offset + 2; j < end; j++) {
            if (s[j] & 0x80) {
                ascii = 0;
                break;
            }
        }
        index = PyLong_FromSsize_t(count - 1);
        where = PyLong_FromSsize_t(offset);
        if (index == NULL || where == NULL) {
            Py_XDECREF(index);
            Py_XDECREF(where);
            goto done;
        }
        if (ascii) {
            item = PyUnicode_New(size, 127);
            if (item != NULL) {
                memcpy(PyUnicode_DATA(item), s + offset + 2, (size_t)size);
                if (PyList_Append(texts, item) < 0 || PyList_Append(indexes, index) < 0
                    || PyList_Append(offsets, where) < 0)
                    Py_CLEAR(item);
            }
        }
        else {
            PyObject *message = PyBytes_FromStringAndSize((const char *)s + offset + 2, size);
            item = message == NULL ? NULL : PyTuple_Pack(3, index, where, message);
            Py_XDECREF(message);
            if (item != NULL && PyList_Append(odd, item) < 0)
                Py_CLEAR(item);
        }
        Py_DECREF(index);
        Py_DECREF(where);
        if (item == NULL)
            goto done;
        Py_DECREF(item);
        offset = end;
    }
    result = Py_BuildValue("(OOOOnn)", texts, indexes, offsets, odd, count, offset);
done:
    Py_XDECREF(texts);
    Py_XDECREF(indexes);
    Py_XDECREF(offsets);
    Py_XDECREF(odd);
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(iso_walk_doc,
"iso_walk(buffer, offset, target, /)\n--\n\n"
"Walk length-prefixed records from ``offset`` until one ends at or past\n"
"``target``, a record's length prefix lies beyond the buffer, or a record\n"
"declares zero bytes. Returns (offset, records walked, zero length met), as\n"
"reconciliation.host_iso._walk does.");

static PyObject *
iso_walk(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    const unsigned char *s;
    Py_ssize_t offset, target, walked = 0;
    int zero = 0;
    PyObject *result;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "iso_walk takes three arguments");
        return NULL;
    }
    offset = PyLong_AsSsize_t(args[1]);
    target = PyLong_AsSsize_t(args[2]);
    if ((offset == -1 || target == -1) && PyErr_Occurred())
        return NULL;
    if (offset < 0) {
        PyErr_SetString(PyExc_ValueError, "offset must not be negative");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    s = (const unsigned char *)view.buf;
    while (offset < target && offset + 2 <= view.len) {
        Py_ssize_t size = (Py_ssize_t)s[offset] << 8 | s[offset + 1];
        if (size == 0) {
            zero = 1;
            break;
        }
        offset += 2 + size;
        walked++;
    }
    PyBuffer_Release(&view);
    result = Py_BuildValue("(nnO)", offset, walked, zero ? Py_True : Py_False);
    return result;
}

/* --- paper anchors ---------------------------------------------------------------- */

typedef struct {
    PyObject *index; /* borrowed from the dictionaries */
    long score;
} Score;

typedef struct {
    Score *items;
    Py_ssize_t size, capacity;
} Scores;

static int
scores_add(Scores *scores, PyObject *index, long score)
{
    Py_ssize_t i;
    for (i = 0; i < scores->size; i++) {
        int same = PyObject_RichCompareBool(scores->items[i].index, index, Py_EQ);
        if (same < 0)
            return -1;
        if (same) {
            scores->items[i].score += score;
            return 0;
        }
    }
    if (scores->size == scores->capacity) {
        Py_ssize_t capacity = scores->capacity ? scores->capacity * 2 : 8;
        Score *items = PyMem_Realloc(scores->items, (size_t)capacity * sizeof(Score));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        scores->items = items;
        scores->capacity = capacity;
    }
    scores->items[scores->size].index = index;
    scores->items[scores->size].score = score;
    scores->size++;
    return 0;
}

/* lookup[token] (borrowed) or NULL; -1 on error */
static int
lookup(PyObject *mapping, PyObject *token, PyObject **found)
{
    *found = PyDict_GetItemWithError(mapping, token);
    return (*found == NULL && PyErr_Occurred()) ? -1 : 0;
}

static int
append_pair(PyObject *pairs, PyObject *position, PyObject *index, long score)
{
    PyObject *value = PyLong_FromLong(score), *pair;
    int failed;
    if (value == NULL)
        return -1;
    pair = PyTuple_Pack(3, position, index, value);
    Py_DECREF(value);
    if (pair == NULL)
        return -1;
    failed = PyList_Append(pairs, pair);
    Py_DECREF(pair);
    return failed;
}

/* whether compact[index] is one of ``times``; -1 on error */
static int
time_agrees(PyObject *compact, PyObject *index, PyObject *times)
{
    Py_ssize_t at = PyLong_AsSsize_t(index);
    if (at == -1 && PyErr_Occurred())
        return -1;
    if (at < 0 || at >= PyList_GET_SIZE(compact)) {
        PyErr_SetString(PyExc_IndexError, "an expected index beyond the compact times");
        return -1;
    }
    return PySequence_Contains(times, PyList_GET_ITEM(compact, at));
}

PyDoc_STRVAR(paper_exact_pairs_doc,
"paper_exact_pairs(blocks, by_stan, by_rrn, compact, /)\n--\n\n"
"The scored (block, expected index, score) anchors of\n"
"reconciliation.paper_match._exact_pairs, sorted.");

static PyObject *
paper_exact_pairs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *blocks, *by_stan, *by_rrn, *compact, *pairs;
    Scores scores = {NULL, 0, 0};
    Py_ssize_t b, count;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "paper_exact_pairs takes four arguments");
        return NULL;
    }
    blocks = args[0];
    by_stan = args[1];
    by_rrn = args[2];
    compact = args[3];
    if (!PyList_Check(blocks) || !PyDict_Check(by_stan) || !PyDict_Check(by_rrn)
        || !PyList_Check(compact)) {
        PyErr_SetString(PyExc_TypeError,
                        "expected a list of blocks, two dicts and a list of times");
        return NULL;
    }
    pairs = PyList_New(0);
    if (pairs == NULL)
        return NULL;
    count = PyList_GET_SIZE(blocks);
    for (b = 0; b < count; b++) {
        PyObject *block = PyList_GET_ITEM(blocks, b), *stans, *rrns, *times, *position;
        Py_ssize_t t, kept, best;
        if (!PyTuple_Check(block) || PyTuple_GET_SIZE(block) != 8) {
            PyErr_SetString(PyExc_TypeError, "a block must be a PaperBlock");
            goto fail;
        }
        position = PyTuple_GET_ITEM(block, 0);
        stans = PyTuple_GET_ITEM(block, 5);
        rrns = PyTuple_GET_ITEM(block, 6);
        times = PyTuple_GET_ITEM(block, 7);
        if (!PyTuple_Check(stans) || !PyTuple_Check(rrns) || !PyTuple_Check(times)) {
            PyErr_SetString(PyExc_TypeError, "a block's readings must be tuples");
            goto fail;
        }
        scores.size = 0;
        for (t = 0; t < PyTuple_GET_SIZE(stans); t++) {
            PyObject *found;
            if (lookup(by_stan, PyTuple_GET_ITEM(stans, t), &found) < 0)
                goto fail;
            if (found != NULL && scores_add(&scores, found, 2) < 0)
                goto fail;
        }
        for (t = 0; t < PyTuple_GET_SIZE(rrns); t++) {
            PyObject *token = PyTuple_GET_ITEM(rrns, t), *found;
            if (lookup(by_rrn, token, &found) < 0)
                goto fail;
            if (found != NULL) {
                if (scores_add(&scores, found, 3) < 0)
                    goto fail;
            }
            else if (PyUnicode_Check(token) && PyUnicode_GET_LENGTH(token) == 12) {
                PyObject *tail = PyUnicode_Substring(token, 6, 12);
                int failed;
                if (tail == NULL)
                    goto fail;
                failed = lookup(by_stan, tail, &found);
                Py_DECREF(tail);
                if (failed < 0)
                    goto fail;
                if (found != NULL && scores_add(&scores, found, 1) < 0)
                    goto fail;
            }
        }
        if (scores.size == 0)
            continue;
        /* each score with the time's point; then those of at least 2 */
        for (t = 0; t < scores.size; t++) {
            int agrees = time_agrees(compact, scores.items[t].index, times);
            if (agrees < 0)
                goto fail;
            scores.items[t].score += agrees;
        }
        kept = 0;
        best = -1;
        for (t = 0; t < scores.size; t++) {
            if (scores.items[t].score >= 2) {
                scores.items[kept++] = scores.items[t];
            }
        }
        if (kept > 1 && PyTuple_GET_SIZE(times) < 2) {
            /* one receipt's worth of text: only the best (score, then index) */
            best = 0;
            for (t = 1; t < kept; t++) {
                int greater;
                if (scores.items[t].score != scores.items[best].score) {
                    if (scores.items[t].score > scores.items[best].score)
                        best = t;
                    continue;
                }
                greater = PyObject_RichCompareBool(scores.items[t].index,
                                                   scores.items[best].index, Py_GT);
                if (greater < 0)
                    goto fail;
                if (greater)
                    best = t;
            }
            scores.items[0] = scores.items[best];
            kept = 1;
        }
        for (t = 0; t < kept; t++) {
            if (append_pair(pairs, position, scores.items[t].index, scores.items[t].score) < 0)
                goto fail;
        }
    }
    PyMem_Free(scores.items);
    if (PyList_Sort(pairs) < 0) {
        Py_DECREF(pairs);
        return NULL;
    }
    return pairs;
fail:
    PyMem_Free(scores.items);
    Py_DECREF(pairs);
    return NULL;
}

static PyMethodDef methods[] = {
    {"paper_readings", (PyCFunction)(void (*)(void))paper_readings, METH_FASTCALL,
     paper_readings_doc},
    {"iso_records", (PyCFunction)(void (*)(void))iso_records, METH_FASTCALL, iso_records_doc},
    {"iso_walk", (PyCFunction)(void (*)(void))iso_walk, METH_FASTCALL, iso_walk_doc},
    {"paper_exact_pairs", (PyCFunction)(void (*)(void))paper_exact_pairs, METH_FASTCALL,
     paper_exact_pairs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "reconciliation._speedups",
    "Compiled versions of the reconciliation's innermost loops.",
    0,
    methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
