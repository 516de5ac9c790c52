// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for the free list walker (hint_walk.c).
 *
 * vb_hint_walk runs the walker against the kernel's own buddy allocator: each
 * case starts from blocks of every order that the init callback allocated,
 * keeping every other one and freeing the rest, so that the free lists hold
 * blocks whose place is known and the kept blocks sit beside them.
 * vb_hint_coalesce checks the merging of ranges on made-up input.
 *
 * Over 400 lines: the walker's suite, whose cases share the set-up of known
 * free and kept blocks, and the small suite of the function it feeds.
 */

#include <kunit/test.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/vmstat.h>

#include "virtio_balloon_hint.h"

/* Blocks allocated per order; the odd ones are freed again. */
#define VB_TEST_BLOCKS_PER_ORDER	4
#define VB_TEST_MAX_BLOCKS		(NR_PAGE_ORDERS * VB_TEST_BLOCKS_PER_ORDER)

struct vb_test_block {
	unsigned long pfn;
	unsigned int order;
	bool freed;
};

struct vb_walk_ctx {
	struct zone **zones;
	unsigned int nr_zones;

	struct vb_test_block blocks[VB_TEST_MAX_BLOCKS];
	unsigned int nr_blocks;

	/* Every range the walk reported, coalesced by vb_walk_all(). */
	struct vb_hint_range *ranges;
	unsigned int nr_ranges;
	unsigned int max_ranges;
	struct vb_hint_range *batch;	/* VB_HINT_BUDGET_MAX entries */

	unsigned long steps;
	unsigned int max_visited;
	unsigned int min_raw_pages;	/* smallest range read */
	bool misaligned;		/* a range not aligned to its size */

	struct page *churn_page;	/* held by vb_churn() across a step */
	unsigned int churn_order;
	unsigned long churned;
};

static unsigned long vb_block_pages(const struct vb_test_block *b)
{
	return 1UL << b->order;
}

/* Free-list entries of every order in the walked zones, without the lock. */
static unsigned long vb_free_entries(struct vb_walk_ctx *ctx)
{
	unsigned long n = 0;
	unsigned int i;
	int order;

	for (i = 0; i < ctx->nr_zones; i++)
		for (order = 0; order < NR_PAGE_ORDERS; order++)
			/* Unlocked: an estimate is all this needs. */
			n += data_race(ctx->zones[i]->free_area[order].nr_free);
	return n;
}

static void vb_free_block(struct vb_test_block *b)
{
	__free_pages(pfn_to_page(b->pfn), b->order);
	b->freed = true;
}

static int vb_walk_init(struct kunit *test)
{
	unsigned int max_zones = num_possible_nodes() * MAX_NR_ZONES;
	struct vb_walk_ctx *ctx;
	struct page *page;
	unsigned int i;
	int order;

	ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	test->priv = ctx;
	ctx->zones = kunit_kcalloc(test, max_zones, sizeof(*ctx->zones),
				   GFP_KERNEL);
	ctx->batch = kunit_kcalloc(test, VB_HINT_BUDGET_MAX,
				   sizeof(*ctx->batch), GFP_KERNEL);
	if (!ctx->zones || !ctx->batch)
		return -ENOMEM;
	ctx->nr_zones = vb_hint_collect_zones(ctx->zones, max_zones);
	if (!ctx->nr_zones)
		return -ENODEV;
	/*
	 * Room for every range a walk may read, allocated before the blocks
	 * so that it does not take one of them.
	 */
	ctx->max_ranges = 4 * vb_free_entries(ctx) + 4096;
	ctx->ranges = kvmalloc_array(ctx->max_ranges, sizeof(*ctx->ranges),
				     GFP_KERNEL);
	if (!ctx->ranges)
		return -ENOMEM;

	for (order = 0; order < NR_PAGE_ORDERS; order++) {
		for (i = 0; i < VB_TEST_BLOCKS_PER_ORDER; i++) {
			page = alloc_pages(GFP_KERNEL | __GFP_NOWARN, order);
			if (!page)
				continue;
			ctx->blocks[ctx->nr_blocks].pfn = page_to_pfn(page);
			ctx->blocks[ctx->nr_blocks].order = order;
			ctx->nr_blocks++;
		}
	}
	for (i = 1; i < ctx->nr_blocks; i += 2)
		vb_free_block(&ctx->blocks[i]);
	/* Blocks freed to the per-cpu lists go to the buddy lists now. */
	drain_all_pages(NULL);
	return 0;
}

