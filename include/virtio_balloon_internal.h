/* SPDX-License-Identifier: GPL-2.0 */
/*
 * State shared by the files of the virtio_balloon module. Every symbol of the
 * driver starts with vb_ so that a grep finds all of it.
 */
#ifndef _VIRTIO_BALLOON_INTERNAL_H
#define _VIRTIO_BALLOON_INTERNAL_H

#include <linux/gfp.h>
#include <linux/mutex.h>
#include <linux/page_reporting.h>
#include <linux/scatterlist.h>
#include <linux/spinlock.h>
#include <linux/vmstat.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include "virtio_balloon_compat.h"
#include "virtio_balloon_hint.h"

#define VB_DRIVER_VERSION "0.1.0"

/* The device counts in 4 KiB units whatever the guest's page size. */
#define VB_PAGES_PER_PAGE (PAGE_SIZE >> VIRTIO_BALLOON_PFN_SHIFT)

/* Page frame numbers handed to the device in one inflate or deflate message. */
#define VB_PFNS_PER_MSG 256

/* Queue indices, in the order the device creates its queues. */
enum vb_vq_index {
	VB_VQ_INFLATE,
	VB_VQ_DEFLATE,
	VB_VQ_STATS,
	VB_VQ_FREE_PAGE,
	VB_VQ_REPORTING,
	VB_VQ_MAX,
};

/* The statistics this driver reports: the 6.12 in-tree driver's set. */
#define VB_STATS_MAX 16

/* Reasons to keep the device's wakeup source active (see vb_queue_work()). */
#define VB_WAKEUP_RESIZE	BIT(0)
#define VB_WAKEUP_STATS		BIT(1)
#define VB_WAKEUP_HINT		BIT(2)

/* Ranges carried by one element of the free page queue. */
#define VB_HINT_SG_MAX		32

/*
 * The largest fence window (hint_fence.c), in MiB: QEMU's default dirty-log
 * clear chunk, the most a window may span. No smaller than the largest free
 * block (VB_FENCE_WINDOW_MIN_ORDER).
 */
#define VB_HINT_FENCE_MIB_DEFAULT	1024
#define VB_HINT_FENCE_MIB_MIN	\
	max_t(unsigned int, 1, (PAGE_SIZE << VB_FENCE_WINDOW_MIN_ORDER) >> 20)
#define VB_HINT_FENCE_MIB_MAX	1024

/* host_discards_hints */
enum {
	VB_HOST_DISCARDS_AUTO,
	VB_HOST_DISCARDS_NO,
	VB_HOST_DISCARDS_YES,
};

/* Counters of the hinting sessions, shown in sysfs. */
struct vb_hint_stats {
	u64 started;
	u64 ended[VB_HINT_END_MAX];
	u64 skipped;		/* new ids seen while hinting=0 */
	u64 last_cmd_id;
	u64 last_pages;
	u64 last_ranges;
	u64 total_pages;
	u64 total_ranges;
	u64 last_duration_us;
	u64 last_first_hint_us;	/* request to first ranges queued */
	u64 max_lock_hold_ns;
	u64 last_lock_acquisitions; /* zone and per-CPU list locks taken */
	u64 queue_full_waits;
	u64 fences_applied;	/* fences the device applied, since probe */
	u64 last_fence_windows;	/* windows the last fence covered */
	u64 last_fence_missing;	/* wanted windows it found no probe page for */
	u64 last_fence_us;	/* taking probes, and the host applying them */
	u64 last_fence_take_us;	/* of which taking probes */
	u64 last_fence_passes;	/* walk passes, each after a part of the fence */
	u64 last_owned_peak_kib; /* owned hints: most in flight in the last run */
	u64 owned_take_failures; /* owned hints: stretches that could not be taken */
	u64 last_unfenced_pages; /* free pages left unhinted: no fence there */
	u64 walk_hotplug_restarts; /* cursors restarted by memory hotplug */
};

/*
 * The dirty-log fence (hint_fence.c). lock protects every field but
 * memory_nb, and is held while a fence is in flight so that the memory
 * notifier gives no probe page back while the device may act on its hint.
 */
