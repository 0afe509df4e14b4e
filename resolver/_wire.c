/*
 * Wire-format work of the query path, in the one extension resolver._nametable:
 * scan_answer (below), wire_to_text (a question's name as the policy reads it) and untrack.
 *
 * scan_answer: an upstream answer split for caching, the same rules as
 * resolver/response.py's Python scanner (which stays as the reference).
 *
 * Why C: every cache miss scans its upstream answer record by record (names checked for
 * pointers that go forward, loop or leave the message; rdata checked where clients parse
 * it strictly; TTL offsets and the smallest TTL collected). In Python that walk was about an
 * eighth of a miss's CPU (benchmarks/README.md); here it is one pass over the bytes, and what
 * it allocates is what the cache keeps.
 *
 * scan_answer(msg: bytes, qend: int) returns a tuple in ScannedAnswer's field order, or a str:
 * the message of the WireError(FORMERR) the Python scanner raises for the same bytes.
 * tests/test_response_c.py holds the two to the same answer for every input it tries.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define HEADER 12
#define NAME_MAX_WIRE 255
#define T_A 1
#define T_NS 2
#define T_CNAME 5
#define T_SOA 6
#define T_PTR 12
#define T_MX 15
#define T_TXT 16
#define T_AAAA 28
#define T_OPT 41
#define RCODE_NOERROR 0
#define RCODE_NXDOMAIN 3
#define FLAG_TC 0x0200
#define MAX_RECORDS 6000 /* a record takes at least 11 bytes of a 65,535-byte message */

/* Offset past the (possibly compressed) name at pos, or -1 with *err set: response.py's
 * wire.check_name, rule for rule. */
static Py_ssize_t check_name(const unsigned char *d, Py_ssize_t size, Py_ssize_t pos,
                             const char **err)
{
    Py_ssize_t end = -1, limit = pos, bound = size, so_far = 0;
    for (;;) {
        if (pos >= bound) {
            *err = "truncated name, or one running into its pointer";
            return -1;
        }
        unsigned len = d[pos];
        if (len == 0)
            return end < 0 ? pos + 1 : end;
        if ((len & 0xC0) == 0xC0) {
            if (pos + 2 > bound) {
                *err = "truncated pointer";
                return -1;
            }
            Py_ssize_t target = ((Py_ssize_t)(len & 0x3F) << 8) | d[pos + 1];
            if (target >= limit || target < HEADER) {
                *err = "compression pointer forward, looping or in header";
                return -1;
            }
            if (end < 0)
                end = pos + 2;
            bound = pos;
            pos = limit = target;
            continue;
        }
        if (len > 63) {
            *err = "reserved label type";
            return -1;
        }
        so_far += len + 1;
        if (so_far >= NAME_MAX_WIRE) {
            *err = "name longer than 255 octets";
            return -1;
        }
        pos += len + 1;
    }
}

/* The uncompressed name at pos, which check_name has accepted (so every step is safe). */
static PyObject *read_checked_name(const unsigned char *d, Py_ssize_t pos)
{
    unsigned char out[NAME_MAX_WIRE + 1];
    Py_ssize_t n = 0;
    for (;;) {
        unsigned len = d[pos];
        if (len == 0) {
            out[n++] = 0;
            return PyBytes_FromStringAndSize((const char *)out, n);
        }
        if ((len & 0xC0) == 0xC0) {
            pos = ((Py_ssize_t)(len & 0x3F) << 8) | d[pos + 1];
            continue;
        }
        memcpy(out + n, d + pos, len + 1);
        n += len + 1;
        pos += len + 1;
    }
}

/* An SOA's MINIMUM after checking its two names and fixed fields; -1 with *err if bad. */
static int64_t soa_minimum(const unsigned char *d, Py_ssize_t size, Py_ssize_t rdata,
                           Py_ssize_t end, const char **err)
{
    Py_ssize_t pos = check_name(d, size, rdata, err);
    if (pos < 0)
        return -1;
    pos = check_name(d, size, pos, err);
    if (pos < 0)
        return -1;
    if (pos + 20 != end) {
        *err = "malformed SOA rdata";
        return -1;
    }
    return ((int64_t)d[end - 4] << 24) | (d[end - 3] << 16) | (d[end - 2] << 8) | d[end - 1];
}

