/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every difference between the kernels this module builds for (Debian's 6.1,
 * 6.12 and the newest of trixie-backports, 7.3 today) lives here. Each shim
 * provides the newer upstream API under its upstream name, or a vb_ helper
 * where the kernels differ in behaviour, so the driver reads as if it were
 * written for mainline. Features are detected, not versions, wherever a
 * macro or a header tells: Kbuild's VB_HAVE_* flags say what the kernel's
 * headers have that no macro reveals.
 */
#ifndef _VIRTIO_BALLOON_COMPAT_H
#define _VIRTIO_BALLOON_COMPAT_H

#include <linux/migrate.h>
#ifdef VB_HAVE_BALLOON_H
/*
 * Newer kernels (7.3 among them) have the balloon core in <linux/balloon.h>,
 * built with CONFIG_BALLOON, and CONFIG_BALLOON_MIGRATION (which replaced
 * BALLOON_COMPACTION) makes it migrate balloon pages itself: it inserts the
 * new page, counts BALLOON_MIGRATE and releases the old page after the
 * driver's callback.
 */
#include <linux/balloon.h>
#ifndef CONFIG_BALLOON
#error "virtio_balloon: this kernel has no balloon core (CONFIG_BALLOON is not set)"
#endif
#define VB_BALLOON_MIGRATION IS_ENABLED(CONFIG_BALLOON_MIGRATION)
#define VB_CORE_MIGRATES 1
#else
#include <linux/balloon_compaction.h>
/* The old core's CONFIG_BALLOON_MIGRATION would be a renamed symbol: refuse. */
#ifdef CONFIG_BALLOON_MIGRATION
#error "virtio_balloon: CONFIG_BALLOON_MIGRATION without <linux/balloon.h>"
#endif
#define VB_BALLOON_MIGRATION IS_ENABLED(CONFIG_BALLOON_COMPACTION)
#define VB_CORE_MIGRATES 0
#endif
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/page_reporting.h>
#include <linux/slab.h>
#include <linux/vmstat.h>
#include <linux/workqueue.h>
#include <linux/version.h>
#include <linux/virtio_config.h>
#include <uapi/linux/virtio_balloon.h>

/*
 * Statistics tags added to the uapi header in 6.10. The values are fixed by
 * the virtio specification, so defining them for older headers is safe.
 */
#ifndef VIRTIO_BALLOON_S_OOM_KILL
#define VIRTIO_BALLOON_S_OOM_KILL	10
#define VIRTIO_BALLOON_S_ALLOC_STALL	11
#define VIRTIO_BALLOON_S_ASYNC_SCAN	12
#define VIRTIO_BALLOON_S_DIRECT_SCAN	13
#define VIRTIO_BALLOON_S_ASYNC_RECLAIM	14
#define VIRTIO_BALLOON_S_DIRECT_RECLAIM	15
#endif

/*
 * 6.8 renamed the page orders: NR_PAGE_ORDERS counts them, MAX_PAGE_ORDER
 * names the largest. Before, MAX_ORDER was one past the largest order, except
 * in 6.4 to 6.7, where it was the largest order itself; MAX_ORDER_NR_PAGES
 * (the pages of a largest block) tells the two apart.
 */
#ifndef NR_PAGE_ORDERS
#if MAX_ORDER_NR_PAGES == (1 << MAX_ORDER)
#define NR_PAGE_ORDERS (MAX_ORDER + 1)
#else
#define NR_PAGE_ORDERS MAX_ORDER
#endif
#endif

/*
 * The order free page reporting picks itself (pageblock_order): 0 until
 * PAGE_REPORTING_ORDER_UNSPECIFIED arrived, after which 0 means order 0.
 */
#ifndef PAGE_REPORTING_ORDER_UNSPECIFIED
#define PAGE_REPORTING_ORDER_UNSPECIFIED 0
#endif

/*
 * Copies of helpers that mm/ keeps to itself (mm/internal.h, page_alloc.c),
 * under their upstream names; the layouts they read are the same in 6.1,
 * 6.12 and 7.3.
 *
 * buddy_order(): the order of a free block, valid only while PageBuddy()
 * holds, under zone->lock.
 */
static inline unsigned int buddy_order(struct page *page)
{
	return page_private(page);
}

/*
 * pindex_to_order(): the order of the blocks on per-CPU list @pindex. The
 * lists for small orders come MIGRATE_PCPTYPES to an order, then (with THP)
 * the lists of THP-sized blocks, filed under pageblock_order in 6.1 and
 * under HPAGE_PMD_ORDER from 6.12 (the same order on x86).
 */