struct vb_hint_fence {
	struct mutex lock;		/* see above */
	struct vb_fence_window *win;	/* the windows (hint_layout.c) */
	unsigned long nr_win;		/* entries of win and the tables below */
	struct page **probes;		/* a page we own in each window, or NULL */
	u8 *backoff;			/* sessions to skip each window for */
	u8 *nr_cand;			/* candidates found for each todo window */
	unsigned long *cand;		/* VB_FENCE_TRIES pfns per window */
	unsigned long *bits;		/* the bitmaps below, one allocation */
	unsigned long *wanted;		/* free memory seen, no probe: look */
	unsigned long *todo;		/* this session takes a probe here */
	unsigned long *sent;		/* this session hinted the probe */
	unsigned long *applied;		/* ... and the device used it */
	unsigned long *map;		/* applied since the last pass */
	unsigned long *other;		/* fenced, or to be, by another pass */
	unsigned long next_take;	/* the next window of todo */
	unsigned long missing;		/* todo windows left without a probe */
	unsigned long hotplug_gen;	/* when the candidates were read */
	unsigned long nr_probes;	/* probes we hold now */
	unsigned int min_order;		/* smallest window alignment, page order */
	unsigned long unsafe_pages;	/* RAM in no window: never hinted */
	unsigned long unsafe_pfn;	/* the first of it */
	bool stale;			/* probes may still be in the queue */
	u64 offline_refused;		/* offlines refused while stale */
	struct vb_hint_cursor cursor;	/* looking for probe pages */
	struct notifier_block memory_nb;
};

/*
 * Feature bit 6, which the virtio specification has not assigned: e2b's
 * Firecracker offers it as VIRTIO_BALLOON_F_HINT_WAIT_ON_ACK, asking the
 * driver to keep a hinted page until the device has used its buffer. Owned
 * hints do that anyway; a device that offers it gets them.
 */
#define VB_F_HINT_WAIT_ON_ACK	6

/* Owned hints (hint_owned.c): chunks in flight at once, and their size. */
#define VB_OWNED_INFLIGHT	2
#define VB_OWNED_CHUNK_PAGES	(16UL << (20 - PAGE_SHIFT))

/* A stretch of free memory the driver took to hint, until its element is used. */
struct vb_owned_chunk {
	unsigned long pfn;
	unsigned long nr_pages;
	bool in_flight;
};

/*
 * A run of owned hints (hint_owned.c), written by the hint work and, for
 * the chunks, by whoever reclaims the free page queue; both run under the
 * hint work or after the device is reset (see vb_hint_reclaim()).
 */
struct vb_owned {
	struct vb_owned_chunk chunks[VB_OWNED_INFLIGHT];
	unsigned long next_pfn;		/* the sweep point */
	struct vb_hint_range *blocks;	/* free blocks above it, by address */
	unsigned int nr_blocks;
	unsigned int pos;		/* the next of them to take */
	bool single;			/* a block at a time, after a refusal */
	unsigned long hotplug_gen;	/* when they were read */
	struct vb_hint_cursor cursor;
	unsigned long owned_pages;	/* in chunks in flight now */
	unsigned long peak_pages;	/* most in flight during this run */
	u64 take_failures;		/* stretches alloc_contig_range() refused */
};

/*
 * Free page hinting state (hint_device.c). Everything but cfg_seq,
 * requested_ns and the wait queue is written only by the hint work (one at
 * a time: it is a single work item) and, for stats, read locklessly by
 * sysfs (hint_params.c).
 */
struct vb_hint_dev {
	struct virtqueue *vq;		/* NULL when not negotiated */
	const char *blocked_by;		/* why we declined the feature */
	struct work_struct work;
	wait_queue_head_t room;		/* woken on used buffers and config changes */
	atomic_t cfg_seq;		/* configuration changes seen so far */
	u64 requested_ns;		/* when the work was last asked for */
	int seen_seq;			/* cfg_seq the session last looked at */
	u32 seen_target;		/* num_pages the session last read */
	u32 last_id;			/* last id a session was started for */
	bool unsafe_logged;		/* said which memory has no safe window */
	__virtio32 start_id;		/* buffer of the start marker */
	__virtio32 stop_id;		/* buffer of the STOP id */
	struct vb_hint_sink sink;
	struct vb_hint_session session;
	struct vb_hint_cursor cursor;
	struct vb_hint_fence fence;
	bool owned_mode;		/* the host discards hints: own them */
	const char *owned_why;		/* which host, or which parameter */
	struct vb_owned owned;
	struct zone **zones;
	unsigned int nr_zones;		/* populated zones, at session start */
	unsigned int max_zones;
	struct vb_hint_range *batch;
	struct scatterlist sg[VB_HINT_SG_MAX];
	struct vb_hint_stats stats;
};

