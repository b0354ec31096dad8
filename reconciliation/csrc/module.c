#include "speedups.h"

int
append_new(PyObject *list, PyObject *item)
{
    int failed;
    if (item == NULL)
        return -1;
    failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed;
}

PyObject *
ints_tuple(Py_ssize_t count, const long long *values)
{
    PyObject *tuple = PyTuple_New(count);
    Py_ssize_t k;
    if (tuple == NULL)
        return NULL;
    for (k = 0; k < count; k++) {
        PyObject *value = PyLong_FromLongLong(values[k]);
        if (value == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, k, value);
    }
    return tuple;
}

int
field_positions(PyObject *positions, Py_ssize_t count, Py_ssize_t *field, Py_ssize_t *width)
{
    Py_ssize_t j;
    *width = 0;
    for (j = 0; j < count; j++) {
        field[j] = PyLong_AsSsize_t(PyTuple_GET_ITEM(positions, j));
        if (field[j] == -1 && PyErr_Occurred())
            return -1;
        if (field[j] < 0) {
            PyErr_SetString(PyExc_ValueError, "field positions must not be negative");
            return -1;
        }
        if (field[j] + 1 > *width)
            *width = field[j] + 1;
    }
    return 0;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "reconciliation._speedups",
    .m_doc = "Compiled versions of the reconciliation's innermost loops.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *made;
    if (ej_init() < 0 || arrow_init() < 0)
        return NULL;
    made = PyModule_Create(&module);
    if (made == NULL)
        return NULL;
    if (PyModule_AddFunctions(made, paper_methods) < 0
        || PyModule_AddFunctions(made, host_methods) < 0
        || PyModule_AddFunctions(made, ej_methods) < 0
        || PyModule_AddFunctions(made, columns_methods) < 0
        || PyModule_AddFunctions(made, receipts_methods) < 0
        || PyModule_AddFunctions(made, xlsx_methods) < 0) {
        Py_DECREF(made);
        return NULL;
    }
    return made;
}
