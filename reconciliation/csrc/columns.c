#include "speedups.h"

/* EJ records into the columns the matcher joins with the host's (classify.ej_frame). */

enum { F_STAN, F_RRN, F_TIME, F_TYPE, F_RESP, F_AMOUNT, F_OUTCOME, F_DISPENSED, F_RETRACTED,
       F_TRUNCATED, FIELDS };

enum { C_TERMINAL, C_DATE, C_STAN, C_RRN, C_SECONDS, C_TYPE, C_RESP, C_AMOUNT, C_OUTCOME,
       C_NOTES, C_REF, EJ_COLUMNS };
static const int ej_column_is_text[EJ_COLUMNS] = {1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0};

static int
put_str(Column *column, PyObject *value)
{
    Py_ssize_t size;
    const char *text;
    if (!PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "a text field of an EJ record is not str");
        return -1;
    }
    text = PyUnicode_AsUTF8AndSize(value, &size);
    return text == NULL ? -1 : column_text(column, text, size);
}

/* "HH:MM:SS" in digits -> seconds since midnight, else -1 (classify.clock_seconds). */
static int64_t
clock_value(PyObject *value)
{
    Py_ssize_t size;
    const char *t;
    int j;
    if (!PyUnicode_Check(value))
        return -1;
    t = PyUnicode_AsUTF8AndSize(value, &size);
    if (t == NULL) {
        PyErr_Clear();
        return -1;
    }
    if (size != 8 || t[2] != ':' || t[5] != ':')
        return -1;
    for (j = 0; j < 8; j++)
        if (j != 2 && j != 5 && !IS_DIGIT(t[j]))
            return -1;
    return ((t[0] - '0') * 10 + (t[1] - '0')) * 3600 + ((t[3] - '0') * 10 + (t[4] - '0')) * 60
           + (t[6] - '0') * 10 + (t[7] - '0');
}

/* The sum of a tuple of ints; -1 with an exception set on anything else. */
static int
notes_sum(PyObject *value, int64_t *sum)
{
    Py_ssize_t j;
    *sum = 0;
    if (!PyTuple_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "the notes of an EJ record are not a tuple");
        return -1;
    }
    for (j = 0; j < PyTuple_GET_SIZE(value); j++) {
        long long count = PyLong_AsLongLong(PyTuple_GET_ITEM(value, j));
        if (count == -1 && PyErr_Occurred())
            return -1;
        *sum += count;
    }
    return 0;
}

PyDoc_STRVAR(ej_columns_doc,
"ej_columns(days, fields, /)\n--\n\n"
"The EJ frame of reconciliation.classify.ej_frame, as ArrowColumn objects in\n"
"EJ_SCHEMA's order: one row per transaction with a STAN and not truncated, of\n"
"each (terminal_id, business_date, transactions, day_number) of ``days``;\n"
"``fields`` are the positions in the records of stan, rrn, time, txn_type,\n"
"resp, amount_minor, outcome, dispensed, retracted and truncated.");

