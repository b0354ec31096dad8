/*
 * Compiled versions of the reconciliation's innermost loops.
 *
 * Each function here does exactly what a pure-Python function of the package
 * does (named in its docstring), which stays the reference: the package uses
 * the Python version when this module is not built, and the tests compare the
 * two on generated inputs.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* memmem */
#include <Python.h>
#include <string.h>

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

/* --- EJ transaction records ------------------------------------------------------- */

/* Strings the records share, made once. */
static PyObject *s_withdrawal, *s_balance, *s_empty, *s_to, *s_00, *s_power, *s_retracted,
    *s_short, *s_none, *s_taken, *no_notes, *one_int;

static int
init_strings(void)
{
#define INTERN(var, text)                             \
    do {                                              \
        var = PyUnicode_InternFromString(text);       \
        if (var == NULL)                              \
            return -1;                                \
    } while (0)
    INTERN(s_withdrawal, "withdrawal");
    INTERN(s_balance, "balance");
    INTERN(s_empty, "");
    INTERN(s_to, "TO");
    INTERN(s_00, "00");
    INTERN(s_power, "power");
    INTERN(s_retracted, "retracted");
    INTERN(s_short, "short");
    INTERN(s_none, "none");
    INTERN(s_taken, "taken");
#undef INTERN
    no_notes = Py_BuildValue("(iiii)", 0, 0, 0, 0);
    one_int = PyLong_FromLong(1); /* line + lines_in - 1 is the last line */
    return no_notes == NULL || one_int == NULL ? -1 : 0;
}

/* bytes -> str (ASCII; the patterns admit nothing else in these groups) */
static PyObject *
text_of(PyObject *raw)
{
    return PyUnicode_DecodeLatin1(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), NULL);
}

/* the integer written by ``size`` digits at ``digits`` */
static PyObject *
integer_of(const char *digits, Py_ssize_t size)
{
    if (size <= 18) {
        long long value = 0;
        Py_ssize_t i;
        for (i = 0; i < size; i++)
            value = value * 10 + (digits[i] - '0');
        return PyLong_FromLongLong(value);
    }
    else {
        PyObject *text = PyUnicode_DecodeLatin1(digits, size, NULL), *value;
        if (text == NULL)
            return NULL;
        value = PyLong_FromUnicodeObject(text, 10);
        Py_DECREF(text);
        return value;
    }
}

/* an amount ``\d+\.\d\d`` (or None, or ``fallback`` digits) as minor units */
static PyObject *
amount_of(PyObject *raw)
{
    char digits[64];
    const char *text;
    Py_ssize_t size, i, kept = 0;
    if (raw == Py_None)
        return PyLong_FromLong(0);
    text = PyBytes_AS_STRING(raw);
    size = PyBytes_GET_SIZE(raw);
    if (size >= (Py_ssize_t)sizeof(digits)) {
        /* longer than any amount: as Python would, without the point */
        PyObject *compact = PyObject_CallMethod(raw, "replace", "yy", ".", ""), *value;
        if (compact == NULL)
            return NULL;
        value = integer_of(PyBytes_AS_STRING(compact), PyBytes_GET_SIZE(compact));
        Py_DECREF(compact);
        return value;
    }
    for (i = 0; i < size; i++)
        if (text[i] != '.')
            digits[kept++] = text[i];
    return integer_of(digits, kept);
}

/* four counts ``\d+,\d+,\d+,\d+`` at ``text`` (exactly, up to ``end``) as a tuple */
static PyObject *
notes_of(const char *text, const char *end)
{
    PyObject *values[4] = {NULL, NULL, NULL, NULL}, *notes;
    int k;
    for (k = 0; k < 4; k++) {
        const char *stop = text;
        while (stop < end && *stop >= '0' && *stop <= '9')
            stop++;
        if (stop == text || (k < 3 && (stop >= end || *stop != ',')) || (k == 3 && stop != end)) {
            PyErr_SetString(PyExc_ValueError, "expected four note counts");
            goto fail;
        }
        values[k] = integer_of(text, stop - text);
        if (values[k] == NULL)
            goto fail;
        text = stop + 1;
    }
    notes = PyTuple_Pack(4, values[0], values[1], values[2], values[3]);
    for (k = 0; k < 4; k++)
        Py_DECREF(values[k]);
    return notes;
fail:
    for (k = 0; k < 4; k++)
        Py_XDECREF(values[k]);
    return NULL;
}