static void vb_walk_exit(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;
	unsigned int i;

	if (!ctx)
		return;
	for (i = 0; i < ctx->nr_blocks; i++)
		if (!ctx->blocks[i].freed)
			vb_free_block(&ctx->blocks[i]);
	if (ctx->churn_page)
		__free_pages(ctx->churn_page, ctx->churn_order);
	kvfree(ctx->ranges);
}

static void vb_walk_append(struct kunit *test, struct vb_walk_ctx *ctx,
			   const struct vb_hint_range *r, unsigned int n)
{
	unsigned int i;

	KUNIT_ASSERT_LE_MSG(test, ctx->nr_ranges + n, ctx->max_ranges,
			    "the walk read far more entries than the lists held");
	for (i = 0; i < n; i++) {
		ctx->min_raw_pages = min_t(unsigned long, ctx->min_raw_pages,
					   r[i].nr_pages);
		if (!r[i].nr_pages || r[i].pfn & (r[i].nr_pages - 1) ||
		    r[i].nr_pages & (r[i].nr_pages - 1))
			ctx->misaligned = true;
		ctx->ranges[ctx->nr_ranges++] = r[i];
	}
}

/*
 * Walk every zone from the top order down to @min_order with @budget entries
 * per lock acquisition, keep every range read, then coalesce them. @hook, if
 * set, runs between two steps: a chance to change the free lists the way the
 * rest of the kernel would.
 */
static void vb_walk_all(struct kunit *test, struct vb_walk_ctx *ctx,
			unsigned int min_order, unsigned int budget,
			void (*hook)(struct vb_walk_ctx *ctx,
				     struct vb_hint_cursor *cur))
{
	struct vb_hint_cursor cur;
	struct vb_hint_step step;
	unsigned long max_steps;
	unsigned int n;

	ctx->nr_ranges = 0;
	ctx->steps = 0;
	ctx->max_visited = 0;
	ctx->min_raw_pages = UINT_MAX;
	ctx->misaligned = false;
	/*
	 * Every step reads an entry or moves past a list; each list is read at
	 * most twice its length plus a budget over.
	 */
	max_steps = 2 * ctx->max_ranges +
		    4UL * NR_PAGE_ORDERS * MIGRATE_TYPES * ctx->nr_zones +
		    (unsigned long)nr_cpu_ids * ctx->nr_zones;

	vb_hint_cursor_init(&cur, ctx->zones, ctx->nr_zones, min_order);
	while (!cur.done) {
		KUNIT_ASSERT_LT_MSG(test, ctx->steps, max_steps,
				    "the walk does not end (budget %u)", budget);
		n = vb_hint_walk_step(&cur, budget, ctx->batch, &step);
		ctx->steps++;
		ctx->max_visited = max(ctx->max_visited, step.visited);
		KUNIT_ASSERT_LE(test, n, step.visited);
		vb_walk_append(test, ctx, ctx->batch, n);
		if (hook)
			hook(ctx, &cur);
	}
	ctx->nr_ranges = vb_hint_coalesce(ctx->ranges, ctx->nr_ranges);
}

/* The coalesced range holding all of [pfn, pfn + nr), or NULL. */
static const struct vb_hint_range *
vb_find_range(const struct vb_walk_ctx *ctx, unsigned long pfn,
	      unsigned long nr)
{
	unsigned int lo = 0, hi = ctx->nr_ranges;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct vb_hint_range *r = &ctx->ranges[mid];

		if (pfn < r->pfn)
			hi = mid;
		else if (pfn >= r->pfn + r->nr_pages)
			lo = mid + 1;
		else
			return pfn + nr <= r->pfn + r->nr_pages ? r : NULL;
	}
	return NULL;
}

