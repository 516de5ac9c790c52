// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: owned hints, for hosts that discard what they are hinted.
 *
 * Firecracker gives a hinted range back to its host (MADV_DONTNEED) as soon
 * as it reads it, and does not track the guest's writes: a page the guest
 * wrote between our hint and that discard would lose its contents. So on
 * such a host a hint names only pages the driver owns, from before it is
 * queued until the device has used its element (Firecracker discards every
 * range of an element before it returns the element).
 *
 * The in-tree driver keeps every page it hinted until the host ends the
 * run, and the guest's free memory drops to a few percent meanwhile. Here a
 * run owns at most VB_OWNED_INFLIGHT chunks at a time and gives each back
 * as soon as its element is used. Taking the chunks with alloc_pages() would
 * not do: the allocator hands out the block freed last first, so every
 * chunk would be the one just given back. Instead a run sweeps guest memory
 * by address: it reads the free blocks above the sweep point from the
 * movable buddy lists, takes the next stretch of them with
 * alloc_contig_range(), and moves the sweep point past it. A page freed
 * behind the sweep point waits for the next run.
 *
 * Only the hint work takes and queues chunks; a chunk goes back when the
 * device returns its element (vb_owned_used(), from whoever reclaims the
 * queue) or when the device is reset (vb_owned_reset()).
 */

#include <linux/gfp.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "virtio_balloon_internal.h"

/* Free blocks read per refill; more wait for the next one. */
#define VB_OWNED_MAX_BLOCKS	4096

