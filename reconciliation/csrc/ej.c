#include "speedups.h"

/*
 * Electronic journals: the whole-buffer scan of reconciliation.ej for both
 * dialects, with the well-formed transaction blocks read here.
 *
 * ``ndc_scan`` and ``procash_scan`` walk a journal line start by line start, as
 * ``FAST.finditer`` does (every alternative of the dialect's FAST pattern starts
 * at a line and ends with a newline). At each line start they first try the
 * common transaction block by hand; what they accept is exactly a match of the
 * pattern's block alternative, read into the same EjTransaction the dialect's
 * ``_transaction`` makes. Anything else at that line (a device line, a counters
 * printout, a block of an unusual shape such as one cut by a power interruption)
 * is left to ``FAST.match`` itself, so the scan never accepts more than the
 * pattern: where the hand-written reader is unsure it declines, and the
 * pattern decides.
 */

/* --- shared values ------------------------------------------------------------------ */

static PyObject *s_withdrawal, *s_balance, *s_empty, *s_to, *s_power, *s_retracted, *s_short,
    *s_none, *s_taken, *no_notes, *s_match, *s_end;

int
ej_init(void)
{
#define INTERN(var, text)                         \
    do {                                          \
        var = PyUnicode_InternFromString(text);   \
        if (var == NULL)                          \
            return -1;                            \
    } while (0)
    INTERN(s_withdrawal, "withdrawal");
    INTERN(s_balance, "balance");
    INTERN(s_empty, "");
    INTERN(s_to, "TO");
    INTERN(s_power, "power");
    INTERN(s_retracted, "retracted");
    INTERN(s_short, "short");
    INTERN(s_none, "none");
    INTERN(s_taken, "taken");
    INTERN(s_match, "match");
    INTERN(s_end, "end");
#undef INTERN
    no_notes = Py_BuildValue("(iiii)", 0, 0, 0, 0);
    return no_notes == NULL ? -1 : 0;
}

/* A group of a block: ``p`` NULL when the group took no part in the match. */
typedef struct {
    const char *p;
    Py_ssize_t n;
} Span;

static PyObject *
text_of(Span span)
{
    return PyUnicode_DecodeLatin1(span.p, span.n, NULL);
}

/* the integer written by ``size`` digits at ``digits`` */
static PyObject *
integer_of(const char *digits, Py_ssize_t size)
{
    if (size <= 18) {
        long long value = 0;
        Py_ssize_t i;
        for (i = 0; i < size; i++)
            value = value * 10 + (digits[i] - '0');
        return PyLong_FromLongLong(value);
    }
    else {
        PyObject *text = PyUnicode_DecodeLatin1(digits, size, NULL), *value;
        if (text == NULL)
            return NULL;
        value = PyLong_FromUnicodeObject(text, 10);
        Py_DECREF(text);
        return value;
    }
}

/* an amount ``\d+\.\d\d`` as minor units (its digits without the point); 0 for none */
static PyObject *
amount_of(Span span)
{
    char *digits;
    Py_ssize_t i, kept = 0;
    PyObject *value;
    if (span.p == NULL)
        return PyLong_FromLong(0);
    digits = PyMem_Malloc((size_t)span.n + 1);
    if (digits == NULL)
        return PyErr_NoMemory();
    for (i = 0; i < span.n; i++)
        if (span.p[i] != '.')
            digits[kept++] = span.p[i];
    value = integer_of(digits, kept);
    PyMem_Free(digits);
    return value;
}

/* four counts ``\d+,\d+,\d+,\d+`` (the whole span) as a tuple; NO_NOTES for none */
static PyObject *
notes_of(Span span)
{
    PyObject *values[4] = {NULL, NULL, NULL, NULL}, *notes = NULL;
    const char *text = span.p, *end = span.p + span.n;
    int k;
    if (span.p == NULL) {
        Py_INCREF(no_notes);
        return no_notes;
    }
    for (k = 0; k < 4; k++) {
        const char *stop = text;
        while (stop < end && IS_DIGIT(*stop))
            stop++;
        if (stop == text || (k < 3 && (stop >= end || *stop != ',')) || (k == 3 && stop != end)) {
            PyErr_SetString(PyExc_ValueError, "expected four note counts");
            goto done;
        }
        values[k] = integer_of(text, stop - text);
        if (values[k] == NULL)
            goto done;
        text = stop + 1;
    }
    notes = PyTuple_Pack(4, values[0], values[1], values[2], values[3]);
done:
    for (k = 0; k < 4; k++)
        Py_XDECREF(values[k]);
    return notes;
}

static int
span_has_n(Span span, const char *needle, size_t size)
{
    return span.p != NULL && memmem(span.p, (size_t)span.n, needle, size) != NULL;
}

