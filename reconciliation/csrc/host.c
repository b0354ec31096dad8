#include "speedups.h"

/* The switch's ISO 8583 log: its length-prefixed records. */

/* The size of the record at ``offset``, or -1 where the split stops: its length
 * prefix cut off, or a length of zero or beyond what remains. */
static inline Py_ssize_t
record_size(const unsigned char *s, Py_ssize_t length, Py_ssize_t offset)
{
    Py_ssize_t size;
    if (offset + 2 > length)
        return -1;
    size = (Py_ssize_t)s[offset] << 8 | s[offset + 1];
    return size == 0 || offset + 2 + size > length ? -1 : size;
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

/* ``log`` and ``values`` (whole native values of ``size`` bytes each) as buffers;
 * -1 with both released and the error set where either cannot be had. */
static int
log_and_values(PyObject *log, PyObject *values, Py_ssize_t size, const char *message,
               Py_buffer *log_view, Py_buffer *values_view)
{
    if (PyObject_GetBuffer(log, log_view, PyBUF_SIMPLE) < 0)
        return -1;
    if (PyObject_GetBuffer(values, values_view, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(log_view);
        return -1;
    }
    if (values_view->len % size) {
        PyErr_SetString(PyExc_ValueError, message);
        PyBuffer_Release(values_view);
        PyBuffer_Release(log_view);
        return -1;
    }
    return 0;
}

/* The records of a log sorted into ``count`` groups by ``owners`` (one native int32
 * per record): each group's records whole (``locate`` 0), or the int64 offsets of
 * their length prefixes plus ``base`` (``locate`` 1), as one bytes object per group. */
static PyObject *
sort_records(PyObject *buffer, PyObject *owners_object, Py_ssize_t count, int locate,
             Py_ssize_t base)
{
    Py_buffer view, owners_view;
    const unsigned char *s;
    const int32_t *owners;
    Py_ssize_t records, record, offset, *sizes = NULL, *filled = NULL;
    PyObject *result = NULL;

    if (count < 0 || base < 0) {
        PyErr_SetString(PyExc_ValueError, "count and base must not be negative");
        return NULL;
    }
    if (log_and_values(buffer, owners_object, (Py_ssize_t)sizeof(int32_t),
                       "owners must hold whole int32 values", &view, &owners_view) < 0)
        return NULL;
    s = (const unsigned char *)view.buf;
    owners = (const int32_t *)owners_view.buf;
    records = owners_view.len / (Py_ssize_t)sizeof(int32_t);
    sizes = PyMem_Calloc((size_t)count + 1, sizeof(Py_ssize_t));
    filled = PyMem_Calloc((size_t)count + 1, sizeof(Py_ssize_t));
    if (sizes == NULL || filled == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* first the size of each group, then its bytes */
    for (record = 0, offset = 0; record < records; record++) {
        Py_ssize_t size = record_size(s, view.len, offset);
        int32_t owner = owners[record];
        if (size < 0)
            break;
        if (owner >= 0 && owner < count)
            sizes[owner] += locate ? (Py_ssize_t)sizeof(int64_t) : 2 + size;
        offset += 2 + size;
    }
    result = PyList_New(count);
    if (result == NULL)
        goto done;
    for (record = 0; record < count; record++) {
        PyObject *group = PyBytes_FromStringAndSize(NULL, sizes[record]);
        if (group == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, record, group);
    }
    for (record = 0, offset = 0; record < records; record++) {
        Py_ssize_t size = record_size(s, view.len, offset);
        int32_t owner = owners[record];
        if (size < 0)
            break;
        if (owner >= 0 && owner < count) {
            char *to = PyBytes_AS_STRING(PyList_GET_ITEM(result, owner)) + filled[owner];
            if (locate) {
                int64_t at = (int64_t)(base + offset);
                memcpy(to, &at, sizeof(int64_t));
                filled[owner] += (Py_ssize_t)sizeof(int64_t);
            }
            else {
                memcpy(to, s + offset, (size_t)(2 + size));
                filled[owner] += 2 + size;
            }
        }
        offset += 2 + size;
    }
done:
    PyMem_Free(sizes);
    PyMem_Free(filled);
    PyBuffer_Release(&owners_view);
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(iso_gather_doc,
"iso_gather(buffer, owners, count, /)\n--\n\n"
"The records of a switch log sorted into ``count`` groups: ``owners`` holds one\n"
"native int32 per record (its group, from 0; any other value leaves it out),\n"
"as reconciliation.host_iso.gather_records does. Returns a list of ``count``\n"
"bytes objects, each its records whole (length prefix and message) in the log's\n"
"order. The walk ends where the records do, or where a record's length does not\n"
"fit in what remains.");

static PyObject *
iso_gather(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t count;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "iso_gather takes three arguments");
        return NULL;
    }
    count = PyLong_AsSsize_t(args[2]);
    if (count == -1 && PyErr_Occurred())
        return NULL;
    return sort_records(args[0], args[1], count, 0, 0);
}

PyDoc_STRVAR(iso_locate_doc,
"iso_locate(buffer, owners, count, base, /)\n--\n\n"
"Where the records of a switch log lie, sorted into ``count`` groups as\n"
"iso_gather sorts them (``owners``: one native int32 per record). Returns a list\n"
"of ``count`` bytes objects, each the native int64 offsets of its records' length\n"
"prefixes, plus ``base``, in the log's order, as\n"
"reconciliation.host_iso.locate_records does. The walk ends where iso_gather's does.");

static PyObject *
iso_locate(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t count, base;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "iso_locate takes four arguments");
        return NULL;
    }
    count = PyLong_AsSsize_t(args[2]);
    base = PyLong_AsSsize_t(args[3]);
    if ((count == -1 || base == -1) && PyErr_Occurred())
        return NULL;
    return sort_records(args[0], args[1], count, 1, base);
}

