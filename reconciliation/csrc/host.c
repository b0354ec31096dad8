#include "speedups.h"

/* The switch's ISO 8583 log: its length-prefixed records. */

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

PyMethodDef host_methods[] = {
    {"iso_records", (PyCFunction)(void (*)(void))iso_records, METH_FASTCALL, iso_records_doc},
    {"iso_walk", (PyCFunction)(void (*)(void))iso_walk, METH_FASTCALL, iso_walk_doc},
    {NULL, NULL, 0, NULL},
};
