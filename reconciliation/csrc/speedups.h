/*
 * Compiled versions of the reconciliation's innermost loops: the extension module
 * reconciliation._speedups, built from the files of this folder.
 *
 * Each function does exactly what a pure-Python function of the package does
 * (named in its docstring), which stays the reference: the package uses the
 * Python version when the module is not built, and the tests compare the two.
 */
#ifndef RECONCILIATION_SPEEDUPS_H
#define RECONCILIATION_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')

/* The newlines in s[start:end]: lines are short, so a plain loop, which the
 * compiler widens. */
static inline Py_ssize_t
newlines(const char *s, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t count = 0;
    const char *at = s + start, *stop = s + end;
    for (; at < stop; at++)
        count += *at == '\n';
    return count;
}

/* The ``count`` record field positions of the tuple ``positions`` into ``field``,
 * and one past the largest into ``width`` (the records' least length); 0, or -1
 * with an exception set. */
int field_positions(PyObject *positions, Py_ssize_t count, Py_ssize_t *field, Py_ssize_t *width);

/* ``item`` (a new reference, or NULL after an error) appended to ``list`` and
 * released; -1 on error. */
int append_new(PyObject *list, PyObject *item);

/* A tuple of ``count`` ints (a new reference; NULL with an exception set), made
 * directly rather than through Py_BuildValue's format, in the loops that make
 * one per block or pair. */
PyObject *ints_tuple(Py_ssize_t count, const long long *values);

/* A column of int64 values or of text (int64 offsets into ``data``), growing as
 * values are appended; handed to Polars by column_export (arrow.c). */
typedef struct {
    int text;
    int64_t length;   /* values appended */
    int64_t capacity; /* room in ``values`` */
    int64_t *values;  /* the numbers, or a text column's length + 1 offsets */
    char *data;       /* a text column's bytes */
    int64_t size;     /* bytes in ``data`` */
    int64_t room;     /* room in ``data`` */
} Column;

/* The column functions touch no Python object, so they may run without the GIL;
 * on running out of memory they return -1 (or NULL) and set no exception: the
 * caller raises MemoryError once it holds the GIL again. */

/* An empty column with room for about ``rows`` values of ``bytes`` bytes in all
 * (it grows past them as needed). */
int column_init(Column *column, int text, int64_t rows, int64_t bytes);
/* Room for ``values`` more values and ``bytes`` more bytes (arrow.c). */
int column_reserve(Column *column, int64_t values, int64_t bytes);
void column_free(Column *column);

static inline int
column_int(Column *column, int64_t value)
{
    if (column->length + 1 > column->capacity && column_reserve(column, 1, 0) < 0)
        return -1;
    column->values[column->length++] = value;
    return 0;
}

/* Room for a text value of ``size`` bytes, appended; NULL when out of memory. */
static inline char *
column_space(Column *column, int64_t size)
{
    char *at;
    if ((column->length + 2 > column->capacity || column->size + size > column->room)
        && column_reserve(column, 2, size) < 0)
        return NULL;
    at = column->data + column->size;
    column->size += size;
    column->values[++column->length] = column->size;
    return at;
}

static inline int
column_text(Column *column, const char *text, int64_t size)
{
    char *at = column_space(column, size);
    if (at == NULL)
        return -1;
    if (size > 0) /* an absent field has no text at all (NULL) */
        memcpy(at, text, (size_t)size);
    return 0;
}
/* A new reference to an object with ``__arrow_c_array__`` that owns the column's
 * buffers (``column`` is left empty); NULL with an exception set. */
PyObject *column_export(Column *column);
int arrow_init(void);

/* Each file's functions, added to the module by module.c. */
extern PyMethodDef paper_methods[];
extern PyMethodDef host_methods[];
extern PyMethodDef ej_methods[];
extern PyMethodDef columns_methods[];
extern PyMethodDef receipts_methods[];
extern PyMethodDef xlsx_methods[];

/* The EJ code's shared strings, made once when the module is imported. */
int ej_init(void);

#endif
