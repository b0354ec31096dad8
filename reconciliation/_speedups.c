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

static PyMethodDef methods[] = {
    {"paper_readings", (PyCFunction)(void (*)(void))paper_readings, METH_FASTCALL,
     paper_readings_doc},
    {"iso_records", (PyCFunction)(void (*)(void))iso_records, METH_FASTCALL, iso_records_doc},
    {"iso_walk", (PyCFunction)(void (*)(void))iso_walk, METH_FASTCALL, iso_walk_doc},
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