static bool vb_overlaps_any(const struct vb_walk_ctx *ctx, unsigned long pfn,
			    unsigned long nr)
{
	unsigned int i;

	for (i = 0; i < ctx->nr_ranges; i++)
		if (pfn < ctx->ranges[i].pfn + ctx->ranges[i].nr_pages &&
		    ctx->ranges[i].pfn < pfn + nr)
			return true;
	return false;
}

/* Whether @pfn lies in a free block of the buddy allocator right now. */
static bool vb_pfn_is_free(unsigned long pfn)
{
	struct zone *zone = page_zone(pfn_to_page(pfn));
	unsigned long flags;
	bool free = false;
	int order;

	spin_lock_irqsave(&zone->lock, flags);
	for (order = 0; order < NR_PAGE_ORDERS && !free; order++) {
		unsigned long head = pfn & ~((1UL << order) - 1);
		struct page *page = pfn_to_page(head);

		free = head >= zone->zone_start_pfn &&
		       page_zone(page) == zone && PageBuddy(page) &&
		       buddy_order(page) >= order;
	}
	spin_unlock_irqrestore(&zone->lock, flags);
	return free;
}

/*
 * Every block the test freed at or above @min_order is inside a reported
 * range: on its own, or merged into a larger free block. A block someone
 * else allocated meanwhile is no longer free and proves nothing.
 */
static void vb_expect_freed_blocks_reported(struct kunit *test,
					    struct vb_walk_ctx *ctx,
					    unsigned int min_order)
{
	unsigned int i, checked = 0, taken = 0;

	for (i = 0; i < ctx->nr_blocks; i++) {
		const struct vb_test_block *b = &ctx->blocks[i];

		if (!b->freed || b->order < min_order)
			continue;
		if (vb_find_range(ctx, b->pfn, vb_block_pages(b))) {
			checked++;
			continue;
		}
		if (!vb_pfn_is_free(b->pfn)) {
			taken++;
			continue;
		}
		KUNIT_FAIL(test, "free order-%u block at pfn %#lx not reported",
			   b->order, b->pfn);
	}
	if (taken)
		kunit_info(test, "%u freed blocks were reused meanwhile", taken);
	KUNIT_EXPECT_GT(test, checked, 0U);
	KUNIT_EXPECT_LE(test, taken, checked / 4);
}

static void vb_expect_kept_blocks_not_reported(struct kunit *test,
					       struct vb_walk_ctx *ctx)
{
	unsigned int i, kept = 0;

	for (i = 0; i < ctx->nr_blocks; i++) {
		const struct vb_test_block *b = &ctx->blocks[i];

		if (b->freed)
			continue;
		kept++;
		KUNIT_EXPECT_FALSE_MSG(test,
				       vb_overlaps_any(ctx, b->pfn, vb_block_pages(b)),
				       "allocated order-%u block at pfn %#lx reported",
				       b->order, b->pfn);
	}
	KUNIT_EXPECT_GT(test, kept, 0U);
}

static void walk_reports_every_freed_block(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;

	vb_walk_all(test, ctx, 0, VB_HINT_BUDGET_DEFAULT, NULL);
	vb_expect_freed_blocks_reported(test, ctx, 0);
}

static void walk_reports_freed_blocks_above_min_order(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;
	unsigned int min_order = NR_PAGE_ORDERS / 2;

	vb_walk_all(test, ctx, min_order, VB_HINT_BUDGET_DEFAULT, NULL);
	vb_expect_freed_blocks_reported(test, ctx, min_order);
}

static void walk_never_reports_allocated_pages(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;

	vb_walk_all(test, ctx, 0, VB_HINT_BUDGET_DEFAULT, NULL);
	vb_expect_kept_blocks_not_reported(test, ctx);
}