PyDoc_STRVAR(iso_collect_doc,
"iso_collect(buffer, offsets, /)\n--\n\n"
"The records whose length prefixes lie at ``offsets`` (native int64) of\n"
"``buffer``, whole and in that order, as one bytes object, as\n"
"reconciliation.host_iso.collect_records does. ValueError where an offset does\n"
"not hold a whole record of ``buffer``.");

static PyObject *
iso_collect(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view, offsets_view;
    const unsigned char *s;
    const char *at_bytes;
    Py_ssize_t records, record, total = 0, filled = 0;
    PyObject *result = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "iso_collect takes two arguments");
        return NULL;
    }
    if (log_and_values(args[0], args[1], (Py_ssize_t)sizeof(int64_t),
                       "offsets must hold whole int64 values", &view, &offsets_view) < 0)
        return NULL;
    s = (const unsigned char *)view.buf;
    at_bytes = (const char *)offsets_view.buf;
    records = offsets_view.len / (Py_ssize_t)sizeof(int64_t);
    /* first every record checked and the total, then the bytes */
    for (record = 0; record < records; record++) {
        int64_t at;
        Py_ssize_t size;
        memcpy(&at, at_bytes + record * (Py_ssize_t)sizeof(int64_t), sizeof(int64_t));
        size = at < 0 || at > view.len ? -1 : record_size(s, view.len, (Py_ssize_t)at);
        if (size < 0) {
            PyErr_Format(PyExc_ValueError, "no whole record at offset %lld", (long long)at);
            goto done;
        }
        total += 2 + size;
    }
    result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL)
        goto done;
    for (record = 0; record < records; record++) {
        int64_t at;
        Py_ssize_t size;
        memcpy(&at, at_bytes + record * (Py_ssize_t)sizeof(int64_t), sizeof(int64_t));
        size = record_size(s, view.len, (Py_ssize_t)at);
        memcpy(PyBytes_AS_STRING(result) + filled, s + at, (size_t)(2 + size));
        filled += 2 + size;
    }
done:
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&view);
    return result;
}

/* -- the whole message, into columns --------------------------------------------------- */

