// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: the dirty-log fence that makes walked hints safe on QEMU
 * with KVM.
 *
 * The walk reports pages it does not own: once zone->lock is dropped, the
 * guest may allocate and write a page whose hint is still on its way. Under
 * TCG every such write is logged and the page is sent again. QEMU on KVM uses
 * manual dirty-log protection: a page that was dirty at the bitmap sync stays
 * writable, unlogged, until QEMU clears the dirty log of its chunk (1 GiB of
 * a RAM block by default), which it does lazily, the first time in a round
 * that it sends a page of the chunk or applies a hint in it. The clear
 * forgets every write since the sync. A write that lands between our read of
 * the free lists and that clear is lost if QEMU then applies the hint.
 *
 * So before the walk, the session hints one page that the driver owns in
 * every window (a "probe") and waits until the device has used that element
 * (the hint device takes them with vb_fence_prepare() and sends them:
 * vb_fence_hold(), vb_fence_probes(), vb_fence_end()). A window is a
 * stretch of guest memory that lies in one host chunk on every layout the
 * guest can see (hint_layout.c). QEMU applies
 * an element's hints, clearing the dirty log of their chunks first, before
 * it returns the element. From then on in this round, every page of a fenced
 * window is write-protected again: a page read from the free lists after the
 * fence and written afterwards is logged, and sent again. Ranges outside
 * fenced windows are not hinted.
 *
 * Probes exist only while the host migrates: taken by the first fence after
 * the device asked for hints, with alloc_contig_range() on a page that the
 * walk found free in a movable free list, and given back when the device
 * says DONE, so that a guest that is not migrating keeps every gigantic page,
 * offlinable memory block and movable zone it had. Within a migration a
 * window is looked at again only when a session found free memory in it and
 * had no probe there (it is "wanted"), so windows with no memory to spare
 * cost nothing per session.
 *
 * A probe leaves our hands only once the device can no longer act on its
 * hint: after a fence that failed (timed out, or the device moved on while
 * we waited), its elements may still be queued and QEMU applies a queued
 * hint while its round lasts; the fence is then "stale" until the queue is
 * found empty or the device is reset, and no probe is freed meanwhile, not
 * even for memory going offline.
 *
 * lock protects every field but memory_nb, and is held while a fence is in
 * flight, so that the memory notifier gives no probe back while the device
 * may act on its hint.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/gfp.h>
#include <linux/memory.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "virtio_balloon_internal.h"

/* Probe candidates tried per window and session before it is left unfenced. */
#define VB_FENCE_TRIES	4

/*
 * Sessions that skip a window after a look for a probe found none in it: its
 * free memory may all be in other lists than the movable ones, and each
 * look walks every movable free list under the fence lock.
 */
#define VB_FENCE_BACKOFF	4

static void vb_fence_free_probes(struct vb_hint_fence *f)
{
	unsigned long w;

	for (w = 0; w < f->nr_win; w++) {
		if (f->probes[w]) {
			__free_page(f->probes[w]);
			f->probes[w] = NULL;
		}
	}
	f->nr_probes = 0;
}

/* Replace the tables by those of layout @fl and the given ones. */
static void vb_fence_set_tables(struct vb_hint_fence *f,
				struct vb_fence_layout *fl,
				struct page **probes, u8 *backoff,
				unsigned long *map, unsigned long *wanted)
{
	kvfree(f->win);
	kvfree(f->probes);
	kvfree(f->backoff);
	bitmap_free(f->map);
	bitmap_free(f->wanted);
	f->win = fl->win;
	f->nr_win = fl->nr_win;
	f->probes = probes;
	f->backoff = backoff;
	f->map = map;
	f->wanted = wanted;
}

static bool vb_fence_same_windows(const struct vb_hint_fence *f,
				  const struct vb_fence_layout *fl)
{
	return f->nr_win == fl->nr_win &&
	       !memcmp(f->win, fl->win, fl->nr_win * sizeof(*fl->win));
}

/*
 * Derive the windows for the memory there is now and the host chunk the user
 * allows; new windows give every probe back, and are all wanted until a look
 * for a probe found nothing to take. A stale fence keeps its windows: their
 * probes are not ours to give back yet. Called with lock held.
 */
