// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: memory statistics for the host.
 *
 * The device keeps one buffer of ours and returns it when it wants fresh
 * figures (QEMU does so every guest-stats-polling-interval seconds). The stats
 * work refills the buffer and gives it back, so exactly one buffer is ever
 * outstanding and vb->stats is written only while the device does not hold it.
 */

#include <kunit/visibility.h>
#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/scatterlist.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

#include "virtio_balloon_internal.h"

static void vb_stat_set(struct vb_device *vb, unsigned int *idx, u16 tag,
			u64 val)
{
	if (WARN_ON_ONCE(*idx >= VB_STATS_MAX))
		return;
	vb->stats[*idx].tag = cpu_to_virtio16(vb->vdev, tag);
	vb->stats[*idx].val = cpu_to_virtio64(vb->vdev, val);
	(*idx)++;
}

static u64 vb_pages_to_bytes(unsigned long pages)
{
	return (u64)pages << PAGE_SHIFT;
}

#ifdef CONFIG_VM_EVENT_COUNTERS
/* Paging and reclaim activity since boot, from the VM event counters. */
static void vb_stats_fill_events(struct vb_device *vb, unsigned int *idx)
{
	unsigned long *ev = vb->events;
	unsigned long stalls = 0;
	unsigned int zone;

	all_vm_events(ev);
	for (zone = 0; zone < MAX_NR_ZONES; zone++)
		stalls += ev[ALLOCSTALL_NORMAL - ZONE_NORMAL + zone];

	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_SWAP_IN,
		    vb_pages_to_bytes(ev[PSWPIN]));
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_SWAP_OUT,
		    vb_pages_to_bytes(ev[PSWPOUT]));
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_MAJFLT, ev[PGMAJFAULT]);
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_MINFLT, ev[PGFAULT]);
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_OOM_KILL, ev[OOM_KILL]);
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_ALLOC_STALL, stalls);
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_ASYNC_SCAN,
		    vb_pages_to_bytes(vb_reclaim_stat(ev, PGSCAN_KSWAPD)));
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_DIRECT_SCAN,
		    vb_pages_to_bytes(vb_reclaim_stat(ev, PGSCAN_DIRECT)));
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_ASYNC_RECLAIM,
		    vb_pages_to_bytes(vb_reclaim_stat(ev, PGSTEAL_KSWAPD)));
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_DIRECT_RECLAIM,
		    vb_pages_to_bytes(vb_reclaim_stat(ev, PGSTEAL_DIRECT)));
#ifdef CONFIG_HUGETLB_PAGE
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_HTLB_PGALLOC,
		    ev[HTLB_BUDDY_PGALLOC]);
	vb_stat_set(vb, idx, VIRTIO_BALLOON_S_HTLB_PGFAIL,
		    ev[HTLB_BUDDY_PGALLOC_FAIL]);
#endif
}
#else
static void vb_stats_fill_events(struct vb_device *vb, unsigned int *idx)
{
}
#endif

/* Fill vb->stats with current figures; returns the number of entries. */
VISIBLE_IF_KUNIT unsigned int vb_stats_fill(struct vb_device *vb)
{
	unsigned int idx = 0;
	struct sysinfo si;

	vb_stats_fill_events(vb, &idx);

	si_meminfo(&si);
	vb_stat_set(vb, &idx, VIRTIO_BALLOON_S_MEMFREE,
		    vb_pages_to_bytes(si.freeram));
	vb_stat_set(vb, &idx, VIRTIO_BALLOON_S_MEMTOT,
		    vb_pages_to_bytes(si.totalram));
	vb_stat_set(vb, &idx, VIRTIO_BALLOON_S_AVAIL,
		    vb_pages_to_bytes(si_mem_available()));
	vb_stat_set(vb, &idx, VIRTIO_BALLOON_S_CACHES,
		    vb_pages_to_bytes(global_node_page_state(NR_FILE_PAGES)));
	return idx;
}

/* Fill the statistics buffer and hand it to the device. */
int vb_stats_queue(struct vb_device *vb)
{
	struct scatterlist sg;
	unsigned int n = vb_stats_fill(vb);

	sg_init_one(&sg, vb->stats, sizeof(vb->stats[0]) * n);
	return virtqueue_add_outbuf(vb->stats_vq, &sg, 1, vb, GFP_KERNEL);
}

void vb_stats_request(struct virtqueue *vq)
{
	struct vb_device *vb = vq->vdev->priv;

	vb_queue_work(&vb->work, &vb->stats_work, VB_WAKEUP_STATS);
}

void vb_stats_work(struct work_struct *work)
{
	struct vb_device *vb = container_of(work, struct vb_device,
					    stats_work);
	unsigned int len;
	int err;

	vb_work_begin(&vb->work, VB_WAKEUP_STATS);
	if (virtqueue_get_buf(vb->stats_vq, &len)) {
		err = vb_stats_queue(vb);
		if (err)
			dev_warn_ratelimited(&vb->vdev->dev,
					     "cannot return statistics buffer: %d\n",
					     err);
		else
			virtqueue_kick(vb->stats_vq);
	}
	vb_work_end(&vb->work);
}
