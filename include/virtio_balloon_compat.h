/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every difference between the kernels this module builds for (Debian's 6.1
 * and 6.12) lives here. Each shim provides the newer upstream API under its
 * upstream name, so the driver reads as if it were written for mainline.
 */
#ifndef _VIRTIO_BALLOON_COMPAT_H
#define _VIRTIO_BALLOON_COMPAT_H

/*
 * Newer kernels replaced <linux/balloon_compaction.h> with <linux/balloon.h>
 * and moved balloon page migration into the core, under the new symbol
 * CONFIG_BALLOON_MIGRATION: code under CONFIG_BALLOON_COMPACTION would vanish
 * and leave the core's migration callback unset. Refuse to build instead.
 */
#ifdef CONFIG_BALLOON_MIGRATION
#error "virtio_balloon: this kernel's balloon core (<linux/balloon.h>) is not supported yet"
#endif
#include <linux/balloon_compaction.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/page_reporting.h>
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
 * The order of the blocks on per-CPU list @pindex: the lists for small orders
 * come MIGRATE_PCPTYPES to an order, then (with THP) the lists of THP-sized
 * blocks, filed under pageblock_order in 6.1 and under HPAGE_PMD_ORDER in
 * 6.12 (the same order on x86). The layout is page_alloc.c's own; it is the
 * same in both kernels.
 */
static inline unsigned int vb_pcp_list_order(unsigned int pindex)
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

#endif /* _VIRTIO_BALLOON_COMPAT_H */
