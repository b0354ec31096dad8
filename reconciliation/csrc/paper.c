#include "speedups.h"

/* The paper journal: readings of each block, exact anchors, runs of lines. */

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

/* Readings of one kind found in a block so far: references, moved into a tuple
 * once the block is read (one array per kind, reused from block to block). */
typedef struct {
    PyObject **items;
    Py_ssize_t size, capacity;
} Found;

/* Appends a new ASCII string of text[:size]; -1 on error. */
static int
found_ascii(Found *found, const char *text, Py_ssize_t size)
{
    PyObject *item;
    if (found->size == found->capacity) {
        Py_ssize_t capacity = found->capacity ? found->capacity * 2 : 16;
        PyObject **grown = PyMem_Realloc(found->items, (size_t)capacity * sizeof(PyObject *));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        found->items = grown;
        found->capacity = capacity;
    }
    item = PyUnicode_New(size, 127);
    if (item == NULL)
        return -1;
    memcpy(PyUnicode_DATA(item), text, (size_t)size);
    found->items[found->size++] = item;
    return 0;
}

/* The readings found so far as a new tuple (the references move into it). */
static PyObject *
found_tuple(Found *found)
{
    PyObject *items = PyTuple_New(found->size);
    Py_ssize_t k;
    if (items == NULL)
        return NULL;
    for (k = 0; k < found->size; k++)
        PyTuple_SET_ITEM(items, k, found->items[k]);
    found->size = 0;
    return items;
}

static void
found_clear(Found *found)
{
    while (found->size > 0)
        Py_DECREF(found->items[--found->size]);
}

static void
found_free(Found *found)
{
    found_clear(found);
    PyMem_Free(found->items);
    found->items = NULL;
    found->capacity = 0;
}

/* The readings of s[start:end] (numbers, rrns, times) into out[0..2] as three new
 * tuples; -1 on error (out untouched). ``kinds`` holds three empty Found. */
static int
block_readings(const unsigned char *s, Py_ssize_t start, Py_ssize_t end, Found *kinds,
               PyObject **out)
{
    char digits[KEEP_MAX + 2];
    Py_ssize_t i = start;
    int k;

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
            if (found_ascii(&kinds[2], compact, size) < 0)
                goto fail;
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
                if (found_ascii(&kinds[0], digits, count) < 0)
                    goto fail;
            }
            else if (count >= 11 && count <= 13) {
                if (found_ascii(&kinds[1], digits, count) < 0)
                    goto fail;
            }
        }
        i = stop;
    }
    for (k = 0; k < 3; k++) {
        out[k] = found_tuple(&kinds[k]);
        if (out[k] == NULL) {
            while (k-- > 0)
                Py_CLEAR(out[k]);
            goto fail;
        }
    }
    return 0;
fail:
    for (k = 0; k < 3; k++)
        found_clear(&kinds[k]);
    return -1;
}

PyDoc_STRVAR(paper_readings_doc,
"paper_readings(normal, spans, cls=None, /)\n--\n\n"
"reconciliation.paper.candidates(normal[start:end]) for every span of\n"
"``spans``, a list of (first line, last line, start, end) tuples; with the\n"
"PaperBlock ``cls`` (a tuple type), each block as reconciliation.paper._blocks\n"
"makes it: cls(index, first line, last line, start, end, *candidates).");