enum {
    COL_SEQ, COL_MTI, COL_TERMINAL, COL_DATE, COL_STAN, COL_RRN, COL_TIME, COL_SENT,
    COL_PROCESSING, COL_AMOUNT, COL_RESPONSE, COL_AUTH, COL_PAN, COL_ORIGINAL, COL_ACTUAL,
    COLUMNS
};
static const int column_is_text[COLUMNS] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0};

typedef struct {
    const unsigned char *at;
    Py_ssize_t size;
} Field;

static int
all_digits(Field field)
{
    Py_ssize_t j;
    for (j = 0; j < field.size; j++)
        if (!IS_DIGIT(field.at[j]))
            return 0;
    return 1;
}

static int64_t
number(Field field)
{
    int64_t value = 0;
    Py_ssize_t j;
    for (j = 0; j < field.size; j++)
        value = value * 10 + (field.at[j] - '0');
    return value;
}

/* Python's str.slice [start:start + count] of a field (clamped). */
static Field
cut(Field field, Py_ssize_t start, Py_ssize_t count)
{
    Field part;
    if (start > field.size)
        start = field.size;
    if (count > field.size - start)
        count = field.size - start;
    part.at = field.at + start;
    part.size = count;
    return part;
}

static int
hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Whether no byte has its high bit set; eight at a time. */
static int
is_ascii(const unsigned char *m, Py_ssize_t size)
{
    Py_ssize_t j = 0;
    uint64_t word, high = 0;
    for (; j + 8 <= size; j += 8) {
        memcpy(&word, m + j, 8);
        high |= word;
    }
    for (; j < size; j++)
        high |= m[j];
    return !(high & UINT64_C(0x8080808080808080));
}

/* What str.strip() removes, for ASCII. */
static int
is_strip_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* the fields put_row reads (the others are walked over, and may keep old values) */
static const int read_by_number[] = {2, 3, 4, 7, 11, 12, 13, 37, 38, 39, 41, 90, 95};

/* One record's fields (2 to 128) by the spec's lengths, as the columnar path's
 * layout reads them: 1 when the record is one the fast path takes. */
static int
read_fields(const unsigned char *m, Py_ssize_t size, const int *lengths, Field *fields)
{
    Py_ssize_t bitmap_chars, offset, j;
    int field;
    unsigned char bits[32];

    if (size < 22)
        return 0;
    if (!(memcmp(m, "0200", 4) == 0 || memcmp(m, "0210", 4) == 0 || memcmp(m, "0420", 4) == 0))
        return 0;
    bitmap_chars = (m[4] >= '8' && m[4] <= '9') || (m[4] >= 'A' && m[4] <= 'F') ? 32 : 16;
    if (size < 4 + bitmap_chars)
        return 0;
    for (j = 0; j < bitmap_chars; j++) {
        int value = hex_value(m[4 + j]);
        if (value < 0)
            return 0;
        bits[j] = (unsigned char)value;
    }
    for (j = 0; j < (Py_ssize_t)(sizeof(read_by_number) / sizeof(*read_by_number)); j++)
        fields[read_by_number[j]].at = NULL, fields[read_by_number[j]].size = 0;
    offset = 4 + bitmap_chars;
    for (field = 2; field <= bitmap_chars * 4; field++) {
        Py_ssize_t width;
        unsigned nibble = bits[(unsigned)(field - 1) >> 2];
        if (nibble == 0) { /* none of this hex digit's four fields: on to the next */
            field = (int)(((unsigned)(field - 1) | 3) + 1);
            continue;
        }
        if (!(nibble >> (3 - ((unsigned)(field - 1) & 3)) & 1))
            continue;
        width = lengths[field];
        if (width == 0)
            return 0; /* a field the fast path does not read */
        if (width < 0) { /* DE2, two-digit length */
            if (offset + 2 > size || !IS_DIGIT(m[offset]) || !IS_DIGIT(m[offset + 1]))
                return 0;
            width = (m[offset] - '0') * 10 + (m[offset + 1] - '0');
            offset += 2;
        }
        fields[field].at = m + offset;
        fields[field].size = width;
        offset += width;
        if (offset > size)
            return 0;
    }
    if (offset != size)
        return 0;
    if (fields[3].at == NULL || fields[4].at == NULL || fields[11].at == NULL
        || fields[12].at == NULL || fields[13].at == NULL || fields[41].at == NULL)
        return 0;
    if (!all_digits(fields[3]) || !all_digits(fields[4]) || !all_digits(fields[7])
        || !all_digits(fields[11]) || !all_digits(fields[12]) || !all_digits(fields[13]))
        return 0;
    if (fields[4].size > 18 || fields[13].size != 4)
        return 0;
    if (m[2] == '2' && m[3] == '0' && !all_digits(cut(fields[95], 0, 12)))
        return 0; /* 0420 */
    return 1;
}

