/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The free page hinting engine, apart from the virtqueue.
 *
 * The walker (hint_walk.c) reads the buddy free lists under zone->lock, a
 * bounded number of entries per acquisition, and resumes where it stopped.
 * The session (hint_session.c) runs the command-id protocol for one id: start
 * marker, ranges, STOP, and abandons the round as soon as the device says so.
 * Both talk to the device only through struct vb_hint_sink, which the driver
 * implements on the free page queue (hint_device.c) and the KUnit suites
 * implement in memory.
 *
 * Before the walk, the sink may fence the round (hint_fence.c): it makes the
 * host clear the dirty log of every window of guest memory that the session
 * may hint in (hint_layout.c derives the windows), and says which windows
 * those are. The session then hints only ranges in fenced windows.
 */
#ifndef _VIRTIO_BALLOON_HINT_H
#define _VIRTIO_BALLOON_HINT_H

#include <linux/mmzone.h>
#include <linux/types.h>

#include "virtio_balloon_compat.h"

/*
 * Free-list entries one session may examine per acquisition of zone->lock,
 * or of one CPU's per-CPU list lock.
 */
#define VB_HINT_BUDGET_MAX	1024
#define VB_HINT_BUDGET_DEFAULT	128

/* Longest range in one hint: the scatterlist length is 32 bits. */
#define VB_HINT_RANGE_MAX_PAGES	(SZ_1G >> PAGE_SHIFT)

/* A run of free pages, as page frame numbers of the guest. */
struct vb_hint_range {
	unsigned long pfn;
	unsigned long nr_pages;
};

/*
 * Where the walk stands: the free list of (order, zone, migratetype) being
 * read, and the last entry read in it. Orders go from the largest down to
 * min_order, so the biggest blocks reach the device first. Then come the
 * per-CPU lists: one (zone, cpu) pair per step.
 */
struct vb_hint_cursor {
	struct zone **zones;	/* the zones to walk, set by the caller */
	unsigned int nr_zones;
	unsigned int min_order;
	int order;
	unsigned int zone_idx;
	int mt;
	unsigned long last_pfn;	/* last entry read in this list, if has_last */
	bool has_last;
	unsigned long hotplug_gen; /* memory hotplug events seen at last step */
	unsigned int hotplug_restarts; /* steps that found hotplug events since */
	unsigned long visits;	/* entries read in this list so far */
	unsigned long visits_max; /* bound that guarantees the walk ends */
	bool pcp;		/* reading the per-CPU lists */
	unsigned int cpu;	/* whose per-CPU lists, in the pcp phase */
	bool done;
	int only_mt;		/* read only this migratetype's buddy lists, or -1 */
};

/* What one acquisition of zone->lock did, for the statistics. */
struct vb_hint_step {
	unsigned int visited;
	u64 lock_ns;
};

int vb_hint_walk_init(void);
void vb_hint_walk_exit(void);
unsigned int vb_hint_collect_zones(struct zone **zones, unsigned int max);
void vb_hint_cursor_init(struct vb_hint_cursor *cur, struct zone **zones,
			 unsigned int nr_zones, unsigned int min_order);
void vb_hint_cursor_only(struct vb_hint_cursor *cur, int mt);
void vb_hint_cursor_rewind(struct vb_hint_cursor *cur);
unsigned long vb_hint_hotplug_now(void);
bool vb_hint_hotplug_since(unsigned long gen);
bool vb_hint_hotplug_hold(unsigned long gen);
void vb_hint_hotplug_release(void);
unsigned int vb_hint_walk_step(struct vb_hint_cursor *cur,
			       unsigned int budget,
			       struct vb_hint_range *out,
			       struct vb_hint_step *step);
unsigned int vb_hint_coalesce(struct vb_hint_range *r, unsigned int n);

/*
 * A fence window: guest memory that lies inside one dirty-log chunk of the
 * host on every layout the guest can see (hint_layout.c). Windows are
 * sorted and disjoint; guest memory in none of them is never hinted.
 */
struct vb_fence_window {
	unsigned long start_pfn;
	unsigned long end_pfn;
};

/*
 * The windows whose dirty log the host has cleared in this round since the
 * last pass of the walk (map, one bit per window): this pass hints ranges
 * wholly inside them. A range that touches a window the session fences in
 * another pass (other) is left to that pass, or was hinted by it; one that
 * touches a window no pass fences is left out and counted, and the windows
 * it touches are marked in wanted (when there is one), for the next session
 * to find a probe in.
 */
struct vb_hint_fenced {
	const struct vb_fence_window *win;
	unsigned long nr_win;
	const unsigned long *map;
	const unsigned long *other;	/* same size, or NULL */
	unsigned long *wanted;		/* same size, or NULL */
};

/*
 * What the guest sees of the host's RAM blocks, for vb_layout_windows():
 * its RAM, the addresses where a block may begin (NUMA node spans, memory
 * devices), and where RAM below 4 GiB ends when RAM resumes at 4 GiB.
 */
struct vb_layout {
	const struct vb_hint_range *ram;	/* sorted, disjoint */
	unsigned int nr_ram;
	unsigned long *cuts;		/* any order, with room for one more */
	unsigned int nr_cuts;
	unsigned long low_end_pfn;	/* 0: RAM does not resume at 4 GiB */
};