/* the literal's length known when compiling, not measured at every call */
#define span_has(span, literal) span_has_n((span), "" literal, sizeof(literal) - 1)

static PyObject *
counts_tuple(const long long counts[4])
{
    return ints_tuple(4, counts);
}

static PyObject *
shared(PyObject *value)
{
    Py_INCREF(value);
    return value;
}

static PyObject *
outcome_text(const char *outcome)
{
    switch (outcome == NULL ? '\0' : outcome[0]) {
    case 'p': return shared(s_power);
    case 'r': return shared(s_retracted);
    case 's': return shared(s_short);
    case 'n': return shared(s_none);
    case 't': return shared(s_taken);
    default: return shared(s_empty);
    }
}

/* the EjTransaction ``cls`` (a tuple type) with these 18 fields, as tuple.__new__
 * makes an instance of a subclass; steals the references */
static PyObject *
record(PyTypeObject *cls, PyObject **fields)
{
    PyObject *made = NULL;
    int k;
    for (k = 0; k < 18; k++)
        if (fields[k] == NULL)
            goto done;
    made = cls->tp_alloc(cls, 18);
    if (made == NULL)
        goto done;
    for (k = 0; k < 18; k++) {
        PyTuple_SET_ITEM(made, k, fields[k]);
        fields[k] = NULL;
    }
done:
    for (k = 0; k < 18; k++)
        Py_XDECREF(fields[k]);
    return made;
}

static void
position_fields(PyObject **fields, Py_ssize_t start, Py_ssize_t end, Py_ssize_t line,
                Py_ssize_t last_line)
{
    fields[14] = PyLong_FromSsize_t(start);
    fields[15] = PyLong_FromSsize_t(end);
    fields[16] = PyLong_FromSsize_t(line);
    fields[17] = PyLong_FromSsize_t(last_line);
}

/* --- reading a block ---------------------------------------------------------------- */

typedef struct {
    const char *s;
    Py_ssize_t n, at;
} Cursor;

static inline Py_ALWAYS_INLINE int
lit_n(Cursor *c, const char *text, Py_ssize_t size)
{
    if (c->n - c->at < size || memcmp(c->s + c->at, text, (size_t)size) != 0)
        return 0;
    c->at += size;
    return 1;
}

static inline Py_ALWAYS_INLINE int
ahead_n(const Cursor *c, const char *text, Py_ssize_t size)
{
    return c->n - c->at >= size && memcmp(c->s + c->at, text, (size_t)size) == 0;
}

/* ``literal`` next (taken by lit, only looked at by ahead); its length is known when
   compiling, so that the comparison is inlined rather than measured and called */
#define lit(c, literal) lit_n((c), "" literal, (Py_ssize_t)sizeof(literal) - 1)
#define ahead(c, literal) ahead_n((c), "" literal, (Py_ssize_t)sizeof(literal) - 1)

/* 1, after setting ``out`` (when given) to what the cursor passed since ``start`` */
static int
took(const Cursor *c, Py_ssize_t start, Span *out)
{
    if (out != NULL) {
        out->p = c->s + start;
        out->n = c->at - start;
    }
    return 1;
}

/* exactly ``count`` digits */
static int
digits(Cursor *c, Py_ssize_t count, Span *out)
{
    Py_ssize_t i;
    if (c->n - c->at < count)
        return 0;
    for (i = 0; i < count; i++)
        if (!IS_DIGIT(c->s[c->at + i]))
            return 0;
    c->at += count;
    return took(c, c->at - count, out);
}

/* \d+ */
static int
digit_run(Cursor *c)
{
    Py_ssize_t start = c->at;
    while (c->at < c->n && IS_DIGIT(c->s[c->at]))
        c->at++;
    return c->at > start;
}

/* \d+\.\d\d */
static int
amount(Cursor *c, Span *out)
{
    Py_ssize_t start = c->at;
    if (!digit_run(c) || !lit(c, ".") || !digits(c, 2, NULL))
        return 0;
    return took(c, start, out);
}

/* \d+,\d+,\d+,\d+ */
static int
notes(Cursor *c, Span *out)
{
    Py_ssize_t start = c->at;
    if (!digit_run(c) || !lit(c, ",") || !digit_run(c) || !lit(c, ",") || !digit_run(c)
        || !lit(c, ",") || !digit_run(c))
        return 0;
    return took(c, start, out);
}