static PyObject *
notes_csv(PyObject *raw)
{
    if (raw == Py_None) {
        Py_INCREF(no_notes);
        return no_notes;
    }
    return notes_of(PyBytes_AS_STRING(raw), PyBytes_AS_STRING(raw) + PyBytes_GET_SIZE(raw));
}

static int
contains(PyObject *raw, const char *needle)
{
    return raw != Py_None
           && memmem(PyBytes_AS_STRING(raw), (size_t)PyBytes_GET_SIZE(raw), needle,
                     strlen(needle)) != NULL;
}

/* adds to ``counts`` the four note counts ``a,b,c,d`` after each ``prefix`` in the text */
static int
add_counts(long long counts[4], const char *text, Py_ssize_t size, const char *prefix)
{
    /* 1 when a count of 18 digits or more was met: left to the Python version */
    const char *at = text, *end = text + size;
    size_t length = strlen(prefix);
    while ((at = memmem(at, (size_t)(end - at), prefix, length)) != NULL) {
        const char *p = at + length;
        long long values[4] = {0, 0, 0, 0};
        int k, good = 1;
        for (k = 0; k < 4 && good; k++) {
            const char *start = p;
            while (p < end && *p >= '0' && *p <= '9') {
                values[k] = values[k] * 10 + (*p - '0');
                p++;
            }
            if (p - start > 17)
                return 1;
            if (p == start)
                good = 0;
            else if (k < 3) {
                if (p < end && *p == ',')
                    p++;
                else
                    good = 0;
            }
        }
        if (good)
            for (k = 0; k < 4; k++)
                counts[k] += values[k];
        at += length;
    }
    return 0;
}

static PyObject *
counts_tuple(long long counts[4])
{
    return Py_BuildValue("(LLLL)", counts[0], counts[1], counts[2], counts[3]);
}

/* the groups' indexes a dialect's record needs, passed by the dialect module */
enum { G_STAN, G_RRN, G_TIME, G_CARD, G_TRN, G_RC, G_OUT, G_RETR, G_COUNT_COMMON };
enum { N_SEQ = G_COUNT_COMMON, N_AUTH, N_REQ, N_D1, N_REJ, N_ST, N_COUNT };
enum { P_NOREPLY = G_COUNT_COMMON, P_AMOUNT, P_RAMOUNT, P_NOTES, P_COUNT };

static int
read_indexes(PyObject *indexes, Py_ssize_t *into, Py_ssize_t count, Py_ssize_t groups)
{
    Py_ssize_t k;
    if (!PyTuple_Check(indexes) || PyTuple_GET_SIZE(indexes) != count) {
        PyErr_Format(PyExc_TypeError, "expected a tuple of %zd group indexes", count);
        return -1;
    }
    for (k = 0; k < count; k++) {
        into[k] = PyLong_AsSsize_t(PyTuple_GET_ITEM(indexes, k));
        if (into[k] == -1 && PyErr_Occurred())
            return -1;
        if (into[k] < 0 || into[k] >= groups) {
            PyErr_SetString(PyExc_IndexError, "a group index beyond the match's groups");
            return -1;
        }
    }
    return 0;
}

/* the EjTransaction ``cls`` (a tuple type) with these 18 fields, as tuple.__new__
 * makes an instance of a subclass; steals the references */
static PyObject *
record(PyTypeObject *cls, PyObject **fields)
{
    PyObject *made = NULL;
    int k;
    for (k = 0; k < 18; k++)
        if (fields[k] == NULL)
            goto done;
    made = cls->tp_alloc(cls, 18);
    if (made == NULL)
        goto done;
    for (k = 0; k < 18; k++) {
        PyTuple_SET_ITEM(made, k, fields[k]);
        fields[k] = NULL;
    }
done:
    for (k = 0; k < 18; k++)
        Py_XDECREF(fields[k]);
    return made;
}

