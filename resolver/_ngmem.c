/*
 * resolver._ngmem: the allocator lachan hands libnghttp2 (nghttp2_mem), one per session, so
 * that an idle DoH connection does not keep its session's larger buffers resident.
 *
 * Each nghttp2 session allocates a 16 KiB output buffer and a 4 KiB stream table at creation
 * and keeps both for the connection's life, though DNS answers fill a few hundred bytes of the
 * one and an idle connection has no stream in the other. From the heap they landed on pages
 * earlier TLS handshakes had touched and all of it stayed resident: 45 KiB per idle DoH
 * connection against 25 for DoT (3,000 held). Here blocks of BIG bytes or more are mapped on
 * their own (pages never written cost nothing), and trim() hands back, when the connection has
 * gone quiet, the pages of the output buffer (whose bytes are dead once nghttp2 has handed
 * them out: it packs each frame anew) and of any mapped block that is all zeros again (the
 * stream table once its streams are closed).
 *
 * The mapped blocks of a session are listed in its arena (a handful: no header on the blocks,
 * so a 4 KiB table is one page); a pointer not listed there came from malloc.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define BIG 4096
#define PAGE 4096
#define FRAMEBUF 16394 /* NGHTTP2_FRAMEBUF_CHUNKLEN: 9-byte frame header + 1 + 16 KiB payload */

typedef struct {
    void *mem_user_data;
    void *(*malloc)(size_t size, void *mem_user_data);
    void (*free)(void *ptr, void *mem_user_data);
    void *(*calloc)(size_t nmemb, size_t size, void *mem_user_data);
    void *(*realloc)(void *ptr, size_t size, void *mem_user_data);
} ng_mem; /* nghttp2_mem's layout (nghttp2/nghttp2.h) */

typedef struct {
    unsigned char *ptr;
    size_t size;   /* as asked */
    size_t mapped; /* whole pages */
} mapped_block;

typedef struct {
    ng_mem mem; /* first: nghttp2 gets the arena's address as its nghttp2_mem */
    mapped_block *blocks;
    size_t count, capacity;
} arena;

static Py_ssize_t find(arena *a, void *ptr)
{
    size_t at;
    for (at = 0; at < a->count; at++)
        if (a->blocks[at].ptr == ptr)
            return (Py_ssize_t)at;
    return -1;
}

static void *block(arena *a, size_t size, int zeroed)
{
    mapped_block entry;
    if (size < BIG)
        return zeroed ? calloc(1, size) : malloc(size);
    if (size > SIZE_MAX / 2)
        return NULL;
    if (a->count == a->capacity) {
        size_t capacity = a->capacity ? 2 * a->capacity : 4;
        mapped_block *grown = realloc(a->blocks, capacity * sizeof *grown);
        if (grown == NULL)
            return NULL;
        a->blocks = grown;
        a->capacity = capacity;
    }
    entry.size = size;
    entry.mapped = (size + PAGE - 1) & ~(size_t)(PAGE - 1);
    entry.ptr = mmap(NULL, entry.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (entry.ptr == MAP_FAILED)
        return NULL; /* (fresh mappings are zeroed) */
    a->blocks[a->count++] = entry;
    return entry.ptr;
}

static void ng_free(void *ptr, void *user)
{
    arena *a = user;
    Py_ssize_t at;
    if (ptr == NULL)
        return;
    at = find(a, ptr);
    if (at < 0) {
        free(ptr);
        return;
    }
    munmap(ptr, a->blocks[at].mapped);
    a->blocks[at] = a->blocks[--a->count];
}

static void *ng_malloc(size_t size, void *user)
{
    return block(user, size, 0);
}

static void *ng_calloc(size_t nmemb, size_t size, void *user)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    return block(user, nmemb * size, 1);
}

static void *ng_realloc(void *ptr, size_t size, void *user)
{
    arena *a = user;
    Py_ssize_t at;
    size_t held;
    void *moved;
    if (ptr == NULL)
        return block(a, size, 0);
    at = find(a, ptr);
    if (at < 0 && size < BIG)
        return realloc(ptr, size);
    if (at >= 0 && size <= a->blocks[at].mapped) {
        a->blocks[at].size = size;
        return ptr;
    }
    held = at >= 0 ? a->blocks[at].size : malloc_usable_size(ptr);
    moved = block(a, size, 0);
    if (moved == NULL)
        return NULL;
    memcpy(moved, ptr, held < size ? held : size);
    ng_free(ptr, a);
    return moved;
}

static int all_zero(const unsigned char *bytes, size_t length)
{
    return length == 0 || (bytes[0] == 0 && memcmp(bytes, bytes + 1, length - 1) == 0);
}

static arena *arena_of(PyObject *address)
{
    arena *a = PyLong_AsVoidPtr(address);
    if (a == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "no arena");
    return a;
}

static PyObject *new_arena(PyObject *self, PyObject *unused)
{
    arena *a = calloc(1, sizeof *a);
    if (a == NULL)
        return PyErr_NoMemory();
    a->mem.mem_user_data = a;
    a->mem.malloc = ng_malloc;
    a->mem.free = ng_free;
    a->mem.calloc = ng_calloc;
    a->mem.realloc = ng_realloc;
    return PyLong_FromVoidPtr(a);
}

static PyObject *trim(PyObject *self, PyObject *address)
{
    arena *a = arena_of(address);
    size_t at;
    if (a == NULL)
        return NULL;
    for (at = 0; at < a->count; at++) {
        mapped_block *b = &a->blocks[at];
        if (b->size == FRAMEBUF || all_zero(b->ptr, b->size))
            madvise(b->ptr, b->mapped, MADV_DONTNEED); /* reads back as zeros */
    }
    Py_RETURN_NONE;
}

static PyObject *free_arena(PyObject *self, PyObject *address)
{
    arena *a = arena_of(address);
    size_t at;
    if (a == NULL)
        return NULL;
    for (at = 0; at < a->count; at++) /* what the deleted session left (none expected) */
        munmap(a->blocks[at].ptr, a->blocks[at].mapped);
    free(a->blocks);
    free(a);
    Py_RETURN_NONE;
}

/* Added to resolver._nametable's functions (one C extension, two sources): see its init. */
PyMethodDef lachan_ngmem_methods[] = {
    {"ngmem_new", new_arena, METH_NOARGS,
     "ngmem_new() -> int: a new arena, whose address is the nghttp2_mem of one session"},
    {"ngmem_trim", trim, METH_O,
     "ngmem_trim(arena): give back the pages of its output buffer and of its all-zero blocks; call "
     "only between nghttp2 calls, with nothing left to send"},
    {"ngmem_free", free_arena, METH_O, "ngmem_free(arena): after nghttp2_session_del"},
    {NULL, NULL, 0, NULL},
};
