// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite for the statistics buffer (balloon_stats.c): which tags, in
 * which order, in the device's byte order, with figures that agree with the
 * kernel's own counters.
 */

#include <kunit/test.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/vmstat.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

#include "virtio_balloon_internal.h"
#include "balloon_test.h"

/* Pages allocated to see MEMFREE move, and the noise allowed around them. */
#define VB_TEST_ALLOC_ORDER	(NR_PAGE_ORDERS - 1)
#define VB_TEST_ALLOC_BLOCKS	8
#define VB_TEST_SLACK		(4UL << 20)

static const u16 vb_expected_tags[] = {
#ifdef CONFIG_VM_EVENT_COUNTERS
	VIRTIO_BALLOON_S_SWAP_IN,
	VIRTIO_BALLOON_S_SWAP_OUT,
	VIRTIO_BALLOON_S_MAJFLT,
	VIRTIO_BALLOON_S_MINFLT,
	VIRTIO_BALLOON_S_OOM_KILL,
	VIRTIO_BALLOON_S_ALLOC_STALL,
	VIRTIO_BALLOON_S_ASYNC_SCAN,
	VIRTIO_BALLOON_S_DIRECT_SCAN,
	VIRTIO_BALLOON_S_ASYNC_RECLAIM,
	VIRTIO_BALLOON_S_DIRECT_RECLAIM,
#ifdef CONFIG_HUGETLB_PAGE
	VIRTIO_BALLOON_S_HTLB_PGALLOC,
	VIRTIO_BALLOON_S_HTLB_PGFAIL,
#endif
#endif
	VIRTIO_BALLOON_S_MEMFREE,
	VIRTIO_BALLOON_S_MEMTOT,
	VIRTIO_BALLOON_S_AVAIL,
	VIRTIO_BALLOON_S_CACHES,
};

struct vb_stats_ctx {
	struct vb_test_balloon tb;	/* first */
	unsigned int n;
};

static int vb_stats_init(struct kunit *test)
{
	return vb_test_context(test, sizeof(struct vb_stats_ctx)) ? 0 : -ENOMEM;
}

static u16 vb_tag_at(struct vb_stats_ctx *ctx, unsigned int i)
{
	return le16_to_cpu((__force __le16)ctx->tb.vb->stats[i].tag);
}

static u64 vb_val_at(struct vb_stats_ctx *ctx, unsigned int i)
{
	return le64_to_cpu((__force __le64)ctx->tb.vb->stats[i].val);
}

/* The value filled for @tag; fails the test if there is none. */
static u64 vb_stat(struct kunit *test, struct vb_stats_ctx *ctx, u16 tag)
{
	unsigned int i;

	for (i = 0; i < ctx->n; i++)
		if (vb_tag_at(ctx, i) == tag)
			return vb_val_at(ctx, i);
	KUNIT_FAIL(test, "no statistic with tag %u", tag);
	return 0;
}

static void vb_fill(struct vb_stats_ctx *ctx)
{
	ctx->n = vb_stats_fill(ctx->tb.vb);
}

static void stats_fill_writes_every_tag_in_order(struct kunit *test)
{
	struct vb_stats_ctx *ctx = test->priv;
	unsigned int i;

	vb_fill(ctx);
	KUNIT_ASSERT_EQ(test, ctx->n, (unsigned int)ARRAY_SIZE(vb_expected_tags));
	for (i = 0; i < ctx->n; i++)
		KUNIT_EXPECT_EQ_MSG(test, vb_tag_at(ctx, i), vb_expected_tags[i],
				    "entry %u", i);
}

static void stats_fill_stays_within_the_buffer(struct kunit *test)
{
	struct vb_stats_ctx *ctx = test->priv;
	struct virtio_balloon_stat unused;
	unsigned int i;

	memset(ctx->tb.vb->stats, 0xa5, sizeof(ctx->tb.vb->stats));
	memset(&unused, 0xa5, sizeof(unused));
	vb_fill(ctx);
	KUNIT_ASSERT_LE(test, ctx->n, (unsigned int)VB_STATS_MAX);
	for (i = ctx->n; i < VB_STATS_MAX; i++)
		KUNIT_EXPECT_EQ_MSG(test,
				    memcmp(&ctx->tb.vb->stats[i], &unused, sizeof(unused)),
				    0, "entry %u written past the count", i);
}

static void stats_fill_writes_each_tag_once(struct kunit *test)
{
	struct vb_stats_ctx *ctx = test->priv;
	unsigned int i, j;

	vb_fill(ctx);
	for (i = 0; i < ctx->n; i++)
		for (j = i + 1; j < ctx->n; j++)
			KUNIT_EXPECT_NE(test, vb_tag_at(ctx, i), vb_tag_at(ctx, j));
}