static int
bytes_groups(PyObject *g, const Py_ssize_t *index, Py_ssize_t count)
{
    Py_ssize_t k;
    for (k = 0; k < count; k++) {
        PyObject *value = PyTuple_GET_ITEM(g, index[k]);
        if (value != Py_None && !PyBytes_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "the match's groups must be bytes");
            return -1;
        }
    }
    return 0;
}

static int
record_arguments(PyObject *const *args, Py_ssize_t nargs, const char *name, Py_ssize_t count,
                 Py_ssize_t *index, PyTypeObject **cls, PyObject **g,
                 PyObject *const **tail)
{
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError,
                     "%s takes (indexes, cls, groups, start, end, line, lines_in)", name);
        return -1;
    }
    if (!PyType_Check(args[1]) || !PyType_IsSubtype((PyTypeObject *)args[1], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a tuple type");
        return -1;
    }
    if (!PyTuple_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "groups must be a tuple");
        return -1;
    }
    *cls = (PyTypeObject *)args[1];
    *g = args[2];
    if (read_indexes(args[0], index, count, PyTuple_GET_SIZE(*g)) < 0)
        return -1;
    if (bytes_groups(*g, index, count) < 0)
        return -1;
    *tail = args; /* start, end, line, lines_in follow */
    return 0;
}

/* start, end, line, last line: the record's last four fields */
static int
position_fields(PyObject *const *args, PyObject **fields)
{
    PyObject *last, *one;
    Py_INCREF(args[3]);
    fields[14] = args[3];
    Py_INCREF(args[4]);
    fields[15] = args[4];
    Py_INCREF(args[5]);
    fields[16] = args[5];
    one = PyNumber_Add(args[5], args[6]);
    if (one == NULL)
        return -1;
    last = PyNumber_Subtract(one, one_int);
    Py_DECREF(one);
    fields[17] = last;
    return last == NULL ? -1 : 0;
}

static PyObject *
trn_type(PyObject *raw)
{
    PyObject *type = (PyBytes_GET_SIZE(raw) > 0 && PyBytes_AS_STRING(raw)[0] == 'C')
                         ? s_withdrawal
                         : s_balance;
    Py_INCREF(type);
    return type;
}

#define G(i) PyTuple_GET_ITEM(g, index[i])

PyDoc_STRVAR(ndc_transaction_doc,
"ndc_transaction(indexes, cls, groups, start, end, line, lines_in, /)\n--\n\n"
"The EjTransaction of a well-formed NDC block, as reconciliation.ej_ndc's\n"
"_transaction makes it from the same groups; None when a count is too long for\n"
"a C integer (then the Python version reads it).");