/*
 * The driver's work items and the device's wakeup source (balloon_work.c).
 * wq is the driver's own freezable workqueue: its items never run while the
 * system is frozen, and remove/freeze can flush it without waiting for
 * unrelated work.
 *
 * lock protects stopping, wakeup_pending and wakeup_active. Device
 * callbacks (interrupt context) queue work only while stopping is false;
 * remove and freeze set it before cancelling the work so that nothing is
 * queued again. The device's wakeup source stays active while any reason in
 * wakeup_pending waits for its work item.
 */
struct vb_work {
	struct workqueue_struct *wq;
	struct device *dev;		/* whose wakeup source */
	spinlock_t lock;		/* see above */
	bool stopping;
	u32 wakeup_pending;
	bool wakeup_active;
};

struct vb_device {
	struct virtio_device *vdev;
	struct virtqueue *inflate_vq;
	struct virtqueue *deflate_vq;
	struct virtqueue *stats_vq;	/* NULL without VIRTIO_BALLOON_F_STATS_VQ */
	struct virtqueue *reporting_vq;	/* NULL without VIRTIO_BALLOON_F_REPORTING */
	/* From vb_up() to vb_down(); probe, remove, freeze, restore set it. */
	bool up;

	struct vb_work work;
	struct work_struct resize_work;	/* moves the balloon to the target */
	struct work_struct stats_work;	/* answers the device's stats request */
	struct vb_hint_dev hint;

	/*
	 * balloon_lock serialises inflation and deflation and protects
	 * num_pages, broken, vqs_ready, migrated_unacked and pfns[]: every
	 * read and write of them is under it. Held across a wait for the
	 * device (it is a mutex), never taken in atomic context.
	 */
	struct mutex balloon_lock;
	unsigned int num_pages;		/* in 4 KiB units, as the device counts */
	bool broken;			/* the device stopped acknowledging */
	bool vqs_ready;			/* the queues exist and may be used */
	struct page *migrated_unacked;	/* moved out unacknowledged; see vb_migratepage() */
	__virtio32 pfns[VB_PFNS_PER_MSG];

	/* Woken by the inflate and deflate queue callbacks. */
	wait_queue_head_t acked;

	/* The balloon's pages; its own spinlock protects the list. */
	struct balloon_dev_info pages;

	struct notifier_block oom_nb;
	struct page_reporting_dev_info reporting;
	bool reporting_on;		/* registered with the core */

	/*
	 * Written only by stats_work (and by probe/restore before the queue
	 * is live), read by the device while a buffer is outstanding.
	 */
	struct virtio_balloon_stat stats[VB_STATS_MAX];
	unsigned long events[NR_VM_EVENT_ITEMS];
};

/* The balloon size the device asks for, in 4 KiB units. */
static inline u32 vb_read_target(struct vb_device *vb)
{
	u32 target;

	virtio_cread_le(vb->vdev, struct virtio_balloon_config, num_pages,
			&target);
	return target;
}

/*
 * What the guest writes into every page it frees, which a page the host
 * drops (free page reporting) or does not send (free page hinting) would not
 * hold: "page_poison" or "init_on_free", or NULL.
 */
static inline const char *vb_free_page_filler(void)
{
	if (page_poisoning_enabled_static())
		return "page_poison";
	if (want_init_on_free())
		return "init_on_free";
	return NULL;
}

/*
 * Files, from the bottom layer up: balloon_work.c; balloon_pages.c,
 * balloon_stats.c, balloon_oom.c, balloon_reporting.c and the hint_*.c
 * engine; balloon_core.c, which binds the device and calls the rest. A file
 * calls only into the files below it.
 */

/* balloon_work.c */
int vb_work_init(struct vb_work *w, struct device *dev);
void vb_work_exit(struct vb_work *w);
bool vb_queue_work(struct vb_work *w, struct work_struct *work, u32 reason);
void vb_work_begin(struct vb_work *w, u32 reason);
void vb_work_end(struct vb_work *w);
void vb_stop_work(struct vb_work *w);
void vb_work_stopped(struct vb_work *w);
void vb_allow_work(struct vb_work *w);
bool vb_work_stopping(struct vb_work *w);

/* balloon_pages.c */
void vb_resize_work(struct work_struct *work);
void vb_balloon_ack(struct virtqueue *vq);
void vb_report_actual(struct vb_device *vb);
void vb_deflate_all(struct vb_device *vb);
void vb_release_unacked(struct vb_device *vb);
unsigned int vb_deflate(struct vb_device *vb, unsigned int want);
void vb_compaction_init(struct vb_device *vb);
#if IS_ENABLED(CONFIG_KUNIT)
void vb_add_pfns(struct vb_device *vb, unsigned int *n, struct page *page);
#endif

/* balloon_oom.c */
int vb_oom_init(struct vb_device *vb);
void vb_oom_exit(struct vb_device *vb);