static PyObject *
ej_columns(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Column columns[EJ_COLUMNS];
    Py_ssize_t field[FIELDS], width = 0, d, j, rows = 0;
    PyObject *days, *made = NULL;
    int ready;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "ej_columns takes two arguments");
        return NULL;
    }
    days = args[0];
    if (!PyList_Check(days) || !PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != FIELDS) {
        PyErr_SetString(PyExc_TypeError, "ej_columns takes a list of days and 10 field positions");
        return NULL;
    }
    if (field_positions(args[1], FIELDS, field, &width) < 0)
        return NULL;
    for (d = 0; d < PyList_GET_SIZE(days); d++) { /* the rows there may be */
        PyObject *day = PyList_GET_ITEM(days, d);
        if (PyTuple_Check(day) && PyTuple_GET_SIZE(day) == 4 && PyList_Check(PyTuple_GET_ITEM(day, 2)))
            rows += PyList_GET_SIZE(PyTuple_GET_ITEM(day, 2));
    }
    for (ready = 0; ready < EJ_COLUMNS; ready++)
        if (column_init(&columns[ready], ej_column_is_text[ready], rows, rows * 12) < 0)
            goto done;
    for (d = 0; d < PyList_GET_SIZE(days); d++) {
        PyObject *day = PyList_GET_ITEM(days, d), *records;
        long long number;
        if (!PyTuple_Check(day) || PyTuple_GET_SIZE(day) != 4
            || !PyList_Check(PyTuple_GET_ITEM(day, 2))) {
            PyErr_SetString(PyExc_TypeError,
                            "a day is (terminal_id, business_date, transactions, day_number)");
            goto done;
        }
        records = PyTuple_GET_ITEM(day, 2);
        number = PyLong_AsLongLong(PyTuple_GET_ITEM(day, 3));
        if (number == -1 && PyErr_Occurred())
            goto done;
        for (j = 0; j < PyList_GET_SIZE(records); j++) {
            PyObject *txn = PyList_GET_ITEM(records, j), *stan;
            int64_t out, back;
            long long amount;
            int truncated;
            if (!PyTuple_Check(txn) || PyTuple_GET_SIZE(txn) < width) {
                PyErr_SetString(PyExc_TypeError, "an EJ record is not an EjTransaction");
                goto done;
            }
            stan = PyTuple_GET_ITEM(txn, field[F_STAN]);
            truncated = PyObject_IsTrue(PyTuple_GET_ITEM(txn, field[F_TRUNCATED]));
            if (truncated < 0)
                goto done;
            if (truncated || !PyUnicode_Check(stan) || PyUnicode_GET_LENGTH(stan) == 0)
                continue;
            amount = PyLong_AsLongLong(PyTuple_GET_ITEM(txn, field[F_AMOUNT]));
            if ((amount == -1 && PyErr_Occurred())
                || notes_sum(PyTuple_GET_ITEM(txn, field[F_DISPENSED]), &out) < 0
                || notes_sum(PyTuple_GET_ITEM(txn, field[F_RETRACTED]), &back) < 0
                || put_str(&columns[C_TERMINAL], PyTuple_GET_ITEM(day, 0)) < 0
                || put_str(&columns[C_DATE], PyTuple_GET_ITEM(day, 1)) < 0
                || put_str(&columns[C_STAN], stan) < 0
                || put_str(&columns[C_RRN], PyTuple_GET_ITEM(txn, field[F_RRN])) < 0
                || column_int(&columns[C_SECONDS],
                              clock_value(PyTuple_GET_ITEM(txn, field[F_TIME]))) < 0
                || put_str(&columns[C_TYPE], PyTuple_GET_ITEM(txn, field[F_TYPE])) < 0
                || put_str(&columns[C_RESP], PyTuple_GET_ITEM(txn, field[F_RESP])) < 0
                || column_int(&columns[C_AMOUNT], amount) < 0
                || put_str(&columns[C_OUTCOME], PyTuple_GET_ITEM(txn, field[F_OUTCOME])) < 0
                || column_int(&columns[C_NOTES], out - back) < 0
                || column_int(&columns[C_REF], (int64_t)number << 32 | (int64_t)j) < 0)
                goto done;
        }
    }
    made = PyTuple_New(EJ_COLUMNS);
    if (made == NULL)
        goto done;
    for (j = 0; j < EJ_COLUMNS; j++) {
        PyObject *column = column_export(&columns[j]);
        if (column == NULL) {
            Py_CLEAR(made);
            goto done;
        }
        PyTuple_SET_ITEM(made, j, column);
    }
done:
    for (j = 0; j < ready; j++)
        column_free(&columns[j]);
    if (made == NULL && !PyErr_Occurred())
        PyErr_NoMemory(); /* a column could not grow */
    return made;
}

/* -1, 0 or 1 as ``text`` compares with "T" + ``time`` (ASCII, byte by byte). */
static int
compare_to_clock(const char *text, Py_ssize_t size, const char *time, Py_ssize_t length)
{
    Py_ssize_t j;
    if (size == 0)
        return -1;
    if (text[0] != 'T')
        return (unsigned char)text[0] < 'T' ? -1 : 1;
    for (j = 1; j < size && j <= length; j++)
        if (text[j] != time[j - 1])
            return (unsigned char)text[j] < (unsigned char)time[j - 1] ? -1 : 1;
    if (size == length + 1)
        return 0;
    return size < length + 1 ? -1 : 1;
}