static int vb_fence_refresh_layout(struct vb_hint_fence *f)
{
	struct vb_fence_layout fl;
	unsigned long *map, *wanted;
	struct page **probes;
	u8 *backoff;
	int err;

	if (f->stale)
		return 0;
	err = vb_layout_read(vb_hint_fence_order(), &fl);
	if (err)
		return err;
	f->unsafe_pages = fl.unsafe_pages;
	f->unsafe_pfn = fl.unsafe_pfn;
	f->min_order = fl.min_order;
	if (vb_fence_same_windows(f, &fl)) {
		kvfree(fl.win);
		return 0;
	}
	probes = kvcalloc(max(fl.nr_win, 1UL), sizeof(*probes), GFP_KERNEL);
	backoff = kvzalloc(max(fl.nr_win, 1UL), GFP_KERNEL);
	map = bitmap_zalloc(fl.nr_win, GFP_KERNEL);
	wanted = bitmap_alloc(fl.nr_win, GFP_KERNEL);
	if (!probes || !backoff || !map || !wanted) {
		kvfree(probes);
		kvfree(backoff);
		bitmap_free(map);
		bitmap_free(wanted);
		kvfree(fl.win);
		return -ENOMEM;
	}
	bitmap_fill(wanted, fl.nr_win);
	vb_fence_free_probes(f);
	vb_fence_set_tables(f, &fl, probes, backoff, map, wanted);
	return 0;
}

/* Take page @pfn, which the walk just saw free, out of the allocator. */
static struct page *vb_fence_take(unsigned long pfn)
{
#ifdef CONFIG_CONTIG_ALLOC
	if (!alloc_contig_range(pfn, pfn + 1, VB_CONTIG_ORDINARY,
				GFP_KERNEL | __GFP_NOWARN))
		return pfn_to_page(pfn);
#endif
	return NULL;
}

/* A window's candidates in one look for probes. */
struct vb_fence_try {
	unsigned long failed_block;	/* pageblock of the last that failed */
	u8 tries;
};

/*
 * Give every wanted window a probe page: walk the movable buddy lists
 * (isolating a pageblock of another type could change its type) and take the
 * first free page seen in each such window. A candidate in the pageblock of
 * one that failed is passed over: alloc_contig_range() refuses a pageblock
 * that holds an unmovable page, and each try drains every CPU's caches. A
 * window that had none waits VB_FENCE_BACKOFF sessions before the next look.
 * Stops early when the session for @id may not go on (the device went away
 * or moved on). Returns
 * how many wanted windows still lack one; none is wanted afterwards. Called
 * with lock held.
 */
static unsigned long vb_fence_acquire(struct vb_hint_dev *h, u32 id)
{
	struct vb_hint_fence *f = &h->fence;
	struct vb_hint_cursor *cur = &f->cursor;
	/* The session's batch: the fence runs before its walk. */
	struct vb_hint_range *r = h->batch;
	unsigned long missing = 0, w;
	struct vb_hint_step step;
	struct vb_fence_try *tries, *t;
	unsigned int n, i;
	long found;

	for (w = 0; w < f->nr_win; w++) {
		if (f->backoff[w])
			f->backoff[w]--;
		else if (!f->probes[w] && test_bit(w, f->wanted))
			continue;
		__clear_bit(w, f->wanted);
	}
	missing = bitmap_weight(f->wanted, f->nr_win);
	if (!missing)
		return 0;
	tries = kcalloc(f->nr_win, sizeof(*tries), GFP_KERNEL);
	if (!tries)
		return missing;

	vb_hint_cursor_init(cur, h->zones, h->nr_zones, 0);
	vb_hint_cursor_only(cur, MIGRATE_MOVABLE);
	while (missing && !cur->done &&
	       h->sink.ops->check(&h->sink, id) == VB_HINT_GO) {
		n = vb_hint_walk_step(cur, VB_HINT_BUDGET_DEFAULT, r, &step);
		for (i = 0; i < n && missing; i++) {
			found = vb_fence_window_find(f->win, f->nr_win,
						     r[i].pfn);
			if (found < 0)
				continue;
			w = found;
			t = &tries[w];
			if (!test_bit(w, f->wanted) || f->probes[w] ||
			    t->tries >= VB_FENCE_TRIES ||
			    (t->tries &&
			     t->failed_block == r[i].pfn >> pageblock_order))
				continue;
			t->tries++;
			t->failed_block = r[i].pfn >> pageblock_order;
			f->probes[w] = vb_fence_take(r[i].pfn);
			if (f->probes[w]) {
				pr_debug("fence probe at pfn %#lx for window %#lx-%#lx\n",
					 r[i].pfn, f->win[w].start_pfn,
					 f->win[w].end_pfn);
				__clear_bit(w, f->wanted);
				f->nr_probes++;
				missing--;
			}
		}
		cond_resched();
	}
	kfree(tries);
	/* What is still wanted had no probe to take: back off. */
	for_each_set_bit(w, f->wanted, f->nr_win)
		f->backoff[w] = VB_FENCE_BACKOFF;
	bitmap_zero(f->wanted, f->nr_win);
	return missing;
}

/*
 * Before a session of @id queues its start marker: bring the windows up to
 * date and take the probes that wanted windows lack, so that its fence only
 * sends them. Stores in *@missing how many wanted windows still lack one.
 */
