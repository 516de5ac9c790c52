// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite for the fence's windows (hint_layout.c).
 *
 * Each case is a guest layout that QEMU 10.0 builds, given twice: as the
 * guest sees it (RAM, SRAT node starts and memory devices, where low RAM
 * ends) and as QEMU maps it (each RAM block's guest addresses and offsets).
 * The windows derived from the first must each lie in one 1 GiB dirty-log
 * chunk of one block of the second, and cover the RAM the case expects.
 */

#include <kunit/test.h>
#include <linux/mm.h>

#include "virtio_balloon_hint.h"

#define MB(x)	((unsigned long)(x) << (20 - PAGE_SHIFT))
#define GB(x)	MB((x) * 1024UL)

/* The host chunk: QEMU's default x-clear-bitmap-shift of 18. */
#define VB_TEST_CHUNK_ORDER	(30 - PAGE_SHIFT)

/* Where QEMU maps a piece of a RAM block: guest pfns and the block offset. */
struct vb_test_map {
	int block;
	unsigned long start, end;
	unsigned long offset;
};

struct vb_test_layout {
	const char *name;
	struct vb_hint_range ram[6];
	unsigned long cuts[8];
	unsigned long low_end;
	struct vb_test_map host[6];
	unsigned long unsafe_pages;	/* RAM the windows must leave out */
	unsigned int min_order;		/* smallest window alignment expected */
};

/*
 * The layouts. RAM below 4 GiB loses its top to SeaBIOS (up to 16 MiB) and
 * the first MiB's hole; cuts are what the SRAT and the memory resources
 * give. NUMA nodes with memdev= are one block each, placed back to back and
 * then split at where low RAM ends (it resumes at 4 GiB).
 */
static const struct vb_test_layout vb_test_layouts[] = {
	{
		.name = "q35, 6 GiB",
		.ram = { { 0, MB(1) - 96 }, { MB(1), GB(2) - MB(1) - 33 },
			 { GB(4), GB(4) } },
		.low_end = GB(2),
		.host = { { 0, 0, GB(2), 0 }, { 0, GB(4), GB(8), GB(2) } },
		.min_order = VB_TEST_CHUNK_ORDER,
	},
	{
		.name = "q35, 3 GiB in two 1536 MiB nodes",
		.ram = { { MB(1), GB(2) - MB(2) }, { GB(4), GB(1) } },
		.cuts = { MB(1), MB(1536), GB(4) },
		.low_end = GB(2),
		.host = { { 0, 0, MB(1536), 0 },
			  { 1, MB(1536), GB(2), 0 },
			  { 1, GB(4), GB(5), MB(512) } },
		.min_order = 29 - PAGE_SHIFT,
	},
	{
		.name = "pc, 3 GiB in nodes of 512 and 2560 MiB",
		.ram = { { MB(1), GB(3) - MB(17) } },
		.cuts = { MB(512) },
		.host = { { 0, 0, MB(512), 0 }, { 1, MB(512), GB(3), 0 } },
		.min_order = 29 - PAGE_SHIFT,
	},
	{
		.name = "pc, 6 GiB in nodes of 1536, 1536 and 3072 MiB",
		.ram = { { MB(1), GB(3) - MB(2) }, { GB(4), GB(3) } },
		.cuts = { MB(1536), GB(4) },
		.low_end = GB(3),
		.host = { { 0, 0, MB(1536), 0 },
			  { 1, MB(1536), GB(3), 0 },
			  { 2, GB(4), GB(7), 0 } },
		.min_order = 29 - PAGE_SHIFT,
	},
	{
		.name = "q35, 2 GiB and two 512 MiB DIMMs",
		.ram = { { MB(1), GB(2) - MB(2) }, { GB(4), MB(512) },
			 { GB(4) + MB(512), MB(512) } },
		.cuts = { GB(4), GB(4) + MB(512) },
		.low_end = GB(2),
		.host = { { 0, 0, GB(2), 0 },
			  { 1, GB(4), GB(4) + MB(512), 0 },
			  { 2, GB(4) + MB(512), GB(5), 0 } },
		.min_order = 29 - PAGE_SHIFT,
	},
	{
		.name = "pc, 4 GiB, max-ram-below-4g=2560M",
		.ram = { { MB(1), MB(2560) - MB(3) }, { GB(4), MB(1536) } },
		.low_end = MB(2560),
		.host = { { 0, 0, MB(2560), 0 },
			  { 0, GB(4), GB(4) + MB(1536), MB(2560) } },
		.min_order = 29 - PAGE_SHIFT,
	},
	{
		.name = "isapc, 4 GiB",
		.ram = { { MB(1), MB(3584) - MB(1) }, { GB(4), MB(512) } },
		.low_end = MB(3584),
		.host = { { 0, 0, MB(3584), 0 },
			  { 0, GB(4), GB(4) + MB(512), MB(3584) } },
		.min_order = 29 - PAGE_SHIFT,
	},
	{
		/* Low RAM ends 1 MiB past a GiB: no window above 4 GiB is sure. */
		.name = "pc, 4 GiB, max-ram-below-4g=2049M",
		.ram = { { MB(1), MB(2049) - MB(1) }, { GB(4), MB(2047) } },
		.low_end = MB(2049),
		.host = { { 0, 0, MB(2049), 0 },
			  { 0, GB(4), GB(4) + MB(2047), MB(2049) } },
		.unsafe_pages = MB(2047),
		.min_order = VB_TEST_CHUNK_ORDER,
	},
};

static unsigned int vb_test_count(const unsigned long *v, unsigned int max)
{
	unsigned int n = 0;

	while (n < max && v[n])
		n++;
	return n;
}

/* The host mapping of @pfn in @l, or NULL if QEMU maps no RAM there. */
static const struct vb_test_map *vb_test_host(const struct vb_test_layout *l,
					      unsigned long pfn)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(l->host) && l->host[i].end; i++)
		if (pfn >= l->host[i].start && pfn < l->host[i].end)
			return &l->host[i];
	return NULL;
}

