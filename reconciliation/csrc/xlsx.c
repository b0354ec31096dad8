#include "speedups.h"

/* Worksheet rows as XML (xlsx.Sheet.row, row after row). A large run's workbook
 * has hundreds of thousands of cells, and the Python loop spent about two
 * microseconds on each. */

typedef struct {
    char *data;
    Py_ssize_t size;
    Py_ssize_t allocated;
} Text;

static int
text_put(Text *text, const char *part, Py_ssize_t size)
{
    if (text->size + size > text->allocated) {
        Py_ssize_t wanted = (text->size + size) * 2 + 256;
        char *grown = PyMem_Realloc(text->data, (size_t)wanted);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        text->data = grown;
        text->allocated = wanted;
    }
    memcpy(text->data + text->size, part, (size_t)size);
    text->size += size;
    return 0;
}

static int
text_cstr(Text *text, const char *part)
{
    return text_put(text, part, (Py_ssize_t)strlen(part));
}

static int
text_number(Text *text, long long value)
{
    char digits[32];
    int size = snprintf(digits, sizeof digits, "%lld", value);
    return text_put(text, digits, size);
}

/* str(value) or repr(value), as UTF-8. */
static int
text_object(Text *text, PyObject *value, int use_repr)
{
    Py_ssize_t size;
    const char *part;
    int failed;
    PyObject *shown = use_repr ? PyObject_Repr(value) : PyObject_Str(value);
    if (shown == NULL)
        return -1;
    part = PyUnicode_AsUTF8AndSize(shown, &size);
    failed = part == NULL ? -1 : text_put(text, part, size);
    Py_DECREF(shown);
    return failed;
}

/* The shared-string index of ``value``, added to ``strings`` when new. */
static long long
shared_index(PyObject *strings, PyObject *value)
{
    PyObject *found = PyDict_GetItemWithError(strings, value);
    PyObject *index;
    long long number;
    if (found != NULL)
        return PyLong_AsLongLong(found);
    if (PyErr_Occurred())
        return -1;
    number = (long long)PyDict_GET_SIZE(strings);
    index = PyLong_FromLongLong(number);
    if (index == NULL)
        return -1;
    if (PyDict_SetItem(strings, value, index) < 0) {
        Py_DECREF(index);
        return -1;
    }
    Py_DECREF(index);
    return number;
}

/* 1 when a cell is left empty (None or ""), 0 when written, -1 on error. */
static int
empty_cell(PyObject *value, PyObject *blank)
{
    if (value == Py_None)
        return 1;
    if (PyUnicode_Check(value))
        return PyUnicode_GET_LENGTH(value) == 0;
    if (PyLong_CheckExact(value) || PyFloat_CheckExact(value) || PyBool_Check(value))
        return 0;
    return PyObject_RichCompareBool(value, blank, Py_EQ);
}

static int
cell_style(PyObject *styles, Py_ssize_t index, long style, long *chosen)
{
    PyObject *key, *found;
    *chosen = style;
    if (styles == Py_None || PyDict_GET_SIZE(styles) == 0)
        return 0;
    key = PyLong_FromSsize_t(index);
    if (key == NULL)
        return -1;
    found = PyDict_GetItemWithError(styles, key);
    Py_DECREF(key);
    if (found == NULL)
        return PyErr_Occurred() ? -1 : 0;
    *chosen = PyLong_AsLong(found);
    return *chosen == -1 && PyErr_Occurred() ? -1 : 0;
}

