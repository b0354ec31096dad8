#include "speedups.h"

/* The receipts a terminal-day's paper should show, and the chain of exact anchors
 * between them and the paper's blocks (reconciliation.paper_match). */

enum { R_STAN, R_RRN, R_TIME, R_CARD, R_AMOUNT, R_TRUNCATED, R_FIELDS };

/* (at, stan, rrn, amount, card), stored under ``stan``; 0 or -1 */
static int
remember(PyObject *expected, PyObject *stan, PyObject *at, PyObject *rrn, PyObject *amount,
         PyObject *card)
{
    PyObject *value = PyTuple_Pack(5, at, stan, rrn, amount, card);
    int failed;
    if (value == NULL)
        return -1;
    failed = PyDict_SetItem(expected, stan, value);
    Py_DECREF(value);
    return failed;
}

/* The whole Expected record: cls(stan, rrn, time) as tuple.__new__ makes it. */
static PyObject *
expected_record(PyTypeObject *cls, PyObject *stan, PyObject *rrn, PyObject *at)
{
    PyObject *made = cls->tp_alloc(cls, 3);
    if (made == NULL)
        return NULL;
    PyTuple_SET_ITEM(made, 0, Py_NewRef(stan));
    PyTuple_SET_ITEM(made, 1, Py_NewRef(rrn));
    PyTuple_SET_ITEM(made, 2, Py_NewRef(at));
    return made;
}

/* "HH:MM:SS" without its colons (str.replace(":", "")) */
static PyObject *
compact_time(PyObject *at)
{
    Py_ssize_t size, j, kept = 0;
    const char *text;
    char small[64];
    if (!PyUnicode_Check(at) || !PyUnicode_IS_ASCII(at)
        || PyUnicode_GET_LENGTH(at) > (Py_ssize_t)sizeof(small))
        return PyObject_CallMethod(at, "replace", "ss", ":", "");
    text = PyUnicode_AsUTF8AndSize(at, &size);
    if (text == NULL)
        return NULL;
    for (j = 0; j < size; j++)
        if (text[j] != ':')
            small[kept++] = text[j];
    return PyUnicode_FromStringAndSize(small, kept);
}

PyDoc_STRVAR(paper_receipts_doc,
"paper_receipts(transactions, host, fields, cls, /)\n--\n\n"
"reconciliation.paper_match.receipts: the receipts the paper should show, by\n"
"time then STAN, from a day's EJ ``transactions`` (``fields``: the positions of\n"
"stan, rrn, time, card, amount_minor and truncated) and its ``host`` messages\n"
"(STAN -> (rrn, time, amount, pan)), as (ordered, expected, by_stan, by_rrn,\n"
"compact) with the Expected ``cls``.");

static PyObject *
paper_receipts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *transactions, *host, *expected = NULL, *values = NULL, *ordered = NULL;
    PyObject *records = NULL, *by_stan = NULL, *by_rrn = NULL, *compact = NULL;
    PyObject *result = NULL, *stan, *value;
    PyTypeObject *cls;
    Py_ssize_t field[R_FIELDS], width = 0, j, position = 0;

    if (nargs != 4 || !PyList_Check(args[0]) || !PyDict_Check(args[1])
        || !PyTuple_Check(args[2]) || PyTuple_GET_SIZE(args[2]) != R_FIELDS
        || !PyType_Check(args[3])
        || !PyType_IsSubtype((PyTypeObject *)args[3], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError,
                        "expected (transactions: list, host: dict, fields: 6 positions, cls)");
        return NULL;
    }
    transactions = args[0];
    host = args[1];
    cls = (PyTypeObject *)args[3];
    if (field_positions(args[2], R_FIELDS, field, &width) < 0)
        return NULL;
    expected = PyDict_New();
    if (expected == NULL)
        return NULL;
    for (j = 0; j < PyList_GET_SIZE(transactions); j++) {
        PyObject *txn = PyList_GET_ITEM(transactions, j), *message, *amount;
        int truncated;
        if (!PyTuple_Check(txn) || PyTuple_GET_SIZE(txn) < width) {
            PyErr_SetString(PyExc_TypeError, "an EJ record is not an EjTransaction");
            goto done;
        }
        stan = PyTuple_GET_ITEM(txn, field[R_STAN]);
        if (!PyUnicode_Check(stan) || PyUnicode_GET_LENGTH(stan) == 0)
            continue;
        truncated = PyObject_IsTrue(PyTuple_GET_ITEM(txn, field[R_TRUNCATED]));
        if (truncated < 0)
            goto done;
        if (truncated)
            continue;
        message = PyDict_GetItemWithError(host, stan);
        if (message == NULL && PyErr_Occurred())
            goto done;
        if (message != NULL) {
            if (!PyTuple_Check(message) || PyTuple_GET_SIZE(message) != 4) {
                PyErr_SetString(PyExc_TypeError, "a host message is (rrn, time, amount, pan)");
                goto done;
            }
            amount = PyTuple_GET_ITEM(message, 2);
        }
        else
            amount = PyTuple_GET_ITEM(txn, field[R_AMOUNT]);
        if (remember(expected, stan, PyTuple_GET_ITEM(txn, field[R_TIME]),
                     PyTuple_GET_ITEM(txn, field[R_RRN]), amount,
                     PyTuple_GET_ITEM(txn, field[R_CARD])) < 0)
            goto done;
    }
    while (PyDict_Next(host, &position, &stan, &value)) {
        int known = PyDict_Contains(expected, stan);
        if (known < 0)
            goto done;
        if (known)
            continue;
        if (!PyTuple_Check(value) || PyTuple_GET_SIZE(value) != 4) {
            PyErr_SetString(PyExc_TypeError, "a host message is (rrn, time, amount, pan)");
            goto done;
        }
        if (remember(expected, stan, PyTuple_GET_ITEM(value, 1), PyTuple_GET_ITEM(value, 0),
                     PyTuple_GET_ITEM(value, 2), PyTuple_GET_ITEM(value, 3)) < 0)
            goto done;
    }
    values = PyDict_Values(expected);
    if (values == NULL || PyList_Sort(values) < 0)
        goto done;
    ordered = PyList_New(PyList_GET_SIZE(values));
    records = PyList_New(PyList_GET_SIZE(values));
    by_stan = PyDict_New();
    by_rrn = PyDict_New();
    compact = PyList_New(PyList_GET_SIZE(values));
    if (ordered == NULL || records == NULL || by_stan == NULL || by_rrn == NULL
        || compact == NULL)
        goto done;
    for (j = 0; j < PyList_GET_SIZE(values); j++) {
        PyObject *item = PyList_GET_ITEM(values, j), *record, *row, *index, *time;
        PyObject *at = PyTuple_GET_ITEM(item, 0), *rrn = PyTuple_GET_ITEM(item, 2);
        int has_rrn;
        stan = PyTuple_GET_ITEM(item, 1);
        record = expected_record(cls, stan, rrn, at);
        if (record == NULL)
            goto done;
        row = PyTuple_Pack(3, record, PyTuple_GET_ITEM(item, 3), PyTuple_GET_ITEM(item, 4));
        if (row == NULL) {
            Py_DECREF(record);
            goto done;
        }
        PyList_SET_ITEM(ordered, j, row);     /* the row holds a reference of its own */
        PyList_SET_ITEM(records, j, record); /* and the list takes the one made here */
        time = compact_time(at);
        if (time == NULL)
            goto done;
        PyList_SET_ITEM(compact, j, time);
        index = PyLong_FromSsize_t(j);
        if (index == NULL)
            goto done;
        has_rrn = PyObject_IsTrue(rrn);
        if (PyDict_SetDefault(by_stan, stan, index) == NULL
            || has_rrn < 0 || (has_rrn && PyDict_SetDefault(by_rrn, rrn, index) == NULL)) {
            Py_DECREF(index);
            goto done;
        }
        Py_DECREF(index);
    }
    result = PyTuple_Pack(5, ordered, records, by_stan, by_rrn, compact);