static PyObject *
ndc_transaction(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t index[N_COUNT];
    PyTypeObject *cls;
    PyObject *g, *fields[18] = {NULL};
    PyObject *const *tail;
    PyObject *out, *st, *d1;
    int approved_withdrawal, k;
    const char *outcome = NULL;
    long long rejects[4] = {0, 0, 0, 0};

    if (record_arguments(args, nargs, "ndc_transaction", N_COUNT, index, &cls, &g, &tail) < 0)
        return NULL;
    fields[0] = text_of(G(G_STAN));
    fields[1] = text_of(G(G_RRN));
    fields[2] = text_of(G(N_SEQ));
    fields[3] = text_of(G(G_TIME));
    fields[4] = text_of(G(G_CARD));
    fields[5] = trn_type(G(G_TRN));
    fields[6] = text_of(G(G_RC));
    fields[7] = amount_of(G(N_AUTH) != Py_None ? G(N_AUTH)
                          : (G(N_REQ) != Py_None && PyBytes_GET_SIZE(G(N_REQ)) > 0)
                              ? G(N_REQ)
                              : Py_None);
    out = G(G_OUT);
    st = G(N_ST);
    approved_withdrawal = fields[5] == s_withdrawal && fields[6] != NULL
                          && PyUnicode_CompareWithASCIIString(fields[6], "00") == 0;
    if (approved_withdrawal) {
        if (contains(out, "POWER INTERRUPTION"))
            outcome = "power";
        else if (contains(out, "Cash Retracted"))
            outcome = "retracted";
        else if (contains(out, "DISPENSE ERROR"))
            outcome = (contains(out, "Cash Taken") || contains(out, "Cash Present")) ? "short"
                                                                                     : "none";
        else if (contains(out, "Cash Taken"))
            outcome = "taken";
        if (outcome == NULL && st != Py_None && PyBytes_GET_SIZE(st) == 1) {
            switch (PyBytes_AS_STRING(st)[0]) {
            case '0': outcome = "taken"; break;
            case '1': outcome = "short"; break;
            case '2': outcome = "none"; break;
            case '3': outcome = "power"; break;
            case '5': outcome = "retracted"; break;
            }
        }
    }
    fields[8] = outcome == NULL ? s_empty
                : outcome[0] == 'p' ? s_power
                : outcome[0] == 'r' ? s_retracted
                : outcome[0] == 's' ? s_short
                : outcome[0] == 'n' ? s_none
                : s_taken;
    Py_INCREF(fields[8]);
    d1 = G(N_D1);
    if (d1 == Py_None) {
        Py_INCREF(no_notes);
        fields[9] = no_notes;
    }
    else {
        PyObject *counts[4];
        for (k = 0; k < 4; k++) {
            PyObject *raw = PyTuple_GET_ITEM(g, index[N_D1] + k);
            counts[k] = (raw != Py_None && PyBytes_Check(raw))
                            ? integer_of(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))
                            : NULL;
            if (counts[k] == NULL && !PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "a dispensed count is missing");
        }
        fields[9] = (counts[0] && counts[1] && counts[2] && counts[3])
                        ? PyTuple_Pack(4, counts[0], counts[1], counts[2], counts[3])
                        : NULL;
        for (k = 0; k < 4; k++)
            Py_XDECREF(counts[k]);
    }
    fields[10] = notes_csv(G(G_RETR));
    if (G(N_REJ) != Py_None && PyBytes_GET_SIZE(G(N_REJ)) > 0) {
        /* "Reject TypeN = M notes" lines: M added to cassette N */
        const char *text = PyBytes_AS_STRING(G(N_REJ)), *end = text + PyBytes_GET_SIZE(G(N_REJ));
        const char *at = text;
        while ((at = memmem(at, (size_t)(end - at), "Reject Type", 11)) != NULL) {
            const char *p = at + 11;
            long long notes = 0;
            int unit, digits = 0;
            at = p;
            if (p >= end || *p < '1' || *p > '4')
                continue;
            unit = *p - '1';
            p++;
            if (end - p < 3 || memcmp(p, " = ", 3) != 0)
                continue;
            p += 3;
            while (p < end && *p >= '0' && *p <= '9') {
                if (++digits > 17)
                    goto unusual;
                notes = notes * 10 + (*p - '0');
                p++;
            }
            if (digits == 0 || end - p < 6 || memcmp(p, " notes", 6) != 0)
                continue;
            rejects[unit] += notes;
        }
        fields[11] = counts_tuple(rejects);
    }
    else {
        Py_INCREF(no_notes);
        fields[11] = no_notes;
    }
    if (0) {
    unusual: /* a reject count too long for a C integer: the Python version reads it */
        for (k = 0; k < 18; k++)
            Py_XDECREF(fields[k]);
        Py_RETURN_NONE;
    }
    if (st == Py_None) {
        Py_INCREF(s_empty);
        fields[12] = s_empty;
    }
    else {
        fields[12] = text_of(st);
    }
    Py_INCREF(Py_False);
    fields[13] = Py_False;
    if (position_fields(tail, fields) < 0) {
        for (k = 0; k < 18; k++)
            Py_XDECREF(fields[k]);
        return NULL;
    }
    return record(cls, fields);
}

