// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: the fence's windows, from what the guest sees of the
 * host's RAM blocks.
 *
 * QEMU keeps its dirty-log chunks per RAM block, counted in offsets inside
 * the block (migration_clear_memory_region_dirty_bitmap() aligns the block's
 * own page index to 1 GiB by default). A stretch of guest-physical memory
 * lies inside one chunk only if its alignment divides the distance between
 * its guest address and its offset in the block. That distance changes where
 * a new block begins and where a block resumes after a hole:
 *
 *  - every -numa node with its own memory backend is its own block, placed
 *    right after the previous one; every pc-dimm and virtio-mem device is
 *    its own block, aligned only to its backend (2 MiB for RAM backends);
 *  - the block that holds the end of RAM below 4 GiB resumes at 4 GiB, at an
 *    offset equal to where below-4 GiB RAM ended (pc, q35, isapc; lowered to
 *    any value by max-ram-below-4g).
 *
 * The guest sees those places: SRAT memory affinity ranges give every node's
 * span and QEMU splits them exactly where RAM below 4 GiB ends; each memory
 * device is its own System RAM resource (or virtio-mem region); and the end
 * of RAM below 4 GiB shows in the firmware's memory map, the RAM itself plus
 * whatever the firmware reserved at its top.
 *
 * So each place where a block may begin (a "cut") starts a segment whose
 * windows are aligned to the largest power of two, at most the host chunk,
 * that divides the cut; above 4 GiB, it must divide the end of RAM below
 * 4 GiB and the start of the block that held it too, since any segment there
 * may continue that block. A window never crosses a cut. A segment whose
 * alignment is below VB_FENCE_WINDOW_MIN_ORDER gets no window: its memory is
 * not hinted. Every rule errs towards smaller windows: a cut the guest
 * invents only costs probes.
 */

#include <linux/acpi.h>
#include <linux/ioport.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "virtio_balloon_internal.h"

/* Cuts at or below the first MiB are firmware holes inside the first block. */
#define VB_LAYOUT_LOW_PFN	(SZ_1M >> PAGE_SHIFT)
#define VB_LAYOUT_4G_PFN	((unsigned long)(SZ_4G >> PAGE_SHIFT))

static int vb_cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a;
	unsigned long y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/*
 * Sort the cuts, drop duplicates and those in the first MiB. The caller
 * leaves room for one more: 4 GiB, where low RAM's block resumes.
 */
static unsigned int vb_layout_sort_cuts(struct vb_layout *l)
{
	unsigned int i, n = 0;

	if (l->low_end_pfn)
		l->cuts[l->nr_cuts++] = VB_LAYOUT_4G_PFN;
	sort(l->cuts, l->nr_cuts, sizeof(*l->cuts), vb_cmp_ulong, NULL);
	for (i = 0; i < l->nr_cuts; i++) {
		if (l->cuts[i] <= VB_LAYOUT_LOW_PFN ||
		    (n && l->cuts[n - 1] == l->cuts[i]))
			continue;
		l->cuts[n++] = l->cuts[i];
	}
	return n;
}

/* The largest power of two dividing @pfn, as a page order, at most @max. */
static unsigned int vb_align_order(unsigned long pfn, unsigned int max)
{
	return pfn ? min_t(unsigned int, __ffs(pfn), max) : max;
}

/*
 * Window order of the segment starting at @start: what divides @start, and
 * above 4 GiB what divides the place where the block cut by the 4 GiB hole
 * resumes (@low_order).
 */
static unsigned int vb_layout_order(unsigned long start, unsigned int max,
				    unsigned int low_order)
{
	unsigned int o = vb_align_order(start, max);

	if (start >= VB_LAYOUT_4G_PFN)
		o = min(o, low_order);
	return o;
}

/* Where a pass over the segments stands; see vb_layout_pass(). */
struct vb_layout_walk {
	struct vb_fence_window *out;	/* NULL: only count */
	unsigned long n;		/* windows so far */
	unsigned long last_start;	/* of the last window, if n */
	struct vb_fence_layout *fl;
};

