/*
 * A cached answer's body with its TTLs clamped and counted down, in the one extension
 * resolver._nametable: render_ttls, the C form of resolver/cache.py's CacheEntry._render
 * (which stays as the reference).
 *
 * Why C: with a large working set each popular name's prepared answer lasts until its TTLs
 * tick (the next second of its age), so every hit after that re-renders the entry's body.
 * The Python loop (a slice, int.from_bytes, a lambda and a clamp per record) cost about
 * 1 us per record, a third of such a hit; here it is one copy and a patch per record.
 *
 * render_ttls(body: bytes, offsets: tuple[int, ...], floor: int, ceiling: int, age: int)
 * returns a copy of body where each big-endian 32-bit TTL at an offset becomes
 * max(0, min(max(ttl, floor), ceiling) - age), a TTL with its top bit set counting as 0
 * (RFC 2181 8). tests/test_render_ttls.py holds it to the Python rendering.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *render_ttls(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "render_ttls(body, offsets, floor, ceiling, age)");
        return NULL;
    }
    PyObject *body = args[0], *offsets = args[1];
    if (!PyBytes_Check(body) || !PyTuple_Check(offsets)) {
        PyErr_SetString(PyExc_TypeError, "render_ttls: body must be bytes, offsets a tuple");
        return NULL;
    }
    long long floor = PyLong_AsLongLong(args[2]);
    long long ceiling = PyLong_AsLongLong(args[3]);
    long long age = PyLong_AsLongLong(args[4]);
    if ((floor == -1 || ceiling == -1 || age == -1) && PyErr_Occurred())
        return NULL;
    Py_ssize_t size = PyBytes_GET_SIZE(body);
    PyObject *out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(body), size);
    if (out == NULL)
        return NULL;
    unsigned char *d = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t count = PyTuple_GET_SIZE(offsets);
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t off = PyLong_AsSsize_t(PyTuple_GET_ITEM(offsets, i));
        if (off == -1 && PyErr_Occurred())
            goto fail;
        if (off < 0 || off > size - 4) {
            PyErr_SetString(PyExc_ValueError, "render_ttls: a TTL offset outside the body");
            goto fail;
        }
        unsigned char *p = d + off;
        long long ttl = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                        ((uint32_t)p[2] << 8) | (uint32_t)p[3];
        if (ttl & 0x80000000LL)
            ttl = 0;
        if (ttl < floor)
            ttl = floor;
        if (ttl > ceiling)
            ttl = ceiling;
        ttl -= age;
        if (ttl < 0)
            ttl = 0;
        if (ttl > 0xFFFFFFFFLL) {
            PyErr_SetString(PyExc_OverflowError, "render_ttls: a TTL above 32 bits");
            goto fail;
        }
        p[0] = (unsigned char)(ttl >> 24);
        p[1] = (unsigned char)(ttl >> 16);
        p[2] = (unsigned char)(ttl >> 8);
        p[3] = (unsigned char)ttl;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

PyDoc_STRVAR(render_doc,
             "render_ttls(body, offsets, floor, ceiling, age) -> body with each TTL at offsets "
             "clamped to [floor, ceiling] and counted down by age, never below 0 "
             "(see resolver/cache.py CacheEntry._render)");

PyMethodDef lachan_ttl_methods[] = {
    {"render_ttls", (PyCFunction)(void (*)(void))render_ttls, METH_FASTCALL, render_doc},
    {NULL, NULL, 0, NULL},
};
