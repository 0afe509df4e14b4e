/*
 * The kernel's floor for one UDP query and its answer on loopback: a responder that does no
 * DNS work at all (it sets QR on the query and sends it back), so that its CPU per query
 * under dnsperf is only what the kernel spends receiving a datagram and delivering one into
 * dnsperf's socket. Every resolver pays at least this per answer; benchmarks/README.md
 * ("Where a query's CPU goes") uses it to read the report's CPU-per-query table.
 *
 *     cc -O2 -o /tmp/udp_floor benchmarks/udp_floor.c
 *     taskset -c 1 /tmp/udp_floor 5390 0 &    # 0: recvfrom/sendto per datagram
 *     taskset -c 1 /tmp/udp_floor 5391 1 &    # 1: recvmmsg/sendmmsg, up to 64 per call
 *     taskset -c 0 dnsperf -s 127.0.0.1 -p 5390 -d NAMES -c 10 -q 100 -l 6
 *     # user and system ticks of the responder: fields 14 and 15 of /proc/PID/stat
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define BATCH 64
#define SIZE 512

static char buffers[BATCH][SIZE];

static void one_at_a_time(int fd)
{
    for (int i = 0; i < BATCH; i++) {
        struct sockaddr_in from;
        socklen_t length = sizeof from;
        ssize_t n = recvfrom(fd, buffers[0], SIZE, MSG_DONTWAIT, (struct sockaddr *)&from, &length);
        if (n < 3)
            return;
        buffers[0][2] |= (char)0x80;
        sendto(fd, buffers[0], (size_t)n, 0, (struct sockaddr *)&from, length);
    }
}

static void batched(int fd)
{
    struct mmsghdr messages[BATCH];
    struct iovec vectors[BATCH];
    struct sockaddr_in sources[BATCH];
    memset(messages, 0, sizeof messages);
    for (int i = 0; i < BATCH; i++) {
        vectors[i] = (struct iovec){buffers[i], SIZE};
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &sources[i];
        messages[i].msg_hdr.msg_namelen = sizeof sources[i];
    }
    int n = recvmmsg(fd, messages, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return;
    for (int i = 0; i < n; i++) {
        buffers[i][2] |= (char)0x80;
        vectors[i].iov_len = messages[i].msg_len;
    }
    sendmmsg(fd, messages, (unsigned)n, 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT BATCHED(0|1)\n", argv[0]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_port = htons((unsigned short)atoi(argv[1])),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) < 0) {
        perror("udp_floor");
        return 1;
    }
    int poller = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN};
    epoll_ctl(poller, EPOLL_CTL_ADD, fd, &event);
    int use_batches = atoi(argv[2]);
    for (;;) {
        if (epoll_wait(poller, &event, 1, -1) < 1)
            continue;
        if (use_batches)
            batched(fd);
        else
            one_at_a_time(fd);
    }
}
