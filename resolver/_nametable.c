/*
 * resolver._nametable: the blocklist index's name table, a compact hash table over domain
 * names that a lookup probes once per label suffix of the asked name, most specific first.
 *
 * Why C: every query walks its name's suffixes through the index. In Python that walk, even
 * through a C trie, costs about a microsecond per name and allocates the suffixes; here it is
 * one pass over the name's bytes and a few memory probes, with nothing allocated.
 *
 * Layout of a table blob (built by build_table, memory-mapped from the index file):
 *
 *     u64 hashes[cap]        0 = empty slot; else the 64-bit hash of one listed name
 *     u16/u32 values[cap]    the name's record (a pair index, see index.py), little endian
 *
 * A name's hash covers its labels from the right, each label's bytes then a separator that
 * no byte can equal, so the hash of every suffix of a name falls out of one right-to-left
 * pass. Names are compared by their full 64-bit hash: build_table re-seeds until the listed
 * names' hashes are distinct, and a query name that is not listed matches a listed hash with
 * a probability near 2^-64 per probe. Slots are found by linear probing from
 * hash * cap >> 64, at a load of at most 0.7.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define SEPARATOR 0x100u /* outside the byte range: a label's end is never a byte */
#define MAX_SUFFIXES 128 /* a 255-octet wire name has at most 127 labels */
#define MAX_TEXT 1024    /* longer text cannot be a name: nothing matches */
#define MAX_SEEDS 64
#define HEADER_LEN 12
#define MAX_WIRE_NAME 255
#define QEND_BITS 9 /* classify() packs (key << 9) | end of the question */
#define NOT_LISTED -1
#define NOT_SIMPLE -2
#define START_BITS 9 /* match() packs (template << 9) | start offset of the suffix */

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static inline uint64_t start_hash(uint64_t seed) { return FNV_OFFSET ^ fmix64(seed + 1); }

/* One label into the running hash; wire bytes are lowercased as they are read. */
static inline uint64_t add_label(uint64_t h, const unsigned char *p, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned c = p[i];
        if (c >= 'A' && c <= 'Z')
            c += 32;
        h = (h ^ c) * FNV_PRIME;
    }
    return (h ^ SEPARATOR) * FNV_PRIME;
}

static inline uint64_t finish(uint64_t h)
{
    uint64_t f = fmix64(h);
    return f ? f : 1; /* 0 marks an empty slot */
}

static inline Py_ssize_t home(uint64_t f, Py_ssize_t cap)
{
    return (Py_ssize_t)(((unsigned __int128)f * (uint64_t)cap) >> 64);
}

/*
 * Hashes of every suffix of a dotted text name, from the top label down: out[k] is the
 * suffix of k + 1 labels, starting at starts[k]. Returns the count, 0 for the root or an
 * over-long name.
 */
static int text_suffixes(uint64_t seed, const char *s, Py_ssize_t n, uint64_t *out,
                         int *starts)
{
    if (n == 0 || n > MAX_TEXT)
        return 0;
    uint64_t h = start_hash(seed);
    int count = 0;
    Py_ssize_t end = n;
    for (Py_ssize_t i = n - 1; i >= -1; i--) {
        if (i >= 0 && s[i] != '.')
            continue;
        if (count == MAX_SUFFIXES)
            return 0;
        h = add_label(h, (const unsigned char *)s + i + 1, end - i - 1);
        out[count] = finish(h);
        starts[count] = (int)(i + 1);
        count++;
        end = i;
    }
    return count;
}

/* ---- the table ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    Py_buffer table;  /* hashes then values */
    Py_buffer pairs;  /* int32 (self, sub) template ids per record; -1 for none */
    const unsigned char *hashes;
    const unsigned char *values;
    const int32_t *pair_ids;
    Py_ssize_t cap;
    Py_ssize_t records;
    int value_size;
    uint64_t seed;
} Table;

static inline uint64_t hash_at(const Table *t, Py_ssize_t i)
{
    uint64_t x;
    memcpy(&x, t->hashes + 8 * i, 8);
    return x;
}

static inline long value_at(const Table *t, Py_ssize_t i)
{
    const unsigned char *p = t->values + (Py_ssize_t)t->value_size * i;
    if (t->value_size == 2)
        return (long)p[0] | (long)p[1] << 8;
    return (long)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                  (uint32_t)p[3] << 24);
}

/* The record of a name hash, or -1. Bounded by cap even if the blob had no empty slot. */
static inline long probe(const Table *t, uint64_t f)
{
    Py_ssize_t i = home(f, t->cap);
    for (Py_ssize_t tries = 0; tries < t->cap; tries++) {
        uint64_t x = hash_at(t, i);
        if (x == f)
            return value_at(t, i);
        if (x == 0)
            return -1;
        if (++i == t->cap)
            i = 0;
    }
    return -1;
}