/* response._check_rdata: 0, or -1 with *err for rdata that would make our answer malformed. */
static int check_rdata(const unsigned char *d, Py_ssize_t size, unsigned rtype,
                       Py_ssize_t rdata, Py_ssize_t end, const char **err, char *errbuf)
{
    int ok;
    Py_ssize_t pos;
    switch (rtype) {
    case T_A:
        ok = end - rdata == 4;
        break;
    case T_AAAA:
        ok = end - rdata == 16;
        break;
    case T_NS:
    case T_CNAME:
    case T_PTR:
        pos = check_name(d, size, rdata, err);
        if (pos < 0)
            return -1;
        ok = pos == end;
        break;
    case T_MX:
        ok = end - rdata > 2;
        if (ok) {
            pos = check_name(d, size, rdata + 2, err);
            if (pos < 0)
                return -1;
            ok = pos == end;
        }
        break;
    case T_TXT:
        pos = rdata;
        while (pos < end)
            pos += d[pos] + 1;
        ok = pos == end && end > rdata;
        break;
    case T_SOA:
        return soa_minimum(d, size, rdata, end, err) < 0 ? -1 : 0;
    default:
        return 0; /* opaque (RFC 3597): its names may not be compressed */
    }
    if (!ok) {
        snprintf(errbuf, 64, "malformed rdata of type %u", rtype);
        *err = errbuf;
        return -1;
    }
    return 0;
}

