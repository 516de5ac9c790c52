// SPDX-License-Identifier: GPL-2.0
/*
 * Guest workload for the migration tests, built static and run inside the
 * test guests.
 *
 *   memload dirty MIB          write MIB of non-zero data, then free it
 *   memload hold MIB FILE      fill MIB with a known pattern and verify it
 *                              forever; every pass rewrites FILE with
 *                              "passes N errors N"
 *   memload churn MIB SECONDS  allocate, write and free MIB repeatedly
 *   memload grow MIB STEP_KIB MS FILE
 *                              allocate STEP_KIB every MS milliseconds until
 *                              MIB are held, writing each new page once and
 *                              keeping it; then verify everything forever.
 *                              FILE holds "allocated KIB passes N errors N"
 *                              (passes start once growth is done)
 *   memload fragment MIB [N]   write MIB, free one page in every N (2 by
 *                              default) and hold the rest forever: free
 *                              memory in single pages, which makes a
 *                              free-list walk long; prints "fragmented"
 *                              once done
 *   memload lowfree FILE       sample MemFree (KiB) every 20 ms; FILE holds
 *                              "min N last N samples N" since the last reset
 *                              (writing anything to FILE.reset starts over)
 *
 * The pattern of word i of the data set depends on i and a seed fixed at
 * start, so a page that came back with zeros or another page's contents is
 * caught.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024UL * 1024)

static uint64_t pattern(uint64_t i, uint64_t seed)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ seed;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ (x >> 29);
}

static uint64_t *map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static void fill(uint64_t *w, size_t words, uint64_t seed)
{
	for (size_t i = 0; i < words; i++)
		w[i] = pattern(i, seed);
}

static int dirty(size_t mib)
{
	size_t bytes = mib * MIB;
	uint64_t *w = map(bytes);

	fill(w, bytes / 8, (uint64_t)time(NULL));
	munmap(w, bytes);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	char tmp[256];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

/*
 * Check every word against its pattern, report the first bad ones (16 over
 * the whole run) and repair them, so that each loss is counted once.
 */
static void verify(uint64_t *w, size_t words, uint64_t seed,
		   unsigned long *errors)
{
	for (size_t i = 0; i < words; i++) {
		if (w[i] == pattern(i, seed))
			continue;
		if (*errors < 16)
			fprintf(stderr,
				"memload: word %zu (page %zu) is %#llx, expected %#llx\n",
				i, i * 8 / 4096, (unsigned long long)w[i],
				(unsigned long long)pattern(i, seed));
		(*errors)++;
		w[i] = pattern(i, seed);
	}
}

static _Noreturn void hold(size_t mib, const char *status)
{
	size_t words = mib * MIB / 8;
	uint64_t seed = (uint64_t)time(NULL) | 1;
	uint64_t *w = map(mib * MIB);
	unsigned long passes = 0, errors = 0;
	char line[128];

	fill(w, words, seed);
	for (;;) {
		verify(w, words, seed, &errors);
		passes++;
		snprintf(line, sizeof(line), "passes %lu errors %lu\n",
			 passes, errors);
		write_file(status, line);
	}
}

static int churn(size_t mib, unsigned int seconds)
{
	time_t end = time(NULL) + seconds;

	while (time(NULL) < end)
		dirty(mib);
	return 0;
}

/*
 * The allocations a guest makes while it migrates (page faults, new huge
 * pages) land on the blocks at the head of the free lists, which a free-list
 * walk hints first. Each step is written once, right after the allocation,
 * and never again, so a lost write stays lost.
 */
static _Noreturn void grow(size_t mib, size_t step_kib, unsigned int ms,
			   const char *status)
{
	size_t bytes = mib * MIB, step = step_kib * 1024, done = 0;
	size_t words = bytes / 8;
	uint64_t seed = (uint64_t)time(NULL) | 1;
	uint64_t *w = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	unsigned long passes = 0, errors = 0;
	struct timespec pause_ts = { ms / 1000, (ms % 1000) * 1000000L };
	char line[128];

	if (w == MAP_FAILED || !step || step % 4096 || bytes % step) {
		fputs("memload grow: bad arguments or no memory\n", stderr);
		exit(2);
	}
	for (;;) {
		if (done < bytes) {
			/* Fault the step in and write it, once. */
			for (size_t i = done / 8; i < (done + step) / 8; i++)
				w[i] = pattern(i, seed);
			done += step;
			nanosleep(&pause_ts, NULL);
		} else {
			verify(w, words, seed, &errors);
			passes++;
		}
		snprintf(line, sizeof(line), "allocated %zu passes %lu errors %lu\n",
			 done / 1024, passes, errors);
		write_file(status, line);
	}
}

static _Noreturn void fragment(size_t mib, size_t every)
{
	size_t bytes = mib * MIB;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t *w = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (every < 2) {
		fputs("memload fragment: N must be 2 or more\n", stderr);
		exit(2);
	}
	if (w == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	/* Part of a huge page would not go back to the free lists. */
	madvise(w, bytes, MADV_NOHUGEPAGE);
	fill(w, bytes / 8, (uint64_t)time(NULL));
	for (size_t off = 0; off < bytes; off += every * page)
		madvise((char *)w + off, page, MADV_DONTNEED);
	puts("fragmented");
	fflush(stdout);
	for (;;)
		pause();
}

static long memfree_kib(void)
{
	char line[128];
	long kib = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemFree: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static _Noreturn void lowfree(const char *path)
{
	char reset[256], line[128];
	long min = -1, last;
	unsigned long samples = 0;

	snprintf(reset, sizeof(reset), "%s.reset", path);
	for (;;) {
		if (access(reset, F_OK) == 0) {
			unlink(reset);
			min = -1;
			samples = 0;
		}
		last = memfree_kib();
		if (min < 0 || last < min)
			min = last;
		samples++;
		snprintf(line, sizeof(line), "min %ld last %ld samples %lu\n",
			 min, last, samples);
		write_file(path, line);
		usleep(20000);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "dirty"))
		return dirty(strtoul(argv[2], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "hold"))
		hold(strtoul(argv[2], NULL, 0), argv[3]);
	if (argc == 4 && !strcmp(argv[1], "churn"))
		return churn(strtoul(argv[2], NULL, 0), atoi(argv[3]));
	if (argc == 6 && !strcmp(argv[1], "grow"))
		grow(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0),
		     atoi(argv[4]), argv[5]);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "fragment"))
		fragment(strtoul(argv[2], NULL, 0),
			 argc == 4 ? strtoul(argv[3], NULL, 0) : 2);
	if (argc == 3 && !strcmp(argv[1], "lowfree"))
		lowfree(argv[2]);
	fprintf(stderr, "usage: memload dirty MIB | hold MIB FILE | churn MIB SECONDS | grow MIB STEP_KIB MS FILE | fragment MIB [N] | lowfree FILE\n");
	return 2;
}
