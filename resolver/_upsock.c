/*
 * resolver._nametable.UpSockets: the UDP sockets of upstream attempts (forward.Dispatcher), all
 * in one epoll set that the event loop watches through a single descriptor.
 *
 * Every attempt keeps the defences of RFC 5452: its own socket, bound to a random port of the
 * ephemeral range that none of the last `recent` attempts used, connected to the upstream (the
 * kernel then drops datagrams from any other address or port), a random query ID and, with
 * 0x20, a random letter case for the question. What moves here from Python is only the cost:
 * a socket object, two selector registrations, port picking and random bytes per miss were a
 * quarter of a miss's CPU time (benchmarks/miss_cost.py: 29 -> 22 µs on uvloop; what is left
 * is mostly the system calls themselves). The checks of a reply (ID, QR, question in its
 * exact case) stay in forward.py, which sees every datagram.
 *
 * The set is level-triggered and drain() reads one datagram per ready socket: a socket left
 * with more (forged replies beside the real one) is reported again by the next drain, and the
 * one expected reply costs one recv(), not a second that would only say EAGAIN. Each socket
 * carries its owner (the Python object of its attempt, returned with its datagrams), so a
 * datagram read before its attempt ended is never given to a later attempt that reused the
 * descriptor number. close(fd) takes the socket out of the set before closing it: a copy held
 * by a forked child would otherwise keep it reporting under a number we may give out again.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define POOL 4096      /* random bytes fetched per getrandom() */
#define EVENTS 256     /* readiness reports taken per drain() */
#define PICK_TRIES 16  /* random ports looked at before one recently used is taken anyway */
#define BIND_TRIES 8   /* ports tried (taken by another socket) before the kernel picks one */
#define MAX_QUERY 4096 /* our own queries: a question and an OPT record */

static unsigned char datagram[65536]; /* the receive buffer (the GIL serialises drains) */

typedef struct {
    PyObject_HEAD
    int epfd;           /* -1 until first needed, and again after shutdown() */
    PyObject **owners;  /* by descriptor: the attempt an open socket belongs to, else NULL */
    int capacity;       /* entries in owners */
    int count;          /* open attempt sockets */
    int low, span;      /* the port range */
    int limit;          /* how many recent ports are not picked again */
    uint16_t *ring;     /* the last `limit` ports picked (offsets from low), oldest at head */
    int head, filled;
    uint16_t *uses;     /* per port offset: how many times it is in the ring */
    unsigned char pool[POOL];
    int left;           /* unused bytes at the start of pool */
} UpSockets;

static int take_random(UpSockets *self, void *out, int n)
{
    if (self->left < n) {
        ssize_t got;
        do
            got = getrandom(self->pool, POOL, 0);
        while (got < 0 && errno == EINTR);
        if (got != POOL) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        self->left = POOL;
    }
    self->left -= n;
    memcpy(out, self->pool + self->left, (size_t)n);
    memset(self->pool + self->left, 0, (size_t)n); /* a value is given out once */
    return 0;
}

static int pick_port(UpSockets *self)
{
    uint32_t r;
    int offset = 0;
    for (int i = 0; i < PICK_TRIES; i++) {
        if (take_random(self, &r, 4) < 0)
            return -1;
        offset = (int)(r % (uint32_t)self->span);
        if (self->uses == NULL || !self->uses[offset])
            break;
    }
    if (self->limit > 0) {
        if (self->filled == self->limit) {
            self->uses[self->ring[self->head]]--;
            self->ring[self->head] = (uint16_t)offset;
            self->head = (self->head + 1) % self->limit;
        } else {
            self->ring[(self->head + self->filled++) % self->limit] = (uint16_t)offset;
        }
        self->uses[offset]++;
    }
    return self->low + offset;
}