static PyObject *scan_answer(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan_answer(msg: bytes, qend: int)");
        return NULL;
    }
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t qend = PyLong_AsSsize_t(args[1]);
    if (qend == -1 && PyErr_Occurred())
        return NULL;
    if (size < HEADER)
        return PyUnicode_FromString("answer shorter than a header");
    if (qend < HEADER || qend > size) {
        PyErr_SetString(PyExc_ValueError, "qend outside the message");
        return NULL;
    }
    unsigned counts[3] = {(d[6] << 8) | d[7], (d[8] << 8) | d[9], (d[10] << 8) | d[11]};
    unsigned flags = (d[2] << 8) | d[3];
    unsigned rcode = flags & 0x0F;
    int32_t offsets[MAX_RECORDS];
    Py_ssize_t noffsets = 0;
    int64_t min_ttl = 0xFFFFFFFFLL, max_ttl = 0, soa_ttl = -1;
    Py_ssize_t opt_start = -1, opt_end = -1;
    const char *err = NULL;
    char errbuf[64];
    PyObject *cnames = PyList_New(0);
    if (cnames == NULL)
        return NULL;
    Py_ssize_t pos = qend;
    for (int section = 0; section < 3; section++) {
        for (unsigned i = 0; i < counts[section]; i++) {
            Py_ssize_t owner = pos;
            pos = check_name(d, size, pos, &err);
            if (pos < 0)
                goto bad;
            if (pos + 10 > size) {
                err = "truncated record in answer";
                goto bad;
            }
            unsigned rtype = (d[pos] << 8) | d[pos + 1];
            int64_t ttl = ((int64_t)d[pos + 4] << 24) | (d[pos + 5] << 16) | (d[pos + 6] << 8) |
                          d[pos + 7];
            Py_ssize_t rdata = pos + 10;
            Py_ssize_t end = rdata + ((d[pos + 8] << 8) | d[pos + 9]);
            if (end > size) {
                err = "truncated rdata in answer";
                goto bad;
            }
            if (rtype == T_OPT) {
                if (opt_start >= 0 || section != 2) {
                    err = "two OPT records, or one outside additional";
                    goto bad;
                }
                opt_start = owner;
                opt_end = end;
                rcode |= (unsigned)d[pos + 4] << 4; /* extended rcode bits */
            } else {
                if (ttl & 0x80000000LL)
                    ttl = 0; /* RFC 2181 8 */
                if (noffsets >= MAX_RECORDS) {
                    err = "truncated record in answer"; /* cannot happen in 64 KiB */
                    goto bad;
                }
                offsets[noffsets++] = (int32_t)(pos + 4);
                if (ttl < min_ttl)
                    min_ttl = ttl;
                if (ttl > max_ttl)
                    max_ttl = ttl;
                if (check_rdata(d, size, rtype, rdata, end, &err, errbuf) < 0)
                    goto bad;
                if (section == 1 && rtype == T_SOA) {
                    int64_t minimum = soa_minimum(d, size, rdata, end, &err);
                    soa_ttl = ttl < minimum ? ttl : minimum;
                } else if (section == 0 && rtype == T_CNAME) {
                    PyObject *name = read_checked_name(d, rdata);
                    if (name == NULL || PyList_Append(cnames, name) < 0) {
                        Py_XDECREF(name);
                        Py_DECREF(cnames);
                        return NULL;
                    }
                    Py_DECREF(name);
                }
            }
            pos = end;
        }
    }
    /* pos: the end of the counted records; bytes after them are dropped, never passed on */
    unsigned arcount = counts[2];
    PyObject *body;
    Py_ssize_t shift = 0;
    if (opt_start >= 0) {
        if (opt_end != pos) {
            for (Py_ssize_t i = opt_end; i < pos; i++) {
                if ((d[i] & 0xC0) == 0xC0) {
                    err = "OPT is not last and later names are compressed";
                    goto bad;
                }
            }
        }
        body = PyBytes_FromStringAndSize(NULL, (opt_start - qend) + (pos - opt_end));
        if (body == NULL)
            goto fail;
        char *out = PyBytes_AS_STRING(body);
        memcpy(out, d + qend, opt_start - qend);
        memcpy(out + (opt_start - qend), d + opt_end, pos - opt_end);
        shift = opt_end - opt_start;
        arcount -= 1;
    } else {
        body = PyBytes_FromStringAndSize((const char *)d + qend, pos - qend);
        if (body == NULL)
            goto fail;
    }
    PyObject *ttl_offsets = PyTuple_New(noffsets);
    if (ttl_offsets == NULL) {
        Py_DECREF(body);
        goto fail;
    }
    for (Py_ssize_t i = 0; i < noffsets; i++) {
        Py_ssize_t o = offsets[i];
        if (opt_start >= 0 && o >= opt_start)
            o -= shift;
        PyObject *v = PyLong_FromSsize_t(o - qend);
        if (v == NULL) {
            Py_DECREF(body);
            Py_DECREF(ttl_offsets);
            goto fail;
        }
        PyTuple_SET_ITEM(ttl_offsets, i, v);
    }
    int negative = rcode == RCODE_NXDOMAIN || (rcode == RCODE_NOERROR && counts[0] == 0);
    if (negative)
        min_ttl = soa_ttl; /* RFC 2308 5: no SOA, not cached */
    int cacheable = (rcode == RCODE_NOERROR || rcode == RCODE_NXDOMAIN) && !(flags & FLAG_TC) &&
                    min_ttl >= 0;
    long long out_min = min_ttl == 0xFFFFFFFFLL ? 0 : (min_ttl < 0 ? 0 : min_ttl);
    PyObject *targets = PyList_AsTuple(cnames);
    Py_DECREF(cnames);
    if (targets == NULL) {
        Py_DECREF(body);
        Py_DECREF(ttl_offsets);
        return NULL;
    }
    return Py_BuildValue("(IIIIINNLNNNL)", flags, rcode, counts[0], counts[1], arcount, body,
                         ttl_offsets, out_min, PyBool_FromLong(negative),
                         PyBool_FromLong(cacheable), targets, (long long)max_ttl);
bad:
    Py_DECREF(cnames);
    return PyUnicode_FromString(err);
fail:
    Py_DECREF(cnames);
    return NULL;
}