static inline unsigned int pindex_to_order(unsigned int pindex)
{
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	if (pindex >= NR_LOWORDER_PCP_LISTS)
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
		return pageblock_order;
#else
		return HPAGE_PMD_ORDER;
#endif
#endif
	return pindex / MIGRATE_PCPTYPES;
}

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 11, 0)
/*
 * struct virtqueue_info and the virtio_find_vqs() that takes it arrived in
 * 6.11; older kernels take parallel arrays of callbacks and names. In both,
 * an entry with a NULL name gets no queue and no queue number: the numbers
 * go to the named entries in turn (see vb_init_vqs()).
 */
struct virtqueue_info {
	const char *name;
	vq_callback_t *callback;
	bool ctx;
};

#define VB_COMPAT_MAX_VQS 8

static inline int vb_compat_virtio_find_vqs(struct virtio_device *vdev,
					    unsigned int nvqs,
					    struct virtqueue *vqs[],
					    struct virtqueue_info vqs_info[],
					    struct irq_affinity *desc)
{
	vq_callback_t *callbacks[VB_COMPAT_MAX_VQS];
	const char *names[VB_COMPAT_MAX_VQS];
	unsigned int i;

	if (WARN_ON(nvqs > VB_COMPAT_MAX_VQS))
		return -EINVAL;
	for (i = 0; i < nvqs; i++) {
		callbacks[i] = vqs_info[i].callback;
		names[i] = vqs_info[i].name;
	}
	return virtio_find_vqs(vdev, nvqs, vqs, callbacks, names, desc);
}

#define virtio_find_vqs vb_compat_virtio_find_vqs
#endif

/*
 * Balloon pages taken off the list for a deflate stay counted in the
 * balloon until the device acknowledges (BALLOON_DEFLATE, and the
 * nr_balloon_pages node statistic where it exists), and go back uncounted if
 * it does not. The old core lets the driver hold the list's lock; the new
 * one counts inside balloon_page_list_{de,en}queue(), which is undone here.
 */
#if VB_CORE_MIGRATES
/* Add @delta to nr_balloon_pages for each of @pages; returns how many. */
static inline long vb_balloon_count_pages(struct list_head *pages, long delta)
{
	struct page *page;
	long n = 0;

	list_for_each_entry(page, pages, lru) {
		mod_node_page_state(page_pgdat(page), NR_BALLOON_PAGES, delta);
		n++;
	}
	return n;
}

static inline unsigned int vb_balloon_take(struct balloon_dev_info *info,
					   struct list_head *pages,
					   unsigned int n)
{
	unsigned int taken = balloon_page_list_dequeue(info, pages, n);

	count_vm_events(BALLOON_DEFLATE, -vb_balloon_count_pages(pages, 1));
	return taken;
}

static inline void vb_balloon_return(struct balloon_dev_info *info,
				     struct list_head *pages)
{
	count_vm_events(BALLOON_INFLATE, -vb_balloon_count_pages(pages, -1));
	balloon_page_list_enqueue(info, pages);
}

/* The device acknowledged the deflate of @pages, @n of them. */
static inline void vb_balloon_deflated(struct list_head *pages, unsigned int n)
{
	vb_balloon_count_pages(pages, -1);
	count_vm_events(BALLOON_DEFLATE, n);
}

/*
 * Compaction moved @page to @newpage; the core puts @newpage in the balloon
 * and drops the balloon's reference to @page once this returns 0. (A page
 * the device did not hear leave has a reference of the driver's already.)
 */
static inline int vb_balloon_migrated(struct balloon_dev_info *info,
				      struct page *newpage, struct page *page)
{
	return 0;
}
#else
static inline unsigned int vb_balloon_take(struct balloon_dev_info *info,
					   struct list_head *pages,
					   unsigned int n)
{
	struct page *page, *next;
	unsigned long flags;
	unsigned int taken = 0;

	spin_lock_irqsave(&info->pages_lock, flags);
	list_for_each_entry_safe(page, next, &info->pages, lru) {
		if (taken == n)
			break;
		/* Locked: compaction is about to isolate it. */
		if (!trylock_page(page))
			continue;
		list_del(&page->lru);
		balloon_page_finalize(page);
		list_add(&page->lru, pages);
		unlock_page(page);
		taken++;
	}
	spin_unlock_irqrestore(&info->pages_lock, flags);
	return taken;
}