static int
put(Column *column, Field field)
{
    return column_text(column, (const char *)field.at, field.size);
}

/* The columns of a thin pass (what the run's process keeps of a log that its
 * workers read again), in the order it returns them. */
static const int thin_columns[] = {COL_SEQ, COL_MTI, COL_TERMINAL, COL_DATE,
                                   COL_STAN, COL_AMOUNT, COL_RESPONSE};
#define THIN_COLUMNS ((Py_ssize_t)(sizeof(thin_columns) / sizeof(thin_columns[0])))

static int
put_row(Column *columns, const unsigned char *m, Field *fields, int64_t seq,
        const char *business_date, Py_ssize_t date_size, int thin)
{
    int reversal = m[2] == '2';
    Field mti = {m, 4}, terminal = fields[41], time = fields[12], pan = fields[2];
    char *at;

    while (terminal.size && is_strip_space(terminal.at[0])) {
        terminal.at++;
        terminal.size--;
    }
    while (terminal.size && is_strip_space(terminal.at[terminal.size - 1]))
        terminal.size--;
    if (column_int(&columns[COL_SEQ], seq) < 0 || put(&columns[COL_MTI], mti) < 0
        || put(&columns[COL_TERMINAL], terminal) < 0
        || column_text(&columns[COL_DATE], business_date, date_size) < 0
        || put(&columns[COL_STAN], fields[11]) < 0
        || column_int(&columns[COL_AMOUNT], number(fields[4])) < 0
        || put(&columns[COL_RESPONSE], fields[39]) < 0)
        return -1;
    if (thin)
        return 0;
    if (put(&columns[COL_RRN], fields[37]) < 0)
        return -1;
    /* HH:MM:SS from HHMMSS */
    {
        Field hours = cut(time, 0, 2), minutes = cut(time, 2, 2), seconds = cut(time, 4, 2);
        at = column_space(&columns[COL_TIME], hours.size + minutes.size + seconds.size + 2);
        if (at == NULL)
            return -1;
        memcpy(at, hours.at, (size_t)hours.size);
        at += hours.size;
        *at++ = ':';
        memcpy(at, minutes.at, (size_t)minutes.size);
        at += minutes.size;
        *at++ = ':';
        memcpy(at, seconds.at, (size_t)seconds.size);
    }
    if (put(&columns[COL_SENT], fields[7]) < 0 || put(&columns[COL_PROCESSING], fields[3]) < 0
        || put(&columns[COL_AUTH], fields[38]) < 0)
        return -1;
    if (pan.size >= 10) {
        at = column_space(&columns[COL_PAN], 16);
        if (at == NULL)
            return -1;
        memcpy(at, pan.at, 6);
        memcpy(at + 6, "******", 6);
        memcpy(at + 12, pan.at + pan.size - 4, 4);
    }
    else if (put(&columns[COL_PAN], pan) < 0)
        return -1;
    if (reversal) {
        Field actual = cut(fields[95], 0, 12);
        if (put(&columns[COL_ORIGINAL], cut(fields[90], 4, 6)) < 0
            || column_int(&columns[COL_ACTUAL], actual.size ? number(actual) : 0) < 0)
            return -1;
    }
    else if (column_text(&columns[COL_ORIGINAL], "", 0) < 0
             || column_int(&columns[COL_ACTUAL], -1) < 0)
        return -1;
    return 0;
}