/* The windows vb_layout_windows() derived, and the RAM it left out. */
struct vb_fence_layout {
	struct vb_fence_window *win;	/* kvmalloc'ed */
	unsigned long nr_win;
	unsigned int min_order;		/* smallest window alignment used */
	unsigned long unsafe_pages;	/* RAM in no window */
	unsigned long unsafe_pfn;	/* the first of it */
};

/* Windows no smaller than the largest free block, as a page order. */
#define VB_FENCE_WINDOW_MIN_ORDER	(NR_PAGE_ORDERS - 1)

int vb_layout_windows(struct vb_layout *l, unsigned int max_order,
		      struct vb_fence_layout *out);
long vb_fence_window_find(const struct vb_fence_window *win,
			  unsigned long nr, unsigned long pfn);

/* What the device wants, as the sink sees it. */
enum vb_hint_verdict {
	VB_HINT_GO,		/* keep reporting under this id */
	VB_HINT_STOP,		/* the device sent STOP */
	VB_HINT_DONE,		/* the device sent DONE */
	VB_HINT_NEWER,		/* the device published a newer id */
	VB_HINT_DISABLED,	/* hinting was turned off */
	VB_HINT_REMOVED,	/* the device is going away or freezing */
};

/* How a session ended. */
enum vb_hint_end {
	VB_HINT_END_COMPLETED,
	VB_HINT_END_STOP,
	VB_HINT_END_DONE,
	VB_HINT_END_NEWER,
	VB_HINT_END_DISABLED,
	VB_HINT_END_REMOVED,
	VB_HINT_END_TIMEOUT,	/* the device did not take our buffers */
	VB_HINT_END_ERROR,	/* the queue refused a buffer */
	VB_HINT_END_MAX,
};

extern const char * const vb_hint_end_names[VB_HINT_END_MAX];

struct vb_hint_sink;

struct vb_hint_sink_ops {
	/*
	 * Queue a command id (the start marker, or STOP). Returns 0,
	 * -ETIMEDOUT if no room came in time, -ECANCELED if the verdict
	 * turned while waiting for room, or another error from the queue.
	 */
	int (*send_id)(struct vb_hint_sink *sink, u32 id);
	/* Queue @n ranges; the same returns as send_id. */
	int (*send_ranges)(struct vb_hint_sink *sink,
			   const struct vb_hint_range *r, unsigned int n);
	/* Let the device see what was queued. */
	void (*kick)(struct vb_hint_sink *sink);
	/* Whether the session for @id may go on. Called often: keep it cheap. */
	enum vb_hint_verdict (*check)(struct vb_hint_sink *sink, u32 id);
	/*
	 * Optional. After the start marker, before any range, and again
	 * after each pass of the walk while *@more: return once the host has
	 * applied a fence for @id over more windows, with @fenced saying
	 * which the next pass may hint and *@more whether another call may
	 * fence more; the same returns as send_id. Without it, every range
	 * may be hinted, in one pass.
	 */
	int (*fence)(struct vb_hint_sink *sink, u32 id,
		     struct vb_hint_fenced *fenced, bool *more);
};

struct vb_hint_sink {
	const struct vb_hint_sink_ops *ops;
};

/*
 * One session: its parameters in, its figures out. The engine
 * (hint_session.c) writes the first group of figures, the sink the second;
 * the hint device folds them all into its statistics when the session ends.
 */
struct vb_hint_session {
	u32 id;
	unsigned int min_order;
	unsigned int budget;
	struct vb_hint_range *batch;	/* VB_HINT_BUDGET_MAX entries */
	struct vb_hint_fenced fenced;	/* set by the sink's fence */

	u64 pages;
	u64 ranges;
	u64 unfenced_pages;	/* free pages left out: outside the fence */
	u64 lock_ns_max;
	u64 lock_acquisitions;

	u64 first_hint_ns;	/* when the first ranges were queued, or 0 */
	u64 queue_full_waits;	/* waits for room in the queue */
	u64 fence_windows;	/* windows the fence covered */
	u64 fence_missing;	/* wanted windows it found no probe page for */
	u64 fence_ns;		/* taking probes, host applying; 0: no fence */
	u64 fence_take_ns;	/* of which taking probes */
	bool fence_ran;		/* the sink's fence was called */
	bool fence_applied;	/* by at least one pass */
	unsigned int passes;	/* of the walk, one per fence that held */
	unsigned int hotplug_restarts; /* of the walk's cursor */
};

bool vb_hint_id_is_new(u32 last, u32 id);
unsigned int vb_hint_keep_fenced(const struct vb_hint_fenced *fenced,
				 struct vb_hint_range *r, unsigned int n,
				 u64 *dropped_pages);
enum vb_hint_end vb_hint_end_of(enum vb_hint_verdict v);
enum vb_hint_end vb_hint_end_of_err(struct vb_hint_sink *sink, u32 id, int err);
enum vb_hint_end vb_hint_session_run(struct vb_hint_session *s,
				     struct vb_hint_cursor *cur,
				     struct vb_hint_sink *sink);

#endif /* _VIRTIO_BALLOON_HINT_H */