static inline void vb_balloon_return(struct balloon_dev_info *info,
				     struct list_head *pages)
{
	struct page *page, *next;
	unsigned long flags;

	spin_lock_irqsave(&info->pages_lock, flags);
	list_for_each_entry_safe(page, next, pages, lru) {
		/* Nobody else can hold a page that is on no list. */
		bool locked = trylock_page(page);

		WARN_ON_ONCE(!locked);
		list_del(&page->lru);
		balloon_page_insert(info, page);
		if (locked)
			unlock_page(page);
	}
	spin_unlock_irqrestore(&info->pages_lock, flags);
}

static inline void vb_balloon_deflated(struct list_head *pages, unsigned int n)
{
	count_vm_events(BALLOON_DEFLATE, n);
}

/*
 * The old core leaves the whole move to the driver: @newpage joins the
 * balloon with a reference of its own, the isolation of @page ends, and the
 * balloon's reference to @page is dropped (a page the device did not hear
 * leave has a reference of the driver's already).
 */
static inline int vb_balloon_migrated(struct balloon_dev_info *info,
				      struct page *newpage, struct page *page)
{
	unsigned long flags;

	get_page(newpage);
	spin_lock_irqsave(&info->pages_lock, flags);
	balloon_page_insert(info, newpage);
	info->isolated_pages--;
	__count_vm_event(BALLOON_MIGRATE);
	spin_unlock_irqrestore(&info->pages_lock, flags);
	balloon_page_finalize(page);
	put_page(page);
	return MIGRATEPAGE_SUCCESS;
}
#endif

/*
 * Ask the page reporting core for batches of at most @n pages, the entries
 * of the reporting queue. Newer kernels (7.3) take a capacity below
 * PAGE_REPORTING_CAPACITY from the driver; older ones always hand that
 * many. Returns false if the core would hand more than @n.
 */
static inline bool vb_reporting_set_capacity(struct page_reporting_dev_info *info,
					     unsigned int n)
{
#ifdef VB_HAVE_REPORTING_CAPACITY
	info->capacity = min_t(unsigned int, n, PAGE_REPORTING_CAPACITY);
	return n;
#else
	return n >= PAGE_REPORTING_CAPACITY;
#endif
}

/*
 * Reclaim scans and steals are node statistics in newer kernels (7.3);
 * before, they were VM events, read from the array all_vm_events() filled.
 */
static inline unsigned long vb_reclaim_stat(const unsigned long *events,
					    unsigned int item)
{
#ifdef VB_HAVE_NODE_RECLAIM_STATS
	return global_node_page_state(item);
#else
	return events[item];
#endif
}

/*
 * Per-CPU workqueues say so with WQ_PERCPU where it exists (7.3, and 6.12
 * from 6.12.118 on); 7.3's alloc_workqueue() warns without it or WQ_UNBOUND.
 */
#ifdef VB_HAVE_WQ_PERCPU
#define VB_WQ_PERCPU WQ_PERCPU
#else
#define VB_WQ_PERCPU 0
#endif

/*
 * alloc_contig_range() took the migratetype of the range; newer kernels
 * take acr_flags_t, in which MIGRATE_MOVABLE's value means ACR_FLAGS_CMA.
 */
#ifdef ACR_FLAGS_NONE
#define VB_CONTIG_ORDINARY ACR_FLAGS_NONE
#else
#define VB_CONTIG_ORDINARY MIGRATE_MOVABLE
#endif

/*
 * Whether the device offers feature @fbit. Where features may pass 64 bits
 * (7.3), virtio-pci's modern transport has only get_extended_features().
 */
static inline bool vb_device_offers(struct virtio_device *vdev,
				    unsigned int fbit)
{
#ifdef VIRTIO_FEATURES_U64S
	u64 features[VIRTIO_FEATURES_U64S];

	virtio_get_features(vdev, features);
	return virtio_features_test_bit(features, fbit);
#else
	return vdev->config->get_features(vdev) & BIT_ULL(fbit);
#endif
}

/* Typed allocation of one object (newer kernels; 7.3 has it). */
#ifndef kzalloc_obj
#define kzalloc_obj(obj, gfp) kzalloc(sizeof(obj), gfp)
#endif

/* For the KUnit suites: newer kernels keep drain_all_pages() in mm/. */
#ifndef VB_HAVE_DRAIN_ALL_PAGES
void drain_all_pages(struct zone *zone);
#endif

#endif /* _VIRTIO_BALLOON_COMPAT_H */
