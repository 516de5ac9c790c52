// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for the free list walker (hint_walk.c).
 */

#include <kunit/test.h>

#include "virtio_balloon_hint.h"

static void coalesce_merges_touching_and_overlapping(struct kunit *test)
{
	struct vb_hint_range r[] = {
		{ .pfn = 64, .nr_pages = 16 },
		{ .pfn = 0, .nr_pages = 8 },
		{ .pfn = 8, .nr_pages = 8 },
		{ .pfn = 70, .nr_pages = 2 },
		{ .pfn = 32, .nr_pages = 4 },
	};

	KUNIT_ASSERT_EQ(test, vb_hint_coalesce(r, ARRAY_SIZE(r)), 3U);
	KUNIT_EXPECT_EQ(test, r[0].pfn, 0UL);
	KUNIT_EXPECT_EQ(test, r[0].nr_pages, 16UL);
	KUNIT_EXPECT_EQ(test, r[1].pfn, 32UL);
	KUNIT_EXPECT_EQ(test, r[1].nr_pages, 4UL);
	KUNIT_EXPECT_EQ(test, r[2].pfn, 64UL);
	KUNIT_EXPECT_EQ(test, r[2].nr_pages, 16UL);
}

static struct kunit_case vb_hint_coalesce_cases[] = {
	KUNIT_CASE(coalesce_merges_touching_and_overlapping),
	{}
};

static struct kunit_suite vb_hint_coalesce_suite = {
	.name = "vb_hint_coalesce",
	.test_cases = vb_hint_coalesce_cases,
};

kunit_test_suites(&vb_hint_coalesce_suite);

MODULE_LICENSE("GPL");