/* balloon_reporting.c */
void vb_reporting_validate(struct virtio_device *vdev);
void vb_poison_init(struct vb_device *vb);
int vb_reporting_init(struct vb_device *vb);
void vb_reporting_exit(struct vb_device *vb);

/* hint_params.c */
extern const struct attribute_group vb_hint_group;
bool vb_hint_enabled(void);
unsigned int vb_hint_min_order(void);
unsigned int vb_hint_budget(void);
unsigned int vb_hint_fence_order(void);
const char *vb_hint_blocker(const char **harm);
const char *vb_hint_owned_reason(struct virtio_device *vdev);
#if IS_ENABLED(CONFIG_KUNIT)
extern const struct kernel_param_ops vb_min_order_ops;
extern const struct kernel_param_ops vb_budget_ops;
extern const struct kernel_param_ops vb_fence_mib_ops;
extern const struct kernel_param_ops vb_host_discards_ops;
bool vb_acpi_names_firecracker(const char *oem_id, const char *hypervisor_id);
#endif

/* hint_layout.c */
int vb_layout_read(unsigned int max_order, struct vb_fence_layout *out);

/* hint_fence.c */
int vb_fence_prepare(struct vb_hint_dev *h, u32 id);
void vb_fence_hold(struct vb_hint_fence *f);
unsigned int vb_fence_ready(struct vb_hint_fence *f, struct vb_hint_range *r,
			    unsigned int max);
bool vb_fence_to_take(const struct vb_hint_fence *f);
void vb_fence_take_next(struct vb_hint_fence *f);
bool vb_fence_pass_due(const struct vb_hint_fence *f);
unsigned long vb_fence_end(struct vb_hint_fence *f,
			   struct vb_hint_fenced *fenced, bool stale);
void vb_fence_settled(struct vb_hint_fence *f);
void vb_fence_release(struct vb_hint_fence *f);
void vb_fence_reset(struct vb_hint_fence *f);
int vb_hint_fence_init(struct vb_hint_fence *f);
void vb_hint_fence_exit(struct vb_hint_fence *f);

/*
 * Take the free pages [@start, @end) out of the allocator (the fence's probes,
 * owned hints): 0, or why not. Give them back with vb_contig_give_back().
 */
static inline int vb_contig_take(unsigned long start, unsigned long end)
{
#ifdef CONFIG_CONTIG_ALLOC
	return alloc_contig_range(start, end, VB_CONTIG_ORDINARY,
				  GFP_KERNEL | __GFP_NOWARN);
#else
	return -EOPNOTSUPP;
#endif
}

static inline void vb_contig_give_back(unsigned long pfn,
				       unsigned long nr_pages)
{
#ifdef CONFIG_CONTIG_ALLOC
	free_contig_range(pfn, nr_pages);
#else
	WARN_ON_ONCE(nr_pages);	/* nothing was taken */
#endif
}

/* hint_owned.c */
bool vb_owned_take(struct vb_hint_dev *h, u32 id, struct vb_owned_chunk *c);
void vb_owned_used(struct vb_owned *o, struct vb_owned_chunk *c);
struct vb_owned_chunk *vb_owned_free_slot(struct vb_owned *o);
struct vb_owned_chunk *vb_owned_chunk_of(struct vb_owned *o, void *token);
void vb_owned_begin(struct vb_owned *o);
int vb_owned_init(struct vb_owned *o);
void vb_owned_exit(struct vb_owned *o);

/* hint_device.c */
bool vb_hint_offered(struct virtio_device *vdev);
int vb_hint_init(struct vb_device *vb);
void vb_hint_exit(struct vb_device *vb);
void vb_hint_start(struct vb_device *vb, struct virtqueue *vq);
void vb_hint_stop(struct vb_device *vb);
void vb_hint_reset(struct vb_device *vb);
bool vb_hint_on(struct vb_device *vb);
void vb_hint_config_changed(struct vb_device *vb);
void vb_hint_vq_done(struct virtqueue *vq);
#if IS_ENABLED(CONFIG_KUNIT)
enum vb_hint_verdict vb_hint_check(struct vb_hint_sink *sink, u32 id);
#endif

/* balloon_stats.c */
int vb_stats_queue(struct vb_device *vb);
void vb_stats_request(struct virtqueue *vq);
void vb_stats_work(struct work_struct *work);
#if IS_ENABLED(CONFIG_KUNIT)
unsigned int vb_stats_fill(struct vb_device *vb);
#endif

#endif /* _VIRTIO_BALLOON_INTERNAL_H */
