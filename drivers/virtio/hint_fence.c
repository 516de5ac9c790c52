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
 * every window (a "probe") and waits until the device has used that element.
 * A window is a stretch of guest memory that lies in one host chunk on every
 * layout the guest can see (hint_layout.c). QEMU applies
 * an element's hints, clearing the dirty log of their chunks first, before
 * it returns the element. From then on in this round, every page of a fenced
 * window is write-protected again: a page read from the free lists after the
 * fence and written afterwards is logged, and sent again. Ranges outside
 * fenced windows are not hinted.
 *
 * Probes exist only while the host migrates: taken by the first session
 * after the device asked for hints, with alloc_contig_range() on a page that
 * the walk found free in a movable free list, and given back when the device
 * says DONE, so that a guest that is not migrating keeps every gigantic page,
 * offlinable memory block and movable zone it had. Within a migration a
 * window is looked at again only when a session found free memory in it and
 * had no probe there (it is "wanted"), so windows with no memory to spare
 * cost nothing per session.
 *
 * Taking a probe drains every CPU's caches, some 20 ms under TCG, and the
 * host needs far longer than that to use its first element of a migration.
 * So a session does not take its probes before it hints them: before the
 * start marker it only picks a few candidate pages per wanted window
 * (vb_fence_prepare()); after it, the hint device hints the probes it holds,
 * then takes the others one by one in window order (vb_fence_take_next()),
 * hinting each at once, and returns to the walk as soon as the device has
 * used all it was sent and that doubles the windows fenced so far
 * (vb_fence_pass_due()). The walk hints those windows while later probes are
 * taken: a 32 GiB guest's first hints need not wait for 32 probes.
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

/* Probe candidates, each in its own pageblock, kept per wanted window. */
#define VB_FENCE_TRIES	4

/*
 * Sessions that skip a window after a look for a probe found none in it: its
 * free memory may all be in other lists than the movable ones, and each
 * look walks every movable free list.
 */
#define VB_FENCE_BACKOFF	4

/* The bitmaps of struct vb_hint_fence, in one allocation. */
enum {
	VB_FENCE_WANTED,
	VB_FENCE_TODO,
	VB_FENCE_SENT,
	VB_FENCE_APPLIED,
	VB_FENCE_MAP,
	VB_FENCE_OTHER,
	VB_FENCE_NR_BITMAPS
};

/* The per-window tables, replaced together when the windows change. */
struct vb_fence_tables {
	struct page **probes;
	u8 *backoff;
	u8 *nr_cand;
	unsigned long *cand;
	unsigned long *bits;
};

static void vb_fence_tables_free(struct vb_fence_tables *t)
{
	kvfree(t->probes);
	kvfree(t->backoff);
	kvfree(t->nr_cand);
	kvfree(t->cand);
	kvfree(t->bits);
}

static int vb_fence_tables_alloc(struct vb_fence_tables *t,
				 unsigned long nr_win)
{
	unsigned long n = max(nr_win, 1UL);

	t->probes = kvcalloc(n, sizeof(*t->probes), GFP_KERNEL);
	t->backoff = kvzalloc(n, GFP_KERNEL);
	t->nr_cand = kvzalloc(n, GFP_KERNEL);
	t->cand = kvcalloc(n, VB_FENCE_TRIES * sizeof(*t->cand), GFP_KERNEL);
	t->bits = kvcalloc(BITS_TO_LONGS(n) * VB_FENCE_NR_BITMAPS,
			   sizeof(*t->bits), GFP_KERNEL);
	if (t->probes && t->backoff && t->nr_cand && t->cand && t->bits)
		return 0;
	vb_fence_tables_free(t);
	return -ENOMEM;
}

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

/* Give every probe back and free the windows and their tables. */
static void vb_fence_teardown(struct vb_hint_fence *f)
{
	struct vb_fence_tables t = {
		f->probes, f->backoff, f->nr_cand, f->cand, f->bits
	};

	vb_fence_free_probes(f);
	vb_fence_tables_free(&t);
	kvfree(f->win);
}

/* Give every probe back and put in the windows of @fl with tables @t. */
static void vb_fence_install(struct vb_hint_fence *f,
			     struct vb_fence_layout *fl,
			     struct vb_fence_tables *t)
{
	unsigned long longs = BITS_TO_LONGS(max(fl->nr_win, 1UL));

	vb_fence_teardown(f);
	f->win = fl->win;
	f->nr_win = fl->nr_win;
	f->probes = t->probes;
	f->backoff = t->backoff;
	f->nr_cand = t->nr_cand;
	f->cand = t->cand;
	f->bits = t->bits;
	f->wanted = t->bits + VB_FENCE_WANTED * longs;
	f->todo = t->bits + VB_FENCE_TODO * longs;
	f->sent = t->bits + VB_FENCE_SENT * longs;
	f->applied = t->bits + VB_FENCE_APPLIED * longs;
	f->map = t->bits + VB_FENCE_MAP * longs;
	f->other = t->bits + VB_FENCE_OTHER * longs;
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
	struct vb_fence_tables t;
	int err;