static int
write_cell(Text *text, PyObject *value, PyObject *strings, PyObject *column, Py_ssize_t number,
           long style)
{
    Py_ssize_t size;
    const char *name = PyUnicode_AsUTF8AndSize(column, &size);
    long long index;
    if (name == NULL || text_cstr(text, "<c r=\"") < 0 || text_put(text, name, size) < 0
        || text_number(text, number) < 0 || text_cstr(text, "\"") < 0)
        return -1;
    if (style != 0 && (text_cstr(text, " s=\"") < 0 || text_number(text, style) < 0
                       || text_cstr(text, "\"") < 0))
        return -1;
    if (PyUnicode_Check(value)) {
        index = shared_index(strings, value);
        if (index == -1 && PyErr_Occurred())
            return -1;
        return text_cstr(text, " t=\"s\"><v>") < 0 || text_number(text, index) < 0
                       || text_cstr(text, "</v></c>") < 0
                   ? -1
                   : 0;
    }
    if (PyBool_Check(value))
        return text_cstr(text, value == Py_True ? " t=\"b\"><v>1</v></c>" : " t=\"b\"><v>0</v></c>");
    if (text_cstr(text, "><v>") < 0)
        return -1;
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long number_value = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow == 0 && !(number_value == -1 && PyErr_Occurred())) {
            if (text_number(text, number_value) < 0)
                return -1;
        } else {
            PyErr_Clear();
            if (text_object(text, value, 0) < 0)
                return -1;
        }
    } else if (text_object(text, value, 1) < 0) {
        return -1;
    }
    return text_cstr(text, "</v></c>");
}

/* xlsx_rows(rows, strings, first, style, styles, columns) -> (row XML texts, widest row) */
static PyObject *
xlsx_rows(PyObject *self, PyObject *args)
{
    PyObject *rows, *strings, *styles, *columns, *blank, *out = NULL, *made;
    Py_ssize_t first, count, widest = 0, i, j;
    long style, chosen;
    Text text = {NULL, 0, 0};
    if (!PyArg_ParseTuple(args, "O!O!nlOO!:xlsx_rows", &PyList_Type, &rows, &PyDict_Type,
                          &strings, &first, &style, &styles, &PyList_Type, &columns))
        return NULL;
    if (styles != Py_None && !PyDict_Check(styles)) {
        PyErr_SetString(PyExc_TypeError, "styles must be a dict or None");
        return NULL;
    }
    blank = PyUnicode_FromStringAndSize("", 0);
    if (blank == NULL)
        return NULL;
    count = PyList_GET_SIZE(rows);
    out = PyList_New(count);
    if (out == NULL)
        goto failed;
    for (i = 0; i < count; i++) {
        PyObject *values = PyList_GET_ITEM(rows, i);
        Py_ssize_t number = first + i, width;
        if (!PyList_Check(values)) {
            PyErr_SetString(PyExc_TypeError, "a row must be a list");
            goto failed;
        }
        width = PyList_GET_SIZE(values);
        text.size = 0;
        if (text_cstr(&text, "<row r=\"") < 0 || text_number(&text, number) < 0
            || text_cstr(&text, "\">") < 0)
            goto failed;
        for (j = 0; j < PyList_GET_SIZE(values); j++) {
            PyObject *value = PyList_GET_ITEM(values, j);
            int empty, written;
            Py_INCREF(value); /* a value's __eq__ could change the row */
            empty = empty_cell(value, blank);
            if (empty == 0 && j >= PyList_GET_SIZE(columns)) {
                PyErr_SetString(PyExc_IndexError, "more columns than a sheet can name");
                empty = -1;
            }
            written = empty != 0 ? empty
                      : cell_style(styles, j, style, &chosen) < 0
                          ? -1
                          : write_cell(&text, value, strings, PyList_GET_ITEM(columns, j), number,
                                       chosen);
            Py_DECREF(value);
            if (written < 0)
                goto failed;
        }
        if (text_cstr(&text, "</row>") < 0)
            goto failed;
        made = PyUnicode_DecodeUTF8(text.data, text.size, NULL);
        if (made == NULL)
            goto failed;
        PyList_SET_ITEM(out, i, made);
        if (width > widest)
            widest = width;
    }
    PyMem_Free(text.data);
    Py_DECREF(blank);
    return Py_BuildValue("(Nn)", out, widest);
failed:
    PyMem_Free(text.data);
    Py_DECREF(blank);
    Py_XDECREF(out);
    return NULL;
}

PyMethodDef xlsx_methods[] = {
    {"xlsx_rows", xlsx_rows, METH_VARARGS,
     "Worksheet rows as XML, as xlsx.Sheet.row writes them one by one."},
    {NULL, NULL, 0, NULL},
};
