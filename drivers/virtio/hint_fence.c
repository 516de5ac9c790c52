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
 * every chunk (a "probe") and waits until the device has used that element
 * (the hint device sends them: vb_fence_begin(), vb_fence_probes(),
 * vb_fence_end()).
 * QEMU applies an element's hints, clearing the dirty log of their chunks
 * first, before it returns the element. From then on in this round, every
 * page of a fenced chunk is write-protected again: a page read from the free
 * lists after the fence and written afterwards is logged, and sent again.
 * Ranges in chunks without a probe are not hinted.
 *
 * Probe pages are taken once, with alloc_contig_range() on a page that the
 * walk found free in a movable free list, and kept: one page per chunk, a
 * few KiB per GiB. A chunk is looked at again only when a session found free
 * memory in it and had no probe there (it is "wanted"), so chunks with no
 * memory, or none to spare, cost nothing per session. The memory notifier
 * gives back the probes of memory that goes offline.
 *
 * lock is held while a fence is in flight, so that no probe is freed while
 * the device may still act on its hint.
 */

#include <linux/bitmap.h>
#include <linux/gfp.h>
#include <linux/memory.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "virtio_balloon_internal.h"

/* Probe candidates tried per chunk and session before it is left unfenced. */
#define VB_FENCE_TRIES	4

/* One past the highest page frame of any populated zone. */
static unsigned long vb_fence_end_pfn(struct vb_hint_dev *h)
{
	unsigned long end = 0;
	unsigned int i;

	for (i = 0; i < h->nr_zones; i++)
		end = max(end, zone_end_pfn(h->zones[i]));
	return end;
}

static void vb_fence_free_probes(struct vb_hint_fence *f)
{
	unsigned long c;

	for (c = 0; c < f->nr_chunks; c++) {
		if (f->probes[c]) {
			__free_page(f->probes[c]);
			f->probes[c] = NULL;
		}
	}
}

/* Replace the tables by @probes, @map and @wanted of @nr chunks. */
static void vb_fence_set_tables(struct vb_hint_fence *f, struct page **probes,
				unsigned long *map, unsigned long *wanted,
				unsigned long nr)
{
	kvfree(f->probes);
	bitmap_free(f->map);
	bitmap_free(f->wanted);
	f->probes = probes;
	f->map = map;
	f->wanted = wanted;
	f->nr_chunks = nr;
}

/*
 * Size the tables for the memory there is now and the chunk size asked for;
 * a new chunk size gives every probe back. New chunks are wanted until a
 * look for a probe found nothing to take. Called with lock held.
 */