static void walk_reads_whole_blocks_of_min_order_or_more(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;
	unsigned int min_order = 3;

	vb_walk_all(test, ctx, min_order, VB_HINT_BUDGET_DEFAULT, NULL);
	KUNIT_ASSERT_GT(test, ctx->nr_ranges, 0U);
	KUNIT_EXPECT_GE(test, ctx->min_raw_pages, 1U << min_order);
	KUNIT_EXPECT_FALSE_MSG(test, ctx->misaligned,
			       "a range is not a naturally aligned buddy block");
}

static void walk_ranges_are_sorted_coalesced_and_disjoint(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;
	unsigned int i;

	vb_walk_all(test, ctx, 0, VB_HINT_BUDGET_DEFAULT, NULL);
	KUNIT_ASSERT_GT(test, ctx->nr_ranges, 0U);
	for (i = 0; i < ctx->nr_ranges; i++) {
		const struct vb_hint_range *r = &ctx->ranges[i];

		KUNIT_EXPECT_GT(test, r->nr_pages, 0UL);
		KUNIT_EXPECT_LE(test, r->nr_pages,
				(unsigned long)VB_HINT_RANGE_MAX_PAGES);
		if (i + 1 == ctx->nr_ranges)
			break;
		/* Touching ranges are merged unless that makes one too long. */
		if (r->pfn + r->nr_pages == r[1].pfn)
			KUNIT_EXPECT_GT(test, r->nr_pages + r[1].nr_pages,
					(unsigned long)VB_HINT_RANGE_MAX_PAGES);
		else
			KUNIT_EXPECT_LT(test, r->pfn + r->nr_pages, r[1].pfn);
	}
}

/* Pages the per-cpu lists of the walked zones hold or may take at once. */
static unsigned long vb_pcp_slack(struct vb_walk_ctx *ctx)
{
	unsigned long slack = 0;
	unsigned int i;
	int cpu;

	for (i = 0; i < ctx->nr_zones; i++) {
		for_each_online_cpu(cpu) {
			struct per_cpu_pages *pcp =
				per_cpu_ptr(ctx->zones[i]->per_cpu_pageset, cpu);

			/* Unlocked: a bound on what the lists may move. */
			slack += data_race(pcp->count + pcp->high + pcp->batch);
		}
	}
	return slack;
}

static void walk_total_matches_zone_free_counters(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;
	unsigned long walked = 0, listed = 0, counted = 0, slack;
	unsigned long flags;
	unsigned int i;
	int order;

	vb_walk_all(test, ctx, 0, VB_HINT_BUDGET_MAX, NULL);
	for (i = 0; i < ctx->nr_ranges; i++)
		walked += ctx->ranges[i].nr_pages;
	for (i = 0; i < ctx->nr_zones; i++) {
		struct zone *zone = ctx->zones[i];

		spin_lock_irqsave(&zone->lock, flags);
		for (order = 0; order < NR_PAGE_ORDERS; order++)
			listed += zone->free_area[order].nr_free << order;
		spin_unlock_irqrestore(&zone->lock, flags);
		counted += zone_page_state_snapshot(zone, NR_FREE_PAGES);
	}
	slack = vb_pcp_slack(ctx);
	kunit_info(test, "walked %lu pages, free lists %lu, NR_FREE_PAGES %lu, per-cpu slack %lu\n",
		   walked, listed, counted, slack);
	KUNIT_ASSERT_GT(test, walked, 0UL);
	KUNIT_EXPECT_LE(test, walked, listed + slack);
	KUNIT_EXPECT_LE(test, listed, walked + slack);
	KUNIT_EXPECT_LE(test, walked, counted + slack);
	KUNIT_EXPECT_LE(test, counted, walked + slack);
}

static void walk_step_visits_at_most_budget(struct kunit *test)
{
	static const unsigned int budgets[] = { 2, 7, VB_HINT_BUDGET_DEFAULT,
						VB_HINT_BUDGET_MAX };
	struct vb_walk_ctx *ctx = test->priv;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(budgets); i++) {
		vb_walk_all(test, ctx, 0, budgets[i], NULL);
		KUNIT_EXPECT_LE_MSG(test, ctx->max_visited, budgets[i],
				    "budget %u", budgets[i]);
		KUNIT_EXPECT_GT(test, ctx->max_visited, 0U);
		vb_expect_freed_blocks_reported(test, ctx, 0);
	}
}