PyDoc_STRVAR(procash_transaction_doc,
"procash_transaction(indexes, cls, groups, start, end, line, lines_in, /)\n--\n\n"
"The EjTransaction of a well-formed ProCash block, as reconciliation.ej_procash's\n"
"_transaction makes it from the same groups; None when a count is too long for\n"
"a C integer (then the Python version reads it).");

static PyObject *
procash_transaction(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t index[P_COUNT];
    PyTypeObject *cls;
    PyObject *g, *fields[18] = {NULL};
    PyObject *const *tail;
    PyObject *out, *notes, *amount;
    int approved_withdrawal, k;
    const char *outcome = "";

    if (record_arguments(args, nargs, "procash_transaction", P_COUNT, index, &cls, &g, &tail) < 0)
        return NULL;
    out = G(G_OUT);
    if (out == Py_None) {
        PyErr_SetString(PyExc_TypeError, "the outcome group is missing");
        return NULL;
    }
    fields[0] = text_of(G(G_STAN));
    fields[1] = text_of(G(G_RRN));
    fields[2] = PyBytes_GET_SIZE(G(G_STAN)) >= 2
                    ? PyUnicode_DecodeLatin1(PyBytes_AS_STRING(G(G_STAN)) + 2,
                                             PyBytes_GET_SIZE(G(G_STAN)) - 2, NULL)
                    : text_of(G(G_STAN));
    fields[3] = text_of(G(G_TIME));
    fields[4] = text_of(G(G_CARD));
    fields[5] = trn_type(G(G_TRN));
    if (G(P_NOREPLY) != Py_None) {
        Py_INCREF(s_to);
        fields[6] = s_to;
    }
    else {
        fields[6] = text_of(G(G_RC));
    }
    amount = G(P_AMOUNT) != Py_None ? G(P_AMOUNT) : G(P_RAMOUNT);
    fields[7] = amount_of(amount);
    notes = G(P_NOTES);
    if (notes != Py_None) {
        fields[9] = notes_csv(notes);
    }
    else {
        /* the last "NOTES PRESENTED a,b,c,d" of the outcome lines */
        const char *text = PyBytes_AS_STRING(out), *end = text + PyBytes_GET_SIZE(out);
        const char *at = text, *last = NULL, *last_end = NULL;
        while ((at = memmem(at, (size_t)(end - at), "NOTES PRESENTED ", 16)) != NULL) {
            const char *p = at + 16, *start = p;
            int k2, good = 1;
            for (k2 = 0; k2 < 4 && good; k2++) {
                const char *digits = p;
                while (p < end && *p >= '0' && *p <= '9')
                    p++;
                if (p == digits)
                    good = 0;
                else if (k2 < 3) {
                    if (p < end && *p == ',')
                        p++;
                    else
                        good = 0;
                }
            }
            if (good) {
                last = start;
                last_end = p;
                at = p;
            }
            else {
                at += 16;
            }
        }
        if (last != NULL) {
            fields[9] = notes_of(last, last_end);
        }
        else {
            Py_INCREF(no_notes);
            fields[9] = no_notes;
        }
    }
    fields[10] = notes_csv(G(G_RETR));
    approved_withdrawal = fields[5] == s_withdrawal && fields[6] != NULL
                          && PyUnicode_CompareWithASCIIString(fields[6], "00") == 0;
    if (approved_withdrawal && fields[9] != NULL) {
        if (contains(out, "POWER INTERRUPTION"))
            outcome = "power";
        else if (contains(out, "CASH RETRACTED"))
            outcome = "retracted";
        else if (contains(out, "PRESENTER ERROR")) {
            int nothing = 1;
            for (k = 0; k < 4; k++) {
                PyObject *count = PyTuple_GET_ITEM(fields[9], k);
                int zero = PyObject_Not(count);
                if (zero < 0)
                    nothing = -1;
                else if (!zero && nothing == 1)
                    nothing = 0;
            }
            outcome = nothing == 1 ? "none" : "short";
        }
        else if (contains(out, "CASH TAKEN"))
            outcome = "taken";
    }
    fields[8] = outcome[0] == '\0' ? s_empty
                : outcome[0] == 'p' ? s_power
                : outcome[0] == 'r' ? s_retracted
                : outcome[0] == 's' ? s_short
                : outcome[0] == 'n' ? s_none
                : s_taken;
    Py_INCREF(fields[8]);
    if (contains(out, "REJECTED")) {
        long long rejected[4] = {0, 0, 0, 0};
        if (add_counts(rejected, PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out),
                       "NOTES REJECTED ")) {
            /* a count too long for a C integer: the Python version reads it */
            for (k = 0; k < 18; k++)
                Py_XDECREF(fields[k]);
            Py_RETURN_NONE;
        }
        fields[11] = counts_tuple(rejected);
    }
    else {
        Py_INCREF(no_notes);
        fields[11] = no_notes;
    }
    Py_INCREF(s_empty);
    fields[12] = s_empty;
    Py_INCREF(Py_False);
    fields[13] = Py_False;
    if (position_fields(tail, fields) < 0) {
        for (k = 0; k < 18; k++)
            Py_XDECREF(fields[k]);
        return NULL;
    }
    return record(cls, fields);
}