/* The chunk of the page at @pfn, as QEMU counts it: block and offset. */
static unsigned long vb_test_chunk(const struct vb_test_map *m,
				   unsigned long pfn)
{
	return (pfn - m->start + m->offset) >> VB_TEST_CHUNK_ORDER;
}

static void vb_test_layout_desc(const struct vb_test_layout *l, char *desc)
{
	strscpy(desc, l->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(vb_test_layout, vb_test_layouts, vb_test_layout_desc);

/* Pages of RAM range @r in window @w. */
static unsigned long vb_test_overlap(const struct vb_hint_range *r,
				     const struct vb_fence_window *w)
{
	unsigned long lo = max(r->pfn, w->start_pfn);
	unsigned long hi = min(r->pfn + r->nr_pages, w->end_pfn);

	return hi > lo ? hi - lo : 0;
}

/* Every page QEMU maps in a window is in one chunk of one block. */
static void vb_test_one_chunk(struct kunit *test,
			      const struct vb_test_layout *tl,
			      const struct vb_fence_window *w)
{
	const struct vb_test_map *m, *first = NULL;
	unsigned long pfn, chunk = 0;

	for (pfn = w->start_pfn; pfn < w->end_pfn; pfn += MB(1)) {
		m = vb_test_host(tl, pfn);
		if (!m)
			continue;
		if (!first) {
			first = m;
			chunk = vb_test_chunk(m, pfn);
		}
		KUNIT_EXPECT_EQ_MSG(test, m->block, first->block,
				    "window %#lx-%#lx spans blocks",
				    w->start_pfn, w->end_pfn);
		KUNIT_EXPECT_EQ_MSG(test, vb_test_chunk(m, pfn), chunk,
				    "window %#lx-%#lx spans chunks",
				    w->start_pfn, w->end_pfn);
	}
	/* The last page too, when the window is not a whole MiB. */
	m = vb_test_host(tl, w->end_pfn - 1);
	if (m && first)
		KUNIT_EXPECT_EQ(test, vb_test_chunk(m, w->end_pfn - 1), chunk);
}

/* Windows lie in one host chunk each and cover all the RAM they may. */
static void windows_lie_in_one_host_chunk(struct kunit *test)
{
	const struct vb_test_layout *tl = test->param_value;
	unsigned long cuts[ARRAY_SIZE(tl->cuts) + 1], covered = 0, ram = 0;
	unsigned int i, nr_ram = 0;
	struct vb_fence_layout fl;
	struct vb_layout l;
	unsigned long w;

	while (nr_ram < ARRAY_SIZE(tl->ram) && tl->ram[nr_ram].nr_pages)
		ram += tl->ram[nr_ram++].nr_pages;
	memcpy(cuts, tl->cuts, sizeof(tl->cuts));
	l = (struct vb_layout){
		.ram = tl->ram, .nr_ram = nr_ram, .cuts = cuts,
		.nr_cuts = vb_test_count(tl->cuts, ARRAY_SIZE(tl->cuts)),
		.low_end_pfn = tl->low_end,
	};
	KUNIT_ASSERT_EQ(test, vb_layout_windows(&l, VB_TEST_CHUNK_ORDER, &fl), 0);

	for (w = 0; w < fl.nr_win; w++) {
		KUNIT_ASSERT_LT(test, fl.win[w].start_pfn, fl.win[w].end_pfn);
		if (w)
			KUNIT_EXPECT_LE(test, fl.win[w - 1].end_pfn,
					fl.win[w].start_pfn);
		vb_test_one_chunk(test, tl, &fl.win[w]);
		for (i = 0; i < nr_ram; i++)
			covered += vb_test_overlap(&tl->ram[i], &fl.win[w]);
	}
	KUNIT_EXPECT_EQ(test, fl.unsafe_pages, tl->unsafe_pages);
	KUNIT_EXPECT_EQ(test, covered, ram - tl->unsafe_pages);
	KUNIT_EXPECT_EQ(test, fl.min_order, tl->min_order);
	kvfree(fl.win);
}

/* Two RAM ranges in one aligned block share its window and its probe. */
static void ram_ranges_share_a_window(struct kunit *test)
{
	struct vb_hint_range ram[] = {
		{ 0, MB(1) - 96 }, { MB(1), MB(500) }, { MB(600), MB(100) },
	};
	unsigned long cuts[1];
	struct vb_layout l = { .ram = ram, .nr_ram = ARRAY_SIZE(ram),
			       .cuts = cuts };
	struct vb_fence_layout fl;

	KUNIT_ASSERT_EQ(test, vb_layout_windows(&l, VB_TEST_CHUNK_ORDER, &fl), 0);
	KUNIT_ASSERT_EQ(test, fl.nr_win, 1UL);
	KUNIT_EXPECT_EQ(test, fl.win[0].start_pfn, 0UL);
	KUNIT_EXPECT_EQ(test, fl.win[0].end_pfn, GB(1));
	kvfree(fl.win);
}

/* hint_fence_mib caps the windows below the host chunk. */
static void windows_follow_the_largest_allowed(struct kunit *test)
{
	struct vb_hint_range ram[] = { { MB(1), GB(2) - MB(1) } };
	unsigned long cuts[1];
	struct vb_layout l = { .ram = ram, .nr_ram = ARRAY_SIZE(ram),
			       .cuts = cuts };
	struct vb_fence_layout fl;

	KUNIT_ASSERT_EQ(test, vb_layout_windows(&l, 28 - PAGE_SHIFT, &fl), 0);
	KUNIT_EXPECT_EQ(test, fl.nr_win, 8UL);
	KUNIT_EXPECT_EQ(test, fl.min_order, 28U - PAGE_SHIFT);
	kvfree(fl.win);
}

static void window_find_answers_holes_with_minus_one(struct kunit *test)
{
	static const struct vb_fence_window win[] = {
		{ 0, 16 }, { 16, 32 }, { 64, 80 },
	};

	KUNIT_EXPECT_EQ(test, vb_fence_window_find(win, 3, 0), 0L);
	KUNIT_EXPECT_EQ(test, vb_fence_window_find(win, 3, 31), 1L);
	KUNIT_EXPECT_EQ(test, vb_fence_window_find(win, 3, 32), -1L);
	KUNIT_EXPECT_EQ(test, vb_fence_window_find(win, 3, 79), 2L);
	KUNIT_EXPECT_EQ(test, vb_fence_window_find(win, 3, 80), -1L);
	KUNIT_EXPECT_EQ(test, vb_fence_window_find(win, 0, 0), -1L);
}

static struct kunit_case vb_layout_cases[] = {
	KUNIT_CASE_PARAM(windows_lie_in_one_host_chunk,
			 vb_test_layout_gen_params),
	KUNIT_CASE(ram_ranges_share_a_window),
	KUNIT_CASE(windows_follow_the_largest_allowed),
	KUNIT_CASE(window_find_answers_holes_with_minus_one),
	{}
};

static struct kunit_suite vb_layout_suite = {
	.name = "virtio_balloon_fence_layout",
	.test_cases = vb_layout_cases,
};

kunit_test_suite(vb_layout_suite);

MODULE_LICENSE("GPL");
