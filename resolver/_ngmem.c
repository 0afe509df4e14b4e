/*
 * resolver._ngmem: the allocator lachan hands libnghttp2 (nghttp2_mem), so that an idle
 * DoH connection does not keep its session's 16 KiB output buffer resident.
 *
 * Each nghttp2 session allocates one 16 KiB frame buffer at creation and keeps it for the
 * connection's life, although DNS answers fill only its first few hundred bytes. From the
 * heap, that buffer lands in memory the TLS handshakes of earlier connections already
 * touched, so all of it counts: measured, 45 KiB per idle DoH connection against 25 for DoT.
 * Blocks of BIG bytes or more are mapped here on their own instead; pages never written stay
 * unbacked, and an idle session keeps one page of that buffer.
 *
 * Every block starts with a 16-byte header (alignment kept): its size, and its mapped length
 * (0 for a block from malloc).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define HEADER 16
#define BIG 8192

typedef struct {
    void *mem_user_data;
    void *(*malloc)(size_t size, void *mem_user_data);
    void (*free)(void *ptr, void *mem_user_data);
    void *(*calloc)(size_t nmemb, size_t size, void *mem_user_data);
    void *(*realloc)(void *ptr, size_t size, void *mem_user_data);
} ng_mem; /* nghttp2_mem's layout (nghttp2/nghttp2.h) */

typedef struct {
    size_t size;
    size_t mapped;
} header;

static void *block(size_t size, int zeroed)
{
    unsigned char *raw;
    header head = {size, 0};
    if (size > SIZE_MAX / 2)
        return NULL;
    if (size >= BIG) {
        head.mapped = (size + HEADER + 4095) & ~(size_t)4095;
        raw = mmap(NULL, head.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED)
            return NULL; /* (fresh mappings are zeroed) */
    } else {
        raw = zeroed ? calloc(1, size + HEADER) : malloc(size + HEADER);
        if (raw == NULL)
            return NULL;
    }
    memcpy(raw, &head, sizeof head);
    return raw + HEADER;
}

static header header_of(void *ptr)
{
    header head;
    memcpy(&head, (unsigned char *)ptr - HEADER, sizeof head);
    return head;
}

static void ng_free(void *ptr, void *user)
{
    header head;
    if (ptr == NULL)
        return;
    head = header_of(ptr);
    if (head.mapped)
        munmap((unsigned char *)ptr - HEADER, head.mapped);
    else
        free((unsigned char *)ptr - HEADER);
}

static void *ng_malloc(size_t size, void *user)
{
    return block(size, 0);
}

static void *ng_calloc(size_t nmemb, size_t size, void *user)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    return block(nmemb * size, 1);
}

static void *ng_realloc(void *ptr, size_t size, void *user)
{
    header head;
    unsigned char *moved;
    if (ptr == NULL)
        return block(size, 0);
    head = header_of(ptr);
    if (!head.mapped && size < BIG) {
        unsigned char *raw = realloc((unsigned char *)ptr - HEADER, size + HEADER);
        if (raw == NULL)
            return NULL;
        head.size = size;
        memcpy(raw, &head, sizeof head);
        return raw + HEADER;
    }
    moved = block(size, 0);
    if (moved == NULL)
        return NULL;
    memcpy(moved, ptr, head.size < size ? head.size : size);
    ng_free(ptr, user);
    return moved;
}

static ng_mem allocator = {NULL, ng_malloc, ng_free, ng_calloc, ng_realloc};

static PyObject *address(PyObject *self, PyObject *unused)
{
    return PyLong_FromVoidPtr(&allocator);
}

static PyMethodDef methods[] = {
    {"address", address, METH_NOARGS,
     "address() -> int: the nghttp2_mem to pass to nghttp2_session_server_new3"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "resolver._ngmem",
    "The allocator handed to libnghttp2: blocks of 8 KiB or more mapped on their own.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ngmem(void)
{
    return PyModule_Create(&module);
}