/*
 * Add the windows of segment [@start, @end), of window order @order, that
 * hold RAM of @l. RAM of a segment too finely aligned is counted as unsafe
 * instead.
 */
static void vb_layout_segment(const struct vb_layout *l,
			      struct vb_layout_walk *w, unsigned long start,
			      unsigned long end, unsigned int order)
{
	unsigned long a, b, p, base, ws, we, size = 1UL << order;
	struct vb_fence_layout *fl = w->fl;
	unsigned int i;

	for (i = 0; i < l->nr_ram; i++) {
		a = max(l->ram[i].pfn, start);
		b = min(l->ram[i].pfn + l->ram[i].nr_pages, end);
		if (a >= b)
			continue;
		if (order < VB_FENCE_WINDOW_MIN_ORDER) {
			if (!fl->unsafe_pages)
				fl->unsafe_pfn = a;
			fl->unsafe_pages += b - a;
			continue;
		}
		fl->min_order = min(fl->min_order, order);
		for (p = a; p < b; p = we) {
			base = ALIGN_DOWN(p, size);
			ws = max(base, start);
			we = min(base + size, end);
			/* RAM ranges that share a window share its probe. */
			if (w->n && w->last_start == ws)
				continue;
			if (w->out) {
				w->out[w->n].start_pfn = ws;
				w->out[w->n].end_pfn = we;
			}
			w->last_start = ws;
			w->n++;
		}
	}
}

/* One pass over the segments; see vb_layout_windows(). */
static unsigned long vb_layout_pass(const struct vb_layout *l,
				    unsigned int nr_cuts, unsigned int max,
				    struct vb_fence_window *out,
				    struct vb_fence_layout *fl)
{
	struct vb_layout_walk w = { .out = out, .fl = fl };
	unsigned long start, end, low_block = 0;
	unsigned int i, low_order = max;

	if (l->low_end_pfn) {
		/* The block holding the end of low RAM starts at the last cut below it. */
		for (i = 0; i < nr_cuts && l->cuts[i] < l->low_end_pfn; i++)
			low_block = l->cuts[i];
		low_order = min(vb_align_order(l->low_end_pfn, max),
				vb_align_order(low_block, max));
	}
	for (i = 0; i <= nr_cuts; i++) {
		start = i ? l->cuts[i - 1] : 0;
		end = i < nr_cuts ? l->cuts[i] : ULONG_MAX;
		vb_layout_segment(l, &w, start, end,
				  vb_layout_order(start, max, low_order));
	}
	return w.n;
}

/*
 * Derive the fence windows of layout @l, no larger than @max_order pages:
 * the host chunk the user allows (hint_fence_mib). On success @out holds the
 * windows, to be freed with kvfree(), and how much RAM none covers.
 */
int vb_layout_windows(struct vb_layout *l, unsigned int max_order,
		      struct vb_fence_layout *out)
{
	unsigned int nr_cuts;
	struct vb_fence_layout count = { .min_order = max_order };
	unsigned long n;

	nr_cuts = vb_layout_sort_cuts(l);

	n = vb_layout_pass(l, nr_cuts, max_order, NULL, &count);
	memset(out, 0, sizeof(*out));
	out->min_order = max_order;
	out->win = kvmalloc_array(max(n, 1UL), sizeof(*out->win), GFP_KERNEL);
	if (!out->win)
		return -ENOMEM;
	out->nr_win = vb_layout_pass(l, nr_cuts, max_order, out->win, out);
	return 0;
}

