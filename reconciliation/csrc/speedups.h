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
#include <string.h>

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')

/* A new str of ``size`` ASCII characters appended to ``list``; -1 on error. */
int append_ascii(PyObject *list, const char *text, Py_ssize_t size);

/* ``item`` (a new reference, or NULL after an error) appended to ``list`` and
 * released; -1 on error. */
int append_new(PyObject *list, PyObject *item);

/* Each file's functions, added to the module by module.c. */
extern PyMethodDef paper_methods[];
extern PyMethodDef host_methods[];
extern PyMethodDef ej_methods[];

/* The EJ code's shared strings, made once when the module is imported. */
int ej_init(void);

#endif