#undef G

/* --- paper journal blocks --------------------------------------------------------- */

static int
is_ascii_letter(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* reconciliation.paper._marker_count of line[0:size] (its newline included) */
static int
marker_count(const unsigned char *line, Py_ssize_t size)
{
    Py_ssize_t stars = 0, letters = 0, i;
    int start = 0, end = 0;
    for (i = 0; i < size; i++)
        stars += line[i] == '*';
    if (stars < 8)
        return 0;
    if (stars >= 55)
        return 2;
    if (size - stars > 12) {
        char *upper;
        Py_ssize_t kept = 0;
        for (i = 0; i < size; i++)
            letters += is_ascii_letter(line[i]);
        if (letters > 12)
            return 1;
        upper = PyMem_Malloc((size_t)size + 1);
        if (upper == NULL)
            return -1;
        for (i = 0; i < size; i++) {
            unsigned char c = line[i];
            if (c == ' ')
                continue;
            upper[kept++] = (char)((c >= 'a' && c <= 'z') ? c - 32 : c);
        }
        start = memmem(upper, (size_t)kept, "START", 5) != NULL;
        end = memmem(upper, (size_t)kept, "END", 3) != NULL;
        PyMem_Free(upper);
        if (start && end)
            return 2;
    }
    return 1;
}

/* the asterisk markers of one line (reconciliation.paper._line_markers): eight
 * asterisks or more, two of them adjacent; -1 on error */
static int
line_markers(const unsigned char *line, Py_ssize_t size)
{
    Py_ssize_t stars = 0, i;
    int pair = 0;
    for (i = 0; i < size; i++) {
        if (line[i] == '*') {
            stars++;
            if (i + 1 < size && line[i + 1] == '*')
                pair = 1;
        }
    }
    if (stars < 8 || !pair)
        return 0;
    if (stars >= 55)
        return 2;
    if (size - stars <= 12)
        return 1;
    return marker_count(line, size);
}

/* whether the line (newline included) is a page marker:  [ \t]*--- PAGE \d+ ---[ \t\r]*\n */
static int
page_line(const unsigned char *line, Py_ssize_t size)
{
    Py_ssize_t i = 0, digits;
    while (i < size && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (size - i < 9 || memcmp(line + i, "--- PAGE ", 9) != 0)
        return 0;
    i += 9;
    digits = i;
    while (i < size && IS_DIGIT(line[i]))
        i++;
    if (i == digits || size - i < 4 || memcmp(line + i, " ---", 4) != 0)
        return 0;
    i += 4;
    while (i < size && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    return i == size - 1 && line[i] == '\n';
}

static int
append_span(PyObject *list, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c, Py_ssize_t d)
{
    PyObject *item = Py_BuildValue("(nnnn)", a, b, c, d);
    int failed;
    if (item == NULL)
        return -1;
    failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed;
}

PyDoc_STRVAR(paper_runs_doc,
"paper_runs(buffer, /)\n--\n\n"
"reconciliation.paper._runs: the runs of non-empty lines of a paper journal whose\n"
"blank lines are all empty (``buffer`` ends with a newline). Returns (structural,\n"
"spans, lost): the structural lines outside the lost runs, a (first line, last line,\n"
"start, end) span for each run that is one block, and (start, end, lines) of each\n"
"run holding more than two receipts' markers.");

static PyObject *
paper_runs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    const unsigned char *s;
    PyObject *spans = NULL, *lost = NULL, *result = NULL;
    Py_ssize_t length, offset = 0, line = 0, structural = 0;
    /* the run being read */
    Py_ssize_t run_first = -1, run_start = 0, run_lines = 0, run_pages = 0, run_markers = 0;

    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "paper_runs takes one argument");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    s = (const unsigned char *)view.buf;
    length = view.len;
    spans = PyList_New(0);
    lost = PyList_New(0);
    if (spans == NULL || lost == NULL)
        goto done;
    for (;;) {
        const unsigned char *newline =
            offset < length ? memchr(s + offset, '\n', (size_t)(length - offset)) : NULL;
        Py_ssize_t end = newline == NULL ? -1 : newline - s;
        Py_ssize_t size = end - offset + 1;
        if (newline != NULL && size > 1) { /* a line of the run */
            int markers = line_markers(s + offset, size);
            if (markers < 0)
                goto done;
            if (run_first < 0) {
                run_first = line + 1;
                run_start = offset;
                run_lines = run_pages = run_markers = 0;
            }
            run_lines++;
            run_markers += markers;
            if (s[offset] != '*' && page_line(s + offset, size))
                run_pages++;
        }
        else if (run_first >= 0) { /* an empty line, or the end: the run ends here */
            if (run_markers > 2) {
                PyObject *item = Py_BuildValue("(nnn)", run_start, offset, run_lines);
                if (item == NULL || PyList_Append(lost, item) < 0) {
                    Py_XDECREF(item);
                    goto done;
                }
                Py_DECREF(item);
            }
            else {
                structural += run_pages;
                if (run_lines > run_pages
                    && append_span(spans, run_first, run_first + run_lines - 1, run_start,
                                   offset) < 0)
                    goto done;
            }
            run_first = -1;
        }
        if (newline == NULL)
            break; /* bytes after the last newline are no line */
        line++;
        if (size == 1)
            structural++;
        offset = end + 1;
    }
    result = Py_BuildValue("(nOO)", structural, spans, lost);
done:
    Py_XDECREF(spans);
    Py_XDECREF(lost);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"paper_readings", (PyCFunction)(void (*)(void))paper_readings, METH_FASTCALL,
     paper_readings_doc},
    {"iso_records", (PyCFunction)(void (*)(void))iso_records, METH_FASTCALL, iso_records_doc},
    {"iso_walk", (PyCFunction)(void (*)(void))iso_walk, METH_FASTCALL, iso_walk_doc},
    {"paper_exact_pairs", (PyCFunction)(void (*)(void))paper_exact_pairs, METH_FASTCALL,
     paper_exact_pairs_doc},
    {"paper_runs", (PyCFunction)(void (*)(void))paper_runs, METH_FASTCALL, paper_runs_doc},
    {"ndc_transaction", (PyCFunction)(void (*)(void))ndc_transaction, METH_FASTCALL,
     ndc_transaction_doc},
    {"procash_transaction", (PyCFunction)(void (*)(void))procash_transaction, METH_FASTCALL,
     procash_transaction_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "reconciliation._speedups",
    .m_doc = "Compiled versions of the reconciliation's innermost loops.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (init_strings() < 0)
        return NULL;
    return PyModule_Create(&module);
}