/* Index of the window of @win holding @pfn, or -1. */
long vb_fence_window_find(const struct vb_fence_window *win,
			  unsigned long nr, unsigned long pfn)
{
	unsigned long lo = 0, hi = nr, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (pfn < win[mid].start_pfn)
			hi = mid;
		else if (pfn >= win[mid].end_pfn)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/* A growing array of RAM ranges and cuts, filled from the platform. */
struct vb_layout_buf {
	struct vb_hint_range *ram;
	unsigned int nr_ram, max_ram;
	unsigned long *cuts;
	unsigned int nr_cuts, max_cuts;
	int err;
};

static void *vb_layout_grow(void *p, unsigned int *max, size_t size)
{
	unsigned int n = *max ? *max * 2 : 32;
	void *q = krealloc_array(p, n, size, GFP_KERNEL);

	if (q)
		*max = n;
	return q;
}

static void vb_layout_add_cut(struct vb_layout_buf *b, unsigned long pfn)
{
	unsigned long *cuts;

	/* One spare slot: vb_layout_sort_cuts() may add 4 GiB. */
	if (b->nr_cuts + 1 >= b->max_cuts) {
		cuts = vb_layout_grow(b->cuts, &b->max_cuts, sizeof(*cuts));
		if (!cuts) {
			b->err = -ENOMEM;
			return;
		}
		b->cuts = cuts;
	}
	b->cuts[b->nr_cuts++] = pfn;
}

/* Every System RAM resource, boot memory and memory devices alike. */
static int vb_layout_add_ram(struct resource *res, void *arg)
{
	struct vb_layout_buf *b = arg;
	unsigned long start = PFN_UP(res->start), end = PFN_DOWN(res->end + 1);
	struct vb_hint_range *ram;

	if (start >= end)
		return 0;
	/* Above 4 GiB a RAM resource is main RAM or a memory device. */
	if (start >= VB_LAYOUT_4G_PFN)
		vb_layout_add_cut(b, start);
	if (b->nr_ram == b->max_ram) {
		ram = vb_layout_grow(b->ram, &b->max_ram, sizeof(*ram));
		if (!ram) {
			b->err = -ENOMEM;
			return -ENOMEM;
		}
		b->ram = ram;
	}
	/* Nested resources (a virtio-mem region and its memory) overlap. */
	if (b->nr_ram && start < b->ram[b->nr_ram - 1].pfn +
				 b->ram[b->nr_ram - 1].nr_pages) {
		ram = &b->ram[b->nr_ram - 1];
		ram->nr_pages = max(ram->pfn + ram->nr_pages, end) - ram->pfn;
		return b->err;
	}
	b->ram[b->nr_ram].pfn = start;
	b->ram[b->nr_ram].nr_pages = end - start;
	b->nr_ram++;
	return b->err;
}

/* Firmware ranges that may sit at the top of RAM below 4 GiB. */
static const unsigned long vb_layout_firmware_descs[] = {
	IORES_DESC_RESERVED,
	IORES_DESC_ACPI_TABLES,
	IORES_DESC_ACPI_NV_STORAGE,
};

struct vb_layout_low_end {
	unsigned long pfn;
	bool moved;
};

static int vb_layout_extend_low_end(struct resource *res, void *arg)
{
	struct vb_layout_low_end *le = arg;
	unsigned long end = PFN_UP(res->end + 1);

	if (PFN_DOWN(res->start) <= le->pfn && end > le->pfn) {
		le->pfn = min(end, VB_LAYOUT_4G_PFN);
		le->moved = true;
	}
	return 0;
}

/*
 * Where RAM below 4 GiB ends, if RAM resumes above it, or 0: the end of the
 * last RAM below 4 GiB and of the firmware's reservations right after it
 * (SeaBIOS keeps its tables at the top of low RAM).
 */
static unsigned long vb_layout_low_end(const struct vb_layout_buf *b)
{
	struct vb_layout_low_end le = { 0 };
	unsigned int i;
	bool above = false;

	for (i = 0; i < b->nr_ram; i++) {
		if (b->ram[i].pfn >= VB_LAYOUT_4G_PFN)
			above = true;
		else
			le.pfn = b->ram[i].pfn + b->ram[i].nr_pages;
	}
	if (!above || le.pfn >= VB_LAYOUT_4G_PFN)
		return 0;
	do {
		le.moved = false;
		for (i = 0; i < ARRAY_SIZE(vb_layout_firmware_descs); i++)
			walk_iomem_res_desc(vb_layout_firmware_descs[i],
					    IORESOURCE_MEM, PFN_PHYS(le.pfn),
					    SZ_4G - 1, &le,
					    vb_layout_extend_low_end);
	} while (le.moved && le.pfn < VB_LAYOUT_4G_PFN);
	return le.pfn;
}

/*
 * The SRAT's memory ranges: where every NUMA node's span begins, as the
 * firmware gave it (QEMU cuts them where RAM below 4 GiB ends and resumes at
 * 4 GiB). Where a range ends does not matter, but the last end below 4 GiB,
 * stored in *@low_end, is where low RAM ends. Returns false without an SRAT.
 */
static bool vb_layout_add_srat(struct vb_layout_buf *b,
			       unsigned long *low_end)
{
#ifdef CONFIG_ACPI
	struct acpi_table_header *hdr;
	struct acpi_srat_mem_affinity *ma;
	struct acpi_subtable_header *sub;
	unsigned long end;
	u8 *p, *limit;

	*low_end = 0;
	if (acpi_disabled ||
	    ACPI_FAILURE(acpi_get_table(ACPI_SIG_SRAT, 0, &hdr)))
		return false;
	p = (u8 *)hdr + sizeof(struct acpi_table_srat);
	limit = (u8 *)hdr + hdr->length;
	while (p + sizeof(*sub) <= limit) {
		sub = (struct acpi_subtable_header *)p;
		if (sub->length < sizeof(*sub) || p + sub->length > limit)
			break;
		ma = (struct acpi_srat_mem_affinity *)sub;
		if (sub->type == ACPI_SRAT_TYPE_MEMORY_AFFINITY &&
		    sub->length >= sizeof(*ma) &&
		    (ma->flags & ACPI_SRAT_MEM_ENABLED) && ma->length) {
			end = PHYS_PFN(ma->base_address + ma->length);
			vb_layout_add_cut(b, PHYS_PFN(ma->base_address));
			if (end <= VB_LAYOUT_4G_PFN)
				*low_end = max(*low_end, end);
		}
		p += sub->length;
	}
	acpi_put_table(hdr);
	return true;
#else
	return false;
#endif
}

/* Without an SRAT, the spans of the NUMA nodes, as the kernel knows them. */
static void vb_layout_add_nodes(struct vb_layout_buf *b)
{
	int nid;

	for_each_node_state(nid, N_MEMORY)
		vb_layout_add_cut(b, node_start_pfn(nid));
}

/*
 * Read the layout of guest RAM from the platform and derive the fence's
 * windows into @out; see vb_layout_windows().
 */
int vb_layout_read(unsigned int max_order, struct vb_fence_layout *out)
{
	struct vb_layout_buf b = { 0 };
	unsigned long low_end, srat_low_end = 0;
	struct vb_layout l;
	int err;

	/*
	 * Busy or not: a virtio-mem device's region is a System RAM resource
	 * that is not busy, and its start is the block's; the memory it plugs
	 * is nested in it and merged, so it is not visited.
	 */
	walk_iomem_res_desc(IORES_DESC_NONE, IORESOURCE_SYSTEM_RAM, 0,
			    ULLONG_MAX, &b, vb_layout_add_ram);
	low_end = vb_layout_low_end(&b);
	if (!vb_layout_add_srat(&b, &srat_low_end))
		vb_layout_add_nodes(&b);
	/*
	 * The firmware's memory map and the SRAT should agree on where low
	 * RAM ends; if they do not, the windows above 4 GiB follow the one
	 * that allows the smaller ones.
	 */
	if (low_end && srat_low_end && srat_low_end < VB_LAYOUT_4G_PFN &&
	    __ffs(srat_low_end) < __ffs(low_end))
		low_end = srat_low_end;
	/* Make sure of the spare slot, even with no cut at all. */
	vb_layout_add_cut(&b, 0);
	b.nr_cuts--;
	err = b.err;
	if (!err) {
		l = (struct vb_layout){
			.ram = b.ram, .nr_ram = b.nr_ram,
			.cuts = b.cuts, .nr_cuts = b.nr_cuts,
			.low_end_pfn = low_end,
		};
		err = vb_layout_windows(&l, max_order, out);
	}
	kfree(b.ram);
	kfree(b.cuts);
	return err;
}