static void stats_fill_memory_figures_are_plausible(struct kunit *test)
{
	struct vb_stats_ctx *ctx = test->priv;
	u64 total, free, avail, caches;

	vb_fill(ctx);
	total = vb_stat(test, ctx, VIRTIO_BALLOON_S_MEMTOT);
	free = vb_stat(test, ctx, VIRTIO_BALLOON_S_MEMFREE);
	avail = vb_stat(test, ctx, VIRTIO_BALLOON_S_AVAIL);
	caches = vb_stat(test, ctx, VIRTIO_BALLOON_S_CACHES);
	KUNIT_EXPECT_EQ(test, total, (u64)totalram_pages() << PAGE_SHIFT);
	KUNIT_EXPECT_GT(test, free, 0ULL);
	KUNIT_EXPECT_LE(test, free, total);
	KUNIT_EXPECT_LE(test, avail, total);
	KUNIT_EXPECT_LE(test, caches, total);
	/* Bytes, counted in whole pages. */
	KUNIT_EXPECT_EQ(test, total % PAGE_SIZE, 0ULL);
	KUNIT_EXPECT_EQ(test, free % PAGE_SIZE, 0ULL);
	KUNIT_EXPECT_EQ(test, avail % PAGE_SIZE, 0ULL);
	KUNIT_EXPECT_EQ(test, caches % PAGE_SIZE, 0ULL);
}

static void stats_fill_memfree_follows_allocations(struct kunit *test)
{
	struct vb_stats_ctx *ctx = test->priv;
	const u64 size = (u64)VB_TEST_ALLOC_BLOCKS << (VB_TEST_ALLOC_ORDER + PAGE_SHIFT);
	struct page *blocks[VB_TEST_ALLOC_BLOCKS] = {};
	u64 before, during, after;
	unsigned int i;

	vb_fill(ctx);
	before = vb_stat(test, ctx, VIRTIO_BALLOON_S_MEMFREE);
	for (i = 0; i < VB_TEST_ALLOC_BLOCKS; i++) {
		blocks[i] = alloc_pages(GFP_KERNEL | __GFP_NOWARN,
					VB_TEST_ALLOC_ORDER);
		if (!blocks[i])
			break;
	}
	vb_fill(ctx);
	during = vb_stat(test, ctx, VIRTIO_BALLOON_S_MEMFREE);
	while (i--)
		__free_pages(blocks[i], VB_TEST_ALLOC_ORDER);
	KUNIT_ASSERT_NOT_NULL_MSG(test, blocks[VB_TEST_ALLOC_BLOCKS - 1],
				  "cannot allocate %llu bytes", size);
	vb_fill(ctx);
	after = vb_stat(test, ctx, VIRTIO_BALLOON_S_MEMFREE);

	KUNIT_EXPECT_GE(test, before + VB_TEST_SLACK, during + size);
	KUNIT_EXPECT_LE(test, before, during + size + VB_TEST_SLACK);
	KUNIT_EXPECT_GE(test, after + VB_TEST_SLACK, during + size);
}

#ifdef CONFIG_VM_EVENT_COUNTERS
static void stats_fill_event_figures_follow_vm_events(struct kunit *test)
{
	struct vb_stats_ctx *ctx = test->priv;
	unsigned long *ev;

	ev = kunit_kcalloc(test, NR_VM_EVENT_ITEMS, sizeof(*ev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ev);
	all_vm_events(ev);
	vb_fill(ctx);
	/* Counters only grow: what was filled is at least what was read. */
	KUNIT_EXPECT_GE(test, vb_stat(test, ctx, VIRTIO_BALLOON_S_MINFLT),
			(u64)ev[PGFAULT]);
	KUNIT_EXPECT_GE(test, vb_stat(test, ctx, VIRTIO_BALLOON_S_MAJFLT),
			(u64)ev[PGMAJFAULT]);
	KUNIT_EXPECT_GE(test, vb_stat(test, ctx, VIRTIO_BALLOON_S_MINFLT),
			vb_stat(test, ctx, VIRTIO_BALLOON_S_MAJFLT));
	KUNIT_EXPECT_GE(test, vb_stat(test, ctx, VIRTIO_BALLOON_S_SWAP_IN),
			(u64)ev[PSWPIN] << PAGE_SHIFT);
	KUNIT_EXPECT_GE(test, vb_stat(test, ctx, VIRTIO_BALLOON_S_OOM_KILL),
			(u64)ev[OOM_KILL]);
	/* Swap, scan and reclaim figures are bytes of whole pages. */
	KUNIT_EXPECT_EQ(test, vb_stat(test, ctx, VIRTIO_BALLOON_S_SWAP_OUT) %
			PAGE_SIZE, 0ULL);
	KUNIT_EXPECT_EQ(test, vb_stat(test, ctx, VIRTIO_BALLOON_S_ASYNC_SCAN) %
			PAGE_SIZE, 0ULL);
	KUNIT_EXPECT_EQ(test, vb_stat(test, ctx, VIRTIO_BALLOON_S_DIRECT_RECLAIM) %
			PAGE_SIZE, 0ULL);
}
#endif

static struct kunit_case vb_stats_cases[] = {
	KUNIT_CASE(stats_fill_writes_every_tag_in_order),
	KUNIT_CASE(stats_fill_stays_within_the_buffer),
	KUNIT_CASE(stats_fill_writes_each_tag_once),
	KUNIT_CASE(stats_fill_memory_figures_are_plausible),
	KUNIT_CASE(stats_fill_memfree_follows_allocations),
#ifdef CONFIG_VM_EVENT_COUNTERS
	KUNIT_CASE(stats_fill_event_figures_follow_vm_events),
#endif
	{}
};

static struct kunit_suite vb_stats_suite = {
	.name = "vb_balloon_stats",
	.init = vb_stats_init,
	.test_cases = vb_stats_cases,
};

kunit_test_suites(&vb_stats_suite);