static int
is_word(char ch)
{
    return IS_DIGIT(ch) || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

/* \w{count} (count > 0), or \w+ with count 0 */
static int
word(Cursor *c, Py_ssize_t count, Span *out)
{
    Py_ssize_t start = c->at;
    while (c->at < c->n && is_word(c->s[c->at]) && (count == 0 || c->at - start < count))
        c->at++;
    if (c->at == start || (count > 0 && c->at - start != count))
        return 0;
    return took(c, start, out);
}

/* \S+ */
static int
non_space(Cursor *c)
{
    Py_ssize_t start = c->at;
    while (c->at < c->n && !strchr(" \t\n\r\f\v", c->s[c->at]))
        c->at++;
    return c->at > start;
}

/* \ + */
static int
spaces(Cursor *c)
{
    Py_ssize_t start = c->at;
    while (c->at < c->n && c->s[c->at] == ' ')
        c->at++;
    return c->at > start;
}

/* \d\d:\d\d:\d\d */
static int
hms(Cursor *c, Span *out)
{
    Py_ssize_t start = c->at;
    if (!digits(c, 2, NULL) || !lit(c, ":") || !digits(c, 2, NULL) || !lit(c, ":")
        || !digits(c, 2, NULL))
        return 0;
    return took(c, start, out);
}

/* \d{6}\*{6}\d{4} */
static int
masked_card(Cursor *c, Span *out)
{
    Py_ssize_t start = c->at;
    if (!digits(c, 6, NULL) || !lit(c, "******") || !digits(c, 4, NULL))
        return 0;
    return took(c, start, out);
}

/* --- NDC ------------------------------------------------------------------------------ */

enum {
    N_STAN, N_RRN, N_SEQ, N_TIME, N_CARD, N_TRN, N_RC, N_AUTH, N_REQ,
    N_D1, N_D2, N_D3, N_D4, N_RETR, N_REJ, N_OUT, N_ST, N_COUNT
};

/* The end of the NDC transaction block at ``c->at`` (reconciliation.ej_ndc._BLOCK),
 * or -1 where this reader declines (not such a block, or one of an unusual shape). */
static Py_ssize_t
ndc_block(Cursor *c, Span *g)
{
    Py_ssize_t mark;
    int k;
    memset(g, 0, sizeof(Span) * N_COUNT);
    if (!lit(c, "Card Inserted (") || !digits(c, 6, NULL) || !lit(c, "XXXXXX")
        || !digits(c, 4, NULL) || !lit(c, ")\n"))
        return -1;
    if (!lit(c, "Transaction Request ["))
        return -1;
    for (k = 0; k < 8; k++) {
        if (c->at >= c->n || c->s[c->at] == ']' || c->s[c->at] == '\n')
            return -1;
        c->at++;
    }
    if (!lit(c, "]\n") || !lit(c, "Transaction Reply "))
        return -1;
    if (lit(c, "[Host Seq.No.: ")) {
        if (!digits(c, 4, NULL) || !lit(c, "]"))
            return -1;
    }
    else if (!lit(c, "Timeout"))
        return -1;
    if (!lit(c, "\n") || !lit(c, "Next State [") || !digits(c, 3, NULL) || !lit(c, "] Function [")
        || !word(c, 0, NULL) || !lit(c, "]\n"))
        return -1;
    while (lit(c, "Dispense Type")) {
        if (c->at >= c->n || c->s[c->at] < '1' || c->s[c->at] > '4')
            return -1;
        c->at++;
        if (!lit(c, " = ") || !digit_run(c) || !lit(c, " notes\n"))
            return -1;
    }
    mark = c->at;
    while (lit(c, "Reject Type")) {
        if (c->at >= c->n || c->s[c->at] < '1' || c->s[c->at] > '4')
            return -1;
        c->at++;
        if (!lit(c, " = ") || !digit_run(c) || !lit(c, " notes\n"))
            return -1;
    }
    took(c, mark, &g[N_REJ]);
    if (!lit(c, "Card Ejected\n"))
        return -1;
    mark = c->at;
    for (;;) {
        if (lit(c, "DISPENSE ERROR\n") || lit(c, "Cash Present\n") || lit(c, "Cash Taken\n")
            || lit(c, "Cash Retracted\n"))
            continue;
        if (ahead(c, "POWER INTERRUPTION"))
            return -1; /* with its power-up line: left to the pattern */
        break;
    }
    took(c, mark, &g[N_OUT]);
    if (!lit(c, " *****START*****\n") || !lit(c, " DATE/TIME : ") || !digits(c, 4, NULL)
        || !lit(c, "-") || !digits(c, 2, NULL) || !lit(c, "-") || !digits(c, 2, NULL)
        || !lit(c, " ") || !hms(c, &g[N_TIME]) || !lit(c, "\n"))
        return -1;
    if (!lit(c, " TERMINAL  : ") || !non_space(c) || !lit(c, "\n"))
        return -1;
    if (!lit(c, " SEQ NO    : ") || !digits(c, 4, &g[N_SEQ]) || !lit(c, "\n"))
        return -1;
    if (!lit(c, " TRACE     : ") || !digits(c, 6, &g[N_STAN]) || !lit(c, "\n"))
        return -1;
    if (!lit(c, " RRN       : ") || !digits(c, 12, &g[N_RRN]) || !lit(c, "\n"))
        return -1;
    if (!lit(c, " CARD NO   : ") || !masked_card(c, &g[N_CARD]) || !lit(c, "\n"))
        return -1;
    if (!lit(c, " RESP CODE : ") || !word(c, 2, &g[N_RC]) || !lit(c, "\n"))
        return -1;
    if (!lit(c, " TRN TYPE  : "))
        return -1;
    mark = c->at;
    if (!lit(c, "CASH WITHDRAWAL") && !lit(c, "BALANCE INQUIRY"))
        return -1;
    took(c, mark, &g[N_TRN]);
    if (!lit(c, "\n"))
        return -1;
    if (lit(c, " AMT AUTH  : ") && (!amount(c, &g[N_AUTH]) || !lit(c, "\n")))
        return -1;
    if (lit(c, " DISPENSED : ")) {
        if (!lit(c, "1:") || !digits(c, 2, &g[N_D1]) || !lit(c, " 2:") || !digits(c, 2, &g[N_D2])
            || !lit(c, " 3:") || !digits(c, 2, &g[N_D3]) || !lit(c, " 4:")
            || !digits(c, 2, &g[N_D4]) || !lit(c, "\n"))
            return -1;
    }
    if (lit(c, " NOTES RETRACTED : ") && (!notes(c, &g[N_RETR]) || !lit(c, "\n")))
        return -1;
    if (lit(c, " AMT REQ   : ") && (!amount(c, &g[N_REQ]) || !lit(c, "\n")))
        return -1;
    if (lit(c, " AVAIL BAL : ") && (!amount(c, NULL) || !lit(c, "\n")))
        return -1;
    if (!lit(c, " *****END*****\n"))
        return -1;
    if (c->at < c->n && c->s[c->at] == '*') {
        /* \*\d{4}\*1\*E\*(?P<st>\d)\d{8},M-\d\d,R-\d{5}\n, or the pattern decides */
        if (!lit(c, "*") || !digits(c, 4, NULL) || !lit(c, "*1*E*") || !digits(c, 1, &g[N_ST])
            || !digits(c, 8, NULL) || !lit(c, ",M-") || !digits(c, 2, NULL) || !lit(c, ",R-")
            || !digits(c, 5, NULL) || !lit(c, "\n"))
            return -1;
    }
    return c->at;
}

/* The record of an NDC block (reconciliation.ej_ndc._transaction); None when a count
 * is too long for a C integer (then the pattern and the Python version read it). */
static PyObject *
ndc_record(PyTypeObject *cls, const Span *g, Py_ssize_t start, Py_ssize_t end,
           Py_ssize_t line, Py_ssize_t last_line)
{
    PyObject *fields[18] = {NULL};
    const char *outcome = NULL;
    long long rejects[4] = {0, 0, 0, 0};
    int withdrawal = g[N_TRN].p[0] == 'C';
    int approved = g[N_RC].p[0] == '0' && g[N_RC].p[1] == '0';
    int k;

    if (g[N_REJ].n > 0) {
        /* "Reject TypeN = M notes" lines: M added to cassette N */
        Cursor c = {g[N_REJ].p, g[N_REJ].n, 0};
        while (lit(&c, "Reject Type")) {
            int unit = c.s[c.at] - '1';
            Py_ssize_t first;
            long long count = 0;
            c.at += 4; /* "N = " */
            first = c.at;
            while (IS_DIGIT(c.s[c.at])) {
                if (c.at - first >= 17)
                    Py_RETURN_NONE;
                count = count * 10 + (c.s[c.at] - '0');
                c.at++;
            }
            rejects[unit] += count;
            c.at += 7; /* " notes\n" */
        }
    }
    if (withdrawal && approved) {
        Span out = g[N_OUT];
        if (span_has(out, "Cash Retracted"))
            outcome = "retracted";
        else if (span_has(out, "DISPENSE ERROR"))
            outcome = (span_has(out, "Cash Taken") || span_has(out, "Cash Present")) ? "short"
                                                                                     : "none";
        else if (span_has(out, "Cash Taken"))
            outcome = "taken";
        if (outcome == NULL && g[N_ST].p != NULL) {
            switch (g[N_ST].p[0]) {
            case '0': outcome = "taken"; break;
            case '1': outcome = "short"; break;
            case '2': outcome = "none"; break;
            case '3': outcome = "power"; break;
            case '5': outcome = "retracted"; break;
            }
        }
    }
    fields[0] = text_of(g[N_STAN]);
    fields[1] = text_of(g[N_RRN]);
    fields[2] = text_of(g[N_SEQ]);
    fields[3] = text_of(g[N_TIME]);
    fields[4] = text_of(g[N_CARD]);
    fields[5] = shared(withdrawal ? s_withdrawal : s_balance);
    fields[6] = text_of(g[N_RC]);
    fields[7] = amount_of(g[N_AUTH].p != NULL ? g[N_AUTH] : g[N_REQ]);
    fields[8] = outcome_text(outcome);
    if (g[N_D1].p == NULL) {
        fields[9] = shared(no_notes);
    }
    else {
        PyObject *counts[4];
        for (k = 0; k < 4; k++)
            counts[k] = integer_of(g[N_D1 + k].p, 2);
        fields[9] = (counts[0] && counts[1] && counts[2] && counts[3])
                        ? PyTuple_Pack(4, counts[0], counts[1], counts[2], counts[3])
                        : NULL;
        for (k = 0; k < 4; k++)
            Py_XDECREF(counts[k]);
    }
    fields[10] = notes_of(g[N_RETR]);
    fields[11] = g[N_REJ].n > 0 ? counts_tuple(rejects) : shared(no_notes);
    fields[12] = g[N_ST].p == NULL ? shared(s_empty) : text_of(g[N_ST]);
    fields[13] = shared(Py_False);
    position_fields(fields, start, end, line, last_line);
    return record(cls, fields);
}

/* --- ProCash -------------------------------------------------------------------------- */

enum {
    P_STAN, P_RRN, P_TIME, P_CARD, P_TRN, P_RC, P_NOREPLY, P_AMOUNT, P_RAMOUNT,
    P_NOTES, P_RETR, P_OUT, P_COUNT
};

/* \d\d:\d\d:\d\d\  */
static int
timed(Cursor *c)
{
    return hms(c, NULL) && lit(c, " ");
}

/* The end of the ProCash transaction block at ``c->at`` (reconciliation.ej_procash's
 * _BLOCK), or -1 where this reader declines. */
static Py_ssize_t
procash_block(Cursor *c, Span *g)
{
    Py_ssize_t mark;
    int k;
    memset(g, 0, sizeof(Span) * P_COUNT);
    if (!timed(c) || !lit(c, "-> TRANSACTION START\n"))
        return -1;
    if (!timed(c) || !lit(c, "TRACK 2 DATA: ") || !masked_card(c, &g[P_CARD]) || !lit(c, "\n"))
        return -1;
    if (!timed(c) || !lit(c, "PIN ENTERED\n"))
        return -1;
    if (!timed(c))
        return -1;
    if (lit(c, "CASH REQUEST: ")) {
        if (!digits(c, 8, NULL) || !lit(c, "\n") || !timed(c))
            return -1;
    }
    if (!lit(c, "TRANSACTION REQUEST "))
        return -1;
    if (lit(c, "AMOUNT ")) {
        if (!amount(c, &g[P_RAMOUNT]))
            return -1;
    }
    else if (!lit(c, "BALANCE INQUIRY"))
        return -1;
    if (!lit(c, "\n") || !timed(c))
        return -1;
    if (lit(c, "RESPONSE CODE: ")) {
        if (!word(c, 2, NULL))
            return -1;
    }
    else if (!lit(c, "HOST TIMEOUT"))
        return -1;
    if (!spaces(c) || !lit(c, "STAN: ") || !digits(c, 6, NULL) || !spaces(c) || !lit(c, "RRN:[")
        || !digits(c, 12, NULL) || !lit(c, "]\n"))
        return -1;
    mark = c->at;
    for (;;) {
        Py_ssize_t line = c->at;
        if (!timed(c))
            return -1;
        if (lit(c, "NOTES ")) {
            if ((!lit(c, "REJECTED ") && !lit(c, "PRESENTED ") && !lit(c, "RETRACTED "))
                || !notes(c, NULL) || !lit(c, "\n"))
                return -1;
            continue;
        }
        if (lit(c, "CASH TAKEN\n") || lit(c, "CASH RETRACTED\n") || lit(c, "PRESENTER ERROR\n"))
            continue;
        if (ahead(c, "POWER INTERRUPTION"))
            return -1; /* with its start-up line: left to the pattern */
        c->at = line;
        break;
    }
    took(c, mark, &g[P_OUT]);
    if (!timed(c) || !lit(c, "<- TRANSACTION END\n"))
        return -1;
    for (k = 0; k < 31; k++)
        if (!lit(c, "*"))
            return -1;
    if (!lit(c, "\n") || !lit(c, "DATE ") || !digits(c, 2, NULL) || !lit(c, ".")
        || !digits(c, 2, NULL) || !lit(c, ".") || !digits(c, 2, NULL) || !spaces(c)
        || !lit(c, "TIME ") || !hms(c, &g[P_TIME]) || !lit(c, "\n"))
        return -1;
    if (!lit(c, "ATM ID") || !spaces(c) || !non_space(c) || !lit(c, "\n"))
        return -1;
    if (!lit(c, "CARD NO") || !spaces(c) || !masked_card(c, NULL) || !lit(c, "\n"))
        return -1;
    if (!lit(c, "STAN") || !spaces(c) || !digits(c, 6, &g[P_STAN]) || !lit(c, "\n"))
        return -1;
    if (!lit(c, "RRN") || !spaces(c) || !digits(c, 12, &g[P_RRN]) || !lit(c, "\n"))
        return -1;
    mark = c->at;
    if (!lit(c, "CASH WITHDRAWAL") && !lit(c, "BALANCE INQUIRY"))
        return -1;
    took(c, mark, &g[P_TRN]);
    if (!lit(c, "\n"))
        return -1;
    if (lit(c, "AMOUNT")) {
        if (!spaces(c) || !lit(c, "USD ") || !amount(c, &g[P_AMOUNT]) || !lit(c, "\n"))
            return -1;
    }
    if (!lit(c, "RESP") || !spaces(c))
        return -1;
    if (lit(c, "--")) {
        g[P_NOREPLY].p = c->s + c->at - 2;
        g[P_NOREPLY].n = 2;
        if (!spaces(c) || !lit(c, "NO HOST REPLY"))
            return -1;
    }
    else {
        if (!word(c, 2, &g[P_RC]) || !spaces(c))
            return -1;
        if (lit(c, "AUTH ")) {
            if (!word(c, 6, NULL))
                return -1;
        }
        else if (!lit(c, "DECLINED"))
            return -1;
    }
    if (!lit(c, "\n"))
        return -1;
    if (ahead(c, "NOTES RETRACTED ")) {
        /* no NOTES line: the retracted notes follow */
    }
    else if (lit(c, "NOTES")) {
        if (!spaces(c) || !notes(c, &g[P_NOTES]) || !lit(c, "\n"))
            return -1;
    }
    if (lit(c, "NOTES RETRACTED ") && (!notes(c, &g[P_RETR]) || !lit(c, "\n")))
        return -1;
    if (lit(c, "BALANCE")) {
        if (!spaces(c) || !lit(c, "USD ") || !amount(c, NULL) || !lit(c, "\n"))
            return -1;
    }
    for (k = 0; k < 31; k++)
        if (!lit(c, "*"))
            return -1;
    if (!lit(c, "\n"))
        return -1;
    return c->at;
}

/* adds the four counts of each ``prefix``a,b,c,d in the span; 1 when a count is too
 * long for a C integer */
static int
add_counts(long long counts[4], Span span, const char *prefix)
{
    const char *at = span.p, *end = span.p + span.n;
    size_t length = strlen(prefix);
    while ((at = memmem(at, (size_t)(end - at), prefix, length)) != NULL) {
        const char *p = at + length;
        int k;
        for (k = 0; k < 4; k++) {
            const char *first = p;
            long long value = 0;
            while (p < end && IS_DIGIT(*p)) {
                if (p - first >= 17)
                    return 1;
                value = value * 10 + (*p - '0');
                p++;
            }
            counts[k] += value;
            p++; /* the comma, or the newline after the last count */
        }
        at = p;
    }
    return 0;
}

/* The record of a ProCash block (reconciliation.ej_procash._transaction); None when a
 * count is too long for a C integer. */
static PyObject *
procash_record(PyTypeObject *cls, const Span *g, Py_ssize_t start, Py_ssize_t end,
               Py_ssize_t line, Py_ssize_t last_line)
{
    PyObject *fields[18] = {NULL};
    const char *outcome = NULL;
    int withdrawal = g[P_TRN].p[0] == 'C';
    int approved = g[P_NOREPLY].p == NULL && g[P_RC].p[0] == '0' && g[P_RC].p[1] == '0';
    Span presented = {NULL, 0};
    long long rejected[4] = {0, 0, 0, 0};
    int has_rejected = span_has(g[P_OUT], "REJECTED"), k;

    if (has_rejected && add_counts(rejected, g[P_OUT], "NOTES REJECTED "))
        Py_RETURN_NONE;
    if (g[P_NOTES].p != NULL) {
        presented = g[P_NOTES];
    }
    else {
        /* the last "NOTES PRESENTED a,b,c,d" of the outcome lines */
        const char *at = g[P_OUT].p, *end_out = g[P_OUT].p + g[P_OUT].n;
        while ((at = memmem(at, (size_t)(end_out - at), "NOTES PRESENTED ", 16)) != NULL) {
            Cursor c = {at + 16, end_out - (at + 16), 0};
            Span found;
            if (notes(&c, &found))
                presented = found;
            at += 16;
        }
    }
    fields[9] = notes_of(presented);
    if (withdrawal && approved && fields[9] != NULL) {
        Span out = g[P_OUT];
        if (span_has(out, "CASH RETRACTED"))
            outcome = "retracted";
        else if (span_has(out, "PRESENTER ERROR")) {
            int nothing = 1;
            for (k = 0; k < 4; k++) {
                int zero = PyObject_Not(PyTuple_GET_ITEM(fields[9], k));
                if (zero == 0)
                    nothing = 0;
            }
            outcome = nothing ? "none" : "short";
        }
        else if (span_has(out, "CASH TAKEN"))
            outcome = "taken";
    }
    fields[0] = text_of(g[P_STAN]);
    fields[1] = text_of(g[P_RRN]);
    fields[2] = PyUnicode_DecodeLatin1(g[P_STAN].p + 2, g[P_STAN].n - 2, NULL);
    fields[3] = text_of(g[P_TIME]);
    fields[4] = text_of(g[P_CARD]);
    fields[5] = shared(withdrawal ? s_withdrawal : s_balance);
    fields[6] = g[P_NOREPLY].p != NULL ? shared(s_to) : text_of(g[P_RC]);
    fields[7] = amount_of(g[P_AMOUNT].p != NULL ? g[P_AMOUNT] : g[P_RAMOUNT]);
    fields[8] = outcome_text(outcome);
    fields[10] = notes_of(g[P_RETR]);
    fields[11] = has_rejected ? counts_tuple(rejected) : shared(no_notes);
    fields[12] = shared(s_empty);
    fields[13] = shared(Py_False);
    position_fields(fields, start, end, line, last_line);
    return record(cls, fields);
}

/* --- the scan ------------------------------------------------------------------------- */

/* (at, end, lines, found) appended to ``items``, ``found`` released; -1 on error. */
static int
take(PyObject *items, Py_ssize_t at, Py_ssize_t end, Py_ssize_t lines, PyObject *found)
{
    PyObject *item = PyTuple_New(4);
    PyObject *values[3] = {NULL, NULL, NULL};
    int k;
    if (item == NULL) {
        Py_DECREF(found);
        return -1;
    }
    PyTuple_SET_ITEM(item, 3, found); /* the tuple owns it from here on */
    values[0] = PyLong_FromSsize_t(at);
    values[1] = PyLong_FromSsize_t(end);
    values[2] = PyLong_FromSsize_t(lines);
    for (k = 0; k < 3; k++) {
        if (values[k] == NULL) {
            for (; k < 3; k++)
                Py_XDECREF(values[k]);
            Py_DECREF(item);
            return -1;
        }
        PyTuple_SET_ITEM(item, k, values[k]);
    }
    return append_new(items, item);
}

static PyObject *
scan(PyObject *const *args, Py_ssize_t nargs, int procash)
{
    PyObject *buffer, *pattern, *items;
    PyTypeObject *cls;
    const char *s;
    Py_ssize_t n, at = 0, line = 1;
    Span g[(int)N_COUNT > (int)P_COUNT ? (int)N_COUNT : (int)P_COUNT];

    if (nargs != 3 || !PyBytes_Check(args[0]) || !PyType_Check(args[1])
        || !PyType_IsSubtype((PyTypeObject *)args[1], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "expected (buffer: bytes, cls: tuple type, pattern)");
        return NULL;
    }
    buffer = args[0];
    cls = (PyTypeObject *)args[1];
    pattern = args[2];
    s = PyBytes_AS_STRING(buffer);
    n = PyBytes_GET_SIZE(buffer);
    items = PyList_New(0);
    if (items == NULL)
        return NULL;
    while (at < n) {
        Cursor c = {s, n, at};
        Py_ssize_t end = procash ? procash_block(&c, g) : ndc_block(&c, g);
        PyObject *found = NULL, *position, *match;
        if (end > at) {
            Py_ssize_t lines = newlines(s, at, end);
            found = procash ? procash_record(cls, g, at, end, line, line + lines - 1)
                            : ndc_record(cls, g, at, end, line, line + lines - 1);
            if (found == NULL)
                goto fail;
            if (found != Py_None) {
                if (take(items, at, end, lines, found) < 0)
                    goto fail;
                line += lines;
                at = end;
                continue;
            }
            Py_DECREF(found);
        }
        /* not a block this reader takes: what the pattern finds here, if anything */
        position = PyLong_FromSsize_t(at);
        if (position == NULL)
            goto fail;
        match = PyObject_CallMethodObjArgs(pattern, s_match, buffer, position, NULL);
        Py_DECREF(position);
        if (match == NULL)
            goto fail;
        if (match != Py_None) {
            PyObject *stop = PyObject_CallMethodNoArgs(match, s_end);
            Py_ssize_t match_end = stop == NULL ? -1 : PyLong_AsSsize_t(stop);
            Py_XDECREF(stop);
            if (match_end == -1 && PyErr_Occurred()) {
                Py_DECREF(match);
                goto fail;
            }
            if (match_end > at) {
                Py_ssize_t lines = newlines(s, at, match_end);
                if (take(items, at, match_end, lines, match) < 0)
                    goto fail;
                line += lines;
                at = match_end;
                continue;
            }
        }
        Py_DECREF(match);
        {
            const char *next = memchr(s + at, '\n', (size_t)(n - at));
            if (next == NULL)
                break;
            at = next - s + 1;
            line++;
        }
    }
    return items;
fail:
    Py_DECREF(items);
    return NULL;
}

PyDoc_STRVAR(ndc_scan_doc,
"ndc_scan(buffer, cls, pattern, /)\n--\n\n"
"What ``pattern.finditer(buffer)`` finds in an NDC journal (``pattern`` is\n"
"reconciliation.ej_ndc.FAST), as (start, end, lines, found) tuples: ``found`` is the\n"
"EjTransaction ``cls`` of a well-formed transaction block, as ej_ndc._transaction\n"
"makes it, or the pattern's match for anything else.");

static PyObject *
ndc_scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return scan(args, nargs, 0);
}