PyDoc_STRVAR(iso_columns_doc,
"iso_columns(buffer, lengths, dates, first_record, thin=False, /)\n--\n\n"
"The records of a switch log as columns, as reconciliation.host_iso's columnar\n"
"path (_frame_by_layout) reads them: ``lengths`` gives each field's length by\n"
"number (0 to 128; -1 for DE2's two-digit length, 0 for a field this path does\n"
"not read) and ``dates`` the business date of each DE13 value 0000 to 9999 (or\n"
"None). Returns (columns, odd, count, stop): 15 ArrowColumn objects (seq, mti,\n"
"terminal_id, business_date, stan, rrn, time, sent, processing_code,\n"
"amount_minor, response_code, auth_code, pan_masked, original_stan,\n"
"actual_minor; with ``thin``, only seq, mti, terminal_id, business_date,\n"
"stan, amount_minor and response_code), the records left for the record path\n"
"as (index, offset, bytes), the number of records met and the offset where\n"
"the split stopped.");

/* A record the compiled pass leaves to the record path. */
typedef struct {
    Py_ssize_t index, offset, size;
} Odd;

/* The business date of each DE13 value, copied out of their Python strings. */
typedef struct {
    char text[10000][16];
    unsigned char size[10000]; /* 0: not a date */
} Dates;

/* The pass itself, over ``s[0:length]``; touches no Python object, so it runs
 * without the GIL. 0, or -1 when out of memory. */
static int
iso_pass(const unsigned char *s, Py_ssize_t length, const int *lengths, const Dates *dates,
         int64_t first, int thin, Column *columns, Odd **odd, Py_ssize_t *odd_count,
         Py_ssize_t *count_out, Py_ssize_t *stop)
{
    Field fields[129];
    Py_ssize_t offset = 0, count = 0, room = 0;
    int failed = 0;
    while (offset < length) {
        Py_ssize_t size, end;
        const unsigned char *m;
        int taken = 0;
        count++;
        size = record_size(s, length, offset);
        if (size < 0)
            break;
        end = offset + 2 + size;
        m = s + offset + 2;
        if (is_ascii(m, size) && read_fields(m, size, lengths, fields)) {
            const Field day = fields[13];
            int index = (day.at[0] - '0') * 1000 + (day.at[1] - '0') * 100
                        + (day.at[2] - '0') * 10 + (day.at[3] - '0');
            if (dates->size[index]) {
                if (put_row(columns, m, fields, first + count - 1, dates->text[index],
                            dates->size[index], thin) < 0) {
                    failed = 1;
                    break;
                }
                taken = 1;
            }
        }
        if (!taken) {
            if (*odd_count == room) {
                Odd *moved;
                room = room ? room * 2 : 64;
                moved = realloc(*odd, sizeof(Odd) * (size_t)room);
                if (moved == NULL) {
                    failed = 1;
                    break;
                }
                *odd = moved;
            }
            (*odd)[*odd_count].index = count - 1;
            (*odd)[*odd_count].offset = offset;
            (*odd)[*odd_count].size = size;
            (*odd_count)++;
        }
        offset = end;
    }
    *count_out = count;
    *stop = offset;
    return failed ? -1 : 0;
}