static void walk_with_budget_of_one_finishes(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;

	vb_walk_all(test, ctx, 0, 1, NULL);
	KUNIT_EXPECT_EQ(test, ctx->max_visited, 1U);
	vb_expect_freed_blocks_reported(test, ctx, 0);
	vb_expect_kept_blocks_not_reported(test, ctx);
}

#define VB_TEST_PCP_PAGES	16

/*
 * Free @n order-0 pages, which the allocator parks on this CPU's per-CPU
 * list rather than the buddy lists, and return how many of them are still
 * there (not PageBuddy) once freed.
 */
static unsigned int vb_free_to_pcp(struct kunit *test, unsigned long *pfns,
				   unsigned int n)
{
	struct page *pages[VB_TEST_PCP_PAGES];
	unsigned int i, parked = 0;

	for (i = 0; i < n; i++) {
		pages[i] = alloc_page(GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, pages[i]);
		pfns[i] = page_to_pfn(pages[i]);
	}
	for (i = 0; i < n; i++)
		__free_page(pages[i]);
	/*
	 * Not in a free buddy block: on a per-CPU list. (PageBuddy() would not
	 * tell: it marks only a block's first page.)
	 */
	for (i = 0; i < n; i++)
		parked += !vb_pfn_is_free(pfns[i]);
	return parked;
}

static void walk_reports_pages_on_per_cpu_lists(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;
	unsigned long pfns[VB_TEST_PCP_PAGES];
	unsigned int i, parked, reported = 0;

	parked = vb_free_to_pcp(test, pfns, ARRAY_SIZE(pfns));
	KUNIT_ASSERT_GT_MSG(test, parked, 0U,
			    "no freed page stayed on a per-CPU list");
	vb_walk_all(test, ctx, 0, VB_HINT_BUDGET_DEFAULT, NULL);
	for (i = 0; i < ARRAY_SIZE(pfns); i++)
		reported += !!vb_find_range(ctx, pfns[i], 1);
	/* A page reused by someone else meanwhile is allowed to be missing. */
	KUNIT_EXPECT_GE(test, reported, parked * 3 / 4);
	vb_expect_kept_blocks_not_reported(test, ctx);
}

static void walk_skips_per_cpu_pages_below_min_order(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;
	unsigned long pfns[VB_TEST_PCP_PAGES];

	KUNIT_ASSERT_GT(test, vb_free_to_pcp(test, pfns, ARRAY_SIZE(pfns)), 0U);
	vb_walk_all(test, ctx, 1, VB_HINT_BUDGET_DEFAULT, NULL);
	/*
	 * The parked pages are order-0 entries of the per-CPU lists: none may
	 * be read. One the allocator moved meanwhile into a larger free block
	 * may be reported with that block, so it is the entries read that
	 * are checked, not the pages.
	 */
	KUNIT_EXPECT_GE(test, ctx->min_raw_pages, 2U);
}

/*
 * Between two steps, take a block of the order being read (likely the entry
 * the cursor stopped at, or one near it) and give back the one taken before:
 * the cursor finds its last entry gone and must start the list again.
 */
static void vb_churn(struct vb_walk_ctx *ctx, struct vb_hint_cursor *cur)
{
	if (ctx->churn_page)
		__free_pages(ctx->churn_page, ctx->churn_order);
	ctx->churn_page = NULL;
	if (cur->done)
		return;
	ctx->churn_order = cur->order;
	ctx->churn_page = alloc_pages(GFP_NOWAIT | __GFP_NOWARN,
				      ctx->churn_order);
	ctx->churned += !!ctx->churn_page;
	drain_local_pages(NULL);
}