	if (f->stale)
		return 0;
	err = vb_layout_read(vb_hint_fence_order(), &fl);
	if (err)
		return err;
	f->unsafe_pages = fl.unsafe_pages;
	f->unsafe_pfn = fl.unsafe_pfn;
	f->min_order = fl.min_order;
	if (f->bits && vb_fence_same_windows(f, &fl)) {
		kvfree(fl.win);
		return 0;
	}
	err = vb_fence_tables_alloc(&t, fl.nr_win);
	if (err) {
		kvfree(fl.win);
		return err;
	}
	vb_fence_install(f, &fl, &t);
	bitmap_fill(f->wanted, f->nr_win);
	return 0;
}

/* Take page @pfn, which the walk saw free, out of the allocator. */
static struct page *vb_fence_take(unsigned long pfn)
{
	return vb_contig_take(pfn, pfn + 1) ? NULL : pfn_to_page(pfn);
}

/* Window @w gets no probe this session: skip it for the next few. */
static void vb_fence_give_up(struct vb_hint_fence *f, unsigned long w)
{
	__clear_bit(w, f->todo);
	f->backoff[w] = VB_FENCE_BACKOFF;
	f->missing++;
}

/*
 * Keep free page @pfn as a candidate for its window if that window is to get
 * a probe and has none in @pfn's pageblock yet: alloc_contig_range() refuses
 * a pageblock that holds an unmovable page, and each try drains every CPU's
 * caches. Returns 1 when that made the window's candidates complete.
 */
static unsigned int vb_fence_add_candidate(struct vb_hint_fence *f,
					   unsigned long pfn)
{
	long found = vb_fence_window_find(f->win, f->nr_win, pfn);
	unsigned long *cand;
	unsigned int c, n;

	if (found < 0 || !test_bit(found, f->todo))
		return 0;
	cand = &f->cand[found * VB_FENCE_TRIES];
	n = f->nr_cand[found];
	if (n == VB_FENCE_TRIES)
		return 0;
	for (c = 0; c < n; c++)
		if (cand[c] >> pageblock_order == pfn >> pageblock_order)
			return 0;
	cand[n] = pfn;
	f->nr_cand[found] = n + 1;
	return n + 1 == VB_FENCE_TRIES;
}

/*
 * Choose the windows this session takes a probe in (wanted, not backing
 * off) and read their candidates from the movable buddy lists (isolating a
 * pageblock of another type could change its type); a window with none is
 * given up. Stops early when the session for @id may not go on (the device
 * went away or moved on). Called with lock held.
 */
static void vb_fence_plan(struct vb_hint_dev *h, u32 id)
{
	struct vb_hint_fence *f = &h->fence;
	struct vb_hint_cursor *cur = &f->cursor;
	/* The session's batch: the walk has not begun. */
	struct vb_hint_range *r = h->batch;
	unsigned long incomplete, w;
	struct vb_hint_step step;
	unsigned int n, i;

	/* A session that ended before its takes leaves them wanted. */
	bitmap_or(f->wanted, f->wanted, f->todo, f->nr_win);
	bitmap_zero(f->todo, f->nr_win);
	bitmap_zero(f->sent, f->nr_win);
	bitmap_zero(f->applied, f->nr_win);
	f->next_take = 0;
	f->missing = 0;
	for (w = 0; w < f->nr_win; w++) {
		if (f->backoff[w]) {
			f->backoff[w]--;
		} else if (!f->probes[w] && test_bit(w, f->wanted)) {
			__set_bit(w, f->todo);
			f->nr_cand[w] = 0;
		}
	}
	bitmap_zero(f->wanted, f->nr_win);
	incomplete = bitmap_weight(f->todo, f->nr_win);
	if (!incomplete)
		return;

	f->hotplug_gen = vb_hint_hotplug_now();
	vb_hint_cursor_init(cur, h->zones, h->nr_zones, 0);
	vb_hint_cursor_only(cur, MIGRATE_MOVABLE);
	while (incomplete && !cur->done &&
	       h->sink.ops->check(&h->sink, id) == VB_HINT_GO) {
		n = vb_hint_walk_step(cur, VB_HINT_BUDGET_DEFAULT, r, &step);
		for (i = 0; i < n && incomplete; i++)
			incomplete -= vb_fence_add_candidate(f, r[i].pfn);
		cond_resched();
	}
	for_each_set_bit(w, f->todo, f->nr_win)
		if (!f->nr_cand[w])
			vb_fence_give_up(f, w);
}

/*
 * Before a session of @id queues its start marker: bring the windows up to
 * date and pick the candidates of the probes it will take.
 */