static PyObject *
paper_readings(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    PyObject *spans, *result = NULL;
    Py_ssize_t count, index;
    Found kinds[3] = {{NULL, 0, 0}, {NULL, 0, 0}, {NULL, 0, 0}}; /* numbers, rrns, times */
    PyTypeObject *cls = NULL;

    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "paper_readings takes two or three arguments");
        return NULL;
    }
    if (!PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "spans must be a list");
        return NULL;
    }
    if (nargs == 3 && args[2] != Py_None) {
        if (!PyType_Check(args[2]) || !PyType_IsSubtype((PyTypeObject *)args[2], &PyTuple_Type)) {
            PyErr_SetString(PyExc_TypeError, "cls must be a tuple type");
            return NULL;
        }
        cls = (PyTypeObject *)args[2];
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    spans = args[1];
    count = PyList_GET_SIZE(spans);
    result = PyList_New(count);
    if (result == NULL)
        goto done;
    for (index = 0; index < count; index++) {
        PyObject *span = PyList_GET_ITEM(spans, index), *found[3], *item;
        Py_ssize_t start, end, k;
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
        if (block_readings((const unsigned char *)view.buf, start, end, kinds, found) < 0)
            goto fail;
        if (cls != NULL) {
            PyObject *position = PyLong_FromSsize_t(index);
            item = position == NULL ? NULL : cls->tp_alloc(cls, 8);
            if (item == NULL) {
                Py_XDECREF(position);
                for (k = 0; k < 3; k++)
                    Py_DECREF(found[k]);
                goto fail;
            }
            PyTuple_SET_ITEM(item, 0, position);
            for (k = 0; k < 4; k++)
                PyTuple_SET_ITEM(item, 1 + k, Py_NewRef(PyTuple_GET_ITEM(span, k)));
            for (k = 0; k < 3; k++)
                PyTuple_SET_ITEM(item, 5 + k, found[k]);
        }
        else {
            item = PyTuple_New(3);
            if (item == NULL) {
                for (k = 0; k < 3; k++)
                    Py_DECREF(found[k]);
                goto fail;
            }
            for (k = 0; k < 3; k++)
                PyTuple_SET_ITEM(item, k, found[k]);
        }
        PyList_SET_ITEM(result, index, item);
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    for (index = 0; index < 3; index++)
        found_free(&kinds[index]);
    PyBuffer_Release(&view);
    return result;
}

/* --- paper anchors ---------------------------------------------------------------- */

typedef struct {
    PyObject *index; /* borrowed from the dictionaries */
    long score;
} Score;

typedef struct {
    Score *items;
    Py_ssize_t size, capacity;
} Scores;

static int
scores_add(Scores *scores, PyObject *index, long score)
{
    Py_ssize_t i;
    for (i = 0; i < scores->size; i++) {
        int same = PyObject_RichCompareBool(scores->items[i].index, index, Py_EQ);
        if (same < 0)
            return -1;
        if (same) {
            scores->items[i].score += score;
            return 0;
        }
    }
    if (scores->size == scores->capacity) {
        Py_ssize_t capacity = scores->capacity ? scores->capacity * 2 : 8;
        Score *items = PyMem_Realloc(scores->items, (size_t)capacity * sizeof(Score));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        scores->items = items;
        scores->capacity = capacity;
    }
    scores->items[scores->size].index = index;
    scores->items[scores->size].score = score;
    scores->size++;
    return 0;
}

/* lookup[token] (borrowed) or NULL; -1 on error */
static int
lookup(PyObject *mapping, PyObject *token, PyObject **found)
{
    *found = PyDict_GetItemWithError(mapping, token);
    return (*found == NULL && PyErr_Occurred()) ? -1 : 0;
}

/* whether compact[index] is one of ``times``; -1 on error */
static int
time_agrees(PyObject *compact, PyObject *index, PyObject *times)
{
    Py_ssize_t at = PyLong_AsSsize_t(index);
    if (at == -1 && PyErr_Occurred())
        return -1;
    if (at < 0 || at >= PyList_GET_SIZE(compact)) {
        PyErr_SetString(PyExc_IndexError, "an expected index beyond the compact times");
        return -1;
    }
    return PySequence_Contains(times, PyList_GET_ITEM(compact, at));
}

PyDoc_STRVAR(paper_exact_pairs_doc,
"paper_exact_pairs(blocks, by_stan, by_rrn, compact, /)\n--\n\n"
"The scored (block, expected index, score) anchors of\n"
"reconciliation.paper_match._exact_pairs, sorted.");

static PyObject *
paper_exact_pairs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *blocks, *by_stan, *by_rrn, *compact, *pairs;
    Scores scores = {NULL, 0, 0};
    Py_ssize_t b, count;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "paper_exact_pairs takes four arguments");
        return NULL;
    }
    blocks = args[0];
    by_stan = args[1];
    by_rrn = args[2];
    compact = args[3];
    if (!PyList_Check(blocks) || !PyDict_Check(by_stan) || !PyDict_Check(by_rrn)
        || !PyList_Check(compact)) {
        PyErr_SetString(PyExc_TypeError,
                        "expected a list of blocks, two dicts and a list of times");
        return NULL;
    }
    pairs = PyList_New(0);
    if (pairs == NULL)
        return NULL;
    count = PyList_GET_SIZE(blocks);
    for (b = 0; b < count; b++) {
        PyObject *block = PyList_GET_ITEM(blocks, b), *stans, *rrns, *times, *position;
        Py_ssize_t t, kept, best;
        if (!PyTuple_Check(block) || PyTuple_GET_SIZE(block) != 8) {
            PyErr_SetString(PyExc_TypeError, "a block must be a PaperBlock");
            goto fail;
        }
        position = PyTuple_GET_ITEM(block, 0);
        stans = PyTuple_GET_ITEM(block, 5);
        rrns = PyTuple_GET_ITEM(block, 6);
        times = PyTuple_GET_ITEM(block, 7);
        if (!PyTuple_Check(stans) || !PyTuple_Check(rrns) || !PyTuple_Check(times)) {
            PyErr_SetString(PyExc_TypeError, "a block's readings must be tuples");
            goto fail;
        }
        scores.size = 0;
        for (t = 0; t < PyTuple_GET_SIZE(stans); t++) {
            PyObject *found;
            if (lookup(by_stan, PyTuple_GET_ITEM(stans, t), &found) < 0)
                goto fail;
            if (found != NULL && scores_add(&scores, found, 2) < 0)
                goto fail;
        }
        for (t = 0; t < PyTuple_GET_SIZE(rrns); t++) {
            PyObject *token = PyTuple_GET_ITEM(rrns, t), *found;
            if (lookup(by_rrn, token, &found) < 0)
                goto fail;
            if (found != NULL) {
                if (scores_add(&scores, found, 3) < 0)
                    goto fail;
            }
            else if (PyUnicode_Check(token) && PyUnicode_GET_LENGTH(token) == 12) {
                PyObject *tail = PyUnicode_Substring(token, 6, 12);
                int failed;
                if (tail == NULL)
                    goto fail;
                failed = lookup(by_stan, tail, &found);
                Py_DECREF(tail);
                if (failed < 0)
                    goto fail;
                if (found != NULL && scores_add(&scores, found, 1) < 0)
                    goto fail;
            }
        }
        if (scores.size == 0)
            continue;
        /* each score with the time's point; then those of at least 2 */
        for (t = 0; t < scores.size; t++) {
            int agrees = time_agrees(compact, scores.items[t].index, times);
            if (agrees < 0)
                goto fail;
            scores.items[t].score += agrees;
        }
        kept = 0;
        best = -1;
        for (t = 0; t < scores.size; t++) {
            if (scores.items[t].score >= 2) {
                scores.items[kept++] = scores.items[t];
            }
        }
        if (kept > 1 && PyTuple_GET_SIZE(times) < 2) {
            /* one receipt's worth of text: only the best (score, then index) */
            best = 0;
            for (t = 1; t < kept; t++) {
                int greater;
                if (scores.items[t].score != scores.items[best].score) {
                    if (scores.items[t].score > scores.items[best].score)
                        best = t;
                    continue;
                }
                greater = PyObject_RichCompareBool(scores.items[t].index,
                                                   scores.items[best].index, Py_GT);
                if (greater < 0)
                    goto fail;
                if (greater)
                    best = t;
            }
            scores.items[0] = scores.items[best];
            kept = 1;
        }
        for (t = 0; t < kept; t++) {
            PyObject *score = PyLong_FromLong(scores.items[t].score), *pair = NULL;
            if (score != NULL) {
                pair = PyTuple_Pack(3, position, scores.items[t].index, score);
                Py_DECREF(score);
            }
            if (append_new(pairs, pair) < 0)
                goto fail;
        }
    }
    PyMem_Free(scores.items);
    if (PyList_Sort(pairs) < 0) {
        Py_DECREF(pairs);
        return NULL;
    }
    return pairs;