static int vb_fence_resize(struct vb_hint_dev *h, unsigned int shift)
{
	struct vb_hint_fence *f = &h->fence;
	unsigned long nr = DIV_ROUND_UP(vb_fence_end_pfn(h), 1UL << shift);
	unsigned long *map, *wanted;
	struct page **probes;

	if (shift != f->chunk_shift) {
		vb_fence_free_probes(f);
		f->chunk_shift = shift;
		bitmap_fill(f->wanted, f->nr_chunks);
	}
	if (nr <= f->nr_chunks)
		return 0;

	probes = kvcalloc(nr, sizeof(*probes), GFP_KERNEL);
	map = bitmap_zalloc(nr, GFP_KERNEL);
	wanted = bitmap_alloc(nr, GFP_KERNEL);
	if (!probes || !map || !wanted) {
		kvfree(probes);
		bitmap_free(map);
		bitmap_free(wanted);
		return -ENOMEM;
	}
	bitmap_fill(wanted, nr);
	if (f->probes) {
		memcpy(probes, f->probes, f->nr_chunks * sizeof(*probes));
		bitmap_copy(wanted, f->wanted, f->nr_chunks);
	}
	vb_fence_set_tables(f, probes, map, wanted, nr);
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

/*
 * Give every wanted chunk a probe page: walk the movable buddy lists
 * (isolating a pageblock of another type could change its type) and take the
 * first free page seen in each such chunk. Returns how many wanted chunks
 * still lack one; none is wanted afterwards. Called with lock held.
 */
static unsigned long vb_fence_acquire(struct vb_hint_dev *h)
{
	struct vb_hint_fence *f = &h->fence;
	struct vb_hint_cursor *cur = &f->cursor;
	/* The session's batch: the fence runs before its walk. */
	struct vb_hint_range *r = h->batch;
	unsigned long missing = 0, c;
	struct vb_hint_step step;
	unsigned int n, i;
	u8 *tries;

	for (c = 0; c < f->nr_chunks; c++) {
		if (f->probes[c])
			__clear_bit(c, f->wanted);
		else
			missing += test_bit(c, f->wanted);
	}
	if (!missing)
		return 0;
	tries = kcalloc(f->nr_chunks, sizeof(*tries), GFP_KERNEL);
	if (!tries)
		return missing;

	vb_hint_cursor_init(cur, h->zones, h->nr_zones, 0);
	vb_hint_cursor_only(cur, MIGRATE_MOVABLE);
	while (missing && !cur->done) {
		n = vb_hint_walk_step(cur, VB_HINT_BUDGET_DEFAULT, r, &step);
		for (i = 0; i < n && missing; i++) {
			c = r[i].pfn >> f->chunk_shift;
			if (c >= f->nr_chunks || !test_bit(c, f->wanted) ||
			    f->probes[c] || tries[c] >= VB_FENCE_TRIES)
				continue;
			tries[c]++;
			f->probes[c] = vb_fence_take(r[i].pfn);
			if (f->probes[c])
				missing--;
		}
		cond_resched();
	}
	kfree(tries);
	bitmap_zero(f->wanted, f->nr_chunks);
	return missing;
}

/*
 * Bring the tables up to date and take the probes wanted chunks lack; stores
 * in *@missing how many of those still lack one. Called with lock held.
 */
static int vb_fence_refresh(struct vb_hint_dev *h, unsigned long *missing)
{
	int err = vb_fence_resize(h, vb_hint_fence_order());

	if (!err)
		*missing = vb_fence_acquire(h);
	return err;
}

/*
 * Take the probe pages the fence lacks, ahead of the first request: a
 * session that must take them first sends its hints later (taking two,
 * for a 2 GiB guest under TCG, took 60 to 90 ms).
 */
void vb_hint_fence_prepare(struct vb_hint_dev *h)
{
	u64 missing;

	h->nr_zones = vb_hint_collect_zones(h->zones, h->max_zones);
	vb_fence_begin(h, &missing);
	vb_fence_end(&h->fence, NULL);
}

/*
 * Start a fence: take the lock that keeps every probe page ours until
 * vb_fence_end(), and the probes that wanted chunks lack; stores in
 * *@missing how many of those still lack one. The hint device then sends
 * the probes (vb_fence_probes()) and waits until they are applied.
 */
int vb_fence_begin(struct vb_hint_dev *h, u64 *missing)
{
	unsigned long n = 0;
	int err;

	mutex_lock(&h->fence.lock);
	err = vb_fence_refresh(h, &n);
	*missing = n;
	return err;
}

/*
 * Store in @r up to @max probe pages, from chunk *@next on, as single-page
 * ranges; returns how many, 0 when every probe was given.
 */
unsigned int vb_fence_probes(struct vb_hint_fence *f, unsigned long *next,
			     struct vb_hint_range *r, unsigned int max)
{
	unsigned int n = 0;

	lockdep_assert_held(&f->lock);
	for (; *next < f->nr_chunks && n < max; (*next)++) {
		if (!f->probes[*next])
			continue;
		r[n].pfn = page_to_pfn(f->probes[*next]);
		r[n].nr_pages = 1;
		n++;
	}
	return n;
}

/*
 * End the fence begun by vb_fence_begin(). If the device applied every
 * probe's hint, @fenced is not NULL and is set to the chunks they covered.
 * Returns how many chunks that is.
 */
unsigned long vb_fence_end(struct vb_hint_fence *f,
			   struct vb_hint_fenced *fenced)
{
	unsigned long c, sent = 0;

	lockdep_assert_held(&f->lock);
	if (fenced) {
		bitmap_zero(f->map, f->nr_chunks);
		for (c = 0; c < f->nr_chunks; c++) {
			if (f->probes[c]) {
				__set_bit(c, f->map);
				sent++;
			}
		}
		fenced->map = f->map;
		fenced->wanted = f->wanted;
		fenced->nr_chunks = f->nr_chunks;
		fenced->chunk_shift = f->chunk_shift;
	}
	mutex_unlock(&f->lock);
	return sent;
}

/* Memory going offline cannot go while we own a page in it. */
static int vb_fence_memory_notify(struct notifier_block *nb,
				  unsigned long action, void *arg)
{
	struct vb_hint_fence *f = container_of(nb, struct vb_hint_fence,
					       memory_nb);
	struct memory_notify *mn = arg;
	unsigned long c, pfn;

	if (action != MEM_GOING_OFFLINE)
		return NOTIFY_OK;
	mutex_lock(&f->lock);
	for (c = 0; c < f->nr_chunks; c++) {
		if (!f->probes[c])
			continue;
		pfn = page_to_pfn(f->probes[c]);
		if (pfn >= mn->start_pfn && pfn < mn->start_pfn + mn->nr_pages) {
			__free_page(f->probes[c]);
			f->probes[c] = NULL;
		}
	}
	mutex_unlock(&f->lock);
	return NOTIFY_OK;
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
	vb_fence_free_probes(f);
	vb_fence_set_tables(f, NULL, NULL, NULL, 0);
}
