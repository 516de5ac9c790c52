// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: reading the buddy free lists for free page hints.
 *
 * A hint is safe when the range was free in the buddy allocator at a moment
 * after the device published the id it is reported under: the walk reads
 * ranges only from the free lists, under zone->lock, after the session's start
 * marker was queued, and never touches the pages themselves. Once the lock is
 * dropped the pages belong to the allocator again; a page reused after that is
 * caught by the host's dirty logging and sent again.
 *
 * Each acquisition of zone->lock reads at most a budget of entries. Between
 * two acquisitions the lists change, so the cursor keeps the last entry read
 * and checks, under the lock, that it is still a free block of the same order
 * in the same zone before continuing after it. If it is not (it was allocated
 * or merged), the list is read again from its head; the number of entries
 * read per list is bounded, so the walk always ends. Reading an entry twice
 * only repeats a hint; missing one only costs a hint.
 *
 * Pages freed a moment ago sit on the per-CPU lists rather than the buddy
 * lists: on 6.12, whose per-CPU lists grow with the freeing rate, tens of MiB
 * of them right after a process exits. They are as free as the buddy blocks
 * and read the same way, under the lock that guards them (pcp->lock, which
 * the page allocator also takes for another CPU's lists when it drains them),
 * after the buddy lists. One acquisition per (zone, CPU) reads at most the
 * budget's worth of entries from the largest order down; entries beyond it
 * are left unhinted, since a cursor in a list that the owning CPU reorders at
 * every allocation could not be checked.
 *
 * Memory hotplug changes what the walk reads. Offlining a memory block takes
 * its pages off the free lists and, when that empties the zone, frees the
 * zone's per-CPU lists (zone_pcp_reset()); onlining into an empty zone
 * replaces them (setup_zone_pageset()); removing an offline block frees its
 * memmap. A session may sleep for seconds between two steps, so each step
 * runs under vb_hint_hotplug_lock held for reading, and a memory notifier
 * takes it for writing at every online and offline event:
 * - every event bumps a generation, and a cursor from an older one forgets
 *   its last entry and reads the list again from its head. The cursor keeps
 *   a pfn, looked at only while the generation is unchanged, so it never
 *   names a page of a block that went offline, let alone one whose memmap
 *   is gone;
 * - between an operation's GOING_ event and its last one, the per-CPU lists
 *   are skipped: a zone's per-CPU pointer changes only inside one.
 * The zones themselves are never freed (pg_data_t outlives offlining), so the
 * zone list collected at session start stays readable; a zone that emptied
 * meanwhile has no free entry, and one populated meanwhile waits for the
 * next session.
 */

#include <linux/cpumask.h>
#include <linux/ktime.h>
#include <linux/memory.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/rwsem.h>
#include <linux/sort.h>

#include "virtio_balloon_hint.h"

/*
 * Held for reading across each walk step, for writing by the memory notifier;
 * protects vb_hint_hotplug_gen and vb_hint_hotplug_busy.
 */
static DECLARE_RWSEM(vb_hint_hotplug_lock);
static unsigned long vb_hint_hotplug_gen;	/* online/offline events seen */
static unsigned int vb_hint_hotplug_busy;	/* operations between GOING_ and end */

static int vb_hint_memory_notify(struct notifier_block *nb,
				 unsigned long action, void *arg)
{
	down_write(&vb_hint_hotplug_lock);
	vb_hint_hotplug_gen++;
	switch (action) {
	case MEM_GOING_ONLINE:
	case MEM_GOING_OFFLINE:
		vb_hint_hotplug_busy++;
		break;
	case MEM_ONLINE:
	case MEM_CANCEL_ONLINE:
	case MEM_OFFLINE:
	case MEM_CANCEL_OFFLINE:
		/* Zero if the operation began before we registered. */
		if (vb_hint_hotplug_busy)
			vb_hint_hotplug_busy--;
		break;
	}
	up_write(&vb_hint_hotplug_lock);
	return NOTIFY_OK;
}

static struct notifier_block vb_hint_memory_nb = {
	.notifier_call = vb_hint_memory_notify,
};

/*
 * Module load and unload. An online or offline already under way when the
 * module loads is not known to be busy; only the per-CPU phase of a session
 * that starts before it ends could read a pointer it replaces.
 */
int vb_hint_walk_init(void)
{
	return register_memory_notifier(&vb_hint_memory_nb);
}

void vb_hint_walk_exit(void)
{
	unregister_memory_notifier(&vb_hint_memory_nb);
}

/* Every populated zone of every online node; returns how many were stored. */
unsigned int vb_hint_collect_zones(struct zone **zones, unsigned int max)
{
	unsigned int n = 0;
	int nid, zid;

	for_each_online_node(nid) {
		for (zid = 0; zid < MAX_NR_ZONES; zid++) {
			struct zone *zone = &NODE_DATA(nid)->node_zones[zid];

			if (populated_zone(zone) && n < max)
				zones[n++] = zone;
		}
	}
	return n;
}

void vb_hint_cursor_init(struct vb_hint_cursor *cur, struct zone **zones,
			 unsigned int nr_zones, unsigned int min_order)
{
	memset(cur, 0, sizeof(*cur));
	cur->zones = zones;
	cur->nr_zones = nr_zones;
	cur->min_order = min_order;
	cur->order = NR_PAGE_ORDERS - 1;
	cur->done = !nr_zones || min_order >= NR_PAGE_ORDERS;
	cur->only_mt = -1;
	/* Unlocked: an event missed here only counts as one restart more. */
	cur->hotplug_gen = data_race(vb_hint_hotplug_gen);
}

/*
 * Read only the buddy lists of migratetype @mt, and no per-CPU list: blocks
 * whose pageblocks page isolation may take (see hint_fence.c).
 */
void vb_hint_cursor_only(struct vb_hint_cursor *cur, int mt)
{
	cur->only_mt = mt;
}

/* Start @cur over at the first list, for another pass of the same walk. */
void vb_hint_cursor_rewind(struct vb_hint_cursor *cur)
{
	unsigned int restarts = cur->hotplug_restarts;

	vb_hint_cursor_init(cur, cur->zones, cur->nr_zones, cur->min_order);
	cur->hotplug_restarts = restarts;
}

/* The memory hotplug events seen so far, for vb_hint_hotplug_since(). */
unsigned long vb_hint_hotplug_now(void)
{
	unsigned long gen;

	down_read(&vb_hint_hotplug_lock);
	gen = vb_hint_hotplug_gen;
	up_read(&vb_hint_hotplug_lock);
	return gen;
}

/*
 * Keep memory from going offline while using a pfn read from a free list
 * since vb_hint_hotplug_now() gave @gen: returns false, holding nothing, if
 * memory was onlined or offlined since or an operation is under way. Release
 * with vb_hint_hotplug_release(). Nothing done meanwhile may wait for a
 * memory hotplug operation: the memory notifier waits for the release.
 */
bool vb_hint_hotplug_hold(unsigned long gen)
{
	down_read(&vb_hint_hotplug_lock);
	if (vb_hint_hotplug_gen == gen && !vb_hint_hotplug_busy)
		return true;
	up_read(&vb_hint_hotplug_lock);
	return false;
}

void vb_hint_hotplug_release(void)
{
	up_read(&vb_hint_hotplug_lock);
}

/*
 * Whether memory was onlined or offlined since vb_hint_hotplug_now() gave
 * @gen, or an operation is under way. If not, a pfn read from a free list
 * since then is still in online memory, and stays so while its offline
 * cannot get past MEM_GOING_OFFLINE (the fence's notifier waits for its
 * lock there: see hint_fence.c).
 */
bool vb_hint_hotplug_since(unsigned long gen)
{
	if (!vb_hint_hotplug_hold(gen))
		return true;
	vb_hint_hotplug_release();
	return false;
}

static void vb_hint_start_list(struct vb_hint_cursor *cur)
{
	cur->has_last = false;
	cur->visits = 0;
	cur->visits_max = 0;
}

/*
 * On to the next zone at this order, or to the next smaller order, or after
 * the smallest order to the per-CPU lists.
 */
static void vb_hint_next_zone(struct vb_hint_cursor *cur)
{
	vb_hint_start_list(cur);
	cur->mt = 0;
	if (++cur->zone_idx < cur->nr_zones)
		return;
	cur->zone_idx = 0;
	if (--cur->order >= (int)cur->min_order)
		return;
	if (cur->only_mt >= 0) {
		cur->done = true;
		return;
	}
	cur->pcp = true;
	cur->cpu = cpumask_first(cpu_possible_mask);
}

/* On to the next CPU's lists of this zone, or to the next zone. */
static void vb_hint_next_cpu(struct vb_hint_cursor *cur)
{
	cur->cpu = cpumask_next(cur->cpu, cpu_possible_mask);
	if (cur->cpu < nr_cpu_ids)
		return;
	cur->cpu = cpumask_first(cpu_possible_mask);
	if (++cur->zone_idx >= cur->nr_zones)
		cur->done = true;
}

/*
 * One acquisition of one CPU's per-CPU lock for one zone: read up to @budget
 * entries of its lists of min_order or more, largest order first.
 */
static unsigned int vb_hint_pcp_step(struct vb_hint_cursor *cur,
				     unsigned int budget,
				     struct vb_hint_range *out,
				     struct vb_hint_step *step)
{
	struct zone *zone = cur->zones[cur->zone_idx];
	struct per_cpu_pages *pcp;
	unsigned long flags;
	unsigned int n = 0;
	int pindex;
	u64 start;

	pcp = per_cpu_ptr(READ_ONCE(zone->per_cpu_pageset), cur->cpu);
	vb_hint_next_cpu(cur);
	/*
	 * An online or offline may be replacing the pointer just read. As for
	 * the buddy lists, an unlocked look skips empty lists.
	 */
	if (vb_hint_hotplug_busy || !data_race(pcp->count))
		return 0;

	spin_lock_irqsave(&pcp->lock, flags);
	start = ktime_get_ns();
	for (pindex = NR_PCP_LISTS - 1; pindex >= 0 && n < budget; pindex--) {
		unsigned int order = pindex_to_order(pindex);
		struct page *page;

		if (order < cur->min_order)
			continue;
		list_for_each_entry(page, &pcp->lists[pindex], pcp_list) {
			out[n].pfn = page_to_pfn(page);
			out[n].nr_pages = 1UL << order;
			if (++n == budget)
				break;
		}
	}
	step->visited = n;
	step->lock_ns = ktime_get_ns() - start;
	spin_unlock_irqrestore(&pcp->lock, flags);
	return n;
}

/*
 * The list node after the last entry read, or the head of the list when the
 * last entry is no longer where the cursor left it. Called under zone->lock,
 * in the hotplug generation the entry was read in.
 */
static struct list_head *vb_hint_resume(struct vb_hint_cursor *cur,
					struct zone *zone,
					struct list_head *head)
{
	struct page *last;

	if (!cur->has_last)
		return head->next;
	last = pfn_to_page(cur->last_pfn);
	if (PageBuddy(last) && buddy_order(last) == cur->order &&
	    page_zone(last) == zone)
		return last->buddy_list.next;
	return head->next;
}

/* Whether @pos is the head of one of @area's lists rather than a page. */
static bool vb_hint_is_list_head(struct free_area *area, struct list_head *pos)
{
	return pos >= &area->free_list[0] &&
	       pos < &area->free_list[MIGRATE_TYPES];
}

/* The buddy-list half of vb_hint_walk_step(). */
static unsigned int vb_hint_buddy_step(struct vb_hint_cursor *cur,
				       unsigned int budget,
				       struct vb_hint_range *out,
				       struct vb_hint_step *step)
{
	struct free_area *area;
	struct zone *zone;
	unsigned long flags;
	unsigned int n = 0;
	u64 start;

	zone = cur->zones[cur->zone_idx];
	area = &zone->free_area[cur->order];
	/*
	 * An unlocked look saves taking the lock for empty orders; a block
	 * freed just after it is missed, which costs a hint, not correctness.
	 */
	if (!data_race(area->nr_free)) {
		vb_hint_next_zone(cur);
		return 0;
	}

	spin_lock_irqsave(&zone->lock, flags);
	start = ktime_get_ns();
	while (step->visited < budget) {
		struct list_head *head = &area->free_list[cur->mt];
		struct list_head *pos;
		struct page *page;

		if (!cur->visits_max)
			cur->visits_max = 2 * area->nr_free + budget;
		pos = vb_hint_resume(cur, zone, head);
		if (vb_hint_is_list_head(area, pos) ||
		    cur->visits >= cur->visits_max ||
		    (cur->only_mt >= 0 && cur->mt != cur->only_mt)) {
			vb_hint_start_list(cur);
			if (++cur->mt < MIGRATE_TYPES)
				continue;
			vb_hint_next_zone(cur);
			break;
		}

		page = list_entry(pos, struct page, buddy_list);
		cur->last_pfn = page_to_pfn(page);
		cur->has_last = true;
		cur->visits++;
		step->visited++;
		out[n].pfn = page_to_pfn(page);
		out[n].nr_pages = 1UL << cur->order;
		n++;
	}
	step->lock_ns = ktime_get_ns() - start;
	spin_unlock_irqrestore(&zone->lock, flags);
	return n;
}

/*
 * One acquisition of one zone's lock: read up to @budget free-list entries of
 * the current order, store their ranges in @out and return how many. Work
 * under the lock is bounded by @budget entries plus one look at each of the
 * MIGRATE_TYPES list heads. In the per-CPU phase, the same for one CPU's
 * lists of one zone. May sleep, for a memory hotplug event to finish.
 */
unsigned int vb_hint_walk_step(struct vb_hint_cursor *cur, unsigned int budget,
			       struct vb_hint_range *out,
			       struct vb_hint_step *step)
{
	unsigned int n;

	step->visited = 0;
	step->lock_ns = 0;
	if (cur->done)
		return 0;

	down_read(&vb_hint_hotplug_lock);
	if (cur->hotplug_gen != vb_hint_hotplug_gen) {
		cur->hotplug_gen = vb_hint_hotplug_gen;
		cur->has_last = false;
		cur->hotplug_restarts++;
	}
	if (cur->pcp)
		n = vb_hint_pcp_step(cur, budget, out, step);
	else
		n = vb_hint_buddy_step(cur, budget, out, step);
	up_read(&vb_hint_hotplug_lock);
	return n;
}

static int vb_hint_range_cmp(const void *a, const void *b)
{
	const struct vb_hint_range *ra = a, *rb = b;

	if (ra->pfn < rb->pfn)
		return -1;
	return ra->pfn > rb->pfn;
}

/*
 * Sort @n ranges by address and merge the ones that touch or overlap, up to
 * VB_HINT_RANGE_MAX_PAGES each; returns the new count. The ranges returned
 * never overlap: a page is hinted once per batch.
 */
unsigned int vb_hint_coalesce(struct vb_hint_range *r, unsigned int n)
{
	unsigned int i, out = 0;

	if (n < 2)
		return n;
	sort(r, n, sizeof(*r), vb_hint_range_cmp, NULL);
	for (i = 1; i < n; i++) {
		struct vb_hint_range *cur = &r[out];
		unsigned long end = cur->pfn + cur->nr_pages;
		unsigned long next_end = r[i].pfn + r[i].nr_pages;

		if (next_end <= end)
			continue;
		if (r[i].pfn <= end) {
			if (next_end - cur->pfn <= VB_HINT_RANGE_MAX_PAGES) {
				cur->nr_pages = next_end - cur->pfn;
				continue;
			}
			/* Too long together: the rest starts where cur ends. */
			r[i].pfn = end;
			r[i].nr_pages = next_end - end;
		}
		r[++out] = r[i];
	}
	return out + 1;
}