/* The winning template over suffix hashes (most specific first), or -1; *suffix is the
 * index of the suffix that won. */
static long best_match(const Table *t, const uint64_t *hashes, int count, int *suffix)
{
    for (int k = count - 1; k >= 0; k--) {
        long record = probe(t, hashes[k]);
        if (record < 0 || record >= t->records)
            continue;
        int32_t mid = t->pair_ids[2 * record + (k == count - 1 ? 0 : 1)];
        if (mid >= 0) {
            *suffix = k;
            return mid;
        }
    }
    return -1;
}

/* ---- the serving fast path -------------------------------------------------------------- */

/*
 * Hashes of every suffix of the question name at data[12:], top label first, with seed.
 * labels[] holds each label's offset; count its length (checked by the caller).
 */
static void wire_suffixes(uint64_t seed, const unsigned char *data, const int *labels,
                          int count, uint64_t *out)
{
    uint64_t h = start_hash(seed);
    for (int k = count - 1, j = 0; k >= 0; k--, j++) {
        h = add_label(h, data + labels[k] + 1, data[labels[k]]);
        out[j] = finish(h);
    }
}

/* Does the profile's table of static names (bit 1: exact rule, bit 2: rule for names below)
 * hold a rule for this name? Then decide() would look there before any list. */
static int has_static_rule(const Table *t, const unsigned char *data, const int *labels,
                           int count)
{
    uint64_t hashes[MAX_SUFFIXES];
    wire_suffixes(t->seed, data, labels, count, hashes);
    for (int j = 0; j < count; j++) {
        long bits = probe(t, hashes[j]);
        if (bits >= 0 && (bits & (j == count - 1 ? 1 : 2)))
            return 1;
    }
    return 0;
}

PyDoc_STRVAR(
    classify_doc,
    "classify(data, static) -> int\n\n"
    "For a plain query (one question of class IN, no other records but an OPT without\n"
    "options) whose name has no rule in the static table: the winning list template,\n"
    "packed as ((template * 65536 + qtype) * 4 + edns * 2 + do) << 9 | end of question;\n"
    "-1 when no list names it. -2 for anything else: malformed or unusual queries, a static\n"
    "rule, meta query types. The serving path then takes the general way.");

static PyObject *Table_classify(Table *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) ||
        (args[1] != Py_None && !PyObject_TypeCheck(args[1], Py_TYPE(self)))) {
        PyErr_SetString(PyExc_TypeError, "classify(data: bytes, static: Table | None)");
        return NULL;
    }
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    if (n < HEADER_LEN + 5 || (d[2] & 0xF8) != 0 || d[4] != 0 || d[5] != 1 || d[6] || d[7] ||
        d[8] || d[9] || d[10] != 0 || d[11] > 1)
        return PyLong_FromLong(NOT_SIMPLE); /* QR, opcode, counts: not a plain query */
    int labels[MAX_SUFFIXES];
    int count = 0;
    Py_ssize_t pos = HEADER_LEN;
    for (;;) {
        if (pos >= n)
            return PyLong_FromLong(NOT_SIMPLE);
        unsigned len = d[pos];
        if (len == 0)
            break;
        if (len > 63 || count == MAX_SUFFIXES)
            return PyLong_FromLong(NOT_SIMPLE);
        labels[count++] = (int)pos;
        pos += len + 1;
        if (pos - HEADER_LEN >= MAX_WIRE_NAME)
            return PyLong_FromLong(NOT_SIMPLE);
    }
    Py_ssize_t qend = pos + 5;
    if (count == 0 || qend > n)
        return PyLong_FromLong(NOT_SIMPLE);
    long qtype = (long)d[pos + 1] << 8 | d[pos + 2];
    if (d[pos + 3] != 0 || d[pos + 4] != 1 || qtype == 41 || qtype >= 250 || qtype == 0)
        return PyLong_FromLong(NOT_SIMPLE); /* class IN only; no OPT, TSIG, AXFR.. ANY */
    long edns = 0, dnssec_ok = 0;
    if (d[11] == 1) {
        /* root owner, type OPT, version 0, no options, and nothing after it */
        if (qend + 11 != n || d[qend] != 0 || d[qend + 1] != 0 || d[qend + 2] != 41 ||
            d[qend + 6] != 0 || d[qend + 9] != 0 || d[qend + 10] != 0)
            return PyLong_FromLong(NOT_SIMPLE);
        edns = 1;
        dnssec_ok = (d[qend + 7] & 0x80) != 0;
    } else if (qend != n) {
        return PyLong_FromLong(NOT_SIMPLE);
    }
    if (args[1] != Py_None && has_static_rule((const Table *)args[1], d, labels, count))
        return PyLong_FromLong(NOT_SIMPLE);
    uint64_t hashes[MAX_SUFFIXES];
    int suffix;
    wire_suffixes(self->seed, d, labels, count, hashes);
    long found = best_match(self, hashes, count, &suffix);
    if (found < 0)
        return PyLong_FromLong(NOT_LISTED);
    long long key = (((long long)found * 65536 + qtype) * 4 + edns * 2 + dnssec_ok);
    return PyLong_FromLongLong(key << QEND_BITS | qend);
}