/* untrack(*objects): take objects out of the cyclic collector's lists (see cache.py: what
 * the cache keeps holds no reference that could close a cycle, so reference counting alone
 * frees it, and the collector must not scan hundreds of thousands of entries).
 *
 * Only tuples and instances of classes defined in Python: their deallocators untrack with the
 * checked call, so an untracked one is freed safely. Many built-in types (bound methods, for
 * one) assume they are still tracked when freed and would crash: those are a TypeError. */
static destructor python_class_dealloc; /* what a `class` statement's instances are freed by */

static int untrack_is_safe(PyObject *o)
{
    if (python_class_dealloc == NULL) {
        PyObject *probe = PyObject_CallFunction((PyObject *)&PyType_Type, "s(){}", "probe");
        if (probe == NULL)
            return -1;
        python_class_dealloc = ((PyTypeObject *)probe)->tp_dealloc;
        Py_DECREF(probe);
    }
    return PyTuple_CheckExact(o) || Py_TYPE(o)->tp_dealloc == python_class_dealloc;
}

static PyObject *untrack(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyObject *o = args[i];
        if (o == Py_None || !PyObject_IS_GC(o))
            continue;
        int safe = untrack_is_safe(o);
        if (safe < 0)
            return NULL;
        if (!safe)
            return PyErr_Format(PyExc_TypeError, "untrack: %s objects may not be untracked",
                                Py_TYPE(o)->tp_name);
        if (PyObject_GC_IsTracked(o))
            PyObject_GC_UnTrack(o);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(untrack_doc, "untrack(*objects): out of the cyclic collector's lists (no cycles)");

PyDoc_STRVAR(scan_doc,
             "scan_answer(msg, qend) -> tuple in ScannedAnswer's order, or the str of the "
             "FORMERR that makes the answer unusable");

/* wire_to_text(wire) -> str: an uncompressed wire name as dotted text without the final
 * dot ('' for the root), every byte outside '!'..'~' and every '.' or '\\' inside a label
 * written \DDD: wire.wire_to_text's rule, which stays as the reference. Why C: every query
 * that is not a prepared answer reads its name as text for the policy, and the Python version
 * was the largest single cost of a miss's own Python (tests/test_wire_c.py holds them equal). */
static PyObject *wire_to_text(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "wire_to_text(wire: bytes)");
        return NULL;
    }
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t size = PyBytes_GET_SIZE(arg);
    char out[4 * 256 + 8]; /* every byte of a 255-octet name escaped: 4 characters each */
    Py_ssize_t n = 0, pos = 0;
    while (pos < size && d[pos] != 0) {
        unsigned len = d[pos];
        if (len > 63 || pos + 1 + (Py_ssize_t)len > size || n + 4 * (Py_ssize_t)len + 1 > 4 * 256) {
            PyErr_SetString(PyExc_ValueError, "not an uncompressed wire name");
            return NULL;
        }
        if (n > 0)
            out[n++] = '.';
        for (unsigned i = 1; i <= len; i++) {
            unsigned char c = d[pos + i];
            if (c >= 0x21 && c <= 0x7E && c != '.' && c != '\\') {
                out[n++] = (char)c;
            } else {
                out[n++] = '\\';
                out[n++] = (char)('0' + c / 100);
                out[n++] = (char)('0' + c / 10 % 10);
                out[n++] = (char)('0' + c % 10);
            }
        }
        pos += len + 1;
    }
    if (pos >= size) {
        PyErr_SetString(PyExc_ValueError, "not an uncompressed wire name");
        return NULL;
    }
    return PyUnicode_DecodeASCII(out, n, NULL);
}

PyDoc_STRVAR(text_doc, "wire_to_text(wire) -> the name as dotted text (see wire.wire_to_text)");

PyMethodDef lachan_wire_methods[] = {
    {"wire_to_text", (PyCFunction)wire_to_text, METH_O, text_doc},
    {"scan_answer", (PyCFunction)(void (*)(void))scan_answer, METH_FASTCALL, scan_doc},
    {"untrack", (PyCFunction)(void (*)(void))untrack, METH_FASTCALL, untrack_doc},
    {NULL, NULL, 0, NULL},
};