static void walk_finishes_while_lists_change(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;

	vb_walk_all(test, ctx, 0, 1, vb_churn);
	KUNIT_EXPECT_NULL(test, ctx->churn_page);
	KUNIT_EXPECT_GT(test, ctx->churned, 0UL);
	KUNIT_EXPECT_LE(test, ctx->max_visited, 1U);
	vb_expect_kept_blocks_not_reported(test, ctx);
}

static void cursor_without_zones_is_done(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;
	struct vb_hint_cursor cur;
	struct vb_hint_step step;

	vb_hint_cursor_init(&cur, ctx->zones, 0, 0);
	KUNIT_EXPECT_TRUE(test, cur.done);
	KUNIT_EXPECT_EQ(test, vb_hint_walk_step(&cur, 1, ctx->batch, &step), 0U);
	KUNIT_EXPECT_EQ(test, step.visited, 0U);
}

static void cursor_above_top_order_is_done(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;
	struct vb_hint_cursor cur;
	struct vb_hint_step step;

	vb_hint_cursor_init(&cur, ctx->zones, ctx->nr_zones, NR_PAGE_ORDERS);
	KUNIT_EXPECT_TRUE(test, cur.done);
	KUNIT_EXPECT_EQ(test, vb_hint_walk_step(&cur, 1, ctx->batch, &step), 0U);
	KUNIT_EXPECT_EQ(test, step.visited, 0U);
}

static void collect_zones_stores_every_populated_zone(struct kunit *test)
{
	struct vb_walk_ctx *ctx = test->priv;
	unsigned int populated = 0, i;
	struct zone *zone;

	for_each_populated_zone(zone)
		populated++;
	KUNIT_EXPECT_EQ(test, ctx->nr_zones, populated);
	for (i = 0; i < ctx->nr_zones; i++)
		KUNIT_EXPECT_TRUE(test, populated_zone(ctx->zones[i]));
	KUNIT_EXPECT_EQ(test, vb_hint_collect_zones(ctx->zones, 0), 0U);
}

static struct kunit_case vb_hint_walk_cases[] = {
	KUNIT_CASE(walk_reports_every_freed_block),
	KUNIT_CASE(walk_reports_freed_blocks_above_min_order),
	KUNIT_CASE(walk_never_reports_allocated_pages),
	KUNIT_CASE(walk_reads_whole_blocks_of_min_order_or_more),
	KUNIT_CASE(walk_ranges_are_sorted_coalesced_and_disjoint),
	KUNIT_CASE(walk_total_matches_zone_free_counters),
	KUNIT_CASE(walk_step_visits_at_most_budget),
	KUNIT_CASE(walk_with_budget_of_one_finishes),
	KUNIT_CASE(walk_finishes_while_lists_change),
	KUNIT_CASE(walk_reports_pages_on_per_cpu_lists),
	KUNIT_CASE(walk_skips_per_cpu_pages_below_min_order),
	KUNIT_CASE(cursor_without_zones_is_done),
	KUNIT_CASE(cursor_above_top_order_is_done),
	KUNIT_CASE(collect_zones_stores_every_populated_zone),
	{}
};

static struct kunit_suite vb_hint_walk_suite = {
	.name = "vb_hint_walk",
	.init = vb_walk_init,
	.exit = vb_walk_exit,
	.test_cases = vb_hint_walk_cases,
};

#define VB_COALESCE_MAX	6

/* An input batch and what vb_hint_coalesce() must make of it. */
struct vb_coalesce_case {
	const char *name;
	struct vb_hint_range in[VB_COALESCE_MAX];
	unsigned int nr_in;
	struct vb_hint_range out[VB_COALESCE_MAX];
	unsigned int nr_out;
};

#define VB_MAXLEN	VB_HINT_RANGE_MAX_PAGES