static void Table_dealloc(Table *self)
{
    if (self->table.obj)
        PyBuffer_Release(&self->table);
    if (self->pairs.obj)
        PyBuffer_Release(&self->pairs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Table_init(Table *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"table", "pairs", "cap", "value_size", "seed", NULL};
    Py_ssize_t cap;
    int value_size;
    unsigned long long seed;
    if (self->table.obj) {
        PyErr_SetString(PyExc_TypeError, "a Table is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*niK", kwlist, &self->table, &self->pairs,
                                     &cap, &value_size, &seed))
        return -1;
    if (cap <= 0 || (value_size != 2 && value_size != 4) ||
        self->table.len != cap * (8 + (Py_ssize_t)value_size) || self->pairs.len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "name table: sizes do not match the header");
        return -1;
    }
    self->hashes = self->table.buf;
    self->values = (const unsigned char *)self->table.buf + 8 * cap;
    self->pair_ids = self->pairs.buf;
    self->records = self->pairs.len / 8;
    self->cap = cap;
    self->value_size = value_size;
    self->seed = seed;
    return 0;
}

static const char *text_of(PyObject *name, Py_ssize_t *n)
{
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "name must be str");
        return NULL;
    }
    return PyUnicode_AsUTF8AndSize(name, n);
}

PyDoc_STRVAR(match_doc, "match(name) -> int\n\n"
                        "Winning template for a lowercase dotted name, packed as\n"
                        "(template << 9) | offset of the matching suffix in name; -1 for none.");

/* Suffix hashes of a str argument; -1 with an exception set when it is not a str. */
static int name_suffixes(const Table *t, PyObject *name, uint64_t *hashes, int *starts)
{
    Py_ssize_t n;
    const char *s = text_of(name, &n);
    if (s == NULL)
        return -1;
    return text_suffixes(t->seed, s, n, hashes, starts);
}

static PyObject *Table_match(Table *self, PyObject *name)
{
    uint64_t hashes[MAX_SUFFIXES];
    int starts[MAX_SUFFIXES];
    int count = name_suffixes(self, name, hashes, starts);
    if (count < 0)
        return NULL;
    int suffix;
    long found = best_match(self, hashes, count, &suffix);
    return PyLong_FromLong(found < 0 ? -1 : (found << START_BITS) | starts[suffix]);
}

PyDoc_STRVAR(get_doc, "get(name) -> int\n\nThe record of exactly this name, or -1.");

static PyObject *Table_get(Table *self, PyObject *name)
{
    uint64_t hashes[MAX_SUFFIXES];
    int starts[MAX_SUFFIXES];
    int count = name_suffixes(self, name, hashes, starts);
    if (count < 0)
        return NULL;
    return PyLong_FromLong(count == 0 ? -1 : probe(self, hashes[count - 1]));
}

static PyMethodDef Table_methods[] = {
    {"match", (PyCFunction)Table_match, METH_O, match_doc},
    {"get", (PyCFunction)Table_get, METH_O, get_doc},
    {"classify", (PyCFunction)(void (*)(void))Table_classify, METH_FASTCALL, classify_doc},
    {NULL},
};

static PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "resolver._nametable.Table",
    .tp_doc = PyDoc_STR("Table(table, pairs, cap, value_size, seed): a mapped name table."),
    .tp_basicsize = sizeof(Table),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Table_init,
    .tp_dealloc = (destructor)Table_dealloc,
    .tp_methods = Table_methods,
};

/* ---- building ------------------------------------------------------------------------- */

