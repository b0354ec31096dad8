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

static PyMethodDef methods[] = {
    {"paper_readings", (PyCFunction)(void (*)(void))paper_readings, METH_FASTCALL,
     paper_readings_doc},
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
