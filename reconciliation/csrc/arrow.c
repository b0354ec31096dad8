#include "speedups.h"

/*
 * Columns built in C and handed to Polars through the Arrow C data interface
 * (https://arrow.apache.org/docs/format/CDataInterface.html) and its PyCapsule
 * protocol: an ArrowColumn has ``__arrow_c_array__``, which ``pl.Series`` reads
 * without a Python object per value. Text columns are Arrow "large UTF-8" (int64
 * offsets, format "U"), numbers int64 ("l"); no nulls.
 *
 * The buffers are malloc'd; once exported, the Arrow array owns them and its
 * release callback frees them without touching Python (a consumer may release
 * it from any thread).
 */

struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

static int
grow(void **buffer, int64_t *capacity, int64_t needed, size_t item)
{
    int64_t room = *capacity;
    void *moved;
    if (needed <= room)
        return 0;
    while (room < needed)
        room = room < 64 ? 64 : room * 2;
    moved = realloc(*buffer, (size_t)room * item);
    if (moved == NULL)
        return -1; /* no exception here: the caller may not hold the GIL */
    *buffer = moved;
    *capacity = room;
    return 0;
}

int
column_init(Column *column, int text, int64_t rows, int64_t bytes)
{
    memset(column, 0, sizeof(*column));
    column->text = text;
    if (grow((void **)&column->values, &column->capacity, rows + 1, sizeof(int64_t)) < 0
        || (text && grow((void **)&column->data, &column->room, bytes + 1, 1) < 0)) {
        column_free(column);
        return -1;
    }
    column->values[0] = 0; /* a text column's first offset */
    return 0;
}

void
column_free(Column *column)
{
    free(column->values);
    free(column->data);
    column->values = NULL;
    column->data = NULL;
    column->length = column->capacity = column->size = column->room = 0;
}

int
column_reserve(Column *column, int64_t values, int64_t bytes)
{
    if (grow((void **)&column->values, &column->capacity, column->length + values,
             sizeof(int64_t)) < 0)
        return -1;
    return column->text ? grow((void **)&column->data, &column->room, column->size + bytes, 1) : 0;
}

/* -- export ------------------------------------------------------------------------ */

static void
release_schema(struct ArrowSchema *schema)
{
    schema->release = NULL; /* format and name are static */
}

static void
release_array(struct ArrowArray *array)
{
    void **owned = (void **)array->private_data;
    free(owned[0]);
    free(owned[1]);
    free(owned);
    free((void *)array->buffers);
    array->release = NULL;
}

static void
drop_schema_capsule(PyObject *capsule)
{
    struct ArrowSchema *schema = PyCapsule_GetPointer(capsule, "arrow_schema");
    if (schema != NULL && schema->release != NULL)
        schema->release(schema);
    free(schema);
}

static void
drop_array_capsule(PyObject *capsule)
{
    struct ArrowArray *array = PyCapsule_GetPointer(capsule, "arrow_array");
    if (array != NULL && array->release != NULL)
        array->release(array);
    free(array);
}

typedef struct {
    PyObject_HEAD
    Column column;
    int exported;
} ArrowColumn;

static PyObject *
arrow_c_array(ArrowColumn *self, PyObject *const *args, Py_ssize_t nargs)
{
    Column *column = &self->column;
    struct ArrowSchema *schema = NULL;
    struct ArrowArray *array = NULL;
    const void **buffers = NULL;
    void **owned = NULL;
    PyObject *schema_capsule = NULL, *array_capsule = NULL, *result;

    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "__arrow_c_array__ takes at most one argument");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        PyErr_SetString(PyExc_NotImplementedError, "this column is exported in its own type only");
        return NULL;
    }
    if (self->exported) {
        PyErr_SetString(PyExc_ValueError, "this column was already exported");
        return NULL;
    }
    schema = calloc(1, sizeof(*schema));
    array = calloc(1, sizeof(*array));
    buffers = calloc(3, sizeof(*buffers));
    owned = calloc(2, sizeof(*owned));
    if (schema == NULL || array == NULL || buffers == NULL || owned == NULL) {
        free(schema);
        free(array);
        free((void *)buffers);
        free(owned);
        return PyErr_NoMemory();
    }
    schema->format = column->text ? "U" : "l";
    schema->name = "";
    schema->release = release_schema;
    buffers[0] = NULL; /* no validity bitmap: no nulls */
    buffers[1] = column->values;
    buffers[2] = column->data;
    owned[0] = column->values;
    owned[1] = column->data;
    array->length = column->length;
    array->n_buffers = column->text ? 3 : 2;
    array->buffers = buffers;
    array->release = release_array;
    array->private_data = owned;
    /* the array owns the buffers from here on */
    column->values = NULL;
    column->data = NULL;
    self->exported = 1;

    schema_capsule = PyCapsule_New(schema, "arrow_schema", drop_schema_capsule);
    if (schema_capsule == NULL) {
        schema->release(schema);
        free(schema);
        array->release(array);
        free(array);
        return NULL;
    }
    array_capsule = PyCapsule_New(array, "arrow_array", drop_array_capsule);
    if (array_capsule == NULL) {
        Py_DECREF(schema_capsule);
        array->release(array);
        free(array);
        return NULL;
    }
    result = PyTuple_Pack(2, schema_capsule, array_capsule);
    Py_DECREF(schema_capsule);
    Py_DECREF(array_capsule);
    return result;
}

static Py_ssize_t
arrow_column_length(ArrowColumn *self)
{
    return (Py_ssize_t)self->column.length;
}

static void
arrow_column_dealloc(ArrowColumn *self)
{
    column_free(&self->column);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef arrow_column_methods[] = {
    {"__arrow_c_array__", (PyCFunction)(void (*)(void))arrow_c_array, METH_FASTCALL,
     "The column as (ArrowSchema, ArrowArray) capsules; once only."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods arrow_column_sequence = {
    .sq_length = (lenfunc)arrow_column_length,
};

static PyTypeObject ArrowColumnType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "reconciliation._speedups.ArrowColumn",
    .tp_doc = "A column made by the compiled code, read by Polars through the Arrow C data "
              "interface (pl.Series(name, column)).",
    .tp_basicsize = sizeof(ArrowColumn),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)arrow_column_dealloc,
    .tp_methods = arrow_column_methods,
    .tp_as_sequence = &arrow_column_sequence,
};

int
arrow_init(void)
{
    return PyType_Ready(&ArrowColumnType);
}

PyObject *
column_export(Column *column)
{
    ArrowColumn *made = PyObject_New(ArrowColumn, &ArrowColumnType);
    if (made == NULL) {
        column_free(column);
        return NULL;
    }
    made->column = *column; /* the object owns the buffers now */
    made->exported = 0;
    memset(column, 0, sizeof(*column));
    return (PyObject *)made;
}