static int fill(uint64_t seed, PyObject *names, PyObject *values, Py_ssize_t cap,
                int value_size, unsigned char *blob)
{
    /* 1: placed; 0: two names share a hash (try another seed); -1: Python error. */
    Py_ssize_t count = PyList_GET_SIZE(names);
    unsigned char *hashes = blob, *vals = blob + 8 * cap;
    memset(blob, 0, (size_t)cap * (8 + value_size));
    uint64_t suffixes[MAX_SUFFIXES];
    int starts[MAX_SUFFIXES];
    long limit = value_size == 2 ? 0xFFFFL : 0x7FFFFFFFL;
    for (Py_ssize_t j = 0; j < count; j++) {
        Py_ssize_t n;
        const char *s = text_of(PyList_GET_ITEM(names, j), &n);
        if (s == NULL)
            return -1;
        int labels = text_suffixes(seed, s, n, suffixes, starts);
        if (labels == 0) {
            PyErr_Format(PyExc_ValueError, "name table: cannot hash name %R",
                         PyList_GET_ITEM(names, j));
            return -1;
        }
        long value = PyLong_AsLong(PyList_GET_ITEM(values, j));
        if (value == -1 && PyErr_Occurred())
            return -1;
        if (value < 0 || value > limit) {
            PyErr_SetString(PyExc_ValueError, "name table: value out of range");
            return -1;
        }
        uint64_t f = suffixes[labels - 1];
        Py_ssize_t i = home(f, cap);
        for (;;) {
            uint64_t x;
            memcpy(&x, hashes + 8 * i, 8);
            if (x == f)
                return 0;
            if (x == 0)
                break;
            if (++i == cap)
                i = 0;
        }
        memcpy(hashes + 8 * i, &f, 8);
        for (int b = 0; b < value_size; b++)
            vals[(Py_ssize_t)value_size * i + b] = (unsigned char)(value >> (8 * b));
    }
    return 1;
}

PyDoc_STRVAR(build_doc,
             "build_table(names, values, value_size) -> (blob, cap, seed)\n\n"
             "A table of distinct lowercase dotted names with their values (0..65535 for\n"
             "value_size 2, else 0..2**31-1), re-seeded until the names' hashes differ.");

static PyObject *build_table(PyObject *module, PyObject *args)
{
    PyObject *names, *values;
    int value_size;
    if (!PyArg_ParseTuple(args, "O!O!i", &PyList_Type, &names, &PyList_Type, &values,
                          &value_size))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(names);
    if (PyList_GET_SIZE(values) != count || (value_size != 2 && value_size != 4)) {
        PyErr_SetString(PyExc_ValueError, "name table: bad arguments");
        return NULL;
    }
    Py_ssize_t cap = count + count * 3 / 7 + 8; /* load <= 0.7, never full */
    PyObject *blob = PyBytes_FromStringAndSize(NULL, cap * (8 + (Py_ssize_t)value_size));
    if (blob == NULL)
        return NULL;
    for (uint64_t seed = 0; seed < MAX_SEEDS; seed++) {
        int done = fill(seed, names, values, cap, value_size,
                        (unsigned char *)PyBytes_AS_STRING(blob));
        if (done < 0)
            break;
        if (done == 1)
            return Py_BuildValue("NnK", blob, cap, (unsigned long long)seed);
    }
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "name table: duplicate names (or 64 unlucky seeds)");
    Py_DECREF(blob);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"build_table", build_table, METH_VARARGS, build_doc},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "resolver._nametable",
    .m_doc = "The blocklist index's name table (see the comment at the top of the source).",
    .m_size = -1,
    .m_methods = module_methods,
};

/* resolver/_ngmem.c: the allocator of DoH's nghttp2 sessions, in this same extension. */
extern PyMethodDef lachan_ngmem_methods[];
/* resolver/_wire.c: wire-format work of the query path (answer scan, names to text, untrack). */
extern PyMethodDef lachan_wire_methods[];
/* resolver/_upsock.c: the sockets of upstream attempts (forward.Dispatcher). */
extern PyTypeObject lachan_UpSocketsType;
extern PyMethodDef lachan_upsock_methods[];
/* resolver/_ttl.c: a cached body's TTLs clamped and counted down (render_ttls). */
extern PyMethodDef lachan_ttl_methods[];
/* resolver/_query.c: a well-formed client query read in one pass (scan_query). */
extern PyMethodDef lachan_query_methods[];

PyMODINIT_FUNC PyInit__nametable(void)
{
    if (PyType_Ready(&TableType) < 0 || PyType_Ready(&lachan_UpSocketsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&TableType);
    if (PyModule_AddObject(m, "Table", (PyObject *)&TableType) < 0) {
        Py_DECREF(&TableType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "START_BITS", START_BITS) < 0 ||
        PyModule_AddIntConstant(m, "QEND_BITS", QEND_BITS) < 0 ||
        PyModule_AddFunctions(m, lachan_ngmem_methods) < 0 ||
        PyModule_AddFunctions(m, lachan_wire_methods) < 0 ||
        PyModule_AddFunctions(m, lachan_upsock_methods) < 0 ||
        PyModule_AddFunctions(m, lachan_ttl_methods) < 0 ||
        PyModule_AddFunctions(m, lachan_query_methods) < 0 ||
        PyModule_AddObjectRef(m, "UpSockets", (PyObject *)&lachan_UpSocketsType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