static PyObject *
iso_columns(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Column columns[COLUMNS];
    int lengths[129];
    Dates *dates = NULL;
    Odd *odd_records = NULL;
    PyObject *odd = NULL, *made = NULL, *result = NULL;
    Py_ssize_t count = 0, stop = 0, odd_count = 0, j;
    int64_t first;
    int ready = 0, failed, thin = 0;

    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "iso_columns takes four or five arguments");
        return NULL;
    }
    if (nargs == 5 && (thin = PyObject_IsTrue(args[4])) < 0)
        return NULL;
    if (!PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != 129) {
        PyErr_SetString(PyExc_TypeError, "lengths must be a tuple of 129 ints");
        return NULL;
    }
    if (!PyList_Check(args[2]) || PyList_GET_SIZE(args[2]) != 10000) {
        PyErr_SetString(PyExc_TypeError, "dates must be a list of 10000 str or None");
        return NULL;
    }
    for (j = 0; j < 129; j++) {
        long value = PyLong_AsLong(PyTuple_GET_ITEM(args[1], j));
        if (value == -1 && PyErr_Occurred())
            return NULL;
        lengths[j] = value < -1 || value > 999 ? 0 : (int)value;
    }
    first = PyLong_AsLongLong(args[3]);
    if (first == -1 && PyErr_Occurred())
        return NULL;
    dates = PyMem_Calloc(1, sizeof(*dates));
    if (dates == NULL)
        return PyErr_NoMemory();
    for (j = 0; j < 10000; j++) {
        PyObject *item = PyList_GET_ITEM(args[2], j);
        const char *text;
        Py_ssize_t size;
        if (item == Py_None)
            continue;
        text = PyUnicode_AsUTF8AndSize(item, &size);
        if (text == NULL)
            goto early;
        if (size < 1 || size > 16) {
            PyErr_SetString(PyExc_ValueError, "a business date of 1 to 16 bytes");
            goto early;
        }
        memcpy(dates->text[j], text, (size_t)size);
        dates->size[j] = (unsigned char)size;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        goto early;
    for (ready = 0; ready < COLUMNS; ready++)
        /* a record takes a hundred bytes or more; a value 16 bytes at most */
        if (column_init(&columns[ready], column_is_text[ready], view.len / 100, view.len / 6) < 0)
            goto done;
    Py_BEGIN_ALLOW_THREADS
    failed = iso_pass((const unsigned char *)view.buf, view.len, lengths, dates, first, thin,
                      columns, &odd_records, &odd_count, &count, &stop);
    Py_END_ALLOW_THREADS
    if (failed)
        goto done;
    odd = PyList_New(odd_count);
    if (odd == NULL)
        goto done;
    for (j = 0; j < odd_count; j++) {
        const Odd *item = &odd_records[j];
        PyObject *message = PyBytes_FromStringAndSize(
            (const char *)view.buf + item->offset + 2, item->size);
        PyObject *entry = message == NULL
                              ? NULL
                              : Py_BuildValue("(nnN)", item->index, item->offset, message);
        if (entry == NULL)
            goto done;
        PyList_SET_ITEM(odd, j, entry);
    }
    made = PyTuple_New(thin ? THIN_COLUMNS : COLUMNS);
    if (made == NULL)
        goto done;
    for (j = 0; j < PyTuple_GET_SIZE(made); j++) {
        PyObject *column = column_export(&columns[thin ? thin_columns[j] : j]);
        if (column == NULL)
            goto done;
        PyTuple_SET_ITEM(made, j, column);
    }
    result = Py_BuildValue("(OOnn)", made, odd, count, stop);
done:
    for (j = 0; j < ready; j++)
        column_free(&columns[j]);
    Py_XDECREF(made);
    Py_XDECREF(odd);
    PyBuffer_Release(&view);
    if (result == NULL && !PyErr_Occurred())
        PyErr_NoMemory(); /* a column or the list of odd records could not grow */
early:
    free(odd_records);
    PyMem_Free(dates);
    return result;
}

PyMethodDef host_methods[] = {
    {"iso_columns", (PyCFunction)(void (*)(void))iso_columns, METH_FASTCALL, iso_columns_doc},
    {"iso_walk", (PyCFunction)(void (*)(void))iso_walk, METH_FASTCALL, iso_walk_doc},
    {"iso_gather", (PyCFunction)(void (*)(void))iso_gather, METH_FASTCALL, iso_gather_doc},
    {"iso_locate", (PyCFunction)(void (*)(void))iso_locate, METH_FASTCALL, iso_locate_doc},
    {"iso_collect", (PyCFunction)(void (*)(void))iso_collect, METH_FASTCALL, iso_collect_doc},
    {NULL, NULL, 0, NULL},
};