PyDoc_STRVAR(procash_scan_doc,
"procash_scan(buffer, cls, pattern, /)\n--\n\n"
"ndc_scan for a ProCash journal (``pattern`` is reconciliation.ej_procash.FAST).");

static PyObject *
procash_scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return scan(args, nargs, 1);
}

PyDoc_STRVAR(ej_tiles_doc,
"ej_tiles(items, cls, size, /)\n--\n\n"
"Of a scan's items (ndc_scan, procash_scan), when they tile a buffer of ``size``\n"
"bytes without a gap: the ``cls`` records in order, every other item as (line,\n"
"lines, found) with the number of its first line, and the number of lines;\n"
"otherwise None.");

static PyObject *
ej_tiles(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *items, *records = NULL, *others = NULL;
    PyTypeObject *cls;
    Py_ssize_t size, count, k, position = 0, line = 1;

    if (nargs != 3 || !PyList_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "expected (items: list, cls: type, size: int)");
        return NULL;
    }
    items = args[0];
    cls = (PyTypeObject *)args[1];
    size = PyLong_AsSsize_t(args[2]);
    if (size == -1 && PyErr_Occurred())
        return NULL;
    count = PyList_GET_SIZE(items);
    records = PyList_New(0);
    others = PyList_New(0);
    if (records == NULL || others == NULL)
        goto fail;
    for (k = 0; k < count; k++) {
        PyObject *item = PyList_GET_ITEM(items, k), *found;
        Py_ssize_t start, end, lines;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 4) {
            PyErr_SetString(PyExc_TypeError, "an item is not a (start, end, lines, found) tuple");
            goto fail;
        }
        start = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 0));
        end = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 1));
        lines = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 2));
        if ((start == -1 || end == -1 || lines == -1) && PyErr_Occurred())
            goto fail;
        if (start != position) { /* a gap: not for this shortcut */
            Py_DECREF(records);
            Py_DECREF(others);
            Py_RETURN_NONE;
        }
        found = PyTuple_GET_ITEM(item, 3);
        if (Py_IS_TYPE(found, cls)) {
            if (PyList_Append(records, found) < 0)
                goto fail;
        }
        else if (append_new(others, Py_BuildValue("(nnO)", line, lines, found)) < 0)
            goto fail;
        line += lines;
        position = end;
    }
    if (position != size) {
        Py_DECREF(records);
        Py_DECREF(others);
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(NNn)", records, others, line - 1);
fail:
    Py_XDECREF(records);
    Py_XDECREF(others);
    return NULL;
}

PyMethodDef ej_methods[] = {
    {"ej_tiles", (PyCFunction)(void (*)(void))ej_tiles, METH_FASTCALL, ej_tiles_doc},
    {"ndc_scan", (PyCFunction)(void (*)(void))ndc_scan, METH_FASTCALL, ndc_scan_doc},
    {"procash_scan", (PyCFunction)(void (*)(void))procash_scan, METH_FASTCALL,
     procash_scan_doc},
    {NULL, NULL, 0, NULL},
};