PyDoc_STRVAR(ej_note_sums_doc,
"ej_note_sums(transactions, low, high, fields, /)\n--\n\n"
"The notes dispensed, rejected and retracted per cassette (three lists of four)\n"
"by the records of ``transactions`` with a time, not truncated, and\n"
"low < \"T\" + time <= high, as reconciliation.settlement._day_sums adds them;\n"
"``fields``: the positions of time, truncated, dispensed, rejected and\n"
"retracted. None when a value is not what it reads fast (non-ASCII text,\n"
"notes not four numbers): the caller adds them itself then.");

static PyObject *
ej_note_sums(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long long sums[3][4] = {{0}};
    Py_ssize_t field[5], width = 0, j, low_size, high_size;
    const char *low, *high;
    PyObject *transactions, *result;
    int k, n;

    if (nargs != 4 || !PyList_Check(args[0]) || !PyUnicode_Check(args[1])
        || !PyUnicode_Check(args[2]) || !PyTuple_Check(args[3])
        || PyTuple_GET_SIZE(args[3]) != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "expected (transactions: list, low: str, high: str, fields: 5 positions)");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(args[1]) || !PyUnicode_IS_ASCII(args[2]))
        Py_RETURN_NONE;
    transactions = args[0];
    low = PyUnicode_AsUTF8AndSize(args[1], &low_size);
    high = PyUnicode_AsUTF8AndSize(args[2], &high_size);
    if (low == NULL || high == NULL)
        return NULL;
    if (field_positions(args[3], 5, field, &width) < 0)
        return NULL;
    for (j = 0; j < PyList_GET_SIZE(transactions); j++) {
        PyObject *txn = PyList_GET_ITEM(transactions, j), *time;
        const char *clock;
        Py_ssize_t length;
        int truncated;
        if (!PyTuple_Check(txn) || PyTuple_GET_SIZE(txn) < width)
            Py_RETURN_NONE;
        time = PyTuple_GET_ITEM(txn, field[0]);
        if (!PyUnicode_Check(time) || !PyUnicode_IS_ASCII(time))
            Py_RETURN_NONE;
        if (PyUnicode_GET_LENGTH(time) == 0)
            continue;
        truncated = PyObject_IsTrue(PyTuple_GET_ITEM(txn, field[1]));
        if (truncated < 0)
            return NULL;
        if (truncated)
            continue;
        clock = PyUnicode_AsUTF8AndSize(time, &length);
        if (clock == NULL)
            return NULL;
        if (!(compare_to_clock(low, low_size, clock, length) < 0
              && compare_to_clock(high, high_size, clock, length) >= 0))
            continue;
        for (k = 0; k < 3; k++) {
            PyObject *notes = PyTuple_GET_ITEM(txn, field[2 + k]);
            if (!PyTuple_Check(notes) || PyTuple_GET_SIZE(notes) != 4)
                Py_RETURN_NONE;
            for (n = 0; n < 4; n++) {
                PyObject *count = PyTuple_GET_ITEM(notes, n);
                long long value;
                if (!PyLong_CheckExact(count))
                    Py_RETURN_NONE;
                value = PyLong_AsLongLong(count);
                if (value == -1 && PyErr_Occurred()) {
                    PyErr_Clear();
                    Py_RETURN_NONE;
                }
                sums[k][n] += value;
            }
        }
    }
    result = PyTuple_New(3);
    if (result == NULL)
        return NULL;
    for (k = 0; k < 3; k++) {
        PyObject *totals = Py_BuildValue("[LLLL]", sums[k][0], sums[k][1], sums[k][2], sums[k][3]);
        if (totals == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyTuple_SET_ITEM(result, k, totals);
    }
    return result;
}

PyMethodDef columns_methods[] = {
    {"ej_note_sums", (PyCFunction)(void (*)(void))ej_note_sums, METH_FASTCALL,
     ej_note_sums_doc},
    {"ej_columns", (PyCFunction)(void (*)(void))ej_columns, METH_FASTCALL, ej_columns_doc},
    {NULL, NULL, 0, NULL},
};
