// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: page poison and free page reporting.
 *
 * Free page reporting (VIRTIO_BALLOON_F_REPORTING) hands pages that have sat
 * free for a while to the device, which releases their backing memory; the
 * kernel's page_reporting core isolates the pages during the call, so the
 * device may discard them. A discarded page reads back as zeros, which breaks
 * a guest that poisons or zeroes free pages unless the device is told what
 * free pages hold (VIRTIO_BALLOON_F_PAGE_POISON). The rules, as in the
 * in-tree driver: PAGE_POISON is negotiated only when the guest poisons or
 * zeroes free pages, and reporting is declined when such a guest has a device
 * that cannot be told.
 */

#include <linux/mm.h>
#include <linux/page_reporting.h>
#include <linux/poison.h>
#include <linux/virtio_config.h>

#include "virtio_balloon_internal.h"

/* How long between complaints about a device that does not take a report. */
#define VB_REPORT_WARN_INTERVAL	(30 * HZ)

/* Called by validate: decide PAGE_POISON and REPORTING as described above. */
void vb_reporting_validate(struct virtio_device *vdev)
{
	if (!vb_free_page_filler())
		__virtio_clear_bit(vdev, VIRTIO_BALLOON_F_PAGE_POISON);
	else if (!virtio_has_feature(vdev, VIRTIO_BALLOON_F_PAGE_POISON))
		__virtio_clear_bit(vdev, VIRTIO_BALLOON_F_REPORTING);
}

/* Tell the device what a free page holds: zeros or the poison byte. */
void vb_poison_init(struct vb_device *vb)
{
	u32 poison_val = 0;

	if (!virtio_has_feature(vb->vdev, VIRTIO_BALLOON_F_PAGE_POISON))
		return;
	/* The same byte in every position: no byte order to worry about. */
	if (!want_init_on_free())
		memset(&poison_val, PAGE_POISON, sizeof(poison_val));
	virtio_cwrite_le(vb->vdev, struct virtio_balloon_config, poison_val,
			 &poison_val);
}

/*
 * Give one batch of isolated free pages to the device and wait until it is
 * done with them. The pages go back to the allocator when this returns, so it
 * must not return before the device has used the buffer, however long that
 * takes: a device that stalls is reported in the log, not abandoned. A
 * device that is gone (removed by surprise: its queues are broken, and
 * vb_down() wakes us) will never use it, and cannot act on the pages either.
 */
static int vb_report(struct page_reporting_dev_info *info,
		     struct scatterlist *sg, unsigned int nents)
{
	struct vb_device *vb = container_of(info, struct vb_device, reporting);
	struct virtqueue *vq = vb->reporting_vq;
	unsigned int len;
	int err;

	/* The core never hands more than the queue can hold (checked at init). */
	err = virtqueue_add_inbuf(vq, sg, nents, vb, GFP_NOWAIT | __GFP_NOWARN);
	if (WARN_ON_ONCE(err))
		return err;
	virtqueue_kick(vq);

	while (!wait_event_timeout(vb->acked, virtqueue_get_buf(vq, &len) ||
				   virtqueue_is_broken(vq),
				   VB_REPORT_WARN_INTERVAL))
		dev_warn(&vb->vdev->dev,
			 "device has not taken a free page report for %u s\n",
			 VB_REPORT_WARN_INTERVAL / HZ);
	return virtqueue_is_broken(vq) ? -EIO : 0;
}

/*
 * Register with the page reporting core. Where reporting cannot work (a
 * queue too small for this kernel's batches, or another device already
 * reporting: the core takes one) the device goes on without it, as it would
 * without the feature, and the log says why.
 */
int vb_reporting_init(struct vb_device *vb)
{
	unsigned int size;
	int err;

	vb->reporting_on = false;
	if (!vb->reporting_vq)
		return 0;
	size = virtqueue_get_vring_size(vb->reporting_vq);
	if (!vb_reporting_set_capacity(&vb->reporting, size)) {
		dev_warn(&vb->vdev->dev,
			 "free page reporting off: the reporting queue holds %u entries, and this kernel reports %u pages at a time\n",
			 size, PAGE_REPORTING_CAPACITY);
		return 0;
	}
	vb->reporting.report = vb_report;
	vb->reporting.order = PAGE_REPORTING_ORDER_UNSPECIFIED;
	err = page_reporting_register(&vb->reporting);
	if (err == -EBUSY) {
		dev_warn(&vb->vdev->dev,
			 "free page reporting off: another device reports free pages\n");
		return 0;
	}
	vb->reporting_on = !err;
	return err;
}

void vb_reporting_exit(struct vb_device *vb)
{
	if (vb->reporting_on)
		page_reporting_unregister(&vb->reporting);
	vb->reporting_on = false;
}