int vb_fence_prepare(struct vb_hint_dev *h, u32 id)
{
	struct vb_hint_fence *f = &h->fence;
	int err;

	mutex_lock(&f->lock);
	err = vb_fence_refresh_layout(f);
	if (!err)
		vb_fence_plan(h, id);
	mutex_unlock(&f->lock);
	return err;
}

/*
 * Start a part of the fence: take the lock that keeps every probe page ours
 * until vb_fence_end(). The hint device then sends the probes
 * (vb_fence_ready(), vb_fence_take_next()) and waits until they are applied.
 */
void vb_fence_hold(struct vb_hint_fence *f)
{
	mutex_lock(&f->lock);
}

/*
 * Store in @r up to @max probe pages this session has not hinted yet, as
 * single-page ranges, and count them sent; returns how many.
 */
unsigned int vb_fence_ready(struct vb_hint_fence *f, struct vb_hint_range *r,
			    unsigned int max)
{
	unsigned int n = 0;
	unsigned long w;

	lockdep_assert_held(&f->lock);
	for (w = 0; w < f->nr_win && n < max; w++) {
		if (!f->probes[w] || test_bit(w, f->sent))
			continue;
		__set_bit(w, f->sent);
		r[n].pfn = page_to_pfn(f->probes[w]);
		r[n].nr_pages = 1;
		n++;
	}
	return n;
}

/* Whether this session has windows left to take a probe for. */
bool vb_fence_to_take(const struct vb_hint_fence *f)
{
	return !bitmap_empty(f->todo, f->nr_win);
}

/*
 * Take the probe of the next window to get one, from its candidates in turn.
 * Once memory was onlined or offlined since they were read, a candidate may
 * name memory that is gone: the windows left are wanted again instead.
 * Called with lock held, which keeps memory from going offline meanwhile.
 */
void vb_fence_take_next(struct vb_hint_fence *f)
{
	unsigned long w = find_next_bit(f->todo, f->nr_win, f->next_take);
	const unsigned long *cand;
	unsigned int c;

	lockdep_assert_held(&f->lock);
	if (w >= f->nr_win)
		return;
	if (vb_hint_hotplug_since(f->hotplug_gen)) {
		bitmap_or(f->wanted, f->wanted, f->todo, f->nr_win);
		bitmap_zero(f->todo, f->nr_win);
		return;
	}
	f->next_take = w + 1;
	cand = &f->cand[w * VB_FENCE_TRIES];
	for (c = 0; c < f->nr_cand[w] && !f->probes[w]; c++)
		f->probes[w] = vb_fence_take(cand[c]);
	if (!f->probes[w]) {
		vb_fence_give_up(f, w);
		return;
	}
	__clear_bit(w, f->todo);
	f->nr_probes++;
	pr_debug("fence probe at pfn %#lx for window %#lx-%#lx\n",
		 page_to_pfn(f->probes[w]), f->win[w].start_pfn,
		 f->win[w].end_pfn);
}

/*
 * Whether the windows sent since the last pass, once applied, are worth a
 * pass of the walk before more probes are taken: at least as many as all
 * passes had, so that a session walks about log2(windows) times.
 */
bool vb_fence_pass_due(const struct vb_hint_fence *f)
{
	unsigned long applied = bitmap_weight(f->applied, f->nr_win);
	unsigned long newly = bitmap_weight(f->sent, f->nr_win) - applied;

	return newly && newly >= applied;
}

/*
 * End the part of the fence begun by vb_fence_hold(). If the device applied
 * every probe sent so far, @fenced is not NULL and is set to the windows
 * they covered since the last part, and to those fenced, or still to be,
 * by another. @stale: probes were queued and the device may not have used
 * them all. Returns how many windows this part covered.
 */
unsigned long vb_fence_end(struct vb_hint_fence *f,
			   struct vb_hint_fenced *fenced, bool stale)
{
	unsigned long w, newly = 0;

	lockdep_assert_held(&f->lock);
	if (stale)
		f->stale = true;
	if (fenced) {
		bitmap_andnot(f->map, f->sent, f->applied, f->nr_win);
		bitmap_or(f->applied, f->applied, f->map, f->nr_win);
		newly = bitmap_weight(f->map, f->nr_win);
		for (w = 0; w < f->nr_win; w++)
			__assign_bit(w, f->other, !test_bit(w, f->map) &&
				     (test_bit(w, f->applied) ||
				      test_bit(w, f->todo) || f->probes[w]));
		fenced->win = f->win;
		fenced->nr_win = f->nr_win;
		fenced->map = f->map;
		fenced->other = f->other;
		fenced->wanted = f->wanted;
	}
	mutex_unlock(&f->lock);
	return newly;
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
	if (!f->bits)
		return;
	vb_fence_free_probes(f);
	bitmap_fill(f->wanted, f->nr_win);
	bitmap_zero(f->todo, f->nr_win);
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
	unregister_memory_notifier(&f->memory_nb);
	vb_fence_teardown(f);
}