done:
    Py_XDECREF(expected);
    Py_XDECREF(values);
    Py_XDECREF(ordered);
    Py_XDECREF(records);
    Py_XDECREF(by_stan);
    Py_XDECREF(by_rrn);
    Py_XDECREF(compact);
    return result;
}

PyDoc_STRVAR(paper_chain_doc,
"paper_chain(pairs, /)\n--\n\n"
"reconciliation.paper_match._chain: of (block, expected index, score) pairs\n"
"sorted by block, the longest chain strictly increasing in the expected index\n"
"(the last such chain the patience sort finds).");

static PyObject *
paper_chain(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *pairs, *chain = NULL;
    Py_ssize_t count, j, length = 0, at;
    Py_ssize_t *index = NULL, *tails = NULL, *tail_at = NULL, *previous = NULL;

    if (nargs != 1 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "paper_chain takes a list of pairs");
        return NULL;
    }
    pairs = args[0];
    count = PyList_GET_SIZE(pairs);
    index = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(count + 1) * 4);
    if (index == NULL)
        return PyErr_NoMemory();
    tails = index + count + 1;
    tail_at = tails + count + 1;
    previous = tail_at + count + 1;
    for (j = 0; j < count; j++) {
        PyObject *pair = PyList_GET_ITEM(pairs, j);
        Py_ssize_t low = 0, high = length, slot;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) < 2) {
            PyErr_SetString(PyExc_TypeError, "a pair is (block, expected index, score)");
            goto done;
        }
        index[j] = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 1));
        if (index[j] == -1 && PyErr_Occurred())
            goto done;
        while (low < high) { /* bisect_left */
            Py_ssize_t middle = (low + high) / 2;
            if (tails[middle] < index[j])
                low = middle + 1;
            else
                high = middle;
        }
        slot = low;
        tails[slot] = index[j];
        tail_at[slot] = j;
        if (slot == length)
            length++;
        previous[j] = slot > 0 ? tail_at[slot - 1] : -1;
    }
    chain = PyList_New(length);
    if (chain == NULL)
        goto done;
    at = length ? tail_at[length - 1] : -1;
    for (j = length - 1; j >= 0; j--) {
        PyList_SET_ITEM(chain, j, Py_NewRef(PyList_GET_ITEM(pairs, at)));
        at = previous[at];
    }
done:
    PyMem_Free(index);
    return chain;
}

PyMethodDef receipts_methods[] = {
    {"paper_receipts", (PyCFunction)(void (*)(void))paper_receipts, METH_FASTCALL,
     paper_receipts_doc},
    {"paper_chain", (PyCFunction)(void (*)(void))paper_chain, METH_FASTCALL, paper_chain_doc},
    {NULL, NULL, 0, NULL},
};