static int vb_owned_block_cmp(const void *a, const void *b)
{
	const struct vb_hint_range *x = a, *y = b;

	return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

/*
 * Read the free blocks of the movable buddy lists at or above the sweep
 * point, by address. When there are more than fit, keep the lowest: those
 * above the highest kept are read again by the next refill. Returns how
 * many were kept.
 */
static unsigned int vb_owned_refill(struct vb_hint_dev *h, u32 id)
{
	struct vb_owned *o = &h->owned;
	struct vb_hint_cursor *cur = &o->cursor;
	struct vb_hint_range *r = h->batch;
	unsigned long ceiling = ULONG_MAX;
	unsigned int n, i, kept = 0;
	struct vb_hint_step step;

	o->hotplug_gen = vb_hint_hotplug_now();
	vb_hint_cursor_init(cur, h->zones, h->nr_zones, vb_hint_min_order());
	vb_hint_cursor_only(cur, MIGRATE_MOVABLE);
	while (!cur->done && h->sink.ops->check(&h->sink, id) == VB_HINT_GO) {
		n = vb_hint_walk_step(cur, VB_HINT_BUDGET_DEFAULT, r, &step);
		for (i = 0; i < n; i++) {
			if (r[i].pfn < o->next_pfn || r[i].pfn >= ceiling)
				continue;
			if (kept == VB_OWNED_MAX_BLOCKS) {
				sort(o->blocks, kept, sizeof(*o->blocks),
				     vb_owned_block_cmp, NULL);
				kept /= 2;
				ceiling = o->blocks[kept].pfn;
				if (r[i].pfn >= ceiling)
					continue;
			}
			o->blocks[kept++] = r[i];
		}
		cond_resched();
	}
	sort(o->blocks, kept, sizeof(*o->blocks), vb_owned_block_cmp, NULL);
	o->nr_blocks = kept;
	o->pos = 0;
	return kept;
}

/*
 * The next stretch of free blocks above the sweep point: at most
 * VB_OWNED_CHUNK_PAGES, in one zone (alloc_contig_range() takes no more),
 * and a single block while o->single. Moves the sweep point past it.
 * Returns false once none is left.
 */
static bool vb_owned_next_stretch(struct vb_owned *o, unsigned long *start,
				  unsigned long *end)
{
	const struct vb_hint_range *b;
	unsigned long s, e, limit;

	while (o->pos < o->nr_blocks) {
		b = &o->blocks[o->pos];
		s = max(b->pfn, o->next_pfn);
		e = b->pfn + b->nr_pages;
		if (e <= s) {
			o->pos++;
			continue;
		}
		limit = min(s + VB_OWNED_CHUNK_PAGES,
			    zone_end_pfn(page_zone(pfn_to_page(s))));
		while (!o->single && e < limit && o->pos + 1 < o->nr_blocks &&
		       o->blocks[o->pos + 1].pfn == e) {
			o->pos++;
			e = o->blocks[o->pos].pfn + o->blocks[o->pos].nr_pages;
		}
		e = min(e, limit);
		o->next_pfn = e;
		*start = s;
		*end = e;
		return true;
	}
	return false;
}

/*
 * Take the next chunk of free memory above the sweep point into @c, for the
 * session of @id. Memory onlined or offlined since the blocks were read may
 * have been freed or removed: they are read again. A stretch of several
 * blocks that cannot be taken whole (one of its pages was allocated since,
 * and is not movable) is tried again a block at a time, so that one page
 * costs no more than its block. Returns false once the sweep has passed
 * every free block, or the session may not go on.
 */
bool vb_owned_take(struct vb_hint_dev *h, u32 id, struct vb_owned_chunk *c)
{
	struct vb_owned *o = &h->owned;
	unsigned long start, end;
	unsigned int pos;
	int err;

	for (;;) {
		if (h->sink.ops->check(&h->sink, id) != VB_HINT_GO)
			return false;
		if (o->pos == o->nr_blocks && !vb_owned_refill(h, id))
			return false;
		/*
		 * No offline completes while the hotplug lock is held for
		 * reading, so a block read in this generation stays memory.
		 */
		if (!vb_hint_hotplug_hold(o->hotplug_gen)) {
			o->pos = o->nr_blocks;
			continue;
		}
		pos = o->pos;
		if (!vb_owned_next_stretch(o, &start, &end)) {
			vb_hint_hotplug_release();
			continue;
		}
		err = vb_contig_take(start, end);
		vb_hint_hotplug_release();
		if (err && !o->single && o->pos != pos) {
			o->single = true;
			o->next_pfn = start;
			o->pos = pos;
			continue;
		}
		o->single = false;
		if (!err) {
			c->pfn = start;
			c->nr_pages = end - start;
			c->in_flight = true;
			WRITE_ONCE(o->owned_pages, o->owned_pages + c->nr_pages);
			o->peak_pages = max(o->peak_pages, o->owned_pages);
			return true;
		}
		o->take_failures++;
	}
}

/* The device is done with @c's element: give its pages back. */
void vb_owned_used(struct vb_owned *o, struct vb_owned_chunk *c)
{
	if (WARN_ON_ONCE(!c->in_flight))
		return;
	vb_contig_give_back(c->pfn, c->nr_pages);
	WRITE_ONCE(o->owned_pages, o->owned_pages - c->nr_pages);
	c->in_flight = false;
}

/* A slot for the next chunk, or NULL while every one is in flight. */
struct vb_owned_chunk *vb_owned_free_slot(struct vb_owned *o)
{
	unsigned int i;

	for (i = 0; i < VB_OWNED_INFLIGHT; i++)
		if (!o->chunks[i].in_flight)
			return &o->chunks[i];
	return NULL;
}

/* Whether @token, a buffer's token on the free page queue, is a chunk. */
struct vb_owned_chunk *vb_owned_chunk_of(struct vb_owned *o, void *token)
{
	unsigned int i;

	for (i = 0; i < VB_OWNED_INFLIGHT; i++)
		if (token == &o->chunks[i])
			return &o->chunks[i];
	return NULL;
}

/* A new run sweeps from the lowest address. */
void vb_owned_begin(struct vb_owned *o)
{
	o->next_pfn = 0;
	o->nr_blocks = 0;
	o->pos = 0;
	o->single = false;
	o->peak_pages = o->owned_pages;
}

int vb_owned_init(struct vb_owned *o)
{
	o->blocks = kvcalloc(VB_OWNED_MAX_BLOCKS, sizeof(*o->blocks),
			     GFP_KERNEL);
	return o->blocks ? 0 : -ENOMEM;
}

void vb_owned_exit(struct vb_owned *o)
{
	kvfree(o->blocks);
}