int vb_fence_prepare(struct vb_hint_dev *h, u32 id, u64 *missing)
{
	struct vb_hint_fence *f = &h->fence;
	int err;

	mutex_lock(&f->lock);
	*missing = 0;
	err = vb_fence_refresh_layout(f);
	if (!err)
		*missing = vb_fence_acquire(h, id);
	mutex_unlock(&f->lock);
	return err;
}

/*
 * Start a fence: take the lock that keeps every probe page ours until
 * vb_fence_end(). The hint device then sends the probes (vb_fence_probes())
 * and waits until they are applied.
 */
void vb_fence_hold(struct vb_hint_fence *f)
{
	mutex_lock(&f->lock);
}

/*
 * Store in @r up to @max probe pages, from window *@next on, as single-page
 * ranges; returns how many, 0 when every probe was given.
 */
unsigned int vb_fence_probes(struct vb_hint_fence *f, unsigned long *next,
			     struct vb_hint_range *r, unsigned int max)
{
	unsigned int n = 0;

	lockdep_assert_held(&f->lock);
	for (; *next < f->nr_win && n < max; (*next)++) {
		if (!f->probes[*next])
			continue;
		r[n].pfn = page_to_pfn(f->probes[*next]);
		r[n].nr_pages = 1;
		n++;
	}
	return n;
}

/*
 * End the fence begun by vb_fence_hold(). If the device applied every
 * probe's hint, @fenced is not NULL and is set to the windows they covered.
 * @stale: probes were queued and the device may not have used them all.
 * Returns how many windows the fence covered.
 */
unsigned long vb_fence_end(struct vb_hint_fence *f,
			   struct vb_hint_fenced *fenced, bool stale)
{
	unsigned long w, sent = 0;

	lockdep_assert_held(&f->lock);
	if (stale)
		f->stale = true;
	if (fenced) {
		bitmap_zero(f->map, f->nr_win);
		for (w = 0; w < f->nr_win; w++) {
			if (f->probes[w]) {
				__set_bit(w, f->map);
				sent++;
			}
		}
		fenced->win = f->win;
		fenced->nr_win = f->nr_win;
		fenced->map = f->map;
		fenced->wanted = f->wanted;
	}
	mutex_unlock(&f->lock);
	return sent;
}

/* The device has used every element we queued: no probe is in flight. */
void vb_fence_settled(struct vb_hint_fence *f)
{
	mutex_lock(&f->lock);
	f->stale = false;
	mutex_unlock(&f->lock);
}

/*
 * Give every probe back and look everywhere at the next migration, unless
 * the device may still act on a probe. Called with lock held.
 */
static void vb_fence_forget(struct vb_hint_fence *f)
{
	if (f->stale)
		return;
	vb_fence_free_probes(f);
	bitmap_fill(f->wanted, f->nr_win);
	memset(f->backoff, 0, f->nr_win);
}

/* The host ended its migration (DONE). */
void vb_fence_release(struct vb_hint_fence *f)
{
	mutex_lock(&f->lock);
	vb_fence_forget(f);
	mutex_unlock(&f->lock);
}

/* The device was reset: nothing we queued can be acted on any more. */
void vb_fence_reset(struct vb_hint_fence *f)
{
	mutex_lock(&f->lock);
	f->stale = false;
	vb_fence_forget(f);
	mutex_unlock(&f->lock);
}

/*
 * Memory going offline cannot go while we own a page in it: give its probes
 * back, or refuse while a stale fence may still have them in flight.
 */
static int vb_fence_memory_notify(struct notifier_block *nb,
				  unsigned long action, void *arg)
{
	struct vb_hint_fence *f = container_of(nb, struct vb_hint_fence,
					       memory_nb);
	struct memory_notify *mn = arg;
	int ret = NOTIFY_OK;
	unsigned long w, pfn;

	if (action != MEM_GOING_OFFLINE)
		return NOTIFY_OK;
	mutex_lock(&f->lock);
	for (w = 0; w < f->nr_win; w++) {
		if (!f->probes[w])
			continue;
		pfn = page_to_pfn(f->probes[w]);
		if (pfn < mn->start_pfn || pfn >= mn->start_pfn + mn->nr_pages)
			continue;
		if (f->stale) {
			f->offline_refused++;
			ret = NOTIFY_BAD;
			break;
		}
		__free_page(f->probes[w]);
		f->probes[w] = NULL;
		f->nr_probes--;
	}
	mutex_unlock(&f->lock);
	return ret;
}

int vb_hint_fence_init(struct vb_hint_fence *f)
{
	mutex_init(&f->lock);
	f->memory_nb.notifier_call = vb_fence_memory_notify;
	return register_memory_notifier(&f->memory_nb);
}

void vb_hint_fence_exit(struct vb_hint_fence *f)
{
	struct vb_fence_layout none = { };

	unregister_memory_notifier(&f->memory_nb);
	vb_fence_free_probes(f);
	vb_fence_set_tables(f, &none, NULL, NULL, NULL, NULL);
}
