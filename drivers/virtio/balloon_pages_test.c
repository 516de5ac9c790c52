// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite for the page frame numbers the classic balloon hands to the
 * device (balloon_pages.c): 4 KiB frames, in the device's byte order.
 */

#include <kunit/test.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

#include "virtio_balloon_internal.h"
#include "balloon_test.h"

/* Guest pages that fill one inflate or deflate message. */
#define VB_TEST_MSG_PAGES	(VB_PFNS_PER_MSG / VB_PAGES_PER_PAGE)

struct vb_pfns_ctx {
	struct vb_test_balloon tb;	/* first */
	struct page *pages;	/* VB_TEST_MSG_PAGES of them */
	unsigned int order;
};

static int vb_pfns_init(struct kunit *test)
{
	struct vb_pfns_ctx *ctx = vb_test_context(test, sizeof(*ctx));

	if (!ctx)
		return -ENOMEM;
	ctx->order = get_order(VB_TEST_MSG_PAGES * PAGE_SIZE);
	ctx->pages = alloc_pages(GFP_KERNEL, ctx->order);
	return ctx->pages ? 0 : -ENOMEM;
}

static void vb_pfns_exit(struct kunit *test)
{
	struct vb_pfns_ctx *ctx = test->priv;

	if (ctx && ctx->pages)
		__free_pages(ctx->pages, ctx->order);
}

/* The device's frame number in pfns[@i], in CPU order. */
static u32 vb_pfn_at(struct vb_pfns_ctx *ctx, unsigned int i)
{
	return le32_to_cpu((__force __le32)ctx->tb.vb->pfns[i]);
}

/* The first 4 KiB frame of @page, as the device counts. */
static u32 vb_frame_of(struct page *page)
{
	return page_to_pfn(page) << (PAGE_SHIFT - VIRTIO_BALLOON_PFN_SHIFT);
}

static void add_pfns_appends_every_4k_frame_of_a_page(struct kunit *test)
{
	struct vb_pfns_ctx *ctx = test->priv;
	unsigned int n = 0, i;

	vb_add_pfns(ctx->tb.vb, &n, ctx->pages);
	KUNIT_ASSERT_EQ(test, n, (unsigned int)VB_PAGES_PER_PAGE);
	for (i = 0; i < n; i++)
		KUNIT_EXPECT_EQ(test, vb_pfn_at(ctx, i),
				vb_frame_of(ctx->pages) + i);
}

static void add_pfns_appends_after_earlier_entries(struct kunit *test)
{
	struct vb_pfns_ctx *ctx = test->priv;
	unsigned int n = 0;

	vb_add_pfns(ctx->tb.vb, &n, ctx->pages);
	vb_add_pfns(ctx->tb.vb, &n, ctx->pages + 2);
	KUNIT_ASSERT_EQ(test, n, 2U * VB_PAGES_PER_PAGE);
	KUNIT_EXPECT_EQ(test, vb_pfn_at(ctx, 0), vb_frame_of(ctx->pages));
	KUNIT_EXPECT_EQ(test, vb_pfn_at(ctx, VB_PAGES_PER_PAGE),
			vb_frame_of(ctx->pages + 2));
}

static void add_pfns_fills_a_message_exactly(struct kunit *test)
{
	struct vb_pfns_ctx *ctx = test->priv;
	unsigned int n = 0, i;

	for (i = 0; i < VB_TEST_MSG_PAGES; i++)
		vb_add_pfns(ctx->tb.vb, &n, ctx->pages + i);
	KUNIT_ASSERT_EQ(test, n, (unsigned int)VB_PFNS_PER_MSG);
	for (i = 0; i < VB_PFNS_PER_MSG; i++)
		KUNIT_EXPECT_EQ(test, vb_pfn_at(ctx, i),
				vb_frame_of(ctx->pages) + i);
}

static void add_pfns_writes_the_device_byte_order(struct kunit *test)
{
	struct vb_pfns_ctx *ctx = test->priv;
	u32 frame = vb_frame_of(ctx->pages);
	unsigned int n = 0;
	u8 *bytes = (u8 *)&ctx->tb.vb->pfns[0];

	vb_add_pfns(ctx->tb.vb, &n, ctx->pages);
	KUNIT_EXPECT_EQ(test, bytes[0], (u8)frame);
	KUNIT_EXPECT_EQ(test, bytes[1], (u8)(frame >> 8));
	KUNIT_EXPECT_EQ(test, bytes[2], (u8)(frame >> 16));
	KUNIT_EXPECT_EQ(test, bytes[3], (u8)(frame >> 24));
}

static struct kunit_case vb_pfns_cases[] = {
	KUNIT_CASE(add_pfns_appends_every_4k_frame_of_a_page),
	KUNIT_CASE(add_pfns_appends_after_earlier_entries),
	KUNIT_CASE(add_pfns_fills_a_message_exactly),
	KUNIT_CASE(add_pfns_writes_the_device_byte_order),
	{}
};

static struct kunit_suite vb_pfns_suite = {
	.name = "vb_balloon_pfns",
	.init = vb_pfns_init,
	.exit = vb_pfns_exit,
	.test_cases = vb_pfns_cases,
};

kunit_test_suites(&vb_pfns_suite);
