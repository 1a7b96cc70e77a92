/*
 * bench/c/nop_ref.c — the C reference for bench/ring-nop.ts: NOP throughput through
 * liburing, the way a C program would write it (io_uring_get_sqe + io_uring_prep_nop,
 * io_uring_submit_and_wait, io_uring_peek_batch_cqe + io_uring_cq_advance).
 *
 * Usage: nop_ref BATCH MILLISECONDS SETUP_FLAGS [ENTRIES]
 * Prints one JSON line: {"batch":..,"ops":..,"seconds":..,"opsPerSec":..,"cpuSeconds":..,
 * "opsPerCpuSec":..,"flags":..}: wall-clock throughput and throughput per CPU-second.
 * Built by bench/ring-nop.ts with `gcc -O2 -o bench/.build/nop_ref bench/c/nop_ref.c -luring`.
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_s(clockid_t id) {
	struct timespec ts;
	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of this process (user + system): what the run cost, whatever else the machine did. */
static double cpu(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* One iteration: BATCH NOPs in, BATCH completions out. Returns the sum of the results. */
static long iteration(struct io_uring *ring, unsigned batch, struct io_uring_cqe **cqes) {
	for (unsigned i = 0; i < batch; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		if (!sqe) {
			fprintf(stderr, "no sqe\n");
			exit(1);
		}
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, i + 1);
	}
	int r = io_uring_submit_and_wait(ring, batch);
	if (r < 0) {
		fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-r));
		exit(1);
	}
	long sum = 0;
	unsigned got = 0;
	while (got < batch) {
		unsigned n = io_uring_peek_batch_cqe(ring, cqes, batch - got);
		if (n == 0) {
			struct io_uring_cqe *cqe;
			r = io_uring_wait_cqe(ring, &cqe);
			if (r < 0) {
				fprintf(stderr, "io_uring_wait_cqe: %s\n", strerror(-r));
				exit(1);
			}
			continue;
		}
		for (unsigned j = 0; j < n; j++) sum += cqes[j]->res + (long)cqes[j]->user_data;
		io_uring_cq_advance(ring, n);
		got += n;
	}
	return sum;
}

int main(int argc, char **argv) {
	if (argc < 4) {
		fprintf(stderr, "usage: %s BATCH MILLISECONDS SETUP_FLAGS [ENTRIES]\n", argv[0]);
		return 2;
	}
	unsigned batch = (unsigned)atoi(argv[1]);
	double seconds = atof(argv[2]) / 1000.0;
	unsigned flags = (unsigned)strtoul(argv[3], NULL, 0);
	unsigned entries = argc > 4 ? (unsigned)atoi(argv[4]) : 256;
	if (batch == 0 || batch > entries) {
		fprintf(stderr, "batch must be 1..entries\n");
		return 2;
	}

	struct io_uring ring;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = flags;
	int r = io_uring_queue_init_params(entries, &ring, &p);
	if (r < 0) {
		fprintf(stderr, "io_uring_queue_init_params: %s\n", strerror(-r));
		return 1;
	}
	struct io_uring_cqe **cqes = calloc(batch, sizeof(*cqes));

	/* Warm up for a tenth of the time, then measure whole iterations until the time is up. */
	long sink = 0;
	double t0 = now();
	while (now() - t0 < seconds / 10) sink += iteration(&ring, batch, cqes);
	unsigned long iters = 0;
	double cpu0 = cpu();
	double start = now(), elapsed;
	do {
		for (int k = 0; k < 16; k++) sink += iteration(&ring, batch, cqes);
		iters += 16;
		elapsed = now() - start;
	} while (elapsed < seconds);

	double cpuSeconds = cpu() - cpu0;
	double ops = (double)iters * batch;
	printf("{\"batch\":%u,\"ops\":%.0f,\"seconds\":%.6f,\"opsPerSec\":%.1f,\"cpuSeconds\":%.6f,"
	       "\"opsPerCpuSec\":%.1f,\"flags\":%u,\"sink\":%ld}\n",
	       batch, ops, elapsed, ops / elapsed, cpuSeconds, ops / cpuSeconds, flags, sink);
	free(cqes);
	io_uring_queue_exit(&ring);
	return 0;
}