static int ensure_epoll(UpSockets *self)
{
    if (self->epfd < 0) {
        self->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (self->epfd < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    return 0;
}

static int ensure_owner_slot(UpSockets *self, int fd)
{
    if (fd < self->capacity)
        return 0;
    int capacity = self->capacity ? self->capacity : 256;
    while (capacity <= fd)
        capacity *= 2;
    PyObject **grown = PyMem_Realloc(self->owners, (size_t)capacity * sizeof *grown);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(grown + self->capacity, 0, (size_t)(capacity - self->capacity) * sizeof *grown);
    self->owners = grown;
    self->capacity = capacity;
    return 0;
}

static void release(UpSockets *self, int fd)
{
    if (self->epfd >= 0)
        epoll_ctl(self->epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    Py_CLEAR(self->owners[fd]);
    self->count--;
}

static void close_all(UpSockets *self)
{
    for (int fd = 0; fd < self->capacity; fd++)
        if (self->owners[fd] != NULL)
            release(self, fd);
    if (self->epfd >= 0) {
        close(self->epfd);
        self->epfd = -1;
    }
}

static int UpSockets_init(UpSockets *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"low", "high", "recent", NULL};
    int low, high, recent = 4096;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ii|i", kwlist, &low, &high, &recent))
        return -1;
    if (low < 1 || high > 65535 || low > high || recent < 0) {
        PyErr_SetString(PyExc_ValueError, "UpSockets: bad port range");
        return -1;
    }
    if (self->span != 0) {
        PyErr_SetString(PyExc_RuntimeError, "UpSockets: initialised twice");
        return -1;
    }
    self->epfd = -1;
    self->low = low;
    self->span = high - low + 1;
    self->limit = recent < self->span / 4 ? recent : self->span / 4;
    if (self->limit > 0) {
        self->ring = PyMem_Calloc((size_t)self->limit, sizeof *self->ring);
        self->uses = PyMem_Calloc((size_t)self->span, sizeof *self->uses);
        if (self->ring == NULL || self->uses == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

static int UpSockets_traverse(UpSockets *self, visitproc visit, void *arg)
{
    for (int fd = 0; fd < self->capacity; fd++)
        Py_VISIT(self->owners[fd]);
    return 0;
}

static int UpSockets_clear(UpSockets *self)
{
    close_all(self);
    return 0;
}

static void UpSockets_dealloc(UpSockets *self)
{
    PyObject_GC_UnTrack(self);
    close_all(self);
    PyMem_Free(self->owners);
    PyMem_Free(self->ring);
    PyMem_Free(self->uses);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *UpSockets_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    UpSockets *self = (UpSockets *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->epfd = -1;
    return (PyObject *)self;
}

/* ---- one attempt ------------------------------------------------------------------------ */

static int bind_random(UpSockets *self, int fd, int family)
{
    struct sockaddr_storage local;
    socklen_t length;
    memset(&local, 0, sizeof local);
    for (int i = 0; i < BIND_TRIES; i++) {
        int port = pick_port(self);
        if (port < 0)
            return -1;
        if (family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&local;
            in6->sin6_family = AF_INET6;
            in6->sin6_addr = in6addr_any;
            in6->sin6_port = htons((uint16_t)port);
            length = sizeof *in6;
        } else {
            struct sockaddr_in *in4 = (struct sockaddr_in *)&local;
            in4->sin_family = AF_INET;
            in4->sin_addr.s_addr = htonl(INADDR_ANY);
            in4->sin_port = htons((uint16_t)port);
            length = sizeof *in4;
        }
        if (bind(fd, (struct sockaddr *)&local, length) == 0)
            return 0;
    }
    return 0; /* every pick taken by another socket: connect() lets the kernel choose */
}

/* Our query with a random ID and, when `flip`, each letter of the name in a random case. */
static int dress(UpSockets *self, unsigned char *query, Py_ssize_t name_end, int flip)
{
    unsigned char bits[32]; /* one bit per byte of a name of at most 255 */
    if (take_random(self, query, 2) < 0)
        return -1;
    if (!flip)
        return 0;
    Py_ssize_t length = name_end - 12;
    if (take_random(self, bits, (int)((length + 7) / 8)) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < length; i++) {
        unsigned char c = query[12 + i];
        /* label lengths (at most 63) are never letters; 0x20 turns a-z into A-Z */
        if (c >= 'a' && c <= 'z' && (bits[i >> 3] >> (i & 7)) & 1)
            query[12 + i] = c ^ 0x20;
    }
    return 0;
}

PyDoc_STRVAR(open_doc,
             "open(owner, address, message, question_length, flip) -> (fd, qid, asked)\n\n"
             "A socket on a fresh random port connected to `address` (from pack_address),\n"
             "`message` sent on it with a random ID and (`flip`) 0x20 letter case, in the set\n"
             "with `owner` as its attempt. `asked`: the question as sent, `question_length`\n"
             "bytes after the header (a lowercase name, type and class). OSError on failure.");

static PyObject *UpSockets_open(UpSockets *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyBytes_Check(args[1]) || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "open(owner, address: bytes, message: bytes, int, bool)");
        return NULL;
    }
    PyObject *owner = args[0];
    const struct sockaddr *address = (const struct sockaddr *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t address_length = PyBytes_GET_SIZE(args[1]);
    Py_ssize_t length = PyBytes_GET_SIZE(args[2]);
    Py_ssize_t question = PyLong_AsSsize_t(args[3]);
    int flip = PyObject_IsTrue(args[4]);
    if ((question == -1 || flip < 0) && PyErr_Occurred())
        return NULL;
    if (question < 5 || question > 259 || 12 + question > length || length > MAX_QUERY) {
        PyErr_SetString(PyExc_ValueError, "open: the message does not hold the question");
        return NULL;
    }
    int family = address_length >= (Py_ssize_t)sizeof(sa_family_t) ? address->sa_family : 0;
    if (!(family == AF_INET && address_length == sizeof(struct sockaddr_in)) &&
        !(family == AF_INET6 && address_length == sizeof(struct sockaddr_in6))) {
        errno = EAFNOSUPPORT;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (ensure_epoll(self) < 0)
        return NULL;
    unsigned char query[MAX_QUERY];
    memcpy(query, PyBytes_AS_STRING(args[2]), (size_t)length);
    if (dress(self, query, 12 + question - 4, flip) < 0)
        return NULL;
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    if (bind_random(self, fd, family) < 0 || ensure_owner_slot(self, fd) < 0) {
        close(fd);
        return NULL;
    }
    if (connect(fd, address, (socklen_t)address_length) < 0 ||
        epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &event) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *asked = PyBytes_FromStringAndSize((const char *)query + 12, question);
    if (asked == NULL) {
        epoll_ctl(self->epfd, EPOLL_CTL_DEL, fd, NULL);
        close(fd);
        return NULL;
    }
    Py_INCREF(owner);
    self->owners[fd] = owner;
    self->count++;
    /* A full buffer or an early ICMP error: the attempt times out or its error is read. */
    (void)send(fd, query, (size_t)length, 0);
    return Py_BuildValue("iiN", fd, (query[0] << 8) | query[1], asked);
}

PyDoc_STRVAR(drain_doc,
             "drain() -> [(owner, bytes | errno)]\n\n"
             "One datagram (or the pending error, such as ECONNREFUSED from an ICMP port\n"
             "unreachable) from each socket that is ready now; never waits.");

static PyObject *UpSockets_drain(UpSockets *self, PyObject *unused)
{
    struct epoll_event events[EVENTS];
    PyObject *out = PyList_New(0);
    if (out == NULL || self->epfd < 0)
        return out;
    int ready = epoll_wait(self->epfd, events, EVENTS, 0);
    if (ready < 0 && errno != EINTR) {
        Py_DECREF(out);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    for (int i = 0; i < ready; i++) {
        int fd = events[i].data.fd;
        if (fd < 0 || fd >= self->capacity || self->owners[fd] == NULL)
            continue;
        ssize_t got = recv(fd, datagram, sizeof datagram, 0);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        PyObject *item = got < 0 ? Py_BuildValue("(Oi)", self->owners[fd], errno)
                                 : Py_BuildValue("(Oy#)", self->owners[fd], datagram,
                                                 (Py_ssize_t)got);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
    }
    return out;
}

PyDoc_STRVAR(close_doc, "close(fd)\n\nEnd an attempt: its socket leaves the set and is closed.");

static PyObject *UpSockets_close(UpSockets *self, PyObject *arg)
{
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd >= 0 && fd < self->capacity && self->owners[fd] != NULL)
        release(self, (int)fd);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(shutdown_doc,
             "shutdown()\n\nClose every attempt's socket and the epoll set (made anew if used "
             "again).");

static PyObject *UpSockets_shutdown(UpSockets *self, PyObject *unused)
{
    close_all(self);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(fileno_doc, "fileno() -> int\n\nThe epoll set: readable while any socket is.");

static PyObject *UpSockets_fileno(UpSockets *self, PyObject *unused)
{
    if (ensure_epoll(self) < 0)
        return NULL;
    return PyLong_FromLong(self->epfd);
}

static Py_ssize_t UpSockets_len(UpSockets *self)
{
    return self->count;
}

static PyMethodDef UpSockets_methods[] = {
    {"open", (PyCFunction)(void (*)(void))UpSockets_open, METH_FASTCALL, open_doc},
    {"drain", (PyCFunction)UpSockets_drain, METH_NOARGS, drain_doc},
    {"close", (PyCFunction)UpSockets_close, METH_O, close_doc},
    {"shutdown", (PyCFunction)UpSockets_shutdown, METH_NOARGS, shutdown_doc},
    {"fileno", (PyCFunction)UpSockets_fileno, METH_NOARGS, fileno_doc},
    {NULL},
};

static PySequenceMethods UpSockets_sequence = {.sq_length = (lenfunc)UpSockets_len};

PyTypeObject lachan_UpSocketsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "resolver._nametable.UpSockets",
    .tp_doc = PyDoc_STR("UpSockets(low, high, recent=4096): upstream attempts' sockets, "
                        "ports from low..high, none of the last `recent` reused."),
    .tp_basicsize = sizeof(UpSockets),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = UpSockets_new,
    .tp_init = (initproc)UpSockets_init,
    .tp_dealloc = (destructor)UpSockets_dealloc,
    .tp_traverse = (traverseproc)UpSockets_traverse,
    .tp_clear = (inquiry)UpSockets_clear,
    .tp_methods = UpSockets_methods,
    .tp_as_sequence = &UpSockets_sequence,
};

/* ---- addresses ---------------------------------------------------------------------------- */

PyDoc_STRVAR(pack_doc,
             "pack_address(host, port) -> bytes\n\n"
             "The socket address of a numeric IPv4 or IPv6 host (a scope such as %eth0\n"
             "allowed), for UpSockets.open. OSError for anything else.");

static PyObject *pack_address(PyObject *module, PyObject *args)
{
    const char *host;
    int port;
    if (!PyArg_ParseTuple(args, "si", &host, &port))
        return NULL;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "pack_address: port out of range");
        return NULL;
    }
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *found = NULL;
    int failed = getaddrinfo(host, NULL, &hints, &found);
    if (failed || found == NULL) {
        PyErr_Format(PyExc_OSError, "not a numeric address: %s (%s)", host,
                     gai_strerror(failed));
        return NULL;
    }
    struct sockaddr_storage address;
    socklen_t length = found->ai_addrlen;
    memcpy(&address, found->ai_addr, length);
    freeaddrinfo(found);
    if (address.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&address)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&address)->sin_port = htons((uint16_t)port);
    return PyBytes_FromStringAndSize((const char *)&address, length);
}

PyMethodDef lachan_upsock_methods[] = {
    {"pack_address", pack_address, METH_VARARGS, pack_doc},
    {NULL},
};