static const struct vb_coalesce_case vb_coalesce_cases[] = {
	{
		.name = "merges touching and overlapping",
		.in = { { 64, 16 }, { 0, 8 }, { 8, 8 }, { 70, 2 }, { 32, 4 },
			{ 34, 4 } },
		.nr_in = 6,
		.out = { { 0, 16 }, { 32, 6 }, { 64, 16 } },
		.nr_out = 3,
	}, {
		.name = "keeps distant ranges apart",
		.in = { { 512, 1 }, { 8, 8 }, { 17, 1 } },
		.nr_in = 3,
		.out = { { 8, 8 }, { 17, 1 }, { 512, 1 } },
		.nr_out = 3,
	}, {
		.name = "leaves no range alone",
		.in = { { 5, 3 } },
		.nr_in = 0,
		.nr_out = 0,
	}, {
		.name = "leaves one range alone",
		.in = { { 5, 3 } },
		.nr_in = 1,
		.out = { { 5, 3 } },
		.nr_out = 1,
	}, {
		.name = "absorbs contained and repeated ranges",
		.in = { { 1024, 1 }, { 1024, 1024 }, { 1536, 512 },
			{ 1024, 1024 } },
		.nr_in = 4,
		.out = { { 1024, 1024 } },
		.nr_out = 1,
	}, {
		.name = "caps ranges at the maximum length",
		.in = { { 0, VB_MAXLEN / 2 }, { VB_MAXLEN / 2, VB_MAXLEN / 2 },
			{ VB_MAXLEN, 1 } },
		.nr_in = 3,
		.out = { { 0, VB_MAXLEN }, { VB_MAXLEN, 1 } },
		.nr_out = 2,
	},
};

static void vb_coalesce_desc(const struct vb_coalesce_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(vb_coalesce, vb_coalesce_cases, vb_coalesce_desc);

static void coalesce_merges_sorts_and_caps(struct kunit *test)
{
	const struct vb_coalesce_case *c = test->param_value;
	struct vb_hint_range r[VB_COALESCE_MAX];
	unsigned int i;

	memcpy(r, c->in, sizeof(r));
	KUNIT_ASSERT_EQ(test, vb_hint_coalesce(r, c->nr_in), c->nr_out);
	for (i = 0; i < c->nr_out; i++) {
		KUNIT_EXPECT_EQ_MSG(test, r[i].pfn, c->out[i].pfn, "range %u", i);
		KUNIT_EXPECT_EQ_MSG(test, r[i].nr_pages, c->out[i].nr_pages,
				    "range %u", i);
	}
}

/*
 * A range that overlaps one already at the length cap continues after it: a
 * page is never in two ranges of a batch.
 */
static void coalesce_never_overlaps_at_max_length(struct kunit *test)
{
	const unsigned long max = VB_MAXLEN;
	struct vb_hint_range r[] = {
		{ .pfn = 0, .nr_pages = max - 1 },
		{ .pfn = max - 2, .nr_pages = 4 },
		{ .pfn = max - 1, .nr_pages = 1 },
	};
	unsigned int n, i;

	n = vb_hint_coalesce(r, ARRAY_SIZE(r));
	KUNIT_ASSERT_GE(test, n, 2U);
	KUNIT_EXPECT_EQ(test, r[0].pfn, 0UL);
	for (i = 0; i + 1 < n; i++) {
		KUNIT_EXPECT_LE(test, r[i].nr_pages, max);
		KUNIT_EXPECT_LE(test, r[i].pfn + r[i].nr_pages, r[i + 1].pfn);
	}
	/* Every page of the input is still covered. */
	KUNIT_EXPECT_EQ(test, r[n - 1].pfn + r[n - 1].nr_pages, max + 2);
	KUNIT_EXPECT_EQ(test, r[0].nr_pages + r[1].nr_pages, max + 2);
}

static struct kunit_case vb_hint_coalesce_cases[] = {
	KUNIT_CASE_PARAM(coalesce_merges_sorts_and_caps,
			 vb_coalesce_gen_params),
	KUNIT_CASE(coalesce_never_overlaps_at_max_length),
	{}
};

static struct kunit_suite vb_hint_coalesce_suite = {
	.name = "vb_hint_coalesce",
	.test_cases = vb_hint_coalesce_cases,
};

kunit_test_suites(&vb_hint_walk_suite, &vb_hint_coalesce_suite);