fail:
    PyMem_Free(scores.items);
    Py_DECREF(pairs);
    return NULL;
}

/* --- paper journal blocks --------------------------------------------------------- */

static int
is_ascii_letter(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* reconciliation.paper._marker_count of line[0:size] (its newline included); -1 with
 * MemoryError set */
static int
marker_count(const unsigned char *line, Py_ssize_t size)
{
    Py_ssize_t stars = 0, letters = 0, i;
    int start = 0, end = 0;
    for (i = 0; i < size; i++)
        stars += line[i] == '*';
    if (stars < 8)
        return 0;
    if (stars >= 55)
        return 2;
    if (size - stars > 12) {
        char *upper;
        Py_ssize_t kept = 0;
        for (i = 0; i < size; i++)
            letters += is_ascii_letter(line[i]);
        if (letters > 12)
            return 1;
        upper = PyMem_Malloc((size_t)size + 1);
        if (upper == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (i = 0; i < size; i++) {
            unsigned char c = line[i];
            if (c == ' ')
                continue;
            upper[kept++] = (char)((c >= 'a' && c <= 'z') ? c - 32 : c);
        }
        start = memmem(upper, (size_t)kept, "START", 5) != NULL;
        end = memmem(upper, (size_t)kept, "END", 3) != NULL;
        PyMem_Free(upper);
        if (start && end)
            return 2;
    }
    return 1;
}

/* the asterisk markers of one line (reconciliation.paper._line_markers): eight
 * asterisks or more, two of them adjacent; -1 on error */
static int
line_markers(const unsigned char *line, Py_ssize_t size)
{
    Py_ssize_t stars = 0, i;
    int pair = 0;
    for (i = 0; i < size; i++) {
        if (line[i] == '*') {
            stars++;
            if (i + 1 < size && line[i + 1] == '*')
                pair = 1;
        }
    }
    if (stars < 8 || !pair)
        return 0;
    if (stars >= 55)
        return 2;
    if (size - stars <= 12)
        return 1;
    return marker_count(line, size);
}

/* whether the line (newline included) is a page marker:  [ \t]*--- PAGE \d+ ---[ \t\r]*\n */
static int
page_line(const unsigned char *line, Py_ssize_t size)
{
    Py_ssize_t i = 0, digits;
    while (i < size && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (size - i < 9 || memcmp(line + i, "--- PAGE ", 9) != 0)
        return 0;
    i += 9;
    digits = i;
    while (i < size && IS_DIGIT(line[i]))
        i++;
    if (i == digits || size - i < 4 || memcmp(line + i, " ---", 4) != 0)
        return 0;
    i += 4;
    while (i < size && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    return i == size - 1 && line[i] == '\n';
}

PyDoc_STRVAR(paper_runs_doc,
"paper_runs(buffer, /)\n--\n\n"
"reconciliation.paper._runs: the runs of non-empty lines of a paper journal\n"
"(``buffer`` ends with a newline). Returns (structural, spans, lost, lines): the\n"
"structural lines outside the lost runs, a (first line, last line, start, end) span\n"
"for each run that is one block, (start, end, lines) of each run holding more than\n"
"two receipts' markers, and the number of lines; None if a line holds only spaces,\n"
"tabs or carriage returns (blank to the parser, which then reads the structure line\n"
"by line).");

static PyObject *
paper_runs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    const unsigned char *s;
    PyObject *spans = NULL, *lost = NULL, *result = NULL;
    Py_ssize_t length, offset = 0, line = 0, structural = 0;
    /* the run being read */
    Py_ssize_t run_first = -1, run_start = 0, run_lines = 0, run_pages = 0, run_markers = 0;

    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "paper_runs takes one argument");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    s = (const unsigned char *)view.buf;
    length = view.len;
    spans = PyList_New(0);
    lost = PyList_New(0);
    if (spans == NULL || lost == NULL)
        goto done;
    for (;;) {
        const unsigned char *newline =
            offset < length ? memchr(s + offset, '\n', (size_t)(length - offset)) : NULL;
        Py_ssize_t end = newline == NULL ? -1 : newline - s;
        Py_ssize_t size = end - offset + 1;
        if (newline != NULL && size > 1) { /* a line of the run */
            int markers;
            if (s[offset] == ' ' || s[offset] == '\t' || s[offset] == '\r') {
                Py_ssize_t i = offset + 1;
                while (i < end && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
                    i++;
                if (i == end) { /* blank, not empty: not for this reader */
                    result = Py_NewRef(Py_None);
                    goto done;
                }
            }
            markers = line_markers(s + offset, size);
            if (markers < 0)
                goto done;
            if (run_first < 0) {
                run_first = line + 1;
                run_start = offset;
                run_lines = run_pages = run_markers = 0;
            }
            run_lines++;
            run_markers += markers;
            if (s[offset] != '*' && page_line(s + offset, size))
                run_pages++;
        }
        else if (run_first >= 0) { /* an empty line, or the end: the run ends here */
            if (run_markers > 2) {
                if (append_new(lost, Py_BuildValue("(nnn)", run_start, offset, run_lines)) < 0)
                    goto done;
            }
            else {
                structural += run_pages;
                if (run_lines > run_pages) {
                    const long long span[4] = {run_first, run_first + run_lines - 1, run_start,
                                               offset};
                    if (append_new(spans, ints_tuple(4, span)) < 0)
                        goto done;
                }
            }
            run_first = -1;
        }
        if (newline == NULL)
            break; /* bytes after the last newline are no line */
        line++;
        if (size == 1)
            structural++;
        offset = end + 1;
    }
    result = Py_BuildValue("(nOOn)", structural, spans, lost, line);
done:
    Py_XDECREF(spans);
    Py_XDECREF(lost);
    PyBuffer_Release(&view);
    return result;
}

/* the kinds of line reconciliation.paper._STRUCTURE tells apart */
enum { LINE_TEXT, LINE_BLANK, LINE_PAGE, LINE_MARKER };

/* The kind of line[0:size] (its newline included). */
static int
line_kind(const unsigned char *line, Py_ssize_t size)
{
    Py_ssize_t i = 0, text = size - 1; /* without the newline */
    while (i < text && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == text)
        return LINE_BLANK;
    if (page_line(line, size))
        return LINE_PAGE;
    if (text < 2 || memmem(line, (size_t)text, "**", 2) == NULL)
        return LINE_TEXT;
    return LINE_MARKER;
}

/* The blocks paper_events cuts, and the one being read. */
typedef struct {
    const unsigned char *s;
    PyObject *spans;
    Py_ssize_t line, counted; /* the number of the line at offset ``counted`` */
    Py_ssize_t block_start;   /* offset of the open block's first line, -1 when none */
    Py_ssize_t page_lines, markers;
} Cutter;

/* The open block, if any, ends at ``end``: kept unless page lines are all it has. */
static int
cut_close(Cutter *cut, Py_ssize_t end)
{
    if (cut->block_start >= 0) {
        const char *s = (const char *)cut->s;
        Py_ssize_t inside = newlines(s, cut->block_start, end);
        if (inside > cut->page_lines) {
            long long span[4];
            cut->line += newlines(s, cut->counted, cut->block_start);
            cut->counted = cut->block_start;
            span[0] = cut->line;
            span[1] = cut->line + inside - 1;
            span[2] = cut->block_start;
            span[3] = end;
            if (append_new(cut->spans, ints_tuple(4, span)) < 0)
                return -1;
        }
    }
    cut->block_start = -1;
    cut->page_lines = cut->markers = 0;
    return 0;
}

PyDoc_STRVAR(paper_events_doc,
"paper_events(buffer, low, high, first_line, /)\n--\n\n"
"reconciliation.paper._by_events over buffer[low:high] (whole lines, starting after\n"
"an empty line or at the start; ``first_line`` is the number of the line at\n"
"``low``): (structural lines, [(first line, last line, start, end) of each block]).");

static PyObject *
paper_events(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    PyObject *result = NULL;
    Py_ssize_t low, high, line, offset, position, structural = 0;
    Cutter cut = {NULL, NULL, 0, 0, -1, 0, 0};

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "paper_events takes four arguments");
        return NULL;
    }
    low = PyLong_AsSsize_t(args[1]);
    high = PyLong_AsSsize_t(args[2]);
    line = PyLong_AsSsize_t(args[3]);
    if ((low == -1 || high == -1 || line == -1) && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (low < 0 || high > view.len || low > high) {
        PyErr_SetString(PyExc_ValueError, "low and high must lie within the buffer, in order");
        goto done;
    }
    cut.s = (const unsigned char *)view.buf;
    cut.spans = PyList_New(0);
    if (cut.spans == NULL)
        goto done;
    cut.line = line;
    cut.counted = low;
    position = offset = low; /* position: the end of the last line handled */
    while (offset < high) {
        const unsigned char *newline = memchr(cut.s + offset, '\n', (size_t)(high - offset));
        Py_ssize_t end;
        int kind, found = 0;
        if (newline == NULL)
            break; /* bytes after the last newline are no line */
        end = newline - cut.s + 1;
        kind = line_kind(cut.s + offset, end - offset);
        if (kind == LINE_MARKER) { /* no marker under eight asterisks */
            found = marker_count(cut.s + offset, end - offset);
            if (found < 0)
                goto done;
        }
        if (kind == LINE_TEXT || (kind == LINE_MARKER && found == 0)) {
            offset = end; /* block text ("**" in a card number, say) */
            continue;
        }
        if (cut.block_start < 0 && offset > position)
            cut.block_start = position;
        if (kind == LINE_BLANK) {
            structural++;
            if (cut_close(&cut, offset) < 0)
                goto done;
        }
        else if (kind == LINE_PAGE) {
            structural++;
            if (cut.block_start < 0)
                cut.block_start = offset;
            cut.page_lines++;
        }
        else {
            if (cut.markers >= 2 && cut_close(&cut, offset) < 0)
                goto done;
            if (cut.block_start < 0)
                cut.block_start = offset;
            cut.markers += found;
        }
        position = offset = end;
    }
    if (position < high && cut.block_start < 0)
        cut.block_start = position;
    if (cut_close(&cut, high) == 0)
        result = Py_BuildValue("(nO)", structural, cut.spans);
done:
    Py_XDECREF(cut.spans);
    PyBuffer_Release(&view);
    return result;
}

PyMethodDef paper_methods[] = {
    {"paper_events", (PyCFunction)(void (*)(void))paper_events, METH_FASTCALL,
     paper_events_doc},
    {"paper_readings", (PyCFunction)(void (*)(void))paper_readings, METH_FASTCALL,
     paper_readings_doc},
    {"paper_exact_pairs", (PyCFunction)(void (*)(void))paper_exact_pairs, METH_FASTCALL,
     paper_exact_pairs_doc},
    {"paper_runs", (PyCFunction)(void (*)(void))paper_runs, METH_FASTCALL, paper_runs_doc},
    {NULL, NULL, 0, NULL},
};
